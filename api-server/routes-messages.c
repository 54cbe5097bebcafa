/* Routes: messages, as WildDuck's lib/api/messages.js answers them:
 * listing a mailbox (getMessages), searching a user's messages
 * (searchMessages), one message as parsed JSON (getMessage), its exact
 * bytes (getMessageSource), one attachment decoded
 * (getMessageAttachment), flag changes and moves (updateMessage,
 * updateMessagePathParams), deletion (deleteMessage,
 * deleteMessagesInMailbox) and upload (uploadMessage).
 *
 * Reading. Listings page by WildDuck's key (idate, then _id; search
 * without `order` by _id) with opaque cursors holding the last key seen:
 * `next` continues after it, `previous` goes back before the first entry.
 * Search builds the filter from WildDuck's discrete arguments; header
 * substrings go through libwdstore's search compiler, which on a server
 * without $elemMatch field conditions (FerretDB) gives a superset that
 * wd_search_matches() then decides per message, as IMAP SEARCH does. The
 * free-text `query` (WildDuck: $text) is a substring of the subject or the
 * stored plain text here, decided the same way.
 *
 * message.eml streams the stored bytes through the message reader
 * (byte-exact, one GridFS chunk in memory at a time); an attachment
 * streams its GridFS body through a base64 or quoted-printable decoder.
 *
 * Writing goes through libwdstore's IMAP operations so that journal,
 * MODSEQ, counters and quota stay right: flags are a STORE, moveTo is a
 * MOVE, deleting is \Deleted + UID EXPUNGE (archived unless a draft, as
 * WildDuck), upload is an APPEND with meta.source "API". */
#include "api.h"
#include "attachment-decode.h"
#include "input.h"
#include "message-compose.h"
#include "message-json.h"

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-attachment.h"
#include "wd-store-message.h"
#include "wd-store-search.h"
#include "wd-store-user.h"
#include "wd-str.h"

#include <ctype.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UID_TERMS 1000          /* "1,2,3" items */
#define MAX_BULK_MESSAGES 100000    /* messages one PUT/DELETE touches */
#define MAX_SEARCH_SCAN 50000       /* candidates decided one by one */
#define MESSAGE_MAX_BYTES (64u * 1024 * 1024)

/* ------------------------------------------------------------ paging */

struct page {
	bool asc;
	bool by_idate;          /* else by _id */
	unsigned limit;
	const char *next, *previous;
	int64_t page;
};

static void page_from_request(struct api_request *req, struct page *p, bool by_idate)
{
	const char *order = api_str(req, "order", NULL);
	p->asc = order != NULL && strcmp(order, "asc") == 0;
	p->by_idate = by_idate;
	p->limit = (unsigned)api_int(req, "limit", 20);
	p->next = api_str(req, "next", NULL);
	p->previous = api_str(req, "previous", NULL);
	p->page = api_int(req, "page", 1);
	if (p->next != NULL && p->next[0] == '\0')
		p->next = NULL;
	if (p->previous != NULL && p->previous[0] == '\0')
		p->previous = NULL;
}

static char *page_cursor(const struct page *p, const bson_t *doc)
{
	bson_iter_t iter;
	char hex[25] = "";
	if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter))
		bson_oid_to_string(bson_iter_oid(&iter), hex);
	char value[64];
	int64_t ms = 0;
	if (p->by_idate && bson_iter_init_find(&iter, doc, "idate") &&
	    BSON_ITER_HOLDS_DATE_TIME(&iter))
		ms = bson_iter_date_time(&iter);
	if (p->by_idate)
		snprintf(value, sizeof(value), "%lld.%s", (long long)ms, hex);
	else
		snprintf(value, sizeof(value), "%s", hex);
	return api_cursor_encode("m", value);
}

/* {$or: [{key > v}, {key = v, _id > id}]} (or < for `before`) for a cursor;
   false when the cursor is not one of ours. */
static bool page_condition(const struct page *p, const char *cursor, bool before, bson_t *cond)
{
	char *value = api_cursor_decode("m", cursor);
	if (value == NULL)
		return false;
	const char *op = (p->asc != before) ? "$gt" : "$lt";
	bson_oid_t id;
	bool ok = false;
	if (p->by_idate) {
		char *dot = strchr(value, '.');
		char *end = NULL;
		long long ms = dot != NULL ? strtoll(value, &end, 10) : 0;
		if (dot != NULL && end == dot && strlen(dot + 1) == 24 &&
		    bson_oid_is_valid(dot + 1, 24)) {
			bson_oid_init_from_string(&id, dot + 1);
			bson_t *c = BCON_NEW("$or", "[",
					     "{", "idate", "{", op, BCON_DATE_TIME(ms), "}", "}",
					     "{", "idate", BCON_DATE_TIME(ms), "_id", "{", op,
					     BCON_OID(&id), "}", "}", "]");
			bson_concat(cond, c);
			bson_destroy(c);
			ok = true;
		}
	} else if (strlen(value) == 24 && bson_oid_is_valid(value, 24)) {
		bson_oid_init_from_string(&id, value);
		bson_t *c = BCON_NEW("_id", "{", op, BCON_OID(&id), "}");
		bson_concat(cond, c);
		bson_destroy(c);
		ok = true;
	}
	free(value);
	return ok;
}

/* What a listing needs of a message. */
static bson_t *listing_projection(bool residual)
{
	bson_t *p = BCON_NEW("_id", BCON_INT32(1), "uid", BCON_INT32(1), "msgid", BCON_INT32(1),
			     "mailbox", BCON_INT32(1), "mimeTree.parsedHeader", BCON_INT32(1),
			     "mimeTree.attachmentMap", BCON_INT32(1), "hdate", BCON_INT32(1),
			     "idate", BCON_INT32(1), "subject", BCON_INT32(1), "ha", BCON_INT32(1),
			     "attachments", BCON_INT32(1), "size", BCON_INT32(1), "intro",
			     BCON_INT32(1), "unseen", BCON_INT32(1), "undeleted", BCON_INT32(1),
			     "flagged", BCON_INT32(1), "draft", BCON_INT32(1), "thread",
			     BCON_INT32(1), "flags", BCON_INT32(1), "verificationResults",
			     BCON_INT32(1));
	BSON_APPEND_INT32(p, "meta", 1);
	if (residual) {
		BSON_APPEND_INT32(p, "headers", 1);
		BSON_APPEND_INT32(p, "text", 1);
		BSON_APPEND_INT32(p, "textFooter", 1);
	}
	return p;
}

/* A residual search check of one candidate (NULL key: every doc matches). */
static bool page_matches(const struct wd_search_key *key, const bson_t *doc)
{
	if (key == NULL)
		return true;
	const char *text = api_bson_str(doc, "text"), *footer = api_bson_str(doc, "textFooter");
	char *body = NULL;
	if (asprintf(&body, "%s%s", text != NULL ? text : "", footer != NULL ? footer : "") < 0)
		body = NULL;
	struct wd_search_message msg = { .doc = doc, .body_text = body };
	bool match = wd_search_matches(key, &msg);
	free(body);
	return match;
}

struct listing_extra {
	bool meta;
	json_t *include_headers;  /* array of lower-case names, or NULL */
	bool thread_counters;
	const bson_oid_t *user;
};

static json_t *listing_entry(struct api_request *req, const struct listing_extra *extra,
			     const bson_t *doc, mongoc_collection_t *coll)
{
	json_t *entry = api_message_listing(doc);
	if (!extra->meta)
		json_object_del(entry, "metaData");
	if (extra->include_headers != NULL) {
		bson_t ph;
		json_t *headers = json_object();
		if (api_parsed_header(doc, &ph)) {
			json_t *all = api_json_from_bson(&ph, NULL);
			size_t i;
			json_t *name;
			json_array_foreach(extra->include_headers, i, name) {
				json_t *v = json_object_get(all, json_string_value(name));
				if (v != NULL)
					json_object_set(headers, json_string_value(name), v);
			}
			json_decref(all);
		}
		json_object_set_new(entry, "headers", headers);
	}
	if (extra->thread_counters) {
		bson_iter_t iter;
		if (bson_iter_init_find(&iter, doc, "thread") && BSON_ITER_HOLDS_OID(&iter)) {
			bson_t *q = BCON_NEW("user", BCON_OID(extra->user), "thread",
					     BCON_OID(bson_iter_oid(&iter)));
			int64_t n = mongoc_collection_count_documents(coll, q, NULL, NULL, NULL, NULL);
			if (n >= 0)
				json_object_set_new(entry, "threadMessageCount", json_integer(n));
			bson_destroy(q);
		}
	}
	(void)req;
	return entry;
}

/* Runs a paged listing of `filter` and answers it; `extra_reply` members
   (query, specialUse) are added to the answer. */
static void reply_page(struct api_request *req, const bson_t *filter, const struct page *p,
		       const struct wd_search_key *residual, const struct listing_extra *extra,
		       json_t *extra_reply)
{
	struct wd_store *store = req->ctx->store;
	bool use_prev = p->next == NULL && p->previous != NULL && p->page != 1;
	const char *cursor = p->next != NULL ? p->next : use_prev ? p->previous : NULL;
	bson_t query = BSON_INITIALIZER, cond = BSON_INITIALIZER;
	if (cursor != NULL && !page_condition(p, cursor, use_prev, &cond)) {
		bson_destroy(&query);
		bson_destroy(&cond);
		json_decref(extra_reply);
		api_reply_error(req, 400, "InputValidationError", "Invalid cursor");
		return;
	}
	if (cursor != NULL) {
		bson_t and;
		bson_append_array_begin(&query, "$and", -1, &and);
		BSON_APPEND_DOCUMENT(&and, "0", filter);
		BSON_APPEND_DOCUMENT(&and, "1", &cond);
		bson_append_array_end(&query, &and);
	} else {
		bson_concat(&query, filter);
	}
	bson_destroy(&cond);

	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_error_t error;
	int64_t total = 0;
	bool failed = false;
	if (residual == NULL) {
		total = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
		failed = total < 0;
	} else {
		/* count what the residual check keeps */
		bson_t *opts = BCON_NEW("projection", "{", "headers", BCON_INT32(1), "flags",
					BCON_INT32(1), "uid", BCON_INT32(1), "text", BCON_INT32(1),
					"textFooter", BCON_INT32(1), "subject", BCON_INT32(1), "}",
					"limit", BCON_INT64(MAX_SEARCH_SCAN));
		mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
		const bson_t *doc;
		while (mongoc_cursor_next(c, &doc))
			total += page_matches(residual, doc);
		failed = mongoc_cursor_error(c, &error);
		mongoc_cursor_destroy(c);
		bson_destroy(opts);
	}
	int dir = (p->asc != use_prev) ? 1 : -1;
	bson_t *proj = listing_projection(residual != NULL);
	bson_t *opts = BCON_NEW("projection", BCON_DOCUMENT(proj));
	bson_t sort;
	bson_append_document_begin(opts, "sort", -1, &sort);
	if (p->by_idate)
		BSON_APPEND_INT32(&sort, "idate", dir);
	BSON_APPEND_INT32(&sort, "_id", dir);
	bson_append_document_end(opts, &sort);
	if (residual == NULL)
		BSON_APPEND_INT64(opts, "limit", (int64_t)p->limit + 1);
	json_t *results = json_array();
	bson_t **docs = calloc(p->limit + 1, sizeof(*docs));
	size_t count = 0, scanned = 0;
	if (!failed && docs != NULL) {
		mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, &query, opts, NULL);
		const bson_t *doc;
		while (count < p->limit + 1 && scanned < MAX_SEARCH_SCAN && mongoc_cursor_next(c, &doc)) {
			scanned++;
			if (page_matches(residual, doc))
				docs[count++] = bson_copy(doc);
		}
		failed = mongoc_cursor_error(c, &error);
		mongoc_cursor_destroy(c);
	}
	bool more = count > p->limit;
	size_t shown = more ? p->limit : count;
	char *first_cursor = NULL, *last_cursor = NULL;
	if (!failed && shown > 0) {
		/* previous pages were read backwards */
		for (size_t i = 0; i < shown; i++) {
			size_t k = use_prev ? shown - 1 - i : i;
			json_array_append_new(results, listing_entry(req, extra, docs[k], coll));
		}
		size_t first = use_prev ? shown - 1 : 0, last = use_prev ? 0 : shown - 1;
		first_cursor = page_cursor(p, docs[first]);
		last_cursor = page_cursor(p, docs[last]);
	}
	for (size_t i = 0; i < count; i++)
		bson_destroy(docs[i]);
	free(docs);
	bson_destroy(opts);
	bson_destroy(proj);
	bson_destroy(&query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (failed) {
		free(first_cursor);
		free(last_cursor);
		json_decref(results);
		json_decref(extra_reply);
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error.message, "MessageNotFound");
		return;
	}
	bool has_next, has_prev;
	if (use_prev) {
		has_prev = more;
		has_next = true;
	} else {
		has_next = more;
		has_prev = p->next != NULL;
	}
	json_t *out = json_object();
	json_object_set_new(out, "success", json_true());
	json_object_update(out, extra_reply);
	json_decref(extra_reply);
	json_object_set_new(out, "total", json_integer(total));
	json_object_set_new(out, "page", json_integer(has_prev ? p->page : 1));
	json_object_set_new(out, "previousCursor", has_prev && first_cursor != NULL ?
						      json_string(first_cursor) : json_false());
	json_object_set_new(out, "nextCursor", has_next && last_cursor != NULL ?
						  json_string(last_cursor) : json_false());
	json_object_set_new(out, "results", results);
	free(first_cursor);
	free(last_cursor);
	api_reply_ok(req, out);
}

static json_t *include_headers_list(struct api_request *req)
{
	json_t *v = api_json(req, "includeHeaders");
	if (v == NULL || json_is_false(v) || json_is_null(v))
		return NULL;
	json_t *list = json_array();
	if (json_is_string(v)) {
		char *copy = strdup(json_string_value(v)), *save = NULL;
		for (char *t = copy != NULL ? strtok_r(copy, ",", &save) : NULL; t != NULL;
		     t = strtok_r(NULL, ",", &save)) {
			char *name = wd_str_trim(t);
			for (char *c = name; *c != '\0'; c++)
				*c = (char)tolower((unsigned char)*c);
			if (name[0] != '\0')
				json_array_append_new(list, json_string(name));
		}
		free(copy);
	}
	return list;
}

/* ------------------------------------------------------------ getMessages */

static void get_messages(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	struct wd_mailbox *mb = NULL;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_id(req->ctx->store, &user, &mailbox, &mb, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret,
				      ret == WD_STORE_ERR_NOT_FOUND ? "This mailbox does not exist" : error,
				      "NoSuchMailbox");
		free(error);
		return;
	}
	json_t *reply = json_pack("{s:o}", "specialUse",
				  mb->special_use != NULL ? json_string(mb->special_use) : json_null());
	wd_mailbox_free(&mb);
	bson_t *filter = BCON_NEW("mailbox", BCON_OID(&mailbox));
	if (api_bool(req, "unseen", false))
		BSON_APPEND_BOOL(filter, "unseen", true);
	struct page p;
	page_from_request(req, &p, true);
	struct listing_extra extra = {
		.meta = api_bool(req, "metaData", false),
		.include_headers = include_headers_list(req),
		.thread_counters = api_bool(req, "threadCounters", false),
		.user = &user,
	};
	reply_page(req, filter, &p, NULL, &extra, reply);
	json_decref(extra.include_headers);
	bson_destroy(filter);
}

/* ------------------------------------------------------------ searchMessages */

/* Key tree storage for one search (at most a handful of keys). */
struct search_keys {
	struct wd_search_key keys[16];
	struct wd_search_key *ptrs[16];
	size_t used;
};

static struct wd_search_key *new_key(struct search_keys *k, enum wd_search_op op)
{
	if (k->used >= 16)
		return NULL;
	struct wd_search_key *key = &k->keys[k->used];
	memset(key, 0, sizeof(*key));
	key->op = op;
	k->ptrs[k->used] = key;
	k->used++;
	return key;
}

static struct wd_search_key *header_key(struct search_keys *k, const char *name, const char *value)
{
	struct wd_search_key *key = new_key(k, WD_SEARCH_HEADER);
	key->name = name;
	key->value = value;
	return key;
}

/* OR of children, children taken from k->ptrs[first .. used) */
static struct wd_search_key *group_key(struct search_keys *k, enum wd_search_op op, size_t first)
{
	size_t n = k->used - first;
	struct wd_search_key *key = new_key(k, op);
	key->children = &k->ptrs[first];
	key->child_count = n;
	return key;
}

/* The keys WildDuck matches as substrings: from, to (To or Cc), subject,
   the free text query (subject or text), and the `or` object. */
static struct wd_search_key *search_tree(struct api_request *req, struct search_keys *k)
{
	size_t and_first_slot = 0;
	struct wd_search_key *parts[8];
	size_t part_count = 0;
	const char *from = api_str(req, "from", NULL), *to = api_str(req, "to", NULL);
	const char *subject = api_str(req, "subject", NULL), *query = api_str(req, "query", NULL);
	if (query == NULL || query[0] == '\0')
		query = api_str(req, "q", NULL);
	if (from != NULL && from[0] != '\0')
		parts[part_count++] = header_key(k, "from", from);
	if (to != NULL && to[0] != '\0') {
		size_t first = k->used;
		header_key(k, "to", to);
		header_key(k, "cc", to);
		parts[part_count++] = group_key(k, WD_SEARCH_OR, first);
	}
	if (subject != NULL && subject[0] != '\0')
		parts[part_count++] = header_key(k, "subject", subject);
	if (query != NULL && query[0] != '\0') {
		size_t first = k->used;
		header_key(k, "subject", query);
		struct wd_search_key *body = new_key(k, WD_SEARCH_BODY);
		body->value = query;
		parts[part_count++] = group_key(k, WD_SEARCH_OR, first);
	}
	json_t *or = api_json(req, "or");
	if (json_is_object(or)) {
		size_t first = k->used;
		const char *v;
		if ((v = json_string_value(json_object_get(or, "from"))) != NULL && v[0] != '\0')
			header_key(k, "from", v);
		if ((v = json_string_value(json_object_get(or, "to"))) != NULL && v[0] != '\0') {
			header_key(k, "to", v);
			header_key(k, "cc", v);
		}
		if ((v = json_string_value(json_object_get(or, "subject"))) != NULL && v[0] != '\0')
			header_key(k, "subject", v);
		if ((v = json_string_value(json_object_get(or, "query"))) != NULL && v[0] != '\0') {
			header_key(k, "subject", v);
			struct wd_search_key *body = new_key(k, WD_SEARCH_BODY);
			body->value = v;
		}
		if (k->used > first)
			parts[part_count++] = group_key(k, WD_SEARCH_OR, first);
	}
	if (part_count == 0)
		return NULL;
	and_first_slot = k->used;
	for (size_t i = 0; i < part_count; i++)
		k->ptrs[and_first_slot + i] = parts[i];
	struct wd_search_key *and = &k->keys[k->used < 16 ? k->used : 15];
	memset(and, 0, sizeof(*and));
	and->op = WD_SEARCH_AND;
	and->children = &k->ptrs[and_first_slot];
	and->child_count = part_count;
	return and;
}

static bool append_date_range(struct api_request *req, bson_t *filter)
{
	bool has_start = api_has(req, "datestart"), has_end = api_has(req, "dateend");
	if (!has_start && !has_end)
		return true;
	bson_t range;
	bson_append_document_begin(filter, "idate", -1, &range);
	if (has_start)
		BSON_APPEND_DATE_TIME(&range, "$gte", api_int(req, "datestart", 0));
	if (has_end)
		BSON_APPEND_DATE_TIME(&range, "$lte", api_int(req, "dateend", 0));
	bson_append_document_end(filter, &range);
	return true;
}

static void search_messages(struct api_request *req)
{
	bson_oid_t user, mailbox, thread;
	if (!api_require_user(req, &user))
		return;
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_OID(&filter, "user", &user);
	bool has_mailbox = api_oid(req, "mailbox", &mailbox);
	bool searchable = api_bool(req, "searchable", false);
	const char *id = api_str(req, "id", NULL);
	if (has_mailbox) {
		BSON_APPEND_OID(&filter, "mailbox", &mailbox);
		if (id != NULL && id[0] != '\0') {
			struct wd_search_uid_range ranges[MAX_UID_TERMS];
			size_t n;
			if (!api_uid_range_parse(id, ranges, MAX_UID_TERMS, &n)) {
				bson_destroy(&filter);
				api_reply_error(req, 400, "InputValidationError",
						"\"id\" must be a UID, a list 1,2,3 or a range 3:15 or 3:*");
				return;
			}
			api_uid_range_append(&filter, ranges, n);
		}
	} else if (searchable) {
		/* not in Junk or Trash */
		struct wd_mailbox_list list;
		char *error = NULL;
		int ret = wd_store_mailbox_list(req->ctx->store, &user, WD_MAILBOX_LIST_HIDDEN, &list,
						&error);
		if (ret < 0) {
			bson_destroy(&filter);
			api_reply_store_error(req, ret, error, "UserNotFound");
			free(error);
			return;
		}
		bson_t cond, nin;
		bson_append_document_begin(&filter, "mailbox", -1, &cond);
		bson_append_array_begin(&cond, "$nin", -1, &nin);
		unsigned n = 0;
		for (size_t i = 0; i < list.count; i++) {
			const char *su = list.items[i].special_use;
			if (su != NULL && (strcmp(su, "\\Junk") == 0 || strcmp(su, "\\Trash") == 0)) {
				char key[16];
				const char *k;
				bson_uint32_to_string(n++, &k, key, sizeof(key));
				BSON_APPEND_OID(&nin, k, &list.items[i].id);
			}
		}
		bson_append_array_end(&cond, &nin);
		bson_append_document_end(&filter, &cond);
		wd_mailbox_list_free(&list);
	}
	if (api_oid(req, "thread", &thread))
		BSON_APPEND_OID(&filter, "thread", &thread);
	if (api_bool(req, "flagged", false))
		BSON_APPEND_BOOL(&filter, "flagged", true);
	if (api_bool(req, "unseen", false))
		BSON_APPEND_BOOL(&filter, "unseen", true);
	if (api_bool(req, "unseen", false) || searchable)
		BSON_APPEND_BOOL(&filter, "searchable", true);
	append_date_range(req, &filter);
	if (api_bool(req, "attachments", false))
		BSON_APPEND_BOOL(&filter, "ha", true);
	int64_t min_size = api_int(req, "minSize", 0), max_size = api_int(req, "maxSize", 0);
	if (min_size > 0 || max_size > 0) {
		bson_t range;
		bson_append_document_begin(&filter, "size", -1, &range);
		if (min_size > 0)
			BSON_APPEND_INT64(&range, "$gte", min_size);
		if (max_size > 0)
			BSON_APPEND_INT64(&range, "$lte", max_size);
		bson_append_document_end(&filter, &range);
	}
	struct search_keys keys;
	memset(&keys, 0, sizeof(keys));
	struct wd_search_key *tree = search_tree(req, &keys);
	bool residual = false;
	if (tree != NULL)
		wd_search_compile(tree, wd_store_caps(req->ctx->store), &filter, &residual);

	const char *query = api_str(req, "query", NULL);
	if (query == NULL)
		query = api_str(req, "q", NULL);
	json_t *reply = json_pack("{s:o}", "query", query != NULL ? json_string(query) : json_null());
	struct page p;
	page_from_request(req, &p, api_has(req, "order"));
	struct listing_extra extra = {
		.meta = false,
		.include_headers = include_headers_list(req),
		.thread_counters = api_bool(req, "threadCounters", false),
		.user = &user,
	};
	reply_page(req, &filter, &p, residual ? tree : NULL, &extra, reply);
	json_decref(extra.include_headers);
	bson_destroy(&filter);
}

/* ------------------------------------------------------------ getMessage */

/* "attachment:ATTnnnnn" (and WildDuck's "attachment:<hex>/ATTnnnnn") as
   the API URL of that attachment. */
static char *replace_cid_links(const char *text, const char *base)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	const char *s = text;
	while (*s != '\0') {
		const char *hit = strstr(s, "attachment:");
		if (hit == NULL)
			break;
		const char *p = hit + 11;
		const char *slash = p;
		while (isxdigit((unsigned char)*slash))
			slash++;
		if (*slash == '/' && slash > p)
			p = slash + 1;
		if (strncmp(p, "ATT", 3) == 0 && isdigit((unsigned char)p[3])) {
			const char *e = p + 3;
			while (isdigit((unsigned char)*e))
				e++;
			wd_buffer_append(&out, s, (size_t)(hit - s));
			wd_buffer_append_str(&out, base);
			wd_buffer_append(&out, p, (size_t)(e - p));
			s = e;
		} else {
			wd_buffer_append(&out, s, (size_t)(p - s));
			s = p;
		}
	}
	wd_buffer_append_str(&out, s);
	size_t len;
	char *r = (char *)wd_buffer_steal(&out, &len);
	wd_buffer_release(&out);
	return r != NULL ? r : strdup("");
}

/* A List-ID / List-Unsubscribe value as addressparser entries. */
static json_t *list_addresses(const char *value)
{
	json_t *list = json_array();
	const char *s = value;
	while (*s != '\0') {
		const char *lt = strchr(s, '<');
		const char *gt = lt != NULL ? strchr(lt, '>') : NULL;
		const char *end = strchr(s, ',');
		if (lt != NULL && gt != NULL && (end == NULL || lt < end)) {
			char *name = strndup(s, (size_t)(lt - s));
			char *trimmed = wd_str_trim(name);
			size_t n = strlen(trimmed);
			if (n >= 2 && trimmed[0] == '"' && trimmed[n - 1] == '"') {
				trimmed[n - 1] = '\0';
				trimmed++;
			}
			char *decoded = api_mime_decode_words(trimmed);
			char *address = strndup(lt + 1, (size_t)(gt - lt - 1));
			json_array_append_new(list, json_pack("{s:s,s:s}", "address", address, "name",
							      decoded != NULL ? decoded : ""));
			free(address);
			free(decoded);
			free(name);
			s = gt + 1;
			end = strchr(s, ',');
		} else {
			size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
			char *part = strndup(s, n);
			char *trimmed = wd_str_trim(part);
			if (trimmed[0] != '\0')
				json_array_append_new(list, json_pack("{s:s,s:s}", "address", trimmed,
								      "name", ""));
			free(part);
			s += n;
		}
		if (*s == ',')
			s++;
		while (*s == ' ' || *s == '\t')
			s++;
	}
	return list;
}

static json_t *message_envelope(const bson_t *doc)
{
	const char *from = api_bson_str(doc, "meta.from");
	json_t *rcpt = json_array();
	bson_iter_t iter, to, child;
	if (bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, "meta.to", &to)) {
		bson_iter_t list = to;
		bool array = BSON_ITER_HOLDS_ARRAY(&to) && bson_iter_recurse(&to, &child);
		if (array)
			list = child;
		while (array ? bson_iter_next(&list) : true) {
			if (BSON_ITER_HOLDS_UTF8(&list)) {
				char *value = strdup(bson_iter_utf8(&list, NULL));
				char *trimmed = wd_str_trim(value);
				if (trimmed[0] != '\0') {
					char *formatted = NULL;
					const char *err = NULL;
					if (wd_address_normalize(trimmed, WD_ADDRESS_REMOVE_LABEL |
									  WD_ADDRESS_REMOVE_DOTS,
								 &formatted, &err) < 0)
						formatted = strdup(trimmed);
					json_array_append_new(rcpt, json_pack("{s:s,s:s}", "value", trimmed,
									      "formatted", formatted));
					free(formatted);
				}
				free(value);
			}
			if (!array)
				break;
		}
	}
	return json_pack("{s:s,s:o}", "from", from != NULL ? from : "", "rcpt", rcpt);
}

/* The zone-queue entries of the message's outbound queue ids. */
static json_t *outbound_entries(struct api_request *req, const bson_t *doc)
{
	bson_iter_t iter, child;
	if (!bson_iter_init_find(&iter, doc, "outbound") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
	    !bson_iter_recurse(&iter, &child))
		return NULL;
	const char *collection = "zone-queue", *cerr = NULL;
	wd_config_get_string(req->ctx->config, "sender.collection", "zone-queue", &collection, &cerr);
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_SENDER, collection);
	json_t *queued = json_array();
	while (bson_iter_next(&child)) {
		if (!BSON_ITER_HOLDS_UTF8(&child))
			continue;
		const char *queue_id = bson_iter_utf8(&child, NULL);
		bson_t *q = BCON_NEW("id", BCON_UTF8(queue_id));
		mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, q, NULL, NULL);
		const bson_t *entry;
		json_t *entries = json_array();
		while (mongoc_cursor_next(c, &entry)) {
			static const char *const keys[] = { "seq", "recipient", "sendingZone", "queued",
							    NULL };
			json_array_append_new(entries, api_json_from_bson(entry, keys));
		}
		mongoc_cursor_destroy(c);
		bson_destroy(q);
		if (json_array_size(entries) > 0)
			json_array_append_new(queued, json_pack("{s:s,s:o}", "queueId", queue_id,
								"entries", entries));
		else
			json_decref(entries);
	}
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
	if (json_array_size(queued) == 0) {
		json_decref(queued);
		return NULL;
	}
	return queued;
}

/* \Seen on one message (markAsSeen). */
static int mark_seen(struct api_request *req, const bson_oid_t *mailbox, uint32_t uid)
{
	const char *flags[] = { "\\Seen" };
	char *error = NULL;
	int ret = api_message_flags(req, mailbox, &uid, 1, WD_FLAGS_ADD, flags, 1, &error);
	if (ret < 0) {
		wd_warning("api", "markAsSeen: %s", error != NULL ? error : "?");
		free(error);
	}
	return ret;
}

static void get_message(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	uint32_t uid = (uint32_t)api_int(req, "message", 0);
	bson_t *proj = BCON_NEW("_id", BCON_INT32(1), "user", BCON_INT32(1), "thread", BCON_INT32(1),
				"hdate", BCON_INT32(1), "idate", BCON_INT32(1),
				"mimeTree.parsedHeader", BCON_INT32(1), "mimeTree.attachmentMap",
				BCON_INT32(1), "subject", BCON_INT32(1), "msgid", BCON_INT32(1),
				"exp", BCON_INT32(1), "rdate", BCON_INT32(1), "ha", BCON_INT32(1),
				"size", BCON_INT32(1), "unseen", BCON_INT32(1), "undeleted",
				BCON_INT32(1), "flagged", BCON_INT32(1), "draft", BCON_INT32(1),
				"flags", BCON_INT32(1), "attachments", BCON_INT32(1), "html",
				BCON_INT32(1), "text", BCON_INT32(1), "textFooter", BCON_INT32(1),
				"forwardTargets", BCON_INT32(1), "meta", BCON_INT32(1),
				"verificationResults", BCON_INT32(1), "outbound", BCON_INT32(1));
	bson_t doc;
	bool found = api_message_find(req, &mailbox, uid, &user, proj, NULL, &doc);
	bson_destroy(proj);
	if (!found)
		return;
	bson_t ph_doc;
	const bson_t *ph = api_parsed_header(&doc, &ph_doc) ? &ph_doc : NULL;
	bson_iter_t iter;
	bool seen = !(bson_iter_init_find(&iter, &doc, "unseen") && bson_iter_as_bool(&iter));
	if (api_bool(req, "markAsSeen", false) && !seen && mark_seen(req, &mailbox, uid) == 0)
		seen = true;

	json_t *out = json_object();
	json_object_set_new(out, "success", json_true());
	json_object_set_new(out, "id", json_integer(uid));
	json_object_set_new(out, "mailbox", api_json_oid(&mailbox));
	json_object_set_new(out, "thread", bson_iter_init_find(&iter, &doc, "thread") ?
						   api_json_from_bson_iter(&iter) : json_null());
	json_object_set_new(out, "user", api_json_oid(&user));
	json_object_set_new(out, "envelope", message_envelope(&doc));
	json_t *listing = api_message_listing(&doc); /* from, dates, flags, common fields */
	json_object_set(out, "from", json_object_get(listing, "from"));
	json_t *reply_to = api_addresses_json(ph, "reply-to");
	if (reply_to != NULL)
		json_object_set_new(out, "replyTo", reply_to);
	static const char *const lists[] = { "to", "cc", "bcc" };
	for (size_t i = 0; i < 3; i++) {
		json_t *l = api_addresses_json(ph, lists[i]);
		if (l != NULL)
			json_object_set_new(out, lists[i], l);
	}
	static const char *const copied[] = { "subject", "messageId", "date", "idate" };
	for (size_t i = 0; i < 4; i++)
		json_object_set(out, copied[i], json_object_get(listing, copied[i]));
	const char *list_id = ph != NULL ? api_bson_str(ph, "list-id") : NULL;
	const char *list_unsub = ph != NULL ? api_bson_str(ph, "list-unsubscribe") : NULL;
	if (list_id != NULL || list_unsub != NULL) {
		json_t *list = json_object();
		if (list_id != NULL) {
			json_t *ids = list_addresses(list_id);
			if (json_array_size(ids) > 0)
				json_object_set(list, "id", json_array_get(ids, 0));
			json_decref(ids);
		}
		if (list_unsub != NULL)
			json_object_set_new(list, "unsubscribe", list_addresses(list_unsub));
		json_object_set_new(out, "list", list);
	}
	bson_iter_t exp;
	if (bson_iter_init_find(&exp, &doc, "exp") && bson_iter_as_bool(&exp) &&
	    bson_iter_init_find(&iter, &doc, "rdate") && BSON_ITER_HOLDS_NUMBER(&iter))
		json_object_set_new(out, "expires", api_json_date(bson_iter_as_int64(&iter)));
	json_object_set(out, "size", json_object_get(listing, "size"));
	json_object_set_new(out, "seen", json_boolean(seen));
	static const char *const flags[] = { "deleted", "flagged", "draft", "answered", "forwarded" };
	for (size_t i = 0; i < 5; i++)
		json_object_set(out, flags[i], json_object_get(listing, flags[i]));

	char base[160];
	char uhex[25], mhex[25];
	bson_oid_to_string(&user, uhex);
	bson_oid_to_string(&mailbox, mhex);
	snprintf(base, sizeof(base), "/users/%s/mailboxes/%s/messages/%u/attachments/", uhex, mhex,
		 uid);
	bool replace = api_bool(req, "replaceCidLinks", false);
	json_t *html = json_array();
	bson_iter_t child;
	if (bson_iter_init_find(&iter, &doc, "html") && BSON_ITER_HOLDS_ARRAY(&iter) &&
	    bson_iter_recurse(&iter, &child)) {
		while (bson_iter_next(&child)) {
			if (!BSON_ITER_HOLDS_UTF8(&child))
				continue;
			const char *h = bson_iter_utf8(&child, NULL);
			char *r = replace ? replace_cid_links(h, base) : NULL;
			json_t *v = json_string(r != NULL ? r : h);
			json_array_append_new(html, v != NULL ? v : json_string(""));
			free(r);
		}
	}
	json_object_set_new(out, "html", html);
	const char *text = api_bson_str(&doc, "text"), *footer = api_bson_str(&doc, "textFooter");
	char *joined = NULL;
	if (asprintf(&joined, "%s%s", text != NULL ? text : "", footer != NULL ? footer : "") >= 0) {
		char *r = replace ? replace_cid_links(joined, base) : NULL;
		json_t *v = json_string(r != NULL ? r : joined);
		json_object_set_new(out, "text", v != NULL ? v : json_string(""));
		free(r);
		free(joined);
	}
	if (bson_iter_init_find(&iter, &doc, "forwardTargets"))
		json_object_set_new(out, "forwardTargets", api_json_from_bson_iter(&iter));
	json_object_set_new(out, "attachments", api_message_attachments(&doc));
	json_object_set(out, "references", json_object_get(listing, "references"));
	json_t *meta = json_object_get(listing, "metaData");
	json_object_set_new(out, "metaData", meta != NULL ? json_incref(meta) : json_object());
	bson_iter_t files;
	if (bson_iter_init(&iter, &doc) && bson_iter_find_descendant(&iter, "meta.files", &files) &&
	    BSON_ITER_HOLDS_ARRAY(&files)) {
		json_t *f = api_json_from_bson_iter(&files);
		if (json_array_size(f) > 0)
			json_object_set_new(out, "files", f);
		else
			json_decref(f);
	}
	if (bson_iter_init_find(&iter, &doc, "verificationResults") &&
	    BSON_ITER_HOLDS_DOCUMENT(&iter)) {
		json_t *vr = api_json_from_bson_iter(&iter);
		json_object_del(vr, "bimi");
		json_object_set_new(out, "verificationResults", vr);
	}
	bson_iter_t reference;
	if (bson_iter_init(&iter, &doc) &&
	    bson_iter_find_descendant(&iter, "meta.reference", &reference) &&
	    BSON_ITER_HOLDS_DOCUMENT(&reference))
		json_object_set_new(out, "reference", api_json_from_bson_iter(&reference));
	json_t *ct = json_object_get(listing, "contentType");
	if (ct != NULL)
		json_object_set(out, "contentType", ct);
	if (json_object_get(listing, "encrypted") != NULL)
		json_object_set_new(out, "encrypted", json_true());
	json_t *outbound = outbound_entries(req, &doc);
	if (outbound != NULL)
		json_object_set_new(out, "outbound", outbound);
	json_decref(listing);
	bson_destroy(&doc);
	api_reply_ok(req, out);
}

/* ------------------------------------------------------------ message.eml */

struct eml_stream {
	struct wd_message_reader *reader;
	struct wd_buffer buf;
	bool eof;
};

static ssize_t eml_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct eml_stream *s = cls;
	(void)pos;
	while (s->buf.len == 0 && !s->eof) {
		char *error = NULL;
		if (wd_message_reader_read(s->reader, &s->buf, &s->eof, &error) < 0) {
			wd_error("api", "message.eml: %s", error != NULL ? error : "read failed");
			free(error);
			return -2;
		}
	}
	if (s->buf.len == 0)
		return -1;
	size_t n = s->buf.len < max ? s->buf.len : max;
	memcpy(out, wd_buffer_bytes(&s->buf), n);
	wd_buffer_consume(&s->buf, n);
	return (ssize_t)n;
}

static void eml_free(void *cls)
{
	struct eml_stream *s = cls;
	wd_message_reader_close(&s->reader);
	wd_buffer_release(&s->buf);
	free(s);
}

static void get_message_source(struct api_request *req)
{
	bson_oid_t user, mailbox, id;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	uint32_t uid = (uint32_t)api_int(req, "message", 0);
	bson_t *proj = BCON_NEW("_id", BCON_INT32(1), "user", BCON_INT32(1));
	bson_t doc;
	bool found = api_message_find(req, &mailbox, uid, &user, proj, NULL, &doc);
	bson_destroy(proj);
	if (!found)
		return;
	bson_iter_t iter;
	bool has_id = bson_iter_init_find(&iter, &doc, "_id") && BSON_ITER_HOLDS_OID(&iter);
	if (has_id)
		bson_oid_copy(bson_iter_oid(&iter), &id);
	bson_destroy(&doc);
	char *error = NULL;
	struct wd_message_reader *reader = has_id ?
		wd_store_message_open_id(req->ctx->store, &id, &error) : NULL;
	if (reader == NULL) {
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error, "MessageNotFound");
		free(error);
		return;
	}
	struct eml_stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		wd_message_reader_close(&reader);
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	s->reader = reader;
	api_reply_stream(req, "message/rfc822", wd_message_reader_size(reader), eml_read, eml_free,
			 s, NULL);
}

/* ------------------------------------------------------------ attachments */

struct attachment_stream {
	struct wd_attachment_reader *reader;
	struct api_decoder decoder; /* encoded bytes go to decoder.raw */
	struct wd_buffer out;       /* decoded bytes not sent yet */
	bool eof;
};

static ssize_t attachment_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct attachment_stream *s = cls;
	(void)pos;
	while (s->out.len == 0 && !(s->eof && s->decoder.raw.len == 0)) {
		if (!s->eof) {
			char *error = NULL;
			if (wd_attachment_reader_read(s->reader, &s->decoder.raw, &s->eof, &error) < 0) {
				wd_error("api", "attachment: %s", error != NULL ? error : "read failed");
				free(error);
				return -2;
			}
		}
		api_decoder_run(&s->decoder, s->eof, &s->out);
	}
	if (s->out.len == 0)
		return -1;
	size_t n = s->out.len < max ? s->out.len : max;
	memcpy(out, wd_buffer_bytes(&s->out), n);
	wd_buffer_consume(&s->out, n);
	return (ssize_t)n;
}

static void attachment_free(void *cls)
{
	struct attachment_stream *s = cls;
	wd_attachment_reader_close(&s->reader);
	api_decoder_release(&s->decoder);
	wd_buffer_release(&s->out);
	free(s);
}

static void get_message_attachment(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	uint32_t uid = (uint32_t)api_int(req, "message", 0);
	char att[32];
	const char *param = api_str(req, "attachment", "");
	size_t alen = strlen(param);
	bool valid = alen > 3 && alen < sizeof(att) && strncasecmp(param, "ATT", 3) == 0;
	for (size_t i = 3; valid && i < alen; i++)
		valid = isdigit((unsigned char)param[i]);
	if (!valid) {
		api_reply_error(req, 400, "InputValidationError",
				"\"attachment\" with value \"%s\" fails to match the required pattern: /^ATT\\d+$/i",
				param);
		return;
	}
	for (size_t i = 0; i <= alen; i++)
		att[i] = (char)toupper((unsigned char)param[i]);
	bson_t *proj = BCON_NEW("_id", BCON_INT32(1), "user", BCON_INT32(1), "attachments",
				BCON_INT32(1), "mimeTree.attachmentMap", BCON_INT32(1));
	bson_t doc;
	bool found = api_message_find(req, &mailbox, uid, &user, proj, NULL, &doc);
	bson_destroy(proj);
	if (!found)
		return;
	char path[64];
	snprintf(path, sizeof(path), "mimeTree.attachmentMap.%s", att);
	bson_iter_t iter, hash_iter;
	uint8_t hash[WD_ATTACHMENT_HASH_LEN];
	bool has_hash = false;
	if (bson_iter_init(&iter, &doc) && bson_iter_find_descendant(&iter, path, &hash_iter) &&
	    BSON_ITER_HOLDS_BINARY(&hash_iter)) {
		const uint8_t *data;
		uint32_t len;
		bson_iter_binary(&hash_iter, NULL, &len, &data);
		if (len == WD_ATTACHMENT_HASH_LEN) {
			memcpy(hash, data, len);
			has_hash = true;
		}
	}
	/* content type and transfer encoding from the attachments list */
	char content_type[256] = "application/octet-stream", encoding[64] = "";
	json_t *list = api_message_attachments(&doc);
	size_t i;
	json_t *entry;
	json_array_foreach(list, i, entry) {
		const char *id = json_string_value(json_object_get(entry, "id"));
		if (id == NULL || strcmp(id, att) != 0)
			continue;
		const char *ct = json_string_value(json_object_get(entry, "contentType"));
		const char *te = json_string_value(json_object_get(entry, "transferEncoding"));
		if (ct != NULL && ct[0] != '\0' && strpbrk(ct, "\r\n") == NULL)
			snprintf(content_type, sizeof(content_type), "%s", ct);
		if (te != NULL)
			snprintf(encoding, sizeof(encoding), "%s", te);
	}
	json_decref(list);
	bson_destroy(&doc);
	if (!has_hash) {
		api_reply_error(req, 404, "AttachmentNotFound", "This attachment does not exist");
		return;
	}
	char *error = NULL;
	struct wd_attachment_reader *reader = wd_store_attachment_open(req->ctx->store, hash, &error);
	if (reader == NULL) {
		api_reply_error(req, 404, "AttachmentNotFound", "This attachment does not exist");
		free(error);
		return;
	}
	struct attachment_stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		wd_attachment_reader_close(&reader);
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	s->reader = reader;
	s->decoder.kind = api_decode_kind_of(encoding);
	api_reply_stream(req, content_type, UINT64_MAX, attachment_read, attachment_free, s, NULL);
}

/* ------------------------------------------------------------ updates */

/* The UIDs of `mailbox` named by WildDuck's message id string. Answers
   404 MessageNotFound for a malformed string, 500 on database errors. */
static bool resolve_uids(struct api_request *req, const bson_oid_t *mailbox, const char *text,
			 uint32_t **uids_r, size_t *count_r)
{
	struct wd_search_uid_range *ranges = calloc(MAX_UID_TERMS, sizeof(*ranges));
	size_t n = 0;
	if (ranges == NULL || !api_uid_range_parse(text, ranges, MAX_UID_TERMS, &n)) {
		free(ranges);
		api_reply_error(req, 404, "MessageNotFound", "Invalid message identifier");
		return false;
	}
	bson_t *query = BCON_NEW("mailbox", BCON_OID(mailbox));
	api_uid_range_append(query, ranges, n);
	free(ranges);
	char *error = NULL;
	int ret = api_message_uids(req, query, MAX_BULK_MESSAGES, uids_r, count_r, &error);
	bson_destroy(query);
	if (ret < 0) {
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error, "MessageNotFound");
		free(error);
		return false;
	}
	return true;
}

static int apply_flags(struct api_request *req, const bson_oid_t *mailbox, const uint32_t *uids,
		       size_t count, char **error_r)
{
	static const char *const names[] = { "seen", "flagged", "deleted", "draft" };
	static const char *const flags[] = { "\\Seen", "\\Flagged", "\\Deleted", "\\Draft" };
	const char *add[4], *remove[4];
	size_t add_n = 0, remove_n = 0;
	for (size_t i = 0; i < 4; i++) {
		if (!api_has(req, names[i]))
			continue;
		if (api_bool(req, names[i], false))
			add[add_n++] = flags[i];
		else
			remove[remove_n++] = flags[i];
	}
	int ret = api_message_flags(req, mailbox, uids, count, WD_FLAGS_ADD, add, add_n, error_r);
	if (ret == WD_OK)
		ret = api_message_flags(req, mailbox, uids, count, WD_FLAGS_REMOVE, remove, remove_n,
					error_r);
	return ret;
}

/* expires and metaData: plain fields of the messages, under the mailbox's
   update lock (as libwdstore's own writes). */
static int apply_fields(struct api_request *req, const bson_oid_t *mailbox, const uint32_t *uids,
			size_t count, const char *meta, char **error_r)
{
	bson_t set = BSON_INITIALIZER;
	if (api_has(req, "expires")) {
		json_t *e = api_json(req, "expires");
		int64_t ms = json_is_integer(e) ? json_integer_value(e) :
			     json_is_string(e) ? api_parse_date(json_string_value(e)) : -1;
		if (ms >= 0) {
			BSON_APPEND_BOOL(&set, "exp", true);
			BSON_APPEND_DOUBLE(&set, "rdate", (double)ms);
		} else {
			BSON_APPEND_BOOL(&set, "exp", false);
		}
	}
	if (meta != NULL)
		BSON_APPEND_UTF8(&set, "meta.custom", meta);
	if (bson_empty(&set) || count == 0) {
		bson_destroy(&set);
		return WD_OK;
	}
	bson_t filter = BSON_INITIALIZER, in, list, update = BSON_INITIALIZER;
	BSON_APPEND_OID(&filter, "mailbox", mailbox);
	bson_append_document_begin(&filter, "uid", -1, &in);
	bson_append_array_begin(&in, "$in", -1, &list);
	for (size_t i = 0; i < count; i++) {
		char key[16];
		const char *k;
		bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
		BSON_APPEND_INT64(&list, k, uids[i]);
	}
	bson_append_array_end(&in, &list);
	bson_append_document_end(&filter, &in);
	BSON_APPEND_DOCUMENT(&update, "$set", &set);
	int ret = api_update_locked(req, mailbox, "messages", &filter, &update, true, NULL, error_r);
	bson_destroy(&update);
	bson_destroy(&filter);
	bson_destroy(&set);
	return ret;
}

/* metaData as WildDuck takes it: an object (stored as its JSON) or a
   string holding a JSON object. NULL + answered on a bad value; *absent_r
   when not given. */
static char *meta_data_text(struct api_request *req, const char *name, bool *absent_r)
{
	json_t *v = api_json(req, name);
	*absent_r = v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
	if (*absent_r)
		return NULL;
	if (json_is_object(v))
		return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (json_is_string(v)) {
		json_t *parsed = json_loads(json_string_value(v), 0, NULL);
		bool ok = json_is_object(parsed);
		json_decref(parsed);
		if (ok)
			return strdup(json_string_value(v));
		api_reply_error(req, 400, "InputValidationError",
				"metaData value must be valid JSON object string");
		return NULL;
	}
	api_reply_error(req, 400, "InputValidationError",
			"metaData value must be serializable to JSON");
	return NULL;
}

static void update_messages(struct api_request *req)
{
	bson_oid_t user, mailbox, move_to;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	json_t *expires = api_json(req, "expires");
	if (expires != NULL && !json_is_false(expires) &&
	    !(json_is_string(expires) && !json_is_true(expires) &&
	      (strcmp(json_string_value(expires), "false") == 0 ||
	       api_parse_date(json_string_value(expires)) >= 0)) &&
	    !(json_is_integer(expires) && json_integer_value(expires) >= 0)) {
		api_reply_error(req, 400, "InputValidationError",
				"\"expires\" must be a valid date or false");
		return;
	}
	bool absent;
	char *meta = meta_data_text(req, "metaData", &absent);
	if (meta == NULL && !absent)
		return;
	if (!api_mailbox_require(req, &user, &mailbox)) {
		free(meta);
		return;
	}
	bool moving = api_oid(req, "moveTo", &move_to);
	if (moving && !api_mailbox_require(req, &user, &move_to)) {
		free(meta);
		return;
	}
	uint32_t *uids = NULL;
	size_t count = 0;
	if (!resolve_uids(req, &mailbox, api_str(req, "message", ""), &uids, &count)) {
		free(meta);
		return;
	}
	if (count == 0) {
		free(meta);
		api_reply_error(req, 404, "MessageNotFound", moving ?
				"Could not move message, check if message exists" :
				"No message matched query");
		return;
	}
	char *error = NULL;
	int ret = apply_flags(req, &mailbox, uids, count, &error);
	if (ret == 0)
		ret = apply_fields(req, &mailbox, uids, count, meta, &error);
	free(meta);
	if (ret < 0) {
		free(uids);
		api_reply_store_error(req, ret, error, "MessageNotFound");
		free(error);
		return;
	}
	if (!moving || bson_oid_equal(&move_to, &mailbox)) {
		free(uids);
		api_reply_ok(req, json_pack("{s:b,s:i}", "success", 1, "updated", (json_int_t)count));
		return;
	}
	uint32_t *map = NULL;
	size_t pairs = 0;
	ret = wd_store_message_copy(req->ctx->store, &mailbox, uids, count, &move_to, true, NULL,
				    &map, &pairs, &error);
	free(uids);
	if (ret < 0) {
		api_reply_store_error(req, ret, error, "MessageNotFound");
		free(error);
		return;
	}
	if (pairs == 0) {
		free(map);
		api_reply_error(req, 404, "MessageNotFound",
				"Could not move message, check if message exists");
		return;
	}
	json_t *ids = json_array();
	for (size_t i = 0; i < pairs; i++)
		json_array_append_new(ids, json_pack("[I,I]", (json_int_t)map[2 * i],
						     (json_int_t)map[2 * i + 1]));
	free(map);
	api_reply_ok(req, json_pack("{s:b,s:o,s:o}", "success", 1, "mailbox",
				    api_json_oid(&move_to), "id", ids));
}

/* ------------------------------------------------------------ deletes */

static void delete_message(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	uint32_t uid = (uint32_t)api_int(req, "message", 0);
	bson_t *proj = BCON_NEW("_id", BCON_INT32(1), "user", BCON_INT32(1));
	bson_t doc;
	bool found = api_message_find(req, &mailbox, uid, &user, proj, "Message was not found", &doc);
	bson_destroy(proj);
	if (!found)
		return;
	bson_destroy(&doc);
	size_t deleted;
	char *error = NULL;
	int ret = api_messages_delete(req, &mailbox, &uid, 1, &deleted, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, error, "MessageNotFound");
		free(error);
		return;
	}
	api_reply_success(req);
}

static void delete_messages(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	if (!api_mailbox_require(req, &user, &mailbox))
		return;
	bson_t *query = BCON_NEW("mailbox", BCON_OID(&mailbox), "user", BCON_OID(&user));
	uint32_t *uids = NULL;
	size_t count = 0;
	char *error = NULL;
	int ret = api_message_uids(req, query, MAX_BULK_MESSAGES, &uids, &count, &error);
	bson_destroy(query);
	size_t deleted = 0;
	if (ret == 0)
		ret = api_messages_delete(req, &mailbox, uids, count, &deleted, &error);
	free(uids);
	if (ret < 0) {
		api_reply_store_error(req, ret, error, "MessageNotFound");
		free(error);
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:i,s:i}", "success", 1, "deleted", (json_int_t)deleted,
				    "errors", (json_int_t)(count - deleted)));
}

/* ------------------------------------------------------------ upload */

/* `raw` of a JSON upload: base64 (WildDuck's documented form) when it is
   clean base64 of something with a header line, else the text itself. */
static int raw_from_json(const char *text, struct wd_buffer *out)
{
	size_t len = strlen(text);
	struct wd_buffer decoded = WD_BUFFER_INIT;
	if (len > 0 && wd_base64_decode((const uint8_t *)text, len, &decoded) == WD_OK &&
	    memchr(wd_buffer_bytes(&decoded), ':', decoded.len) != NULL) {
		int ret = wd_buffer_append(out, wd_buffer_bytes(&decoded), decoded.len);
		wd_buffer_release(&decoded);
		return ret;
	}
	wd_buffer_release(&decoded);
	return wd_buffer_append(out, text, len);
}

static void upload_message(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	bool absent;
	char *meta_custom = meta_data_text(req, "metaData", &absent);
	if (meta_custom == NULL && !absent)
		return;
	struct wd_user *u = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(req->ctx->store, &user, &u, &error);
	if (ret < 0 || !api_mailbox_require(req, &user, &mailbox)) {
		if (ret < 0)
			api_reply_store_error(req, ret, error, "UserNotFound");
		free(error);
		free(meta_custom);
		wd_user_free(&u);
		return;
	}
	if (u->quota > 0 && u->storage_used > u->quota) {
		wd_user_free(&u);
		free(meta_custom);
		api_reply_error(req, 400, "OverQuotaError", "User is over quota");
		return;
	}
	if (u->disabled || u->suspended) {
		wd_user_free(&u);
		free(meta_custom);
		api_reply_error(req, 403, "UserDisabled", "User account is disabled");
		return;
	}
	int64_t date = api_int(req, "date", 0);
	struct wd_buffer raw = WD_BUFFER_INIT;
	const char *raw_text = api_str(req, "raw", NULL);
	bool raw_body = req->body_len > 0 &&
			(req->content_type == NULL || strstr(req->content_type, "json") == NULL);
	bool rfc822 = req->content_type != NULL &&
		      strncasecmp(req->content_type, "message/rfc822", 14) == 0;
	if (raw_body)
		wd_buffer_append(&raw, req->body, req->body_len);
	else if (rfc822)
		; /* an empty message/rfc822 body: nothing to store */
	else if (raw_text != NULL && raw_text[0] != '\0')
		raw_from_json(raw_text, &raw);
	else {
		struct api_compose compose;
		api_compose_from_request(req, &compose);
		if (compose.from_address == NULL) {
			compose.from_name = u->name;
			compose.from_address = u->address;
		}
		compose.keep_bcc = true;
		compose.date_ms = date;
		char *cerr = NULL;
		if (api_compose_build(&compose, &raw, &cerr) < 0) {
			wd_user_free(&u);
			free(meta_custom);
			api_reply_error(req, 400, "InputValidationError", "%s", cerr != NULL ? cerr : "");
			free(cerr);
			wd_buffer_release(&raw);
			return;
		}
		api_compose_clear(&compose);
	}
	wd_user_free(&u);
	if (raw.len == 0) {
		free(meta_custom);
		wd_buffer_release(&raw);
		api_reply_error(req, 400, "EmptyMessage", "Empty message provided");
		return;
	}
	const char *flags[3];
	size_t flag_count = 0;
	if (!api_bool(req, "unseen", false))
		flags[flag_count++] = "\\Seen";
	if (api_bool(req, "flagged", false))
		flags[flag_count++] = "\\Flagged";
	if (api_bool(req, "draft", false))
		flags[flag_count++] = "\\Draft";
	bson_t meta = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&meta, "from", "");
	const char *ip = api_str(req, "ip", NULL);
	BSON_APPEND_UTF8(&meta, "origin", ip != NULL && ip[0] != '\0' ? ip : "127.0.0.1");
	BSON_APPEND_UTF8(&meta, "transtype", "UPLOAD");
	BSON_APPEND_UTF8(&meta, "custom", meta_custom != NULL ? meta_custom : "");
	free(meta_custom);
	struct wd_message_add add = {
		.raw = wd_buffer_bytes(&raw), .len = raw.len, .flags = flags, .flag_count = flag_count,
		.idate_ms = date, .source = "API", .meta = &meta,
	};
	struct wd_message_added added;
	ret = wd_store_message_add(req->ctx->store, &mailbox, &add, &added, &error);
	bson_destroy(&meta);
	wd_buffer_release(&raw);
	if (ret < 0) {
		api_reply_store_error(req, ret, error, "NoSuchMailbox");
		free(error);
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:{s:I,s:o,s:I}}", "success", 1, "message", "id",
				    (json_int_t)added.uid, "mailbox", api_json_oid(&mailbox), "size",
				    (json_int_t)added.size));
}

/* ------------------------------------------------------------ tables */

static const char *const order_choices[] = { "asc", "desc", NULL };

#define F_USER { "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" }
#define F_MAILBOX { "mailbox", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the Mailbox" }
#define F_MESSAGE { "message", API_T_INT, API_F_REQUIRED | API_F_PATH, 1, UINT32_MAX, NULL, \
		    "Message ID (its UID in the mailbox)" }
#define F_PAGING \
	{ "limit", API_T_INT, API_F_QUERY, 1, 250, NULL, "How many records to return" }, \
	{ "order", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 4, order_choices, \
	  "Ordering of the records by insert date" }, \
	{ "next", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 1024, NULL, \
	  "Cursor value for the next page (nextCursor of the previous answer)" }, \
	{ "previous", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 1024, NULL, \
	  "Cursor value for the previous page (previousCursor of the previous answer)" }, \
	{ "page", API_T_INT, API_F_QUERY, 1, 1000000, NULL, "Current page number, echoed back" }, \
	{ "includeHeaders", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 1024, NULL, \
	  "Comma separated header keys to include from the parsed headers" }, \
	{ "threadCounters", API_T_BOOL, API_F_QUERY, 0, 0, NULL, \
	  "Include the number of messages in each message's thread" }

static const struct api_field list_fields[] = {
	F_USER, F_MAILBOX,
	{ "unseen", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Only unseen messages" },
	{ "metaData", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Include the metaData of each message" },
	F_PAGING,
	API_FIELDS_END
};

static const struct api_field search_fields[] = {
	F_USER,
	{ "q", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 1024, NULL,
	  "Free text: a substring of the subject or the plain text" },
	{ "mailbox", API_T_OID, API_F_QUERY | API_F_NULLABLE, 0, 0, NULL, "ID of the Mailbox" },
	{ "id", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 8192, NULL,
	  "With mailbox: UIDs as 1,2,3 or 3:15 or 3:*" },
	{ "thread", API_T_OID, API_F_QUERY | API_F_NULLABLE, 0, 0, NULL, "Thread ID" },
	{ "or", API_T_OBJECT, API_F_QUERY, 0, 4096, NULL,
	  "At least one of its terms (query, from, to, subject) must match" },
	{ "query", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 255, NULL,
	  "Free text: a substring of the subject or the plain text" },
	{ "datestart", API_T_DATE, API_F_QUERY | API_F_NULLABLE, 0, 0, NULL,
	  "Earliest storing time" },
	{ "dateend", API_T_DATE, API_F_QUERY | API_F_NULLABLE, 0, 0, NULL, "Latest storing time" },
	{ "from", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 1024, NULL,
	  "Substring of the From: header" },
	{ "to", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 1024, NULL,
	  "Substring of the To: or Cc: header" },
	{ "subject", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 1024, NULL,
	  "Substring of the Subject: header" },
	{ "minSize", API_T_INT, API_F_QUERY, 0, INT64_MAX, NULL, "Minimal message size in bytes" },
	{ "maxSize", API_T_INT, API_F_QUERY, 0, INT64_MAX, NULL, "Maximal message size in bytes" },
	{ "attachments", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Only messages with attachments" },
	{ "flagged", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Only \\Flagged messages" },
	{ "unseen", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Only messages without \\Seen" },
	{ "searchable", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Only messages not in Junk or Trash" },
	F_PAGING,
	API_FIELDS_END
};

static const struct api_field get_fields[] = {
	F_USER, F_MAILBOX, F_MESSAGE,
	{ "replaceCidLinks", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Replace attachment: links in html and text with the attachment URLs" },
	{ "markAsSeen", API_T_BOOL, API_F_QUERY, 0, 0, NULL, "Add \\Seen to the message" },
	API_FIELDS_END
};

static const struct api_field source_fields[] = {
	F_USER, F_MAILBOX, F_MESSAGE,
	API_FIELDS_END
};

static const struct api_field attachment_fields[] = {
	F_USER, F_MAILBOX, F_MESSAGE,
	{ "attachment", API_T_STRING, API_F_REQUIRED | API_F_PATH, 4, 30, NULL,
	  "ID of the Attachment (ATTnnnnn)" },
	{ "sendAsString", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Accepted for compatibility; the decoded bytes are sent as they are" },
	API_FIELDS_END
};

#define F_UPDATES \
	{ "moveTo", API_T_OID, 0, 0, 0, NULL, "ID of the target Mailbox to move the messages to" }, \
	{ "seen", API_T_BOOL, 0, 0, 0, NULL, "State of the \\Seen flag" }, \
	{ "deleted", API_T_BOOL, 0, 0, 0, NULL, "State of the \\Deleted flag" }, \
	{ "flagged", API_T_BOOL, 0, 0, 0, NULL, "State of the \\Flagged flag" }, \
	{ "draft", API_T_BOOL, 0, 0, 0, NULL, "State of the \\Draft flag" }, \
	{ "expires", API_T_ANY, 0, 0, 256, NULL, \
	  "Expiration date (ms or ISO date), or false to not expire" }, \
	{ "metaData", API_T_ANY, 0, 0, 65536, NULL, \
	  "Custom metadata: an object or a JSON object string" }

static const struct api_field update_one_fields[] = {
	F_USER, F_MAILBOX,
	{ "message", API_T_STRING, API_F_REQUIRED | API_F_PATH, 1, 8192, NULL,
	  "Message ID (UID); also 1,2,3 or 3:15 or 3:*" },
	F_UPDATES,
	API_FIELDS_END
};

static const struct api_field update_many_fields[] = {
	F_USER, F_MAILBOX,
	{ "message", API_T_STRING, API_F_REQUIRED, 1, 8192, NULL,
	  "Message IDs (UIDs): 5, 1,2,3, 3:15 or 3:*" },
	F_UPDATES,
	API_FIELDS_END
};

static const struct api_field delete_one_fields[] = {
	F_USER, F_MAILBOX, F_MESSAGE,
	API_FIELDS_END
};

static const struct api_field delete_all_fields[] = {
	F_USER, F_MAILBOX,
	{ "async", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Accepted for compatibility; the messages are deleted at once" },
	{ "skipArchive", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "Accepted for compatibility; deleted messages are archived unless drafts" },
	API_FIELDS_END
};

static const struct api_field upload_fields[] = {
	F_USER, F_MAILBOX,
	{ "date", API_T_DATE, 0, 0, 0, NULL, "Internal date of the message" },
	{ "unseen", API_T_BOOL, 0, 0, 0, NULL, "Store without \\Seen" },
	{ "flagged", API_T_BOOL, 0, 0, 0, NULL, "Store with \\Flagged" },
	{ "draft", API_T_BOOL, 0, 0, 0, NULL, "Store with \\Draft" },
	{ "raw", API_T_STRING, API_F_EMPTY_OK, 0, 0, NULL,
	  "The message: base64 or as text; or send the body as message/rfc822" },
	API_COMPOSE_FIELDS,
	{ "metaData", API_T_ANY, 0, 0, 65536, NULL,
	  "Custom metadata: an object or a JSON object string" },
	API_FIELDS_END
};

const struct api_route api_routes_messages[] = {
	{ API_GET, "/users/:user/mailboxes/:mailbox/messages", get_messages, "messages", API_READ, 0,
	  list_fields, "Messages", "List messages in a Mailbox", "getMessages" },
	{ API_GET, "/users/:user/search", search_messages, "messages", API_READ, 0, search_fields,
	  "Messages", "Search for messages", "searchMessages" },
	{ API_GET, "/users/:user/mailboxes/:mailbox/messages/:message", get_message, "messages",
	  API_READ, 0, get_fields, "Messages", "Request Message information", "getMessage" },
	{ API_GET, "/users/:user/mailboxes/:mailbox/messages/:message/message.eml",
	  get_message_source, "messages", API_READ, API_R_STREAM, source_fields, "Messages",
	  "Get Message source (the stored bytes)", "getMessageSource" },
	{ API_GET, "/users/:user/mailboxes/:mailbox/messages/:message/attachments/:attachment",
	  get_message_attachment, "attachments", API_READ, API_R_STREAM, attachment_fields,
	  "Messages", "Download Attachment (decoded)", "getMessageAttachment" },
	{ API_PUT, "/users/:user/mailboxes/:mailbox/messages/:message", update_messages, "messages",
	  API_UPDATE, 0, update_one_fields, "Messages",
	  "Update message information with path param", "updateMessagePathParams" },
	{ API_PUT, "/users/:user/mailboxes/:mailbox/messages", update_messages, "messages",
	  API_UPDATE, 0, update_many_fields, "Messages", "Update Message information",
	  "updateMessage" },
	{ API_DELETE, "/users/:user/mailboxes/:mailbox/messages/:message", delete_message,
	  "messages", API_DELETE_ACTION, 0, delete_one_fields, "Messages", "Delete a Message",
	  "deleteMessage" },
	{ API_DELETE, "/users/:user/mailboxes/:mailbox/messages", delete_messages, "messages",
	  API_DELETE_ACTION, 0, delete_all_fields, "Messages",
	  "Delete all Messages from a Mailbox", "deleteMessagesInMailbox" },
	{ API_POST, "/users/:user/mailboxes/:mailbox/messages", upload_message, "messages",
	  API_CREATE, API_R_JSON_OR_RAW, upload_fields, "Messages", "Upload Message",
	  "uploadMessage" },
	API_ROUTES_END
};
