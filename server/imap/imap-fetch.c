/* FETCH rendering (see imap-fetch.h).
 *
 * A message response is a small state machine: PREPARE does the blocking
 * work that must precede the first byte (BINARY sizes and encodings, the
 * ENVELOPE/BODYSTRUCTURE fallback for documents WildDuck wrote), HEAD
 * writes "* n FETCH (" and every item that comes from the document, then
 * each body item is a literal header followed by DATA steps, each of which
 * appends at most one storage chunk. The caller's budget is checked after
 * every append, so output stays within budget + one chunk per step.
 *
 * Body items each open their own reader: wd_message_reader_select() may be
 * called once per reader, and opening by _id is the one indexed lookup
 * FerretDB has. BINARY opens up to three (the part's MIME header for its
 * Content-Transfer-Encoding, a decoding pass for the size, the streaming
 * pass); the decoders (imap-cte.h) keep their state across chunks.
 *
 * Errors before HEAD leave nothing written for the message (the session
 * answers NO), and so do errors while all of the message's response is
 * still in the step's output (wd_imap_fetch_run_step takes it back: the
 * usual case, a body read failing because the database went away). After
 * that the response cannot be taken back: a reader
 * that comes up short is padded with spaces to the promised literal size
 * (and logged) so that the client stays in sync; a reader that fails
 * marks the generator broken and the session closes the connection. */
#include "imap-fetch.h"

#include "imap-cte.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-imap-structure.h"
#include "wd-log.h"
#include "wd-mime-tree.h"
#include "wd-result.h"
#include "wd-store-fdb.h"
#include "wd-store-message.h"
#include "wd-str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

static char *fetch_error(const char *fmt, ...) WD_PRINTF(1, 2);
static char *fetch_error(const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return msg;
}

static int64_t doc_int(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	return bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_NUMBER(&iter) ?
		       bson_iter_as_int64(&iter) :
		       0;
}

static bool doc_oid(const bson_t *doc, const char *key, bson_oid_t *oid_r)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_OID(&iter))
		return false;
	bson_oid_copy(bson_iter_oid(&iter), oid_r);
	return true;
}

static bool doc_has_flag(const bson_t *doc, const char *flag)
{
	bson_iter_t iter, child;
	if (!bson_iter_init_find(&iter, doc, "flags") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
	    !bson_iter_recurse(&iter, &child))
		return false;
	while (bson_iter_next(&child)) {
		if (BSON_ITER_HOLDS_UTF8(&child) &&
		    wd_str_eq_nocase(bson_iter_utf8(&child, NULL), flag))
			return true;
	}
	return false;
}

void wd_imap_fetch_internaldate(int64_t ms, char *buf, size_t size)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, size, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- projection ---- */

void wd_imap_fetch_projection(const struct wd_imap_fetch_args *args, unsigned flags,
			      bson_t *projection)
{
	uint32_t items = args->items;
	bool seen = args->sets_seen && (flags & WD_IMAP_FETCH_F_READONLY) == 0;
	BSON_APPEND_INT32(projection, "_id", 1);
	BSON_APPEND_INT32(projection, "uid", 1);
	if ((items & WD_IMAP_FETCH_FLAGS) != 0 || seen)
		BSON_APPEND_INT32(projection, "flags", 1);
	if ((items & WD_IMAP_FETCH_INTERNALDATE) != 0)
		BSON_APPEND_INT32(projection, "idate", 1);
	if ((items & WD_IMAP_FETCH_RFC822_SIZE) != 0)
		BSON_APPEND_INT32(projection, "size", 1);
	if ((items & WD_IMAP_FETCH_MODSEQ) != 0 || seen ||
	    ((flags & WD_IMAP_FETCH_F_CONDSTORE) != 0 && (items & WD_IMAP_FETCH_FLAGS) != 0))
		BSON_APPEND_INT32(projection, "modseq", 1);
	if ((items & (WD_IMAP_FETCH_ENVELOPE | WD_IMAP_FETCH_BODY | WD_IMAP_FETCH_BODYSTRUCTURE)) !=
	    0)
		BSON_APPEND_INT32(projection, "wdc.imap", 1);
	if ((items & WD_IMAP_FETCH_EMAILID) != 0)
		BSON_APPEND_INT32(projection, "root", 1);
	if ((items & WD_IMAP_FETCH_THREADID) != 0)
		BSON_APPEND_INT32(projection, "thread", 1);
}

/* ---- loader ---- */

/* Above this many ranges the query asks for [first, last] and the loader
   drops what falls between the ranges (a filter of thousands of $or
   branches costs more than the documents it saves). */
#define LOADER_MAX_OR 64

struct wd_imap_fetch_loader {
	struct wd_store *store;
	mongoc_client_t *client;
	mongoc_collection_t *coll;
	mongoc_cursor_t *cursor;
	struct wd_search_uid_range *ranges; /* for the client-side filter, or NULL */
	size_t range_count, range_index;
	size_t batch_size;
	bson_t **docs; /* bson_t wants 128-byte alignment: each from bson_copy() */
	size_t doc_count;
	bool end;
	/* FerretDB on SQLite, a projection the metadata index covers: read
	   there instead of the cursor (wd-store-fdb.h) */
	struct wd_store_fdb_cursor *fdb;
	/* the projection is not covered: the index names the messages, then
	   they are read by _id (wd_store_fdb_load_uids) */
	bson_t *by_id;
	bson_oid_t mailbox;
	uint32_t *batch_uids;
};

/* Whether every field of the projection is in the metadata index. */
static bool fdb_covers(const bson_t *projection)
{
	static const char *const covered[] = { "_id", "uid", "flags", "modseq", "size" };
	bson_iter_t it;
	if (!bson_iter_init(&it, projection))
		return false;
	while (bson_iter_next(&it)) {
		bool found = false;
		for (size_t i = 0; i < sizeof(covered) / sizeof(covered[0]) && !found; i++)
			found = strcmp(bson_iter_key(&it), covered[i]) == 0;
		if (!found)
			return false;
	}
	return true;
}


static void append_uid_range(bson_t *doc, uint32_t first, uint32_t last)
{
	bson_t range;
	if (first == last) {
		BSON_APPEND_INT64(doc, "uid", first);
		return;
	}
	BSON_APPEND_DOCUMENT_BEGIN(doc, "uid", &range);
	BSON_APPEND_INT64(&range, "$gte", first);
	if (last != UINT32_MAX)
		BSON_APPEND_INT64(&range, "$lte", last);
	bson_append_document_end(doc, &range);
}

struct wd_imap_fetch_loader *wd_imap_fetch_loader_create(struct wd_store *store,
							 const bson_oid_t *mailbox,
							 const struct wd_search_uid_range *ranges,
							 size_t range_count, const bson_t *projection,
							 uint64_t changedsince, size_t batch_size)
{
	struct wd_imap_fetch_loader *loader = calloc(1, sizeof(*loader));
	if (loader == NULL)
		return NULL;
	loader->store = store;
	loader->batch_size = batch_size > 0 ? batch_size : WD_IMAP_FETCH_BATCH_DEFAULT;
	loader->docs = calloc(loader->batch_size, sizeof(*loader->docs));
	if (loader->docs == NULL) {
		wd_imap_fetch_loader_destroy(&loader);
		return NULL;
	}
	if (range_count == 0) {
		loader->end = true;
		return loader;
	}

	if (wd_store_fdb_cursor_open(store, mailbox, ranges[0].first, ranges[range_count - 1].last,
				     changedsince, &loader->fdb) == WD_OK) {
		if (!fdb_covers(projection)) {
			loader->by_id = bson_copy(projection);
			loader->batch_uids = calloc(loader->batch_size, sizeof(uint32_t));
			if (loader->by_id == NULL || loader->batch_uids == NULL) {
				wd_imap_fetch_loader_destroy(&loader);
				return NULL;
			}
			bson_oid_copy(mailbox, &loader->mailbox);
		}
		loader->ranges = malloc(range_count * sizeof(*ranges));
		if (loader->ranges == NULL) {
			wd_imap_fetch_loader_destroy(&loader);
			return NULL;
		}
		memcpy(loader->ranges, ranges, range_count * sizeof(*ranges));
		loader->range_count = range_count;
		return loader;
	}

	bson_t query = BSON_INITIALIZER;
	BSON_APPEND_OID(&query, "mailbox", mailbox);
	if (range_count > LOADER_MAX_OR) {
		loader->ranges = malloc(range_count * sizeof(*ranges));
		if (loader->ranges == NULL) {
			bson_destroy(&query);
			wd_imap_fetch_loader_destroy(&loader);
			return NULL;
		}
		memcpy(loader->ranges, ranges, range_count * sizeof(*ranges));
		loader->range_count = range_count;
		append_uid_range(&query, ranges[0].first, ranges[range_count - 1].last);
	} else if (range_count == 1) {
		append_uid_range(&query, ranges[0].first, ranges[0].last);
	} else {
		bson_t or, branch;
		char key[16];
		const char *key_str;
		BSON_APPEND_ARRAY_BEGIN(&query, "$or", &or);
		for (size_t i = 0; i < range_count; i++) {
			bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
			bson_append_document_begin(&or, key_str, -1, &branch);
			append_uid_range(&branch, ranges[i].first, ranges[i].last);
			bson_append_document_end(&or, &branch);
		}
		bson_append_array_end(&query, &or);
	}
	if (changedsince > 0) {
		bson_t gt;
		BSON_APPEND_DOCUMENT_BEGIN(&query, "modseq", &gt);
		BSON_APPEND_INT64(&gt, "$gt", (int64_t)changedsince);
		bson_append_document_end(&query, &gt);
	}
	bson_t *opts = BCON_NEW("projection", BCON_DOCUMENT(projection), "sort", "{", "uid",
				BCON_INT32(1), "}", "batchSize",
				BCON_INT32((int32_t)loader->batch_size));
	loader->client = wd_store_client(store, WD_STORE_DB_MAIN);
	loader->coll = wd_store_collection(store, loader->client, WD_STORE_DB_MAIN, "messages");
	loader->cursor = mongoc_collection_find_with_opts(loader->coll, &query, opts, NULL);
	bson_destroy(opts);
	bson_destroy(&query);
	return loader;
}

static bool loader_wants(struct wd_imap_fetch_loader *loader, uint32_t uid)
{
	if (loader->ranges == NULL)
		return true;
	while (loader->range_index < loader->range_count &&
	       loader->ranges[loader->range_index].last < uid)
		loader->range_index++;
	return loader->range_index < loader->range_count &&
	       loader->ranges[loader->range_index].first <= uid;
}

int wd_imap_fetch_loader_next(struct wd_imap_fetch_loader *loader, const bson_t *const **docs_r,
			      size_t *count_r, char **error_r)
{
	for (size_t i = 0; i < loader->doc_count; i++)
		bson_destroy(loader->docs[i]);
	loader->doc_count = 0;
	*docs_r = (const bson_t *const *)loader->docs;
	*count_r = 0;
	if (loader->end)
		return WD_OK;
	if (loader->fdb != NULL) {
		struct wd_store_fdb_msg msg;
		int ret = 0;
		char *error = NULL;
	again:
		while (loader->doc_count < loader->batch_size &&
		       (ret = wd_store_fdb_cursor_next(loader->fdb, &msg, &error)) == 1) {
			if (!loader_wants(loader, msg.uid))
				continue;
			if (loader->by_id != NULL) {
				loader->batch_uids[loader->doc_count++] = msg.uid;
				continue;
			}
			loader->docs[loader->doc_count] = bson_new();
			if (loader->docs[loader->doc_count] != NULL)
				wd_store_fdb_msg_bson(&msg, loader->docs[loader->doc_count]);
			if (loader->docs[loader->doc_count] == NULL) {
				*error_r = fetch_error("out of memory");
				return WD_ERROR;
			}
			loader->doc_count++;
		}
		if (loader->doc_count < loader->batch_size && ret < 0) {
			*error_r = fetch_error("cannot load messages: %s", error);
			free(error);
			loader->end = true;
			return WD_ERROR;
		}
		if (loader->doc_count < loader->batch_size)
			loader->end = true;
		if (loader->by_id != NULL && loader->doc_count > 0) {
			bson_t **docs;
			size_t n;
			ret = wd_store_fdb_load_uids(loader->store, &loader->mailbox,
						     loader->batch_uids, loader->doc_count,
						     loader->by_id, &docs, &n, &error);
			loader->doc_count = 0;
			if (ret != WD_OK) {
				*error_r = fetch_error("cannot load messages: %s",
						       error != NULL ? error : "index gone");
				free(error);
				loader->end = true;
				return WD_ERROR;
			}
			memcpy(loader->docs, docs, n * sizeof(*docs));
			free(docs);
			loader->doc_count = n;
			if (n == 0 && !loader->end)
				goto again; /* the whole batch moved away: an empty one ends */
		}
		*count_r = loader->doc_count;
		return WD_OK;
	}
	const bson_t *doc;
	while (loader->doc_count < loader->batch_size && mongoc_cursor_next(loader->cursor, &doc)) {
		if (!loader_wants(loader, (uint32_t)doc_int(doc, "uid")))
			continue;
		loader->docs[loader->doc_count] = bson_copy(doc);
		if (loader->docs[loader->doc_count] == NULL) {
			*error_r = fetch_error("out of memory");
			return WD_ERROR;
		}
		loader->doc_count++;
	}
	bson_error_t error;
	if (mongoc_cursor_error(loader->cursor, &error)) {
		*error_r = fetch_error("cannot load messages: %s", error.message);
		loader->end = true;
		return WD_ERROR;
	}
	if (loader->doc_count < loader->batch_size)
		loader->end = true;
	*count_r = loader->doc_count;
	return WD_OK;
}

void wd_imap_fetch_loader_destroy(struct wd_imap_fetch_loader **_loader)
{
	struct wd_imap_fetch_loader *loader = *_loader;
	if (loader == NULL)
		return;
	*_loader = NULL;
	if (loader->cursor != NULL)
		mongoc_cursor_destroy(loader->cursor);
	wd_store_fdb_cursor_close(&loader->fdb);
	if (loader->by_id != NULL)
		bson_destroy(loader->by_id);
	free(loader->batch_uids);
	if (loader->coll != NULL)
		mongoc_collection_destroy(loader->coll);
	if (loader->client != NULL)
		wd_store_client_release(loader->store, WD_STORE_DB_MAIN, loader->client);
	for (size_t i = 0; i < loader->doc_count; i++)
		bson_destroy(loader->docs[i]);
	free(loader->docs);
	free(loader->ranges);
	free(loader);
}

/* ---- one message ---- */

enum msg_state {
	MSG_PREPARE,
	MSG_HEAD,
	MSG_BODY,
	MSG_DATA,
	MSG_DONE,
};

/* BINARY items: what the first decoding pass learnt. */
struct binary_info {
	enum wd_imap_cte cte;
	uint64_t decoded_size;
	bool has_nul;
};

struct wd_imap_fetch_msg {
	struct wd_store *store;
	const struct wd_imap_fetch_args *args;
	unsigned flags;
	uint32_t seq;
	const bson_t *doc;
	bson_oid_t id;
	bool recent;
	bool seen_set;
	uint64_t seen_modseq;
	enum msg_state state;
	bool broken;
	bool item_sent; /* an item follows "(": the next one needs a space */

	struct binary_info *binary; /* per body item, for BINARY kinds */
	/* ENVELOPE, BODY, BODYSTRUCTURE computed here when wdc.imap lacks them */
	struct wd_buffer structure[3];
	bool structure_done;

	size_t body_index;
	struct wd_message_reader *reader;
	uint64_t remaining;   /* bytes of the literal still to send */
	struct wd_imap_cte_decoder decoder;
	uint64_t skip;        /* BINARY partial: decoded bytes to drop first */
	struct wd_buffer raw; /* BINARY: a chunk before decoding */
	struct wd_buffer decoded;
};

struct wd_imap_fetch_msg *wd_imap_fetch_msg_create(struct wd_store *store,
						   const struct wd_imap_fetch_args *args,
						   unsigned flags, uint32_t seq, const bson_t *doc,
						   bool recent)
{
	struct wd_imap_fetch_msg *msg = calloc(1, sizeof(*msg));
	if (msg == NULL)
		return NULL;
	msg->store = store;
	msg->args = args;
	msg->flags = flags;
	msg->seq = seq;
	msg->doc = doc;
	msg->recent = recent;
	doc_oid(doc, "_id", &msg->id);
	return msg;
}

bool wd_imap_fetch_msg_needs_seen(const struct wd_imap_fetch_msg *msg)
{
	return msg->args->sets_seen && (msg->flags & WD_IMAP_FETCH_F_READONLY) == 0 &&
	       !msg->seen_set && !doc_has_flag(msg->doc, "\\Seen");
}

void wd_imap_fetch_msg_seen_set(struct wd_imap_fetch_msg *msg, uint64_t modseq)
{
	msg->seen_set = true;
	msg->seen_modseq = modseq;
}

bool wd_imap_fetch_msg_broken(const struct wd_imap_fetch_msg *msg)
{
	return msg->broken;
}

void wd_imap_fetch_msg_destroy(struct wd_imap_fetch_msg **_msg)
{
	struct wd_imap_fetch_msg *msg = *_msg;
	if (msg == NULL)
		return;
	*_msg = NULL;
	wd_message_reader_close(&msg->reader);
	for (size_t i = 0; i < 3; i++)
		wd_buffer_release(&msg->structure[i]);
	wd_buffer_release(&msg->raw);
	wd_buffer_release(&msg->decoded);
	free(msg->binary);
	free(msg);
}

static struct wd_message_reader *open_section(struct wd_imap_fetch_msg *msg,
					      const struct wd_mime_section_spec *spec,
					      uint64_t offset, uint64_t length, char **error_r)
{
	struct wd_message_reader *reader = wd_store_message_open_id(msg->store, &msg->id, error_r);
	if (reader != NULL && wd_message_reader_select(reader, spec, offset, length, error_r) < 0)
		wd_message_reader_close(&reader);
	return reader;
}

/* Read a whole (small) section into `out`. */
static int read_section(struct wd_imap_fetch_msg *msg, const struct wd_mime_section_spec *spec,
			struct wd_buffer *out, char **error_r)
{
	struct wd_message_reader *reader = open_section(msg, spec, 0, UINT64_MAX, error_r);
	if (reader == NULL)
		return WD_ERROR;
	bool eof = false;
	int ret = WD_OK;
	while (!eof && ret == WD_OK)
		ret = wd_message_reader_read(reader, out, &eof, error_r);
	wd_message_reader_close(&reader);
	return ret;
}

/* The Content-Transfer-Encoding of the part `path` names: from its MIME
   header, or for part 1 of a single-part message (which has none) from the
   message header. */
static int part_encoding(struct wd_imap_fetch_msg *msg, const struct wd_mime_section_spec *body,
			 enum wd_imap_cte *cte_r, char **error_r)
{
	struct wd_mime_section_spec spec = *body;
	struct wd_buffer header = WD_BUFFER_INIT;
	spec.type = WD_MIME_SECTION_MIME;
	int ret = read_section(msg, &spec, &header, error_r);
	if (ret == WD_OK && header.len == 0 && body->path_len == 1 && body->path[0] == 1) {
		spec.type = WD_MIME_SECTION_HEADER;
		spec.path_len = 0;
		ret = read_section(msg, &spec, &header, error_r);
	}
	const char *encoding = NULL;
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *error;
	if (ret == WD_OK && arena != NULL &&
	    wd_mime_tree_parse(arena, wd_buffer_bytes(&header), header.len, NULL, &tree, &error) ==
		    WD_OK)
		encoding = tree->root->transfer_encoding;
	if (ret == WD_OK && wd_imap_cte_from_name(encoding, cte_r) < 0) {
		*error_r = fetch_error("[UNKNOWN-CTE] Unknown Content-Transfer-Encoding %s",
				       encoding);
		ret = WD_ERROR;
	}
	wd_arena_destroy(&arena);
	wd_buffer_release(&header);
	return ret;
}

/* BINARY[...] starts from BODY[part]: the part's content as stored. */
static void binary_body_spec(const struct wd_imap_fetch_body *body,
			     struct wd_mime_section_spec *spec_r)
{
	*spec_r = body->spec;
	spec_r->type = WD_MIME_SECTION_BODY;
}

/* First pass of a BINARY item: its encoding, decoded size and NULs. */
static int binary_prepare(struct wd_imap_fetch_msg *msg, const struct wd_imap_fetch_body *body,
			  struct binary_info *info, char **error_r)
{
	struct wd_mime_section_spec spec;
	binary_body_spec(body, &spec);
	info->cte = WD_IMAP_CTE_IDENTITY;
	if (spec.path_len > 0 && part_encoding(msg, &spec, &info->cte, error_r) < 0)
		return WD_ERROR;
	struct wd_message_reader *reader = open_section(msg, &spec, 0, UINT64_MAX, error_r);
	if (reader == NULL)
		return WD_ERROR;
	struct wd_imap_cte_decoder decoder = { .cte = info->cte };
	uint64_t first = body->partial ? body->offset : 0;
	uint64_t last = body->partial && body->length <= UINT64_MAX - first ? first + body->length :
									      UINT64_MAX;
	struct wd_buffer raw = WD_BUFFER_INIT, decoded = WD_BUFFER_INIT;
	bool eof = false;
	int ret = WD_OK;
	while (ret == WD_OK) {
		wd_buffer_clear(&raw);
		wd_buffer_clear(&decoded);
		ret = wd_message_reader_read(reader, &raw, &eof, error_r);
		if (ret == WD_OK && wd_imap_cte_decoder_feed(&decoder, wd_buffer_bytes(&raw), raw.len,
						 &decoded) < 0)
			ret = WD_ERROR;
		if (ret == WD_OK && eof && wd_imap_cte_decoder_finish(&decoder, &decoded) < 0)
			ret = WD_ERROR;
		/* a NUL in the part of the data that is sent needs literal8 */
		uint64_t from = info->decoded_size, to = from + decoded.len;
		uint64_t lo = from > first ? from : first, hi = to < last ? to : last;
		if (!info->has_nul && lo < hi &&
		    memchr(wd_buffer_bytes(&decoded) + (lo - from), 0, (size_t)(hi - lo)) != NULL)
			info->has_nul = true;
		info->decoded_size = to;
		if (eof)
			break;
	}
	if (ret < 0 && *error_r == NULL)
		*error_r = fetch_error("out of memory");
	wd_buffer_release(&raw);
	wd_buffer_release(&decoded);
	wd_message_reader_close(&reader);
	return ret;
}

/* Documents without wdc.imap (written by WildDuck): compute the structure
   items from the message itself. */
static int structure_compute(struct wd_imap_fetch_msg *msg, char **error_r)
{
	struct wd_buffer bytes = WD_BUFFER_INIT;
	struct wd_mime_section_spec whole = { .type = WD_MIME_SECTION_BODY };
	int ret = read_section(msg, &whole, &bytes, error_r);
	struct wd_arena *arena = ret == WD_OK ? wd_arena_create(0) : NULL;
	struct wd_mime_tree *tree = NULL;
	const char *error = "out of memory";
	if (ret == WD_OK && (arena == NULL || wd_mime_tree_parse(arena, wd_buffer_bytes(&bytes),
								 bytes.len, NULL, &tree,
								 &error) < 0)) {
		*error_r = fetch_error("cannot parse message: %s", error);
		ret = WD_ERROR;
	}
	unsigned flags = (msg->flags & WD_IMAP_FETCH_F_UTF8) != 0 ? WD_IMAP_UTF8 : 0;
	if (ret == WD_OK &&
	    (wd_imap_envelope(tree, tree->root, flags, &msg->structure[0]) < 0 ||
	     wd_imap_bodystructure(tree, tree->root, true, flags, &msg->structure[1]) < 0 ||
	     wd_imap_bodystructure(tree, tree->root, false, flags, &msg->structure[2]) < 0)) {
		*error_r = fetch_error("out of memory");
		ret = WD_ERROR;
	}
	msg->structure_done = ret == WD_OK;
	wd_arena_destroy(&arena);
	wd_buffer_release(&bytes);
	return ret;
}

/* form: 0 ENVELOPE, 1 BODYSTRUCTURE, 2 BODY. */
static bool cached_structure(const struct wd_imap_fetch_msg *msg, int form, const uint8_t **data_r,
			     uint32_t *len_r)
{
	static const char *const keys[] = { "wdc.imap.e", "wdc.imap.b", "wdc.imap.s" };
	static const char *const keys8[] = { "wdc.imap.e8", "wdc.imap.b8", "wdc.imap.s8" };
	bson_iter_t iter;
	if ((msg->flags & WD_IMAP_FETCH_F_UTF8) != 0 && bson_iter_init(&iter, msg->doc) &&
	    bson_iter_find_descendant(&iter, keys8[form], &iter) && BSON_ITER_HOLDS_BINARY(&iter)) {
		bson_iter_binary(&iter, NULL, len_r, data_r);
		return true;
	}
	if (bson_iter_init(&iter, msg->doc) && bson_iter_find_descendant(&iter, keys[form], &iter) &&
	    BSON_ITER_HOLDS_BINARY(&iter)) {
		bson_iter_binary(&iter, NULL, len_r, data_r);
		return true;
	}
	return false;
}

static const uint32_t structure_items[3] = { WD_IMAP_FETCH_ENVELOPE, WD_IMAP_FETCH_BODYSTRUCTURE,
					     WD_IMAP_FETCH_BODY };

static int msg_prepare(struct wd_imap_fetch_msg *msg, char **error_r)
{
	const struct wd_imap_fetch_args *args = msg->args;
	for (int form = 0; form < 3; form++) {
		const uint8_t *data;
		uint32_t len;
		if ((args->items & structure_items[form]) != 0 && !msg->structure_done &&
		    !cached_structure(msg, form, &data, &len) && structure_compute(msg, error_r) < 0)
			return WD_ERROR;
	}
	for (size_t i = 0; i < args->body_count; i++) {
		const struct wd_imap_fetch_body *body = &args->bodies[i];
		if (body->kind != WD_IMAP_FETCH_BINARY && body->kind != WD_IMAP_FETCH_BINARY_SIZE)
			continue;
		if (msg->binary == NULL) {
			msg->binary = calloc(args->body_count, sizeof(*msg->binary));
			if (msg->binary == NULL) {
				*error_r = fetch_error("out of memory");
				return WD_ERROR;
			}
		}
		if (binary_prepare(msg, body, &msg->binary[i], error_r) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

static bool send_modseq(const struct wd_imap_fetch_msg *msg, bool flags_sent)
{
	return (msg->args->items & WD_IMAP_FETCH_MODSEQ) != 0 ||
	       ((msg->flags & WD_IMAP_FETCH_F_CONDSTORE) != 0 && flags_sent);
}

static int write_flags(const struct wd_imap_fetch_msg *msg, struct wd_buffer *out)
{
	int ret = wd_buffer_append_str(out, " FLAGS (");
	bool first = true;
	if (msg->recent) {
		ret |= wd_buffer_append_str(out, "\\Recent");
		first = false;
	}
	bson_iter_t iter, child;
	if (bson_iter_init_find(&iter, msg->doc, "flags") && BSON_ITER_HOLDS_ARRAY(&iter) &&
	    bson_iter_recurse(&iter, &child)) {
		while (bson_iter_next(&child)) {
			if (!BSON_ITER_HOLDS_UTF8(&child))
				continue;
			const char *flag = bson_iter_utf8(&child, NULL);
			if (flag[0] == '\0' || strpbrk(flag, " ()\"{%*]\r\n") != NULL ||
			    wd_str_eq_nocase(flag, "\\Recent"))
				continue; /* never break the response for a bad stored flag */
			if (!first)
				ret |= wd_buffer_append(out, " ", 1);
			ret |= wd_buffer_append_str(out, flag);
			first = false;
		}
	}
	if (msg->seen_set && !doc_has_flag(msg->doc, "\\Seen")) {
		if (!first)
			ret |= wd_buffer_append(out, " ", 1);
		ret |= wd_buffer_append_str(out, "\\Seen");
	}
	ret |= wd_buffer_append(out, ")", 1);
	return ret < 0 ? WD_ERROR : WD_OK;
}

static int write_head(struct wd_imap_fetch_msg *msg, struct wd_buffer *out)
{
	const struct wd_imap_fetch_args *args = msg->args;
	uint32_t items = args->items;
	const bson_t *doc = msg->doc;
	int ret = wd_buffer_printf(out, "* %u FETCH (", msg->seq);
	size_t open = out->len;
	bool flags_sent = (items & WD_IMAP_FETCH_FLAGS) != 0 || msg->seen_set;
	/* items are separated by a space; each below starts with one, the
	   first's is removed at the end */
	if ((items & WD_IMAP_FETCH_UID) != 0)
		ret |= wd_buffer_printf(out, " UID %lld", (long long)doc_int(doc, "uid"));
	if (flags_sent)
		ret |= write_flags(msg, out);
	if ((items & WD_IMAP_FETCH_INTERNALDATE) != 0) {
		bson_iter_t iter;
		int64_t ms = bson_iter_init_find(&iter, doc, "idate") &&
					     BSON_ITER_HOLDS_DATE_TIME(&iter) ?
				     bson_iter_date_time(&iter) :
				     0;
		char date[40];
		wd_imap_fetch_internaldate(ms, date, sizeof(date));
		ret |= wd_buffer_printf(out, " INTERNALDATE %s", date);
	}
	if ((items & WD_IMAP_FETCH_RFC822_SIZE) != 0)
		ret |= wd_buffer_printf(out, " RFC822.SIZE %lld", (long long)doc_int(doc, "size"));
	static const char *const names[3] = { " ENVELOPE ", " BODYSTRUCTURE ", " BODY " };
	for (int form = 0; form < 3; form++) {
		if ((items & structure_items[form]) == 0)
			continue;
		const uint8_t *data;
		uint32_t len;
		ret |= wd_buffer_append_str(out, names[form]);
		if (!msg->structure_done && cached_structure(msg, form, &data, &len))
			ret |= wd_buffer_append(out, data, len);
		else
			ret |= wd_buffer_append(out, wd_buffer_bytes(&msg->structure[form]),
						msg->structure[form].len);
	}
	if (send_modseq(msg, flags_sent)) {
		uint64_t modseq = (uint64_t)doc_int(doc, "modseq");
		if (msg->seen_set && msg->seen_modseq > modseq)
			modseq = msg->seen_modseq;
		ret |= wd_buffer_printf(out, " MODSEQ (%llu)", (unsigned long long)modseq);
	}
	if ((items & WD_IMAP_FETCH_EMAILID) != 0) {
		bson_oid_t oid;
		char hex[25];
		if (!doc_oid(doc, "root", &oid))
			oid = msg->id;
		bson_oid_to_string(&oid, hex);
		ret |= wd_buffer_printf(out, " EMAILID (M%s)", hex);
	}
	if ((items & WD_IMAP_FETCH_THREADID) != 0) {
		bson_oid_t oid;
		char hex[25];
		if (doc_oid(doc, "thread", &oid)) {
			bson_oid_to_string(&oid, hex);
			ret |= wd_buffer_printf(out, " THREADID (T%s)", hex);
		} else {
			ret |= wd_buffer_append_str(out, " THREADID NIL");
		}
	}
	if (ret < 0)
		return WD_ERROR;
	if (out->len > open) {
		/* drop the space before the first item */
		uint8_t *bytes = (uint8_t *)wd_buffer_bytes(out);
		memmove(bytes + open, bytes + open + 1, out->len - open - 1);
		out->len--;
		msg->item_sent = true;
	}
	return WD_OK;
}

/* Start body item i: its name, then a literal header (or "" / a number). */
static int body_start(struct wd_imap_fetch_msg *msg, struct wd_buffer *out, char **error_r)
{
	const struct wd_imap_fetch_body *body = &msg->args->bodies[msg->body_index];
	if (wd_buffer_printf(out, "%s%s ", msg->item_sent ? " " : "", body->response_name) < 0)
		goto oom;
	msg->item_sent = true;
	if (body->kind == WD_IMAP_FETCH_BINARY_SIZE) {
		if (wd_buffer_printf(out, "%llu",
				     (unsigned long long)msg->binary[msg->body_index].decoded_size) <
		    0)
			goto oom;
		msg->body_index++;
		return WD_OK;
	}
	uint64_t offset = body->partial ? body->offset : 0;
	uint64_t length = body->partial ? body->length : UINT64_MAX;
	bool literal8 = false;
	if (body->kind == WD_IMAP_FETCH_BINARY) {
		const struct binary_info *info = &msg->binary[msg->body_index];
		struct wd_mime_section_spec spec;
		binary_body_spec(body, &spec);
		msg->reader = open_section(msg, &spec, 0, UINT64_MAX, error_r);
		if (msg->reader == NULL)
			return WD_ERROR;
		msg->decoder = (struct wd_imap_cte_decoder){ .cte = info->cte };
		msg->skip = offset;
		uint64_t avail = info->decoded_size > offset ? info->decoded_size - offset : 0;
		msg->remaining = avail < length ? avail : length;
		literal8 = info->has_nul;
	} else {
		msg->reader = open_section(msg, &body->spec, offset, length, error_r);
		if (msg->reader == NULL)
			return WD_ERROR;
		msg->remaining = wd_message_reader_size(msg->reader);
	}
	if (msg->remaining == 0) {
		wd_message_reader_close(&msg->reader);
		msg->body_index++;
		return wd_buffer_append(out, "\"\"", 2) < 0 ? WD_ERROR : WD_OK;
	}
	if (wd_buffer_printf(out, "%s{%llu}\r\n", literal8 ? "~" : "",
			     (unsigned long long)msg->remaining) < 0)
		goto oom;
	msg->state = MSG_DATA;
	return WD_OK;
oom:
	*error_r = fetch_error("out of memory");
	return WD_ERROR;
}

static void body_end(struct wd_imap_fetch_msg *msg)
{
	wd_message_reader_close(&msg->reader);
	wd_buffer_release(&msg->raw);
	wd_buffer_release(&msg->decoded);
	msg->body_index++;
	msg->state = MSG_BODY;
}

/* Keep the literal exact: pad a short source with spaces. */
static int pad_literal(struct wd_imap_fetch_msg *msg, struct wd_buffer *out)
{
	wd_warning("imap", "FETCH %s: message data shorter than its size; padded",
		   msg->args->bodies[msg->body_index].response_name);
	while (msg->remaining > 0) {
		size_t n = msg->remaining < 4096 ? (size_t)msg->remaining : 4096;
		uint8_t *p = wd_buffer_reserve(out, n);
		if (p == NULL)
			return WD_ERROR;
		memset(p, ' ', n);
		wd_buffer_commit(out, n);
		msg->remaining -= n;
	}
	return WD_OK;
}

/* One chunk of the current literal. */
static int body_data(struct wd_imap_fetch_msg *msg, struct wd_buffer *out, char **error_r)
{
	const struct wd_imap_fetch_body *body = &msg->args->bodies[msg->body_index];
	bool eof = false;
	if (body->kind != WD_IMAP_FETCH_BINARY) {
		size_t before = out->len;
		if (wd_message_reader_read(msg->reader, out, &eof, error_r) < 0)
			return WD_ERROR;
		uint64_t got = out->len - before;
		if (got > msg->remaining) {
			out->len = before + (size_t)msg->remaining;
			got = msg->remaining;
		}
		msg->remaining -= got;
	} else {
		wd_buffer_clear(&msg->raw);
		wd_buffer_clear(&msg->decoded);
		if (wd_message_reader_read(msg->reader, &msg->raw, &eof, error_r) < 0)
			return WD_ERROR;
		if (wd_imap_cte_decoder_feed(&msg->decoder, wd_buffer_bytes(&msg->raw), msg->raw.len,
				 &msg->decoded) < 0 ||
		    (eof && wd_imap_cte_decoder_finish(&msg->decoder, &msg->decoded) < 0))
			goto oom;
		const uint8_t *data = wd_buffer_bytes(&msg->decoded);
		size_t len = msg->decoded.len;
		size_t drop = msg->skip < len ? (size_t)msg->skip : len;
		msg->skip -= drop;
		data += drop;
		len -= drop;
		if (len > msg->remaining)
			len = (size_t)msg->remaining;
		if (wd_buffer_append(out, data, len) < 0)
			goto oom;
		msg->remaining -= len;
	}
	if (msg->remaining > 0 && eof && pad_literal(msg, out) < 0)
		goto oom;
	if (msg->remaining == 0)
		body_end(msg);
	return WD_OK;
oom:
	*error_r = fetch_error("out of memory");
	return WD_ERROR;
}

int wd_imap_fetch_msg_write(struct wd_imap_fetch_msg *msg, struct wd_buffer *out, size_t budget,
			    char **error_r)
{
	size_t start = out->len;
	*error_r = NULL;
	for (;;) {
		int ret = WD_OK;
		switch (msg->state) {
		case MSG_PREPARE:
			if (msg_prepare(msg, error_r) < 0)
				return WD_ERROR;
			msg->state = MSG_HEAD;
			break;
		case MSG_HEAD:
			msg->broken = true; /* from here on, an error leaves half a response */
			if (write_head(msg, out) < 0)
				goto oom;
			msg->state = MSG_BODY;
			break;
		case MSG_BODY:
			if (msg->body_index == msg->args->body_count) {
				if (wd_buffer_append(out, ")\r\n", 3) < 0)
					goto oom;
				msg->state = MSG_DONE;
				msg->broken = false;
				return WD_OK;
			}
			ret = body_start(msg, out, error_r);
			break;
		case MSG_DATA:
			ret = body_data(msg, out, error_r);
			break;
		case MSG_DONE:
			return WD_OK;
		}
		if (ret < 0)
			return WD_ERROR;
		if (out->len - start >= budget)
			return WD_AGAIN;
	}
oom:
	*error_r = fetch_error("out of memory");
	return WD_ERROR;
}

/* ---- a whole FETCH ---- */

struct wd_imap_fetch_run {
	struct wd_imap_fetch_request req;
	struct wd_imap_fetch_span *spans;
	struct wd_search_uid_range *recent;
	size_t span_index, recent_index;
	bson_t *projection;
	struct wd_imap_fetch_loader *loader;
	const bson_t *const *docs;
	size_t doc_count, doc_index;
	bool end;
	/* \Seen set in this batch (ascending UIDs) and its MODSEQ */
	uint32_t *seen_uids;
	size_t seen_count, seen_index;
	uint64_t seen_modseq, seen_modseq_max;
	struct wd_imap_fetch_msg *msg;
	uint64_t expected, found;
	bool broken;
};

struct wd_imap_fetch_run *wd_imap_fetch_run_create(const struct wd_imap_fetch_request *request)
{
	struct wd_imap_fetch_run *run = calloc(1, sizeof(*run));
	if (run == NULL)
		return NULL;
	run->req = *request;
	run->projection = bson_new();
	run->spans = malloc((request->span_count + 1) * sizeof(*run->spans));
	run->recent = malloc((request->recent_count + 1) * sizeof(*run->recent));
	struct wd_search_uid_range *ranges =
		malloc((request->span_count + 1) * sizeof(*ranges));
	if (run->spans == NULL || run->recent == NULL || ranges == NULL) {
		free(ranges);
		wd_imap_fetch_run_destroy(&run);
		return NULL;
	}
	if (request->span_count > 0)
		memcpy(run->spans, request->spans, request->span_count * sizeof(*run->spans));
	if (request->recent_count > 0)
		memcpy(run->recent, request->recent, request->recent_count * sizeof(*run->recent));
	run->req.spans = run->spans;
	run->req.recent = run->recent;
	for (size_t i = 0; i < request->span_count; i++) {
		ranges[i].first = request->spans[i].uid_first;
		ranges[i].last = request->spans[i].uid_last;
		run->expected += (uint64_t)request->spans[i].uid_last - request->spans[i].uid_first + 1;
	}
	wd_imap_fetch_projection(request->args, request->flags, run->projection);
	run->loader = wd_imap_fetch_loader_create(request->store, &request->mailbox, ranges,
						  request->span_count, run->projection,
						  request->args->changedsince_set ?
							  request->args->changedsince :
							  0,
						  request->batch_size);
	free(ranges);
	if (run->loader == NULL)
		wd_imap_fetch_run_destroy(&run);
	return run;
}

static bool uid_in(const struct wd_search_uid_range *ranges, size_t count, size_t *index,
		   uint32_t uid)
{
	while (*index < count && ranges[*index].last < uid)
		(*index)++;
	return *index < count && ranges[*index].first <= uid;
}

/* The sequence number of `uid`, or 0 when the session's view lacks it. */
static uint32_t run_seq(struct wd_imap_fetch_run *run, uint32_t uid)
{
	const struct wd_imap_fetch_span *spans = run->spans;
	while (run->span_index < run->req.span_count && spans[run->span_index].uid_last < uid)
		run->span_index++;
	if (run->span_index == run->req.span_count || spans[run->span_index].uid_first > uid)
		return 0;
	return spans[run->span_index].seq_first + (uid - spans[run->span_index].uid_first);
}

/* Set \Seen on the batch's messages that lack it: one store call. */
static int run_set_seen(struct wd_imap_fetch_run *run, char **error_r)
{
	run->seen_count = 0;
	run->seen_index = 0;
	run->seen_modseq = 0;
	if (!run->req.args->sets_seen || (run->req.flags & WD_IMAP_FETCH_F_READONLY) != 0)
		return WD_OK;
	free(run->seen_uids);
	run->seen_uids = malloc(run->doc_count * sizeof(*run->seen_uids));
	if (run->seen_uids == NULL) {
		*error_r = fetch_error("out of memory");
		return WD_ERROR;
	}
	for (size_t i = 0; i < run->doc_count; i++) {
		if (!doc_has_flag(run->docs[i], "\\Seen"))
			run->seen_uids[run->seen_count++] = (uint32_t)doc_int(run->docs[i], "uid");
	}
	if (run->seen_count == 0)
		return WD_OK;
	static const char *const seen[] = { "\\Seen" };
	struct wd_flags_change change = {
		.uids = run->seen_uids, .uid_count = run->seen_count, .op = WD_FLAGS_ADD,
		.flags = seen, .flag_count = 1, .session_id = run->req.session_id,
	};
	struct wd_flags_result result = { 0 };
	if (wd_store_message_flags(run->req.store, &run->req.mailbox, &change, &result, error_r) < 0)
		return WD_ERROR;
	free(result.modified);
	run->seen_modseq = result.modseq;
	if (result.modseq > run->seen_modseq_max)
		run->seen_modseq_max = result.modseq;
	return WD_OK;
}

int wd_imap_fetch_run_step(struct wd_imap_fetch_run *run, struct wd_buffer *out, size_t budget,
			   char **error_r)
{
	size_t start = out->len;
	*error_r = NULL;
	for (;;) {
		if (run->msg != NULL) {
			size_t used = out->len - start, msg_start = out->len;
			/* all of a message begun in this step is still in `out` */
			bool fresh = run->msg->state <= MSG_HEAD;
			int ret = wd_imap_fetch_msg_write(run->msg, out,
							  budget > used ? budget - used : 1, error_r);
			if (ret == WD_AGAIN)
				return WD_AGAIN;
			if (ret < 0) {
				/* a failed read (the database gone) of a message none of
				   whose response has left yet: take it back, so the
				   session answers NO instead of closing */
				if (fresh)
					out->len = msg_start;
				else
					run->broken = wd_imap_fetch_msg_broken(run->msg);
				return WD_ERROR;
			}
			wd_imap_fetch_msg_destroy(&run->msg);
			run->doc_index++;
			if (out->len - start >= budget)
				return WD_AGAIN;
		}
		if (run->doc_index == run->doc_count) {
			if (run->end)
				return WD_OK;
			run->doc_index = 0;
			if (wd_imap_fetch_loader_next(run->loader, &run->docs, &run->doc_count,
						      error_r) < 0)
				return WD_ERROR;
			if (run->doc_count == 0) {
				run->end = true;
				return WD_OK;
			}
			if (run_set_seen(run, error_r) < 0)
				return WD_ERROR;
			continue;
		}
		const bson_t *doc = run->docs[run->doc_index];
		uint32_t uid = (uint32_t)doc_int(doc, "uid");
		uint32_t seq = run_seq(run, uid);
		if (seq == 0) {
			run->doc_index++;
			continue;
		}
		run->found++;
		bool recent = uid_in(run->recent, run->req.recent_count, &run->recent_index, uid);
		run->msg = wd_imap_fetch_msg_create(run->req.store, run->req.args, run->req.flags, seq,
						    doc, recent);
		if (run->msg == NULL) {
			*error_r = fetch_error("out of memory");
			return WD_ERROR;
		}
		while (run->seen_index < run->seen_count && run->seen_uids[run->seen_index] < uid)
			run->seen_index++;
		if (run->seen_index < run->seen_count && run->seen_uids[run->seen_index] == uid)
			wd_imap_fetch_msg_seen_set(run->msg, run->seen_modseq);
	}
}

bool wd_imap_fetch_run_broken(const struct wd_imap_fetch_run *run)
{
	return run->broken;
}

uint64_t wd_imap_fetch_run_missing(const struct wd_imap_fetch_run *run)
{
	if (run->req.args->changedsince_set || run->found > run->expected)
		return 0;
	return run->expected - run->found;
}

uint64_t wd_imap_fetch_run_seen_modseq(const struct wd_imap_fetch_run *run)
{
	return run->seen_modseq_max;
}

void wd_imap_fetch_run_destroy(struct wd_imap_fetch_run **_run)
{
	struct wd_imap_fetch_run *run = *_run;
	if (run == NULL)
		return;
	*_run = NULL;
	wd_imap_fetch_msg_destroy(&run->msg);
	wd_imap_fetch_loader_destroy(&run->loader);
	if (run->projection != NULL)
		bson_destroy(run->projection);
	free(run->spans);
	free(run->recent);
	free(run->seen_uids);
	free(run);
}
