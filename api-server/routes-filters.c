/* Routes: message filters, as WildDuck's lib/api/filters.js, over the
 * `filters` collection (reference §2.13) that the delivery pipeline applies
 * (lmtp-plugin/deliver-filter.c).
 *
 * `query` {from, to, subject, listId, text, ha, size} and `action` {seen,
 * flag, delete, spam, mailbox, targets} are checked here key by key with
 * WildDuck's Joi rules (the framework only checks that they are objects):
 * strings trimmed, at most 255 characters, white space runs collapsed on
 * store, "" meaning "not set"; booleans in Joi's truthy/falsy spellings;
 * targets e-mail addresses or smtp(s):/http(s): URLs. A mailbox must be one
 * of the user's. At most users.filters (else the setting const:max:filters,
 * 400) per user.
 *
 * Listings describe each filter as WildDuck's getFilterStrings does
 * ([["from", "(x)"], ["has attachment"]], [["move to folder", "\"Path\""]]);
 * one filter is answered with its fields. Creating a filter and each new
 * forward target are written to the auth log. */
#include "account.h"
#include "api.h"

#include "wd-auth-log.h"
#include "wd-log.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FILTERS 400
#define MAX_TARGETS 64
#define MAX_TEXT 255

static const char *const header_keys[] = { "from", "to", "subject", "listId", NULL };
static const char *const action_flags[] = { "seen", "flag", "delete", "spam", NULL };

/* ---- input: query and action ---- */

enum slot { SLOT_ABSENT, SLOT_EMPTY, SLOT_SET };

struct text_value {
	enum slot slot;
	char *text; /* trimmed, white space collapsed */
};

struct filter_input {
	bool has_query, has_action;
	struct text_value headers[4]; /* header_keys order */
	struct text_value text;
	enum slot ha_slot;
	bool ha;
	enum slot size_slot;
	double size;
	enum slot flag_slot[4]; /* action_flags order */
	bool flag[4];
	enum slot mailbox_slot;
	bson_oid_t mailbox;
	enum slot targets_slot;
	size_t target_count;
	char *targets[MAX_TARGETS];
	char target_type[MAX_TARGETS][8];
};

static void filter_input_free(struct filter_input *in)
{
	for (size_t i = 0; i < 4; i++)
		free(in->headers[i].text);
	free(in->text.text);
	for (size_t i = 0; i < in->target_count; i++)
		free(in->targets[i]);
}

/* Joi's booleanSchema: 1 true, 0 false, 2 empty (""), -1 invalid */
static int parse_bool(const json_t *v)
{
	if (json_is_boolean(v))
		return json_is_true(v) ? 1 : 0;
	if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
		return (int)json_integer_value(v);
	const char *s = json_string_value(v);
	if (s == NULL)
		return -1;
	if (s[0] == '\0')
		return 2;
	static const char *const truthy[] = { "Y", "true", "yes", "on", "1", NULL };
	static const char *const falsy[] = { "N", "false", "no", "off", "0", NULL };
	for (size_t i = 0; truthy[i] != NULL; i++)
		if (strcasecmp(s, truthy[i]) == 0)
			return 1;
	for (size_t i = 0; falsy[i] != NULL; i++)
		if (strcasecmp(s, falsy[i]) == 0)
			return 0;
	return -1;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* trimmed, runs of white space as one space; false when too long */
static bool parse_text(const json_t *v, struct text_value *out, bool collapse)
{
	const char *s = json_string_value(v);
	if (s == NULL)
		return false;
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	char *text = strndup(s, len);
	if (text == NULL)
		return false;
	if (utf8_chars(text) > MAX_TEXT) {
		free(text);
		return false;
	}
	if (collapse) {
		char *w = text;
		for (const char *r = text; *r != '\0'; r++) {
			if (isspace((unsigned char)*r)) {
				if (w == text || w[-1] != ' ')
					*w++ = ' ';
			} else {
				*w++ = *r;
			}
		}
		*w = '\0';
	}
	out->slot = text[0] == '\0' ? SLOT_EMPTY : SLOT_SET;
	out->text = text;
	return true;
}

static bool valid_email(const char *s)
{
	const char *at = strrchr(s, '@');
	return at != NULL && at != s && at[1] != '\0' && strchr(at + 1, '.') != NULL &&
	       strpbrk(s, " \t\r\n<>,;\"()[]\\") == NULL && strlen(s) <= 320;
}

/* "mail", "relay" or "http"; NULL when neither an address nor such a URL */
static const char *target_type(const char *s)
{
	static const struct {
		const char *prefix, *type;
	} schemes[] = { { "smtp://", "relay" }, { "smtps://", "relay" }, { "http://", "http" },
			{ "https://", "http" } };
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);
		if (strncasecmp(s, schemes[i].prefix, n) == 0)
			return s[n] != '\0' && s[n] != '/' && strpbrk(s, " \t\r\n<>\"") == NULL &&
					       strlen(s) <= 1024
				       ? schemes[i].type : NULL;
	}
	return valid_email(s) ? "mail" : NULL;
}

static void detail(json_t *details, const char *object, const char *key, const char *message)
{
	char name[64], text[160];
	snprintf(name, sizeof(name), "%s.%s", object, key);
	snprintf(text, sizeof(text), "\"%s\" %s", name, message);
	json_object_set_new(details, name, json_string(text));
}

static void parse_query(const json_t *query, struct filter_input *in, json_t *details)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)query, key, v) {
		size_t h;
		for (h = 0; header_keys[h] != NULL && strcmp(header_keys[h], key) != 0; h++)
			;
		if (header_keys[h] != NULL) {
			if (!parse_text(v, &in->headers[h], true))
				detail(details, "query", key,
				       "must be a string of at most 255 characters");
		} else if (strcmp(key, "text") == 0) {
			if (!parse_text(v, &in->text, true))
				detail(details, "query", key,
				       "must be a string of at most 255 characters");
		} else if (strcmp(key, "ha") == 0) {
			int b = parse_bool(v);
			if (b < 0)
				detail(details, "query", key, "must be a boolean");
			in->ha_slot = b == 2 ? SLOT_EMPTY : SLOT_SET;
			in->ha = b == 1;
		} else if (strcmp(key, "size") == 0) {
			double size = 0;
			const char *s = json_string_value(v);
			char *end = NULL;
			if (json_is_number(v)) {
				size = json_number_value(v);
			} else if (s != NULL && s[0] == '\0') {
				in->size_slot = SLOT_EMPTY;
				continue;
			} else if (s == NULL || (size = strtod(s, &end), end == s || *end != '\0')) {
				detail(details, "query", key, "must be a number");
				continue;
			}
			if (!isfinite(size) || fabs(size) > 9007199254740991.0) {
				detail(details, "query", key, "must be a safe number");
				continue;
			}
			in->size_slot = size != 0 ? SLOT_SET : SLOT_EMPTY;
			in->size = size;
		} else {
			detail(details, "query", key, "is not allowed");
		}
	}
}

static void parse_action(const json_t *action, struct filter_input *in, json_t *details)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)action, key, v) {
		size_t f;
		for (f = 0; action_flags[f] != NULL && strcmp(action_flags[f], key) != 0; f++)
			;
		if (action_flags[f] != NULL) {
			int b = parse_bool(v);
			if (b < 0)
				detail(details, "action", key, "must be a boolean");
			in->flag_slot[f] = b == 2 ? SLOT_EMPTY : SLOT_SET;
			in->flag[f] = b == 1;
		} else if (strcmp(key, "mailbox") == 0) {
			const char *s = json_string_value(v);
			if (s != NULL && s[0] == '\0') {
				in->mailbox_slot = SLOT_EMPTY;
			} else if (s == NULL || strlen(s) != 24 || !bson_oid_is_valid(s, 24)) {
				detail(details, "action", key, "must be 24 hexadecimal characters");
			} else {
				char lower[25];
				for (int i = 0; i < 25; i++)
					lower[i] = (char)tolower((unsigned char)s[i]);
				bson_oid_init_from_string(&in->mailbox, lower);
				in->mailbox_slot = SLOT_SET;
			}
		} else if (strcmp(key, "targets") == 0) {
			const char *s = json_string_value(v);
			if (s != NULL && s[0] == '\0') {
				in->targets_slot = SLOT_EMPTY;
				continue;
			}
			if (!json_is_array(v) || json_array_size(v) > MAX_TARGETS) {
				detail(details, "action", key, "must be an array of at most 64 targets");
				continue;
			}
			in->targets_slot = SLOT_SET;
			size_t i;
			json_t *item;
			json_array_foreach(v, i, item) {
				const char *t = json_string_value(item);
				const char *type = t != NULL ? target_type(t) : NULL;
				if (type == NULL) {
					char name[32];
					snprintf(name, sizeof(name), "targets[%zu]", i);
					detail(details, "action", name,
					       "must be an e-mail address or an smtp(s)/http(s) URL");
					continue;
				}
				in->targets[in->target_count] = strdup(t);
				snprintf(in->target_type[in->target_count], 8, "%s", type);
				in->target_count++;
			}
		} else {
			detail(details, "action", key, "is not allowed");
		}
	}
}

/* query/action of the request into `in`; false when answered (400) */
static bool parse_input(struct api_request *req, struct filter_input *in)
{
	memset(in, 0, sizeof(*in));
	json_t *details = json_object();
	json_t *query = api_json(req, "query"), *action = api_json(req, "action");
	in->has_query = query != NULL;
	in->has_action = action != NULL;
	if (query != NULL)
		parse_query(query, in, details);
	if (action != NULL)
		parse_action(action, in, details);
	if (json_object_size(details) == 0) {
		json_decref(details);
		return true;
	}
	/* one message as Joi's, every field in details */
	const char *first = json_string_value(json_object_iter_value(json_object_iter(details)));
	char message[200];
	snprintf(message, sizeof(message), "%s", first != NULL ? first : "invalid input");
	json_decref(details);
	api_reply_error(req, 400, "InputValidationError", "%s", message);
	return false;
}

/* metaData: an object or JSON text of one, stored as JSON text. 1 none,
   0 ok (*text_r malloc'd), -1 answered. */
static int parse_metadata(struct api_request *req, char **text_r)
{
	*text_r = NULL;
	json_t *v = api_json(req, "metaData");
	if (v == NULL || json_is_null(v))
		return 1;
	json_t *object = NULL;
	if (json_is_object(v)) {
		object = json_incref(v);
	} else if (json_is_string(v)) {
		if (json_string_length(v) == 0)
			return 1;
		object = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, NULL);
	}
	if (!json_is_object(object)) {
		json_decref(object);
		api_reply_error(req, 400, "InputValidationError",
				"\"metaData\" must be an object or JSON formatted string");
		return -1;
	}
	*text_r = json_dumps(object, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(object);
	return 0;
}

/* ---- database ---- */


/* The user's mailboxes {_id, path} as an object id → path; NULL answered. */
static json_t *mailbox_paths(struct api_request *req, const bson_t *filter)
{
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "mailboxes", &c);
	bson_t *opts = BCON_NEW("projection", "{", "path", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, filter, opts, NULL);
	json_t *paths = json_object();
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		char hex[25];
		if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
			continue;
		bson_oid_to_string(bson_iter_oid(&it), hex);
		if (bson_iter_init_find(&it, doc, "path") && BSON_ITER_HOLDS_UTF8(&it))
			json_object_set_new(paths, hex, json_string(bson_iter_utf8(&it, NULL)));
	}
	bson_error_t error;
	bool failed = mongoc_cursor_error(cursor, &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	api_coll_put(&c);
	if (failed) {
		json_decref(paths);
		api_db_failed(req, "mailboxes", &error);
		return NULL;
	}
	return paths;
}

/* 1 the mailbox is the user's, 0 not, -1 answered */
static int mailbox_exists(struct api_request *req, const bson_oid_t *user,
			  const bson_oid_t *mailbox)
{
	bson_t *filter = BCON_NEW("_id", BCON_OID(mailbox), "user", BCON_OID(user));
	json_t *paths = mailbox_paths(req, filter);
	bson_destroy(filter);
	if (paths == NULL)
		return -1;
	int found = json_object_size(paths) > 0;
	json_decref(paths);
	return found;
}

/* ---- answers ---- */

static const char *doc_str(const bson_t *doc, const char *path)
{
	bson_iter_t it, child;
	if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &child) &&
	    BSON_ITER_HOLDS_UTF8(&child))
		return bson_iter_utf8(&child, NULL);
	return NULL;
}

static bool doc_find(const bson_t *doc, const char *path, bson_iter_t *out)
{
	bson_iter_t it;
	return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, out);
}

static json_t *pair(const char *a, json_t *b)
{
	json_t *p = json_array();
	json_array_append_new(p, json_string(a));
	if (b != NULL)
		json_array_append_new(p, b);
	return p;
}

/* the host of an http(s) URL */
static json_t *url_host(const char *url)
{
	const char *p = strstr(url, "://");
	p = p != NULL ? p + 3 : url;
	const char *at = strchr(p, '@'), *slash = strchr(p, '/');
	if (at != NULL && (slash == NULL || at < slash))
		p = at + 1;
	size_t len = strcspn(p, "/:?#");
	return json_stringn(p, len);
}

/* getFilterStrings: {query: [[...]], action: [[...]]} */
static void filter_strings(const bson_t *doc, json_t *paths, json_t **query_r, json_t **action_r)
{
	json_t *query = json_array(), *action = json_array();
	bson_iter_t it, child;
	if (doc_find(doc, "query.headers", &it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
	    bson_iter_recurse(&it, &child)) {
		while (bson_iter_next(&child)) {
			if (!BSON_ITER_HOLDS_UTF8(&child))
				continue;
			char *text = NULL;
			if (asprintf(&text, "(%s)", bson_iter_utf8(&child, NULL)) < 0)
				continue;
			json_array_append_new(query, pair(bson_iter_key(&child), json_string(text)));
			free(text);
		}
	}
	if (doc_find(doc, "query.ha", &it) && bson_iter_as_bool(&it))
		json_array_append_new(query, pair("has attachment", NULL));
	const char *text = doc_str(doc, "query.text");
	if (text != NULL) {
		char *quoted = NULL;
		if (asprintf(&quoted, "\"%s\"", text) >= 0) {
			json_t *p = json_array();
			json_array_append_new(p, json_false());
			json_array_append_new(p, json_string(quoted));
			json_array_append_new(query, p);
			free(quoted);
		}
	}
	if (doc_find(doc, "query.size", &it) && BSON_ITER_HOLDS_NUMBER(&it)) {
		double size = bson_iter_as_double(&it);
		if (size > 0)
			json_array_append_new(query, pair("larger", json_real(size)));
		else if (size < 0)
			json_array_append_new(query, pair("smaller", json_real(-size)));
	}
	if (doc_find(doc, "action", &it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
	    bson_iter_recurse(&it, &child)) {
		while (bson_iter_next(&child)) {
			const char *key = bson_iter_key(&child);
			bool on = bson_iter_as_bool(&child);
			if (strcmp(key, "seen") == 0)
				json_array_append_new(action, pair(on ? "mark as read"
								     : "do not mark as read", NULL));
			else if (strcmp(key, "flag") == 0)
				json_array_append_new(action, pair(on ? "flag it" : "do not flag it",
								   NULL));
			else if (strcmp(key, "spam") == 0)
				json_array_append_new(action, pair(on ? "mark it as spam"
								     : "do not mark it as spam", NULL));
			else if (strcmp(key, "delete") == 0)
				json_array_append_new(action, pair(on ? "delete it" : "do not delete it",
								   NULL));
			else if (strcmp(key, "mailbox") == 0 && BSON_ITER_HOLDS_OID(&child)) {
				char hex[25];
				bson_oid_to_string(bson_iter_oid(&child), hex);
				const char *path = json_string_value(json_object_get(paths, hex));
				char *quoted = NULL;
				if (path != NULL && asprintf(&quoted, "\"%s\"", path) < 0)
					quoted = NULL;
				json_array_append_new(action, pair("move to folder",
								   json_string(quoted != NULL ? quoted
										       : hex)));
				free(quoted);
			} else if (strcmp(key, "targets") == 0 && BSON_ITER_HOLDS_ARRAY(&child)) {
				bson_iter_t t;
				json_t *list = json_array();
				bson_iter_recurse(&child, &t);
				while (bson_iter_next(&t)) {
					bson_t target;
					const uint8_t *data;
					uint32_t len;
					if (!BSON_ITER_HOLDS_DOCUMENT(&t))
						continue;
					bson_iter_document(&t, &len, &data);
					if (!bson_init_static(&target, data, len))
						continue;
					const char *value = doc_str(&target, "value");
					const char *type = doc_str(&target, "type");
					if (value == NULL)
						continue;
					json_array_append_new(list, type != NULL &&
									   strcmp(type, "http") == 0
									   ? url_host(value)
									   : json_string(value));
				}
				/* joined with ", " */
				size_t i;
				json_t *item;
				size_t total = 1;
				json_array_foreach(list, i, item) total += json_string_length(item) + 2;
				char *joined = calloc(1, total);
				json_array_foreach(list, i, item) {
					if (joined == NULL)
						break;
					if (i > 0)
						strcat(joined, ", ");
					strcat(joined, json_string_value(item));
				}
				json_decref(list);
				json_array_append_new(action, pair("forward to",
								   json_string(joined != NULL ? joined
										       : "")));
				free(joined);
			}
		}
	}
	*query_r = query;
	*action_r = action;
}

static json_t *target_values(const bson_t *doc)
{
	bson_iter_t it, t;
	if (!doc_find(doc, "action.targets", &it) || !BSON_ITER_HOLDS_ARRAY(&it))
		return NULL;
	json_t *list = json_array();
	bson_iter_recurse(&it, &t);
	while (bson_iter_next(&t)) {
		bson_iter_t v;
		if (BSON_ITER_HOLDS_DOCUMENT(&t) && bson_iter_recurse(&t, &v) &&
		    bson_iter_find(&v, "value") && BSON_ITER_HOLDS_UTF8(&v))
			json_array_append_new(list, json_string(bson_iter_utf8(&v, NULL)));
	}
	return list;
}

static void add_metadata(json_t *out, const bson_t *doc)
{
	const char *text = doc_str(doc, "metaData");
	if (text == NULL || text[0] == '\0')
		return;
	json_t *v = json_loads(text, 0, NULL);
	json_object_set_new(out, "metaData", v != NULL ? v : json_object());
}

static void add_common(json_t *out, const bson_t *doc)
{
	bson_iter_t it;
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		json_object_set_new(out, "id", api_json_oid(bson_iter_oid(&it)));
	const char *name = doc_str(doc, "name");
	json_object_set_new(out, "name", name != NULL ? json_string(name) : json_string(""));
	bson_iter_t d;
	json_object_set_new(out, "disabled", json_boolean(bson_iter_init_find(&d, doc, "disabled") &&
							  bson_iter_as_bool(&d)));
	if (bson_iter_init_find(&it, doc, "created"))
		json_object_set_new(out, "created", api_json_from_bson_iter(&it));
}

static json_t *listing_json(const bson_t *doc, json_t *paths, bool with_user, bool metadata)
{
	json_t *out = json_object(), *query, *action;
	add_common(out, doc);
	bson_iter_t it;
	if (with_user && bson_iter_init_find(&it, doc, "user") && BSON_ITER_HOLDS_OID(&it))
		json_object_set_new(out, "user", api_json_oid(bson_iter_oid(&it)));
	filter_strings(doc, paths, &query, &action);
	json_object_set_new(out, "query", query);
	json_object_set_new(out, "action", action);
	if (with_user) {
		json_t *targets = target_values(doc);
		if (targets != NULL)
			json_object_set_new(out, "targets", targets);
	}
	if (metadata)
		add_metadata(out, doc);
	return out;
}

/* ---- GET /filters ---- */

static void get_all_filters(struct api_request *req)
{
	bson_t filter = BSON_INITIALIZER;
	if (req->own_only) /* a user token lists its own filters */
		BSON_APPEND_OID(&filter, "user", &req->token_user);
	const char *forward = api_str(req, "forward", NULL);
	if (forward != NULL && forward[0] != '\0') {
		char *escaped = api_regex_escape(forward);
		bson_t cond;
		BSON_APPEND_DOCUMENT_BEGIN(&filter, "action.targets.value", &cond);
		BSON_APPEND_UTF8(&cond, "$regex", escaped != NULL ? escaped : "");
		BSON_APPEND_UTF8(&cond, "$options", "");
		bson_append_document_end(&filter, &cond);
		free(escaped);
	}
	struct api_page page = {
		.kind = "filters",
		.limit = api_int(req, "limit", 20),
		.next = api_str(req, "next", NULL),
		.previous = api_str(req, "previous", NULL),
	};
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "filters", &c);
	struct api_page_result result;
	int ret = api_page_find(req, c.coll, &filter, &page, &result);
	api_coll_put(&c);
	bson_destroy(&filter);
	if (ret < 0)
		return;
	/* the paths of the mailboxes these filters move to */
	bson_t mfilter = BSON_INITIALIZER, id, in;
	BSON_APPEND_DOCUMENT_BEGIN(&mfilter, "_id", &id);
	BSON_APPEND_ARRAY_BEGIN(&id, "$in", &in);
	unsigned n = 0;
	for (size_t i = 0; i < result.count; i++) {
		bson_iter_t it;
		if (doc_find(result.docs[i], "action.mailbox", &it) && BSON_ITER_HOLDS_OID(&it)) {
			char key[16];
			snprintf(key, sizeof(key), "%u", n++);
			BSON_APPEND_OID(&in, key, bson_iter_oid(&it));
		}
	}
	bson_append_array_end(&id, &in);
	bson_append_document_end(&mfilter, &id);
	json_t *paths = n > 0 ? mailbox_paths(req, &mfilter) : json_object();
	bson_destroy(&mfilter);
	if (paths == NULL) {
		api_page_result_free(&result);
		return;
	}
	bool metadata = api_bool(req, "metaData", false);
	json_t *results = json_array();
	for (size_t i = 0; i < result.count; i++)
		json_array_append_new(results, listing_json(result.docs[i], paths, true, metadata));
	json_decref(paths);
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	api_page_reply_fields(req, body, &result, results);
	api_page_result_free(&result);
	api_reply_ok(req, body);
}

/* ---- GET /users/:user/filters ---- */

/* users.filters, else the setting, else MAX_FILTERS; -1 answered */
static int64_t filter_limit(struct api_request *req, const bson_oid_t *user)
{
	struct wd_user *u = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(req->ctx->store, user, &u, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND
						     ? "This user does not exist" : error,
				      "UserNotFound");
		free(error);
		return -1;
	}
	bson_iter_t it;
	int64_t limit = 0;
	if (bson_iter_init_find(&it, u->doc, "filters") && BSON_ITER_HOLDS_NUMBER(&it))
		limit = bson_iter_as_int64(&it);
	wd_user_free(&u);
	if (limit <= 0)
		limit = api_account_setting(req, "const:max:filters", MAX_FILTERS);
	return limit;
}

static void get_filters(struct api_request *req)
{
	bson_oid_t user;
	if (!api_oid(req, "user", &user))
		return;
	int64_t allowed = filter_limit(req, &user);
	if (allowed < 0)
		return;
	bson_t *mfilter = BCON_NEW("user", BCON_OID(&user));
	json_t *paths = mailbox_paths(req, mfilter);
	bson_destroy(mfilter);
	if (paths == NULL)
		return;
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "filters", &c);
	bson_t *filter = BCON_NEW("user", BCON_OID(&user));
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit",
				BCON_INT64(100000));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c.coll, filter, opts, NULL);
	bool metadata = api_bool(req, "metaData", false);
	json_t *results = json_array();
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc))
		json_array_append_new(results, listing_json(doc, paths, false, metadata));
	bson_error_t error;
	bool failed = mongoc_cursor_error(cursor, &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	bson_destroy(opts);
	api_coll_put(&c);
	json_decref(paths);
	if (failed) {
		json_decref(results);
		api_db_failed(req, "list", &error);
		return;
	}
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	json_object_set_new(body, "limits", json_pack("{s:I,s:I}", "allowed", (json_int_t)allowed,
						      "used", (json_int_t)json_array_size(results)));
	json_object_set_new(body, "results", results);
	api_reply_ok(req, body);
}

/* ---- one filter ---- */

/* The filter document (a copy), NULL when absent; *failed_r when answered. */
static bson_t *filter_load(struct api_request *req, const bson_oid_t *user, const bson_oid_t *id,
			   bool *failed_r)
{
	bson_t *filter = BCON_NEW("_id", BCON_OID(id), "user", BCON_OID(user));
	bson_t *doc = api_find_one(req, WD_STORE_DB_MAIN, "filters", filter, failed_r);
	bson_destroy(filter);
	return doc;
}

static void get_filter(struct api_request *req)
{
	bson_oid_t user, id;
	api_oid(req, "user", &user);
	api_oid(req, "filter", &id);
	bool failed;
	bson_t *doc = filter_load(req, &user, &id, &failed);
	if (failed)
		return;
	if (doc == NULL) {
		api_reply_error(req, 404, "FilterNotFound", "This filter does not exist");
		return;
	}
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	add_common(body, doc);
	json_t *query = json_object(), *action = json_object();
	bson_iter_t it, child;
	if (doc_find(doc, "query.headers", &it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
	    bson_iter_recurse(&it, &child))
		while (bson_iter_next(&child))
			json_object_set_new(query, bson_iter_key(&child),
					    api_json_from_bson_iter(&child));
	if (doc_find(doc, "query", &it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
	    bson_iter_recurse(&it, &child))
		while (bson_iter_next(&child))
			if (strcmp(bson_iter_key(&child), "headers") != 0)
				json_object_set_new(query, bson_iter_key(&child),
						    api_json_from_bson_iter(&child));
	if (doc_find(doc, "action", &it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
	    bson_iter_recurse(&it, &child))
		while (bson_iter_next(&child))
			if (strcmp(bson_iter_key(&child), "targets") != 0)
				json_object_set_new(action, bson_iter_key(&child),
						    api_json_from_bson_iter(&child));
	json_t *targets = target_values(doc);
	if (targets != NULL)
		json_object_set_new(action, "targets", targets);
	json_object_set_new(body, "query", query);
	json_object_set_new(body, "action", action);
	add_metadata(body, doc);
	bson_destroy(doc);
	api_reply_ok(req, body);
}

static void delete_filter(struct api_request *req)
{
	bson_oid_t user, id;
	api_oid(req, "user", &user);
	api_oid(req, "filter", &id);
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "filters", &c);
	bson_t *filter = BCON_NEW("_id", BCON_OID(&id), "user", BCON_OID(&user));
	bson_t reply;
	bson_error_t error;
	bool ok = mongoc_collection_delete_one(c.coll, filter, NULL, &reply, &error);
	bson_iter_t it;
	int64_t deleted = ok && bson_iter_init_find(&it, &reply, "deletedCount")
				  ? bson_iter_as_int64(&it) : 0;
	bson_destroy(&reply);
	bson_destroy(filter);
	api_coll_put(&c);
	if (!ok) {
		api_db_failed(req, "delete", &error);
		return;
	}
	if (deleted == 0) {
		api_reply_error(req, 404, "FilterNotFound", "Filter was not found");
		return;
	}
	api_reply_success(req);
}

/* ---- writing ---- */

static void append_number(bson_t *doc, const char *key, double v)
{
	if (v == floor(v) && v >= INT32_MIN && v <= INT32_MAX)
		bson_append_int32(doc, key, -1, (int32_t)v);
	else
		bson_append_double(doc, key, -1, v);
}

static void append_targets(bson_t *doc, const char *key, const struct filter_input *in)
{
	bson_t array, item;
	bson_append_array_begin(doc, key, -1, &array);
	for (size_t i = 0; i < in->target_count; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%zu", i);
		bson_oid_t id;
		bson_oid_init(&id, NULL);
		BSON_APPEND_DOCUMENT_BEGIN(&array, k, &item);
		BSON_APPEND_OID(&item, "id", &id);
		BSON_APPEND_UTF8(&item, "type", in->target_type[i]);
		BSON_APPEND_UTF8(&item, "value", in->targets[i]);
		bson_append_document_end(&array, &item);
	}
	bson_append_array_end(doc, &array);
}

static void log_event(struct api_request *req, const bson_oid_t *user, const char *action,
		      const char *target)
{
	struct wd_auth_meta meta;
	api_account_meta(req, &meta);
	struct wd_authlog_entry entry = { .action = action, .result = "success", .target = target };
	char *error = NULL;
	if (wd_auth_log_event(req->ctx->auth, user, &entry, &meta, NULL, &error) < 0) {
		wd_warning("api", "auth log: %s", error);
		free(error);
	}
}

static int64_t count_filters(struct api_request *req, const bson_oid_t *user)
{
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "filters", &c);
	bson_t *filter = BCON_NEW("user", BCON_OID(user));
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(c.coll, filter, NULL, NULL, NULL, &error);
	bson_destroy(filter);
	api_coll_put(&c);
	if (n < 0)
		api_db_failed(req, "count", &error);
	return n;
}

static void post_filter(struct api_request *req)
{
	bson_oid_t user;
	api_oid(req, "user", &user);
	struct filter_input in;
	if (!parse_input(req, &in)) {
		filter_input_free(&in);
		return;
	}
	char *metadata = NULL;
	int64_t allowed, used;
	if (parse_metadata(req, &metadata) < 0 || (allowed = filter_limit(req, &user)) < 0 ||
	    (used = count_filters(req, &user)) < 0)
		goto out;
	if (used >= allowed) {
		api_reply_error(req, 403, "TooMany", "Maximum filters limit reached");
		goto out;
	}
	if (in.mailbox_slot == SLOT_SET) {
		int found = mailbox_exists(req, &user, &in.mailbox);
		if (found < 0)
			goto out;
		if (found == 0) {
			api_reply_error(req, 404, "NoSuchMailbox", "This mailbox does not exist");
			goto out;
		}
	}
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	bson_t doc = BSON_INITIALIZER, query, headers, action;
	BSON_APPEND_OID(&doc, "_id", &id);
	BSON_APPEND_OID(&doc, "user", &user);
	BSON_APPEND_DOCUMENT_BEGIN(&doc, "query", &query);
	BSON_APPEND_DOCUMENT_BEGIN(&query, "headers", &headers);
	for (size_t h = 0; header_keys[h] != NULL; h++)
		if (in.headers[h].slot == SLOT_SET)
			BSON_APPEND_UTF8(&headers, header_keys[h], in.headers[h].text);
	bson_append_document_end(&query, &headers);
	if (in.text.slot == SLOT_SET)
		BSON_APPEND_UTF8(&query, "text", in.text.text);
	if (in.ha_slot == SLOT_SET)
		BSON_APPEND_BOOL(&query, "ha", in.ha);
	if (in.size_slot == SLOT_SET)
		append_number(&query, "size", in.size);
	bson_append_document_end(&doc, &query);
	BSON_APPEND_DOCUMENT_BEGIN(&doc, "action", &action);
	for (size_t f = 0; action_flags[f] != NULL; f++)
		if (in.flag_slot[f] == SLOT_SET)
			BSON_APPEND_BOOL(&action, action_flags[f], in.flag[f]);
	if (in.targets_slot == SLOT_SET)
		append_targets(&action, "targets", &in);
	if (in.mailbox_slot == SLOT_SET)
		BSON_APPEND_OID(&action, "mailbox", &in.mailbox);
	bson_append_document_end(&doc, &action);
	BSON_APPEND_BOOL(&doc, "disabled", api_bool(req, "disabled", false));
	BSON_APPEND_DATE_TIME(&doc, "created", api_now_ms());
	const char *name = api_str(req, "name", NULL);
	if (name != NULL && name[0] != '\0')
		BSON_APPEND_UTF8(&doc, "name", name);
	if (metadata != NULL)
		BSON_APPEND_UTF8(&doc, "metaData", metadata);
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "filters", &c);
	bson_error_t error;
	bool ok = mongoc_collection_insert_one(c.coll, &doc, NULL, NULL, &error);
	api_coll_put(&c);
	bson_destroy(&doc);
	if (!ok) {
		api_db_failed(req, "insert", &error);
		goto out;
	}
	for (size_t i = 0; i < in.target_count; i++)
		log_event(req, &user, "filter forward added", in.targets[i]);
	log_event(req, &user, "filter added", NULL);
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&id)));
out:
	free(metadata);
	filter_input_free(&in);
}

static bool target_known(const json_t *existing, const char *value)
{
	size_t i;
	json_t *item;
	json_array_foreach(existing, i, item)
		if (strcmp(json_string_value(item), value) == 0)
			return true;
	return false;
}

static void put_filter(struct api_request *req)
{
	bson_oid_t user, id;
	api_oid(req, "user", &user);
	api_oid(req, "filter", &id);
	struct filter_input in;
	if (!parse_input(req, &in)) {
		filter_input_free(&in);
		return;
	}
	char *metadata = NULL;
	bson_t *existing = NULL;
	json_t *known = NULL;
	bson_t set = BSON_INITIALIZER, unset = BSON_INITIALIZER;
	if (parse_metadata(req, &metadata) < 0)
		goto out;
	const char *name = api_str(req, "name", NULL);
	if (name != NULL && name[0] != '\0')
		BSON_APPEND_UTF8(&set, "name", name);
	if (api_has(req, "disabled"))
		BSON_APPEND_BOOL(&set, "disabled", api_bool(req, "disabled", false));
	if (metadata != NULL)
		BSON_APPEND_UTF8(&set, "metaData", metadata);
	char key[64];
	for (size_t h = 0; header_keys[h] != NULL; h++) {
		snprintf(key, sizeof(key), "query.headers.%s", header_keys[h]);
		if (in.headers[h].slot == SLOT_SET)
			BSON_APPEND_UTF8(&set, key, in.headers[h].text);
		else if (in.headers[h].slot == SLOT_EMPTY)
			BSON_APPEND_BOOL(&unset, key, true);
	}
	if (in.text.slot == SLOT_SET)
		BSON_APPEND_UTF8(&set, "query.text", in.text.text);
	else if (in.text.slot == SLOT_EMPTY)
		BSON_APPEND_BOOL(&unset, "query.text", true);
	if (in.ha_slot == SLOT_SET)
		BSON_APPEND_BOOL(&set, "query.ha", in.ha);
	else if (in.ha_slot == SLOT_EMPTY)
		BSON_APPEND_BOOL(&unset, "query.ha", true);
	if (in.size_slot == SLOT_SET)
		append_number(&set, "query.size", in.size);
	else if (in.size_slot == SLOT_EMPTY)
		BSON_APPEND_BOOL(&unset, "query.size", true);
	for (size_t f = 0; action_flags[f] != NULL; f++) {
		snprintf(key, sizeof(key), "action.%s", action_flags[f]);
		if (in.flag_slot[f] == SLOT_SET)
			BSON_APPEND_BOOL(&set, key, in.flag[f]);
		else if (in.flag_slot[f] == SLOT_EMPTY)
			BSON_APPEND_BOOL(&unset, key, true);
	}
	if (in.targets_slot == SLOT_SET)
		append_targets(&set, "action.targets", &in);
	else if (in.targets_slot == SLOT_EMPTY)
		BSON_APPEND_BOOL(&unset, "action.targets", true);
	if (in.mailbox_slot == SLOT_SET) {
		int found = mailbox_exists(req, &user, &in.mailbox);
		if (found < 0)
			goto out;
		if (found == 0) {
			api_reply_error(req, 404, "NoSuchMailbox", "This mailbox does not exist");
			goto out;
		}
		BSON_APPEND_OID(&set, "action.mailbox", &in.mailbox);
	} else if (in.mailbox_slot == SLOT_EMPTY) {
		BSON_APPEND_BOOL(&unset, "action.mailbox", true);
	}
	bool failed;
	existing = filter_load(req, &user, &id, &failed);
	if (failed)
		goto out;
	if (existing == NULL) {
		api_reply_error(req, 404, "FilterNotFound", "Filter was not found");
		goto out;
	}
	if (bson_empty(&set) && bson_empty(&unset)) {
		api_reply_success(req);
		goto out;
	}
	known = target_values(existing);
	bson_t update = BSON_INITIALIZER;
	if (!bson_empty(&set))
		BSON_APPEND_DOCUMENT(&update, "$set", &set);
	if (!bson_empty(&unset))
		BSON_APPEND_DOCUMENT(&update, "$unset", &unset);
	bson_t *filter = BCON_NEW("_id", BCON_OID(&id), "user", BCON_OID(&user));
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_MAIN, "filters", &c);
	bson_t reply;
	bson_error_t error;
	bool ok = mongoc_collection_update_one(c.coll, filter, &update, NULL, &reply, &error);
	bson_iter_t it;
	bool matched = ok && bson_iter_init_find(&it, &reply, "matchedCount") &&
		       bson_iter_as_int64(&it) > 0;
	bson_destroy(&reply);
	api_coll_put(&c);
	bson_destroy(filter);
	bson_destroy(&update);
	if (!ok) {
		api_db_failed(req, "update", &error);
		goto out;
	}
	if (!matched) {
		api_reply_error(req, 404, "FilterNotFound", "Filter was not found");
		goto out;
	}
	for (size_t i = 0; i < in.target_count; i++)
		if (known == NULL || !target_known(known, in.targets[i]))
			log_event(req, &user, "filter forward added", in.targets[i]);
	api_reply_success(req);
out:
	json_decref(known);
	if (existing != NULL)
		bson_destroy(existing);
	bson_destroy(&set);
	bson_destroy(&unset);
	free(metadata);
	filter_input_free(&in);
}

/* For the :user routes: the user must exist (404 UserNotFound) first. */
#define USER_ROUTE(fn)                                              \
	static void fn##_checked(struct api_request *req)           \
	{                                                           \
		bson_oid_t user;                                    \
		if (api_require_user(req, &user))                   \
			fn(req);                                    \
	}
USER_ROUTE(get_filters)
USER_ROUTE(get_filter)
USER_ROUTE(delete_filter)
USER_ROUTE(post_filter)
USER_ROUTE(put_filter)

/* ---- routes ---- */

static const struct api_field all_fields[] = {
	{ "forward", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 255, NULL,
	  "Partial match of a forward email address or URL" },
	{ "metaData", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "If true, then includes metaData in the response" },
	API_PAGE_FIELDS,
	API_FIELDS_END
};

static const struct api_field list_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "metaData", API_T_BOOL, API_F_QUERY, 0, 0, NULL,
	  "If true, then includes metaData in the response" },
	API_FIELDS_END
};

static const struct api_field one_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "filter", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "Filter ID" },
	API_FIELDS_END
};

#define FILTER_BODY_FIELDS                                                                     \
	{ "name", API_T_STRING, API_F_EMPTY_OK | API_F_TRIM, 0, 255, NULL, "Name of the Filter" }, \
	{ "disabled", API_T_BOOL, 0, 0, 0, NULL, "If true then this filter is ignored" },       \
	{ "metaData", API_T_ANY, API_F_NULLABLE, 0, 1024 * 1024, NULL,                          \
	  "Optional metadata, must be an object or JSON formatted string" }

static const struct api_field create_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "query", API_T_OBJECT, API_F_REQUIRED, 0, 8192, NULL,
	  "Rules that a message must match: from, to, subject, listId, text (partial, case "
	  "insensitive), ha (has attachments), size (>0 larger, <0 smaller than)" },
	{ "action", API_T_OBJECT, API_F_REQUIRED, 0, 65536, NULL,
	  "Action to take with a matching message: seen, flag, delete, spam (booleans), mailbox "
	  "(ID), targets (e-mail addresses or smtp(s)/http(s) URLs to forward to)" },
	FILTER_BODY_FIELDS,
	API_FIELDS_END
};

static const struct api_field update_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "filter", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "Filter ID" },
	{ "query", API_T_OBJECT, 0, 0, 8192, NULL,
	  "Rules to change (as for creation; an empty value removes the rule)" },
	{ "action", API_T_OBJECT, 0, 0, 65536, NULL,
	  "Actions to change (as for creation; an empty value removes the action)" },
	FILTER_BODY_FIELDS,
	API_FIELDS_END
};

const struct api_route api_routes_filters[] = {
	{ API_GET, "/filters", get_all_filters, "filters", API_READ, API_R_SELF, all_fields, "Filters",
	  "List all Filters", "getAllFilters" },
	{ API_GET, "/users/:user/filters", get_filters_checked, "filters", API_READ, 0, list_fields,
	  "Filters", "List Filters for a User", "getFilters" },
	{ API_GET, "/users/:user/filters/:filter", get_filter_checked, "filters", API_READ, 0,
	  one_fields, "Filters", "Request Filter information", "getFilter" },
	{ API_DELETE, "/users/:user/filters/:filter", delete_filter_checked, "filters",
	  API_DELETE_ACTION, 0, one_fields, "Filters", "Delete a Filter", "deleteFilter" },
	{ API_POST, "/users/:user/filters", post_filter_checked, "filters", API_CREATE, 0,
	  create_fields, "Filters", "Create a new Filter", "createFilter" },
	{ API_PUT, "/users/:user/filters/:filter", put_filter_checked, "filters", API_UPDATE, 0,
	  update_fields, "Filters", "Update Filter information", "updateFilter" },
	API_ROUTES_END
};
