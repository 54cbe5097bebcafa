/* WildDuck's field conventions for users, addresses and domain aliases
 * (user-fields.h): tags, forwarding targets, metadata, cursor listings. */
#include "user-fields.h"
#include "wd-store-search.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TAGS 1000

static char *trimmed(const char *s)
{
	while (*s != '\0' && isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return strndup(s, len);
}

static char *lowered(const char *s)
{
	char *out = strdup(s);
	for (char *p = out; p != NULL && *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static int cmp_nocase(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

void api_tags_append(bson_t *doc, const json_t *tags)
{
	char *list[MAX_TAGS];
	size_t count = 0, i;
	json_t *item;
	json_array_foreach(tags, i, item) {
		if (count == MAX_TAGS || !json_is_string(item))
			continue;
		char *tag = trimmed(json_string_value(item));
		bool seen = tag == NULL || tag[0] == '\0';
		for (size_t j = 0; !seen && j < count; j++)
			seen = strcasecmp(list[j], tag) == 0;
		if (seen)
			free(tag);
		else
			list[count++] = tag;
	}
	qsort(list, count, sizeof(*list), cmp_nocase);
	bson_t arr, view;
	char key[16];
	BSON_APPEND_ARRAY_BEGIN(doc, "tags", &arr);
	for (i = 0; i < count; i++) {
		snprintf(key, sizeof(key), "%zu", i);
		BSON_APPEND_UTF8(&arr, key, list[i]);
	}
	bson_append_array_end(doc, &arr);
	BSON_APPEND_ARRAY_BEGIN(doc, "tagsview", &view);
	for (i = 0; i < count; i++) {
		char *low = lowered(list[i]);
		snprintf(key, sizeof(key), "%zu", i);
		if (low != NULL)
			BSON_APPEND_UTF8(&view, key, low);
		free(low);
		free(list[i]);
	}
	bson_append_array_end(doc, &view);
}

/* Comma separated tags, lower-cased, trimmed, without repeats (also across
   both lists: `seen`). */
static size_t split_tags(const char *text, char **out, size_t max, char **seen, size_t *seen_n)
{
	size_t n = 0;
	char *copy = text != NULL ? strdup(text) : NULL;
	char *save = NULL;
	for (char *t = copy != NULL ? strtok_r(copy, ",", &save) : NULL; t != NULL && n < max;
	     t = strtok_r(NULL, ",", &save)) {
		char *tag = trimmed(t);
		char *low = tag != NULL ? lowered(tag) : NULL;
		free(tag);
		bool dup = low == NULL || low[0] == '\0' || *seen_n >= MAX_TAGS;
		for (size_t j = 0; !dup && j < *seen_n; j++)
			dup = strcmp(seen[j], low) == 0;
		if (dup) {
			free(low);
			continue;
		}
		seen[(*seen_n)++] = low;
		out[n++] = low;
	}
	free(copy);
	return n;
}

void api_tags_filter(bson_t *filter, const char *tags, const char *required)
{
	char *seen[MAX_TAGS], *req_list[MAX_TAGS], *any_list[MAX_TAGS];
	size_t seen_n = 0;
	size_t nreq = split_tags(required, req_list, MAX_TAGS, seen, &seen_n);
	size_t nany = split_tags(tags, any_list, MAX_TAGS, seen, &seen_n);
	if (nreq + nany > 0) {
		bson_t view, arr;
		char key[16];
		BSON_APPEND_DOCUMENT_BEGIN(filter, "tagsview", &view);
		if (nreq > 0) {
			BSON_APPEND_ARRAY_BEGIN(&view, "$all", &arr);
			for (size_t i = 0; i < nreq; i++) {
				snprintf(key, sizeof(key), "%zu", i);
				BSON_APPEND_UTF8(&arr, key, req_list[i]);
			}
			bson_append_array_end(&view, &arr);
		}
		if (nany > 0) {
			BSON_APPEND_ARRAY_BEGIN(&view, "$in", &arr);
			for (size_t i = 0; i < nany; i++) {
				snprintf(key, sizeof(key), "%zu", i);
				BSON_APPEND_UTF8(&arr, key, any_list[i]);
			}
			bson_append_array_end(&view, &arr);
		}
		bson_append_document_end(filter, &view);
	}
	for (size_t i = 0; i < seen_n; i++)
		free(seen[i]);
}

static const char *target_type(const char *value)
{
	if (strncasecmp(value, "smtp://", 7) == 0 || strncasecmp(value, "smtps://", 8) == 0)
		return "relay";
	if (strncasecmp(value, "http://", 7) == 0 || strncasecmp(value, "https://", 8) == 0)
		return "http";
	if (strchr(value, '@') != NULL && strchr(value, ' ') == NULL)
		return "mail";
	return NULL;
}

bool api_targets_append(struct wd_store *store, bson_t *doc, const char *key,
			const json_t *targets, const char *self_addrview, char *error,
			size_t error_size)
{
	bson_t arr;
	size_t i;
	json_t *item;
	BSON_APPEND_ARRAY_BEGIN(doc, key, &arr);
	bool ok = true;
	json_array_foreach(targets, i, item) {
		const char *value = json_string_value(item);
		const char *type = value != NULL ? target_type(value) : NULL;
		if (type == NULL) {
			snprintf(error, error_size, "Unknown target type \"%.200s\"",
				 value != NULL ? value : "");
			ok = false;
			break;
		}
		bson_t entry;
		bson_oid_t id;
		char index[24];
		snprintf(index, sizeof(index), "%zu", i);
		bson_oid_init(&id, NULL);
		BSON_APPEND_DOCUMENT_BEGIN(&arr, index, &entry);
		BSON_APPEND_OID(&entry, "id", &id);
		BSON_APPEND_UTF8(&entry, "type", type);
		BSON_APPEND_UTF8(&entry, "value", value);
		if (strcmp(type, "mail") == 0) {
			char *view = NULL;
			const char *verror = NULL;
			if (wd_address_addrview(value, &view, &verror) < 0) {
				snprintf(error, error_size, "Invalid target address \"%.200s\"", value);
				ok = false;
			} else if (self_addrview != NULL && strcmp(view, self_addrview) == 0) {
				snprintf(error, error_size, "Can not forward to self \"%.200s\"", value);
				ok = false;
			}
			free(view);
			struct wd_address *found = NULL;
			char *serror = NULL;
			if (ok && store != NULL &&
			    wd_store_address_resolve(store, value, 0, &found, &serror) == 0 &&
			    found->has_user)
				BSON_APPEND_OID(&entry, "user", &found->user);
			wd_address_free(&found);
			free(serror);
		}
		bson_append_document_end(&arr, &entry);
		if (!ok)
			break;
	}
	bson_append_array_end(doc, &arr);
	return ok;
}

json_t *api_targets_json(const bson_t *doc)
{
	json_t *list = json_array();
	bson_iter_t iter, child;
	if (!bson_iter_init_find(&iter, doc, "targets") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
	    !bson_iter_recurse(&iter, &child))
		return list;
	while (bson_iter_next(&child)) {
		bson_iter_t value;
		if (BSON_ITER_HOLDS_DOCUMENT(&child) && bson_iter_recurse(&child, &value) &&
		    bson_iter_find(&value, "value") && BSON_ITER_HOLDS_UTF8(&value))
			json_array_append_new(list, json_string(bson_iter_utf8(&value, NULL)));
	}
	return list;
}

char *api_metadata_text(const json_t *value)
{
	if (json_is_object(value))
		return json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!json_is_string(value))
		return NULL;
	const char *text = json_string_value(value);
	if (text[0] == '\0')
		return strdup("");
	json_t *parsed = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	bool object = json_is_object(parsed);
	json_decref(parsed);
	return object ? strdup(text) : NULL;
}

json_t *api_metadata_json(const bson_t *doc, const char *key)
{
	const char *text = api_doc_str(doc, key);
	if (text == NULL || text[0] == '\0') {
		bson_iter_t iter;
		if (bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_DOCUMENT(&iter))
			return api_json_from_bson_iter(&iter);
		return json_object();
	}
	json_t *parsed = json_loads(text, JSON_DECODE_ANY, NULL);
	return parsed != NULL ? parsed : json_string(text);
}

const char *api_doc_str(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_UTF8(&iter))
		return bson_iter_utf8(&iter, NULL);
	return NULL;
}

json_t *api_doc_json(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	json_t *value = NULL;
	if (bson_iter_init_find(&iter, doc, key))
		value = api_json_from_bson_iter(&iter);
	return value != NULL ? value : json_null();
}

void api_regex_append(bson_t *doc, const char *key, const char *text)
{
	char *escaped = wd_search_regex_escape(text);
	bson_t child;
	BSON_APPEND_DOCUMENT_BEGIN(doc, key, &child);
	BSON_APPEND_UTF8(&child, "$regex", escaped != NULL ? escaped : "");
	BSON_APPEND_UTF8(&child, "$options", "");
	bson_append_document_end(doc, &child);
	free(escaped);
}

bool api_listing_find(struct api_request *req, const char *kind,
		   struct wd_store_page_request *preq, struct wd_store_page *page_r)
{
	const char *next = api_str(req, "next", NULL);
	const char *previous = api_str(req, "previous", NULL);
	char *after = NULL, *before = NULL;
	if (next != NULL && next[0] != '\0') {
		after = api_cursor_decode(kind, next);
		if (after == NULL) {
			api_reply_error(req, 400, "InputValidationError", "\"next\" is not a valid cursor");
			return false;
		}
	} else if (previous != NULL && previous[0] != '\0' && api_int(req, "page", 2) > 1) {
		before = api_cursor_decode(kind, previous);
		if (before == NULL) {
			api_reply_error(req, 400, "InputValidationError",
					"\"previous\" is not a valid cursor");
			return false;
		}
	}
	preq->after = after;
	preq->before = before;
	preq->limit = (unsigned)api_int(req, "limit", 20);
	char *error = NULL;
	int ret = wd_store_page_find(req->ctx->store, preq, page_r, &error);
	preq->after = preq->before = NULL;
	free(after);
	free(before);
	if (ret == WD_STORE_ERR_INVALID) {
		api_reply_error(req, 400, "InputValidationError", "Invalid paging cursor");
	} else if (ret < 0) {
		api_reply_store_error(req, ret, error, "NotFound");
	}
	free(error);
	return ret == 0;
}

static json_t *cursor_json(const char *kind, const bson_t *doc, const char *sort_key)
{
	char *key = wd_store_page_key(doc, sort_key);
	char *cursor = key != NULL ? api_cursor_encode(kind, key) : NULL;
	json_t *value = cursor != NULL ? json_string(cursor) : json_false();
	free(key);
	free(cursor);
	return value;
}

json_t *api_listing_reply(struct api_request *req, const char *kind,
		       const struct wd_store_page_request *preq, const struct wd_store_page *page,
		       json_t *results)
{
	int64_t page_nr = page->has_previous ? api_int(req, "page", 1) : 1;
	const char *query = api_str(req, "query", NULL);
	json_t *out = json_object();
	json_object_set_new(out, "success", json_true());
	json_object_set_new(out, "query", json_string(query != NULL ? query : ""));
	json_object_set_new(out, "total", json_integer(page->total));
	json_object_set_new(out, "page", json_integer(page_nr));
	json_object_set_new(out, "previousCursor",
			    page->has_previous && page->count > 0 ?
				    cursor_json(kind, page->docs[0], preq->sort_key) : json_false());
	json_object_set_new(out, "nextCursor",
			    page->has_next && page->count > 0 ?
				    cursor_json(kind, page->docs[page->count - 1], preq->sort_key) :
				    json_false());
	json_object_set_new(out, "results", results);
	return out;
}

void api_bson_js_number(bson_t *doc, const char *key, int64_t value)
{
	if (value >= INT32_MIN && value <= INT32_MAX)
		BSON_APPEND_INT32(doc, key, (int32_t)value);
	else
		BSON_APPEND_DOUBLE(doc, key, (double)value);
}
