/* SEARCH execution and responses (see imap-search.h).
 *
 * One query per SEARCH: {mailbox, uid <= max_uid} plus the compiled filter,
 * read through one cursor. Matching UIDs go into a growing array that is
 * sorted and merged into ranges at the end; the database is not asked to
 * sort (FerretDB sorts in memory after its scan, and we need the UIDs only).
 *
 * Residual checks load, per candidate, only what the key tree can look at:
 * the fields the evaluator reads from the document always, mimeTree.header
 * for HEADER and TEXT keys, text/textFooter/html for BODY and TEXT keys.
 * Header fields are stored folded (lines joined with CRLF); the evaluator
 * wants them unfolded, so CR and LF are removed, keeping the whitespace.
 *
 * On FerretDB/SQLite (wd-store-fdb.h) FerretDB itself is not asked: it
 * would decode every document of the collection for any filter but _id.
 * The mailbox's rows are read from SQLite through the metadata index, with
 * the residual projection's fields when the keys need more than the index,
 * and every key is decided by the residual evaluator. */
#include "imap-search.h"

#include "imap-search-args.h"
#include "wd-result.h"
#include "wd-store-fdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the residual evaluator needs beyond the document fields. */
enum needs {
	NEED_HEADERS = 1 << 0,
	NEED_TEXT = 1 << 1,
	NEED_MODSEQ = 1 << 2,
};

static unsigned key_needs(const struct wd_search_key *key)
{
	unsigned needs = 0;
	switch (key->op) {
	case WD_SEARCH_HEADER:
		needs |= NEED_HEADERS;
		break;
	case WD_SEARCH_BODY:
		needs |= NEED_TEXT;
		break;
	case WD_SEARCH_TEXT:
		needs |= NEED_HEADERS | NEED_TEXT;
		break;
	case WD_SEARCH_MODSEQ:
		needs |= NEED_MODSEQ;
		break;
	default:
		break;
	}
	for (size_t i = 0; i < key->child_count; i++)
		needs |= key_needs(key->children[i]);
	return needs;
}

static void build_projection(bool residual, unsigned needs, bool want_modseq, bson_t *projection)
{
	BSON_APPEND_INT32(projection, "_id", 0);
	BSON_APPEND_INT32(projection, "uid", 1);
	if (want_modseq || residual)
		BSON_APPEND_INT32(projection, "modseq", 1);
	if (!residual)
		return;
	static const char *const fields[] = { "flags", "idate", "hdate", "size", "headers" };
	for (size_t i = 0; i < WD_N_ELEMENTS(fields); i++)
		BSON_APPEND_INT32(projection, fields[i], 1);
	if ((needs & NEED_HEADERS) != 0)
		BSON_APPEND_INT32(projection, "mimeTree.header", 1);
	if ((needs & NEED_TEXT) != 0) {
		BSON_APPEND_INT32(projection, "text", 1);
		BSON_APPEND_INT32(projection, "textFooter", 1);
		BSON_APPEND_INT32(projection, "html", 1);
	}
}

/* A string or binary value as bytes. */
static bool iter_bytes(const bson_iter_t *iter, const char **data_r, uint32_t *len_r)
{
	if (BSON_ITER_HOLDS_UTF8(iter)) {
		*data_r = bson_iter_utf8(iter, len_r);
		return true;
	}
	if (BSON_ITER_HOLDS_BINARY(iter)) {
		const uint8_t *data;
		bson_iter_binary(iter, NULL, len_r, &data);
		*data_r = (const char *)data;
		return true;
	}
	return false;
}

/* The evaluator's inputs for one candidate, owned here. */
struct candidate {
	char **lines;
	size_t line_count, line_cap;
	struct wd_buffer text;
};

static void candidate_clear(struct candidate *c)
{
	for (size_t i = 0; i < c->line_count; i++)
		free(c->lines[i]);
	c->line_count = 0;
	wd_buffer_clear(&c->text);
}

/* Unfolded copy of a stored header field; NULs end it (strings in C). */
static char *unfold(const char *data, size_t len)
{
	char *line = malloc(len + 1);
	if (line == NULL)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len && data[i] != '\0'; i++) {
		if (data[i] != '\r' && data[i] != '\n')
			line[n++] = data[i];
	}
	line[n] = '\0';
	return line;
}

static int load_header_lines(const bson_t *doc, struct candidate *c)
{
	bson_iter_t iter, child;
	if (!bson_iter_init(&iter, doc) || !bson_iter_find_descendant(&iter, "mimeTree.header", &iter) ||
	    !BSON_ITER_HOLDS_ARRAY(&iter) || !bson_iter_recurse(&iter, &child))
		return WD_OK;
	while (bson_iter_next(&child)) {
		const char *data;
		uint32_t len;
		if (!iter_bytes(&child, &data, &len))
			continue;
		if (c->line_count == c->line_cap) {
			size_t cap = c->line_cap == 0 ? 32 : c->line_cap * 2;
			char **lines = realloc(c->lines, cap * sizeof(*lines));
			if (lines == NULL)
				return WD_ERROR;
			c->lines = lines;
			c->line_cap = cap;
		}
		if ((c->lines[c->line_count] = unfold(data, len)) == NULL)
			return WD_ERROR;
		c->line_count++;
	}
	return WD_OK;
}

/* text + textFooter is the plain text; html only when there is none. */
static int load_text(const bson_t *doc, struct candidate *c)
{
	bson_iter_t iter, child;
	const char *data;
	uint32_t len;
	int ret = WD_OK;
	if (bson_iter_init_find(&iter, doc, "text") && iter_bytes(&iter, &data, &len))
		ret |= wd_buffer_append(&c->text, data, len);
	if (bson_iter_init_find(&iter, doc, "textFooter") && iter_bytes(&iter, &data, &len))
		ret |= wd_buffer_append(&c->text, data, len);
	if (c->text.len == 0 && bson_iter_init_find(&iter, doc, "html") &&
	    BSON_ITER_HOLDS_ARRAY(&iter) && bson_iter_recurse(&iter, &child)) {
		while (bson_iter_next(&child)) {
			if (iter_bytes(&child, &data, &len))
				ret |= wd_buffer_append(&c->text, data, len) |
				       wd_buffer_append(&c->text, "\n", 1);
		}
	}
	ret |= wd_buffer_append(&c->text, "", 1);
	return ret < 0 ? WD_ERROR : WD_OK;
}

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort and merge the UIDs into ranges. */
static int uids_to_ranges(uint32_t *uids, size_t count, struct wd_imap_search_result *result)
{
	if (count > 1)
		qsort(uids, count, sizeof(*uids), cmp_uid);
	result->ranges = malloc((count + 1) * sizeof(*result->ranges));
	if (result->ranges == NULL)
		return WD_ERROR;
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		if (n > 0 && uids[i] <= result->ranges[n - 1].last + 1) {
			if (uids[i] > result->ranges[n - 1].last) {
				result->ranges[n - 1].last = uids[i];
				result->count++;
			}
			continue;
		}
		result->ranges[n++] = (struct wd_search_uid_range){ uids[i], uids[i] };
		result->count++;
	}
	result->range_count = n;
	return WD_OK;
}

/* Whether every key reads only what the metadata index of FerretDB on
   SQLite holds (wd-store-fdb.h): flags, uid, modseq, size. */
static bool fdb_covers(const struct wd_search_key *key)
{
	switch (key->op) {
	case WD_SEARCH_ALL:
	case WD_SEARCH_UID:
	case WD_SEARCH_FLAG:
	case WD_SEARCH_LARGER:
	case WD_SEARCH_SMALLER:
	case WD_SEARCH_MODSEQ:
		return true;
	case WD_SEARCH_AND:
	case WD_SEARCH_OR:
	case WD_SEARCH_NOT:
		for (size_t i = 0; i < key->child_count; i++) {
			if (!fdb_covers(key->children[i]))
				return false;
		}
		return true;
	default:
		return false;
	}
}

/* Decides one candidate document: the key tree on its fields and, for
   residual keys, on the raw header lines and body text it carries. */
static int candidate_matches(const struct wd_search_key *key, const bson_t *doc, bool residual,
			     unsigned needs, struct candidate *cand, bool *match_r)
{
	*match_r = true;
	if (!residual)
		return WD_OK;
	candidate_clear(cand);
	if (((needs & NEED_HEADERS) != 0 && load_header_lines(doc, cand) < 0) ||
	    ((needs & NEED_TEXT) != 0 && load_text(doc, cand) < 0))
		return WD_ERROR;
	struct wd_search_message msg = {
		.doc = doc,
		.header_lines = (const char *const *)cand->lines,
		.header_line_count = cand->line_count,
		.body_text = (needs & NEED_TEXT) != 0 ? (const char *)wd_buffer_bytes(&cand->text) :
							NULL,
	};
	*match_r = wd_search_matches(key, &msg);
	return WD_OK;
}

/* The search on FerretDB's SQLite: keys the metadata index covers are
   evaluated on its rows (no document read); any other key tree reads, per
   message of the mailbox, only the fields the residual evaluator needs
   (the projection of the ordinary path) straight from SQLite, and decides
   it with wd_search_matches() exactly as the ordinary path does for its
   candidates. WD_OK, WD_STORE_FDB_NONE (nothing decided: run the ordinary
   query), or WD_ERROR with *error_r. */
static int search_fdb(struct wd_store *store, const bson_oid_t *mailbox,
		      const struct wd_search_key *key, uint32_t max_uid, bool want_modseq,
		      struct wd_imap_search_result *result_r, char **error_r)
{
	bool covered = fdb_covers(key);
	unsigned needs = key_needs(key);
	bson_t *projection = NULL;
	if (!covered) {
		projection = bson_new();
		build_projection(true, needs, want_modseq, projection);
	}
	struct wd_store_fdb_select select = { .docs = !covered, .projection = projection };
	struct wd_store_fdb_cursor *cursor;
	if (wd_store_fdb_cursor_select(store, mailbox, 1, max_uid > 0 ? max_uid : UINT32_MAX, 0,
				       &select, &cursor) != WD_OK) {
		if (projection != NULL)
			bson_destroy(projection);
		return WD_STORE_FDB_NONE;
	}
	struct wd_store_fdb_msg row;
	struct candidate cand = { 0 };
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	int ret;
	while ((ret = wd_store_fdb_cursor_next(cursor, &row, error_r)) == 1) {
		bson_t doc;
		bson_init(&doc);
		bool match = false;
		ret = WD_OK;
		if (covered) {
			wd_store_fdb_msg_bson(&row, &doc);
			struct wd_search_message msg = { .doc = &doc };
			match = wd_search_matches(key, &msg);
		} else if ((ret = wd_store_fdb_cursor_doc(cursor, &doc)) == WD_OK) {
			ret = candidate_matches(key, &doc, true, needs, &cand, &match);
			if (ret < 0)
				*error_r = strdup("out of memory");
		}
		bson_destroy(&doc);
		if (ret == WD_STORE_FDB_NONE || ret < 0)
			break; /* a document not decoded: the ordinary query decides */
		ret = WD_OK;
		if (!match)
			continue;
		if (count == cap) {
			size_t new_cap = cap == 0 ? 256 : cap * 2;
			uint32_t *grown = realloc(uids, new_cap * sizeof(*uids));
			if (grown == NULL) {
				ret = WD_ERROR;
				*error_r = strdup("out of memory");
				break;
			}
			uids = grown;
			cap = new_cap;
		}
		uids[count++] = row.uid;
		if (want_modseq && row.modseq > result_r->highest_modseq)
			result_r->highest_modseq = row.modseq;
	}
	wd_store_fdb_cursor_close(&cursor);
	candidate_clear(&cand);
	free(cand.lines);
	wd_buffer_release(&cand.text);
	if (projection != NULL)
		bson_destroy(projection);
	if (ret == WD_OK && uids_to_ranges(uids, count, result_r) < 0) {
		*error_r = strdup("out of memory");
		ret = WD_ERROR;
	}
	free(uids);
	if (ret == WD_STORE_FDB_NONE) {
		wd_imap_search_result_free(result_r);
		return WD_STORE_FDB_NONE;
	}
	if (ret < 0) {
		wd_imap_search_result_free(result_r);
		return WD_ERROR;
	}
	return WD_OK;
}

int wd_imap_search_run(struct wd_store *store, const bson_oid_t *mailbox,
		       const struct wd_search_key *key, uint32_t max_uid, bool want_modseq,
		       struct wd_imap_search_result *result_r, char **error_r)
{
	memset(result_r, 0, sizeof(*result_r));
	*error_r = NULL;
	/* FerretDB on SQLite: flags, UIDs, sizes and MODSEQ from the index */
	int fret = search_fdb(store, mailbox, key, max_uid, want_modseq, result_r, error_r);
	if (fret != WD_STORE_FDB_NONE)
		return fret;
	bson_t *query = bson_new(), *projection = bson_new();
	BSON_APPEND_OID(query, "mailbox", mailbox);
	if (max_uid > 0) {
		bson_t range;
		BSON_APPEND_DOCUMENT_BEGIN(query, "uid", &range);
		BSON_APPEND_INT64(&range, "$lte", max_uid);
		bson_append_document_end(query, &range);
	}
	bool residual = false;
	wd_search_compile(key, wd_store_caps(store), query, &residual);
	unsigned needs = key_needs(key);
	build_projection(residual, needs, want_modseq, projection);
	bson_t *opts = BCON_NEW("projection", BCON_DOCUMENT(projection));

	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	struct candidate cand = { 0 };
	int ret = WD_OK;
	const bson_t *doc;
	while (ret == WD_OK && mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		if (!bson_iter_init_find(&iter, doc, "uid") || !BSON_ITER_HOLDS_NUMBER(&iter))
			continue;
		int64_t uid = bson_iter_as_int64(&iter);
		if (uid <= 0 || uid > UINT32_MAX)
			continue;
		bool match;
		if (candidate_matches(key, doc, residual, needs, &cand, &match) < 0) {
			ret = WD_ERROR;
			break;
		}
		if (!match)
			continue;
		if (count == cap) {
			size_t new_cap = cap == 0 ? 256 : cap * 2;
			uint32_t *grown = realloc(uids, new_cap * sizeof(*uids));
			if (grown == NULL) {
				ret = WD_ERROR;
				break;
			}
			uids = grown;
			cap = new_cap;
		}
		uids[count++] = (uint32_t)uid;
		if (want_modseq && bson_iter_init_find(&iter, doc, "modseq") &&
		    BSON_ITER_HOLDS_NUMBER(&iter) &&
		    (uint64_t)bson_iter_as_int64(&iter) > result_r->highest_modseq)
			result_r->highest_modseq = (uint64_t)bson_iter_as_int64(&iter);
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error)) {
		if (asprintf(error_r, "search failed: %s", error.message) < 0)
			*error_r = NULL;
		ret = WD_ERROR;
	} else if (ret < 0) {
		*error_r = strdup("out of memory");
	}
	if (ret == WD_OK && uids_to_ranges(uids, count, result_r) < 0) {
		*error_r = strdup("out of memory");
		ret = WD_ERROR;
	}
	candidate_clear(&cand);
	free(cand.lines);
	wd_buffer_release(&cand.text);
	free(uids);
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(opts);
	bson_destroy(projection);
	bson_destroy(query);
	if (ret < 0)
		wd_imap_search_result_free(result_r);
	return ret;
}

void wd_imap_search_result_free(struct wd_imap_search_result *result)
{
	free(result->ranges);
	memset(result, 0, sizeof(*result));
}

/* ---- responses ---- */

/* Walks the matches in the response's numbers (mapped, 0s skipped), as
   ranges of consecutive numbers. */
struct mapped_iter {
	const struct wd_imap_search_result *result;
	wd_imap_search_map_cb *map;
	void *context;
	size_t range;
	uint64_t next; /* next UID to map in result->ranges[range] */
};

static void mapped_init(struct mapped_iter *it, const struct wd_imap_search_result *result,
			wd_imap_search_map_cb *map, void *context)
{
	*it = (struct mapped_iter){ result, map, context, 0, 0 };
	if (result->range_count > 0)
		it->next = result->ranges[0].first;
}

static bool mapped_next_number(struct mapped_iter *it, uint32_t *n_r)
{
	while (it->range < it->result->range_count) {
		const struct wd_search_uid_range *r = &it->result->ranges[it->range];
		if (it->next > r->last) {
			if (++it->range < it->result->range_count)
				it->next = it->result->ranges[it->range].first;
			continue;
		}
		uint32_t uid = (uint32_t)it->next++;
		uint32_t n = it->map != NULL ? it->map(it->context, uid) : uid;
		if (n != 0) {
			*n_r = n;
			return true;
		}
	}
	return false;
}

/* The next run of consecutive numbers. */
static bool mapped_next_range(struct mapped_iter *it, struct wd_search_uid_range *range_r)
{
	uint32_t n;
	if (!mapped_next_number(it, &n))
		return false;
	range_r->first = range_r->last = n;
	struct mapped_iter save = *it;
	while (mapped_next_number(it, &n) && n == range_r->last + 1) {
		range_r->last = n;
		save = *it;
	}
	*it = save; /* n (not consecutive) is read again next time */
	return true;
}

static int append_range(struct wd_buffer *out, const struct wd_search_uid_range *r, bool comma)
{
	if (r->first == r->last)
		return wd_buffer_printf(out, "%s%u", comma ? "," : "", r->first);
	return wd_buffer_printf(out, "%s%u:%u", comma ? "," : "", r->first, r->last);
}

int wd_imap_search_format_set(struct wd_buffer *out, const struct wd_search_uid_range *ranges,
			      size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (append_range(out, &ranges[i], i > 0) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

int wd_imap_search_format(struct wd_buffer *out, const struct wd_imap_search_result *result,
			  wd_imap_search_map_cb *map, void *context, bool with_modseq)
{
	int ret = wd_buffer_append_str(out, "* SEARCH");
	struct mapped_iter it;
	mapped_init(&it, result, map, context);
	uint32_t n;
	bool any = false;
	while (ret == WD_OK && mapped_next_number(&it, &n)) {
		ret = wd_buffer_printf(out, " %u", n);
		any = true;
	}
	if (ret == WD_OK && with_modseq && any)
		ret = wd_buffer_printf(out, " (MODSEQ %llu)",
				       (unsigned long long)result->highest_modseq);
	if (ret == WD_OK)
		ret = wd_buffer_append(out, "\r\n", 2);
	return ret < 0 ? WD_ERROR : WD_OK;
}

static int append_quoted(struct wd_buffer *out, const char *s)
{
	int ret = wd_buffer_append(out, "\"", 1);
	for (; *s != '\0' && ret == WD_OK; s++) {
		if (*s == '"' || *s == '\\')
			ret = wd_buffer_append(out, "\\", 1);
		if (ret == WD_OK)
			ret = wd_buffer_append(out, s, 1);
	}
	return ret == WD_OK ? wd_buffer_append(out, "\"", 1) : WD_ERROR;
}

int wd_imap_esearch_format(struct wd_buffer *out, const char *tag, bool uid,
			   unsigned return_options, const struct wd_imap_search_result *result,
			   wd_imap_search_map_cb *map, void *context, bool with_modseq)
{
	unsigned opts = return_options & (WD_IMAP_SEARCH_RETURN_MIN | WD_IMAP_SEARCH_RETURN_MAX |
					   WD_IMAP_SEARCH_RETURN_ALL | WD_IMAP_SEARCH_RETURN_COUNT);
	if (return_options == 0)
		opts = WD_IMAP_SEARCH_RETURN_ALL;
	int ret = wd_buffer_append_str(out, "* ESEARCH");
	if (tag != NULL) {
		ret |= wd_buffer_append_str(out, " (TAG ");
		ret |= append_quoted(out, tag);
		ret |= wd_buffer_append(out, ")", 1);
	}
	if (uid)
		ret |= wd_buffer_append_str(out, " UID");

	/* one pass for MIN, MAX and COUNT (mapping may drop numbers) */
	struct mapped_iter it;
	uint32_t n, min = 0, max = 0;
	uint64_t count = 0;
	mapped_init(&it, result, map, context);
	if ((opts & (WD_IMAP_SEARCH_RETURN_MIN | WD_IMAP_SEARCH_RETURN_MAX |
		     WD_IMAP_SEARCH_RETURN_COUNT)) != 0) {
		while (mapped_next_number(&it, &n)) {
			if (count++ == 0)
				min = n;
			max = n;
		}
	} else if (mapped_next_number(&it, &n)) {
		count = 1; /* only whether there is any */
	}
	if (count > 0 && (opts & WD_IMAP_SEARCH_RETURN_MIN) != 0)
		ret |= wd_buffer_printf(out, " MIN %u", min);
	if (count > 0 && (opts & WD_IMAP_SEARCH_RETURN_MAX) != 0)
		ret |= wd_buffer_printf(out, " MAX %u", max);
	if ((opts & WD_IMAP_SEARCH_RETURN_COUNT) != 0)
		ret |= wd_buffer_printf(out, " COUNT %llu", (unsigned long long)count);
	if (count > 0 && (opts & WD_IMAP_SEARCH_RETURN_ALL) != 0) {
		ret |= wd_buffer_append_str(out, " ALL ");
		struct wd_search_uid_range range;
		bool comma = false;
		mapped_init(&it, result, map, context);
		while (ret == WD_OK && mapped_next_range(&it, &range)) {
			ret |= append_range(out, &range, comma);
			comma = true;
		}
	}
	if (count > 0 && with_modseq)
		ret |= wd_buffer_printf(out, " MODSEQ %llu", (unsigned long long)result->highest_modseq);
	ret |= wd_buffer_append(out, "\r\n", 2);
	return ret < 0 ? WD_ERROR : WD_OK;
}
