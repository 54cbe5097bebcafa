/* Filters and domain access lists (reference §2.13, §4.15 steps 2-4), as
 * WildDuck's filter-handler.js applies them.
 *
 * Domain access first: when the user has tags (users.tagsview), the domain
 * of the first From address (else Sender) is looked up in `domainaccess`;
 * "block" sets spam, "allow" sets not-spam, and "block:<tag>:<id>" /
 * "allow:<tag>:<id>" joins the message's `filters` list. WildDuck queries
 * the case-kept `tag` field with the lower-cased tags, which misses tags
 * written with capitals; we also match `tagview`, so every entry WildDuck
 * finds is found, and those too.
 *
 * Then the user's filters that are not disabled, in _id order. A filter
 * matches when every condition it has holds:
 *   headers.<name>  (from, to, subject, listId → list-id; any camelCase name
 *                   becomes dashed) a case-insensitive substring of one of
 *                   the indexed headers of that name; Cc and Delivered-To
 *                   also count as To, Sender as From, unless the filter
 *                   names them itself; a List-ID value "<id>" is reduced to
 *                   id first. Values are compared as the store indexed them
 *                   (RFC 2047 decoded, lower-cased, white space collapsed).
 *   ha: true        the message has an attachment in its `attachments` list
 *                   (false is not enforced)
 *   size            > 0: size >= size; < 0: size <= -size (the size with the
 *                   trace headers)
 *   text            a substring of the plaintext, lower-cased with white
 *                   space runs collapsed (WildDuck searches its whole
 *                   extracted text; we search the stored text and
 *                   textFooter, at most 100 Ki characters)
 * Each matching filter adds its id to `filters`, its forward targets to the
 * set (de-duplicated by address), and sets each other action key it has
 * unless an earlier filter (or the access list) set it: the first value
 * wins, even a false one. */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-store-search.h"
#include "wd-store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILTERS 1000       /* WildDuck allows 400 per user */
#define MAX_HEADER_CONDITIONS 16

void wd__deliver_actions_init(struct deliver_actions *actions)
{
	memset(actions, 0, sizeof(*actions));
	bson_init(&actions->matched);
}

void wd__deliver_actions_clear(struct deliver_actions *actions)
{
	for (size_t i = 0; i < actions->target_count; i++) {
		free(actions->targets[i].type);
		free(actions->targets[i].value);
		free(actions->targets[i].key);
	}
	free(actions->targets);
	bson_destroy(&actions->matched);
	memset(actions, 0, sizeof(*actions));
}

void wd__deliver_actions_set(struct deliver_actions *actions, enum deliver_action_key key,
			     bool value)
{
	if (actions->set[key])
		return;
	actions->set[key] = true;
	actions->value[key] = value;
	actions->order[key] = actions->next_order++;
}

void wd__deliver_actions_force(struct deliver_actions *actions, enum deliver_action_key key,
			       bool value)
{
	if (!actions->set[key])
		actions->order[key] = actions->next_order++;
	actions->set[key] = true;
	actions->value[key] = value;
}

int wd__deliver_actions_add_target(struct deliver_actions *actions, const char *type,
				   const char *value, const char *key)
{
	for (size_t i = 0; i < actions->target_count; i++)
		if (strcmp(actions->targets[i].key, key) == 0)
			return WD_OK;
	struct deliver_target *targets =
		realloc(actions->targets, (actions->target_count + 1) * sizeof(*targets));
	if (targets == NULL)
		return WD_ERROR;
	actions->targets = targets;
	struct deliver_target *t = &targets[actions->target_count];
	t->type = strdup(type);
	t->value = strdup(value);
	t->key = strdup(key);
	if (t->type == NULL || t->value == NULL || t->key == NULL) {
		free(t->type);
		free(t->value);
		free(t->key);
		return WD_ERROR;
	}
	actions->target_count++;
	return WD_OK;
}

static void add_matched_oid(struct deliver_actions *actions, const bson_oid_t *id)
{
	char key[16];
	const char *key_str;
	bson_uint32_to_string(actions->matched_count++, &key_str, key, sizeof(key));
	BSON_APPEND_OID(&actions->matched, key_str, id);
}

static void add_matched_str(struct deliver_actions *actions, const char *value)
{
	char key[16];
	const char *key_str;
	bson_uint32_to_string(actions->matched_count++, &key_str, key, sizeof(key));
	BSON_APPEND_UTF8(&actions->matched, key_str, value);
}

/* ---- domain access lists ---- */

static void domain_access(const struct deliver_txn *txn, const bson_t *user,
			  struct deliver_actions *actions)
{
	bson_t tags;
	if (txn->from_domain == NULL || !wd__deliver_doc_sub(user, "tagsview", true, &tags) ||
	    bson_count_keys(&tags) == 0)
		return;
	bson_t query = BSON_INITIALIZER, or, a, b, in_a, in_b;
	BSON_APPEND_ARRAY_BEGIN(&query, "$or", &or);
	BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &a);
	BSON_APPEND_DOCUMENT_BEGIN(&a, "tag", &in_a);
	BSON_APPEND_ARRAY(&in_a, "$in", &tags);
	bson_append_document_end(&a, &in_a);
	bson_append_document_end(&or, &a);
	BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &b);
	BSON_APPEND_DOCUMENT_BEGIN(&b, "tagview", &in_b);
	BSON_APPEND_ARRAY(&in_b, "$in", &tags);
	bson_append_document_end(&b, &in_b);
	bson_append_document_end(&or, &b);
	bson_append_array_end(&query, &or);
	BSON_APPEND_UTF8(&query, "domain", txn->from_domain);

	bson_t *doc = NULL;
	if (wd__deliver_find_one(txn->deliver->store, WD_STORE_DB_MAIN, "domainaccess", &query,
				 &doc) == 0) {
		const char *action = wd__deliver_doc_str(doc, "action");
		const char *tag = wd__deliver_doc_str(doc, "tag");
		const bson_oid_t *id = wd__deliver_doc_oid(doc, "_id");
		char hex[25] = "", entry[300];
		if (id != NULL)
			bson_oid_to_string(id, hex);
		if (action != NULL && (strcmp(action, "block") == 0 || strcmp(action, "allow") == 0)) {
			wd__deliver_actions_set(actions, ACTION_SPAM, strcmp(action, "block") == 0);
			snprintf(entry, sizeof(entry), "%s:%s:%s", action, tag != NULL ? tag : "", hex);
			add_matched_str(actions, entry);
		}
		bson_destroy(doc);
	}
	bson_destroy(&query);
}

/* ---- one filter ---- */

struct header_condition {
	char name[64];     /* dashed lower-case header name */
	char *value;       /* lower-cased value to find */
	bool matched;
};

/* "listId" → "list-id": every run of capitals becomes '-' + lower case. */
static bool header_name(const char *key, char *out, size_t size)
{
	size_t n = 0;
	bool in_caps = false;
	for (const char *p = key; *p != '\0'; p++) {
		bool cap = *p >= 'A' && *p <= 'Z';
		if (cap && !in_caps) {
			if (n + 1 >= size)
				return false;
			out[n++] = '-';
		}
		in_caps = cap;
		if (n + 1 >= size)
			return false;
		out[n++] = cap ? (char)(*p - 'A' + 'a') : *p;
	}
	out[n] = '\0';
	return n > 0;
}

/* The condition's value as JavaScript's (v || '').toString().toLowerCase(). */
static char *condition_value(bson_iter_t *iter)
{
	char buf[32];
	const char *text = NULL;
	if (BSON_ITER_HOLDS_UTF8(iter)) {
		text = bson_iter_utf8(iter, NULL);
	} else if (BSON_ITER_HOLDS_INT32(iter) || BSON_ITER_HOLDS_INT64(iter)) {
		int64_t v = bson_iter_as_int64(iter);
		if (v == 0)
			return NULL;
		snprintf(buf, sizeof(buf), "%lld", (long long)v);
		text = buf;
	} else if (BSON_ITER_HOLDS_BOOL(iter) && bson_iter_bool(iter)) {
		text = "true";
	}
	if (text == NULL || text[0] == '\0')
		return NULL;
	return wd_search_fold(text);
}

/* "<id>" → "id" for List-ID conditions. */
static void list_id_value(char *value)
{
	char *lt = strchr(value, '<');
	if (lt == NULL)
		return;
	char *end = strchr(lt + 1, '>');
	size_t len = end != NULL ? (size_t)(end - lt - 1) : strlen(lt + 1);
	char *start = lt + 1;
	while (len > 0 && (*start == ' ' || *start == '\t')) {
		start++;
		len--;
	}
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
		len--;
	if (len == 0)
		return;
	memmove(value, start, len);
	value[len] = '\0';
}

static size_t read_conditions(const bson_t *query, struct header_condition *conds)
{
	bson_iter_t iter, headers;
	size_t count = 0;
	if (!bson_iter_init_find(&iter, query, "headers") || !BSON_ITER_HOLDS_DOCUMENT(&iter) ||
	    !bson_iter_recurse(&iter, &headers))
		return 0;
	while (bson_iter_next(&headers)) {
		char name[64];
		if (!header_name(bson_iter_key(&headers), name, sizeof(name)))
			continue;
		char *value = condition_value(&headers);
		if (value == NULL)
			continue;
		if (strcmp(name, "list-id") == 0)
			list_id_value(value);
		size_t slot = count;
		for (size_t i = 0; i < count; i++)
			if (strcmp(conds[i].name, name) == 0)
				slot = i; /* a later key of the same name replaces it (Map.set) */
		if (slot == count && count == MAX_HEADER_CONDITIONS) {
			free(value);
			continue;
		}
		if (slot == count)
			count++;
		else
			free(conds[slot].value);
		snprintf(conds[slot].name, sizeof(conds[slot].name), "%s", name);
		conds[slot].value = value;
		conds[slot].matched = false;
	}
	return count;
}

static struct header_condition *find_condition(struct header_condition *conds, size_t count,
					       const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(conds[i].name, name) == 0)
			return &conds[i];
	return NULL;
}

/* `value` is lower-case already: the store folds the indexed headers with
   wd_search_fold(), and the recipient is normalised. */
static void match_header(struct header_condition *conds, size_t count, const char *key,
			 const char *value)
{
	/* Cc and Delivered-To count as To, Sender as From, unless named */
	if ((strcmp(key, "cc") == 0 || strcmp(key, "delivered-to") == 0) &&
	    find_condition(conds, count, key) == NULL)
		key = "to";
	else if (strcmp(key, "sender") == 0 && find_condition(conds, count, key) == NULL)
		key = "from";
	struct header_condition *cond = find_condition(conds, count, key);
	if (cond == NULL || cond->matched)
		return;
	if (strstr(value, cond->value) != NULL)
		cond->matched = true;
}

static bool headers_match(const struct deliver_txn *txn, const bson_t *query,
			  const char *recipient)
{
	struct header_condition conds[MAX_HEADER_CONDITIONS];
	size_t count = read_conditions(query, conds);
	if (count == 0)
		return true;
	bson_iter_t iter, list;
	if (bson_iter_init_find(&iter, txn->summary.headers, "headers") &&
	    BSON_ITER_HOLDS_ARRAY(&iter) && bson_iter_recurse(&iter, &list)) {
		while (bson_iter_next(&list)) {
			bson_iter_t entry;
			if (!BSON_ITER_HOLDS_DOCUMENT(&list) || !bson_iter_recurse(&list, &entry))
				continue;
			const char *key = NULL, *value = NULL;
			while (bson_iter_next(&entry)) {
				if (strcmp(bson_iter_key(&entry), "key") == 0 &&
				    BSON_ITER_HOLDS_UTF8(&entry))
					key = bson_iter_utf8(&entry, NULL);
				else if (strcmp(bson_iter_key(&entry), "value") == 0 &&
					 BSON_ITER_HOLDS_UTF8(&entry))
					value = bson_iter_utf8(&entry, NULL);
			}
			if (key != NULL && value != NULL)
				match_header(conds, count, key, value);
		}
	}
	/* the Delivered-To delivery adds, as WildDuck pushes it */
	match_header(conds, count, "delivered-to", recipient);
	bool all = true;
	for (size_t i = 0; i < count; i++) {
		all = all && conds[i].matched;
		free(conds[i].value);
	}
	return all;
}

bool wd__deliver_filter_matches(const struct deliver_txn *txn, const bson_t *query,
				const char *recipient, uint64_t size)
{
	if (!headers_match(txn, query, recipient))
		return false;
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, query, "ha") && BSON_ITER_HOLDS_BOOL(&iter) &&
	    bson_iter_bool(&iter) && txn->summary.attachment_count == 0)
		return false;
	if (bson_iter_init_find(&iter, query, "size") && BSON_ITER_HOLDS_NUMBER(&iter)) {
		double want = bson_iter_as_double(&iter);
		if (want < 0 && (double)size > -want)
			return false;
		if (want > 0 && (double)size < want)
			return false;
	}
	if (bson_iter_init_find(&iter, query, "text") && BSON_ITER_HOLDS_UTF8(&iter)) {
		const char *text = bson_iter_utf8(&iter, NULL);
		if (text[0] != '\0') {
			char *needle = wd_search_fold(text);
			bool found = needle != NULL && strstr(txn->text_folded, needle) != NULL;
			free(needle);
			if (!found)
				return false;
		}
	}
	return true;
}

/* ---- applying a matching filter ---- */

static const struct {
	const char *name;
	enum deliver_action_key key;
} action_keys[] = {
	{ "spam", ACTION_SPAM }, { "seen", ACTION_SEEN }, { "flag", ACTION_FLAG },
	{ "delete", ACTION_DELETE }, { "mailbox", ACTION_MAILBOX },
};

void wd__deliver_actions_add_targets(struct deliver_actions *actions, const bson_t *list,
				     const char *relay_recipient)
{
	bson_iter_t iter;
	if (!bson_iter_init(&iter, list))
		return;
	while (bson_iter_next(&iter)) {
		uint32_t len;
		const uint8_t *data;
		bson_t entry;
		if (!BSON_ITER_HOLDS_DOCUMENT(&iter))
			continue;
		bson_iter_document(&iter, &len, &data);
		if (!bson_init_static(&entry, data, len))
			continue;
		const char *type = wd__deliver_doc_str(&entry, "type");
		const char *value = wd__deliver_doc_str(&entry, "value");
		if (value == NULL || value[0] == '\0')
			continue;
		if (type == NULL)
			type = "mail";
		char key[1024];
		if (relay_recipient != NULL && strcmp(type, "relay") == 0)
			snprintf(key, sizeof(key), "%s:%s", relay_recipient, value);
		else
			snprintf(key, sizeof(key), "%s", value);
		wd__deliver_actions_add_target(actions, type, value, key);
	}
}

static void apply_filter(const bson_t *filter, struct deliver_actions *actions)
{
	bson_iter_t iter, action;
	if (bson_iter_init_find(&iter, filter, "_id") && BSON_ITER_HOLDS_OID(&iter))
		add_matched_oid(actions, bson_iter_oid(&iter));
	if (!bson_iter_init_find(&iter, filter, "action") || !BSON_ITER_HOLDS_DOCUMENT(&iter) ||
	    !bson_iter_recurse(&iter, &action))
		return;
	while (bson_iter_next(&action)) {
		const char *name = bson_iter_key(&action);
		if (strcmp(name, "targets") == 0) {
			uint32_t len;
			const uint8_t *data;
			bson_t list;
			if (BSON_ITER_HOLDS_ARRAY(&action)) {
				bson_iter_array(&action, &len, &data);
				if (bson_init_static(&list, data, len))
					wd__deliver_actions_add_targets(actions, &list, NULL);
			}
			continue;
		}
		for (size_t i = 0; i < WD_N_ELEMENTS(action_keys); i++) {
			enum deliver_action_key key = action_keys[i].key;
			if (strcmp(name, action_keys[i].name) != 0 || actions->set[key])
				continue;
			bool value = bson_iter_as_bool(&action);
			if (key == ACTION_MAILBOX) {
				if (BSON_ITER_HOLDS_OID(&action)) {
					actions->has_mailbox_id = true;
					bson_oid_copy(bson_iter_oid(&action), &actions->mailbox_id);
				} else if (BSON_ITER_HOLDS_UTF8(&action) &&
					   bson_oid_is_valid(bson_iter_utf8(&action, NULL),
							     strlen(bson_iter_utf8(&action, NULL)))) {
					actions->has_mailbox_id = true;
					bson_oid_init_from_string(&actions->mailbox_id,
								  bson_iter_utf8(&action, NULL));
				} else {
					value = false;
				}
			}
			wd__deliver_actions_set(actions, key, value);
		}
	}
}

void wd__deliver_filters_run(const struct deliver_txn *txn, const bson_t *user,
			     const char *recipient, uint64_t size, struct deliver_actions *actions)
{
	domain_access(txn, user, actions);
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, user, "_id") || !BSON_ITER_HOLDS_OID(&iter))
		return;
	struct wd_store *store = txn->deliver->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "filters");
	bson_t *query = BCON_NEW("user", BCON_OID(bson_iter_oid(&iter)), "disabled", "{", "$ne",
				 BCON_BOOL(true), "}");
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit",
				BCON_INT64(MAX_FILTERS));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *filter;
	bson_error_t error;
	while (mongoc_cursor_next(cursor, &filter)) {
		bson_iter_t q;
		if (!bson_iter_init_find(&q, filter, "query") || !BSON_ITER_HOLDS_DOCUMENT(&q))
			continue;
		uint32_t len;
		const uint8_t *data;
		bson_iter_document(&q, &len, &data);
		bson_t filter_query;
		if (bson_init_static(&filter_query, data, len) &&
		    wd__deliver_filter_matches(txn, &filter_query, recipient, size))
			apply_filter(filter, actions);
	}
	if (mongoc_cursor_error(cursor, &error))
		wd_warning(DELIVER_LOG, "filters not read (delivering without them): %s",
			   error.message);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
}
