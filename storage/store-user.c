/* Users (reference §2.1, §2.4): creation in WildDuck's order, reading,
 * paging, deletion into `deletedusers`.
 *
 * Creation mirrors UserHandler.create(): the users document goes in
 * inactive (activated false, disabled true, no password, no address), then
 * the five default mailboxes, then the addresses, and only then one
 * conditional update activates it with its address and password. A reader
 * never sees a usable half-created account, and every step after the first
 * insert undoes the earlier ones when it fails: the documents are deleted by
 * the _ids we gave them, so nothing that belonged to someone else is touched.
 * The unique indexes (users.unameview, addresses.addrview,
 * mailboxes.user+path) settle races; the lookups before the first insert only
 * give the common refusals a clear message without writing anything. */
#include "store-op.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USER_LIST_DEFAULT 20
#define USER_LIST_MAX 2500 /* CURSOR_MAX_PAGE_SIZE */

/* ---- reading ---- */

static void user_from_bson(const bson_t *doc, struct wd_user *user)
{
	memset(user, 0, sizeof(*user));
	wd__doc_oid(doc, "_id", &user->id);
	user->username = wd__doc_strdup(doc, "username");
	user->unameview = wd__doc_strdup(doc, "unameview");
	user->name = wd__doc_strdup(doc, "name");
	user->address = wd__doc_strdup(doc, "address");
	if (user->address == NULL)
		user->address = strdup("");
	user->language = wd__doc_strdup(doc, "language");
	user->quota = wd__doc_int64(doc, "quota");
	user->storage_used = wd__doc_int64(doc, "storageUsed");
	user->retention = wd__doc_int64(doc, "retention");
	user->spam_level = (int)wd__doc_int64(doc, "spamLevel");
	user->auth_version = (int)wd__doc_int64(doc, "authVersion");
	user->activated = wd__doc_bool(doc, "activated");
	user->disabled = wd__doc_bool(doc, "disabled");
	user->suspended = wd__doc_bool(doc, "suspended");
	user->created_ms = wd__doc_date(doc, "created");
	user->doc = bson_copy(doc);
}

static void user_clear(struct wd_user *user)
{
	free(user->username);
	free(user->unameview);
	free(user->name);
	free(user->address);
	free(user->language);
	if (user->doc != NULL)
		bson_destroy(user->doc);
	memset(user, 0, sizeof(*user));
}

void wd_user_free(struct wd_user **_user)
{
	struct wd_user *user = *_user;
	if (user == NULL)
		return;
	*_user = NULL;
	user_clear(user);
	free(user);
}

void wd_user_list_free(struct wd_user_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		user_clear(&list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

static int user_find(struct wd_store *store, const bson_t *query, struct wd_user **user_r,
		     char **error_r)
{
	struct wd__coll c;
	bson_t doc;
	*user_r = NULL;
	int ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"), query, NULL,
			       &doc, error_r);
	wd__coll_close(&c);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return wd__fail(error_r, ret, "user does not exist");
	if (ret < 0)
		return ret;
	*user_r = calloc(1, sizeof(**user_r));
	if (*user_r != NULL)
		user_from_bson(&doc, *user_r);
	bson_destroy(&doc);
	if (*user_r == NULL)
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	return WD_STORE_OK;
}

int wd_store_user_get(struct wd_store *store, const bson_oid_t *user_id, struct wd_user **user_r,
		      char **error_r)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(user_id));
	int ret = user_find(store, query, user_r, error_r);
	bson_destroy(query);
	return ret;
}

int wd_store_user_get_by_username(struct wd_store *store, const char *username,
				  struct wd_user **user_r, char **error_r)
{
	*user_r = NULL;
	char *view = wd_uview(username);
	if (view == NULL)
		return wd__fail(error_r, WD_STORE_ERR_NOT_FOUND, "user does not exist");
	bson_t *query = BCON_NEW("unameview", BCON_UTF8(view));
	int ret = user_find(store, query, user_r, error_r);
	bson_destroy(query);
	free(view);
	return ret;
}

int wd_store_user_list(struct wd_store *store, const bson_oid_t *after, unsigned limit,
		       struct wd_user_list *list_r, char **error_r)
{
	memset(list_r, 0, sizeof(*list_r));
	if (limit == 0)
		limit = USER_LIST_DEFAULT;
	if (limit > USER_LIST_MAX)
		limit = USER_LIST_MAX;
	bson_t *query = after != NULL ? BCON_NEW("_id", "{", "$gt", BCON_OID(after), "}") :
					bson_new();
	bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit",
				BCON_INT64((int64_t)limit));
	list_r->items = calloc(limit, sizeof(*list_r->items));
	if (list_r->items == NULL) {
		bson_destroy(opts);
		bson_destroy(query);
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	}
	struct wd__coll c;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"), query, opts, NULL);
	const bson_t *doc;
	while (list_r->count < limit && mongoc_cursor_next(cursor, &doc))
		user_from_bson(doc, &list_r->items[list_r->count++]);
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot list users");
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_destroy(opts);
	bson_destroy(query);
	if (ret < 0 || list_r->count == 0)
		wd_user_list_free(list_r); /* an empty page owns no memory */
	return ret;
}

/* ---- create ---- */

/* An address made of the username when it is one (domain part of plain
   labels), else "<local>@<email domain or host name>", as WildDuck derives
   it (isemail.validate(username) or username.split('@')[0] + '@' + ...). */
static char *derived_address(const char *username, const char *email_domain)
{
	const char *at = strchr(username, '@');
	if (at != NULL) {
		bool plain = at[1] != '\0';
		for (const char *p = at + 1; *p != '\0' && plain; p++)
			plain = *p == '.' || *p == '-' || (*p >= 'a' && *p <= 'z') ||
				(*p >= '0' && *p <= '9');
		if (plain && at[1] != '.' && username[strlen(username) - 1] != '.' &&
		    strstr(at, "..") == NULL)
			return strdup(username);
	}
	char host[256];
	if (email_domain == NULL || email_domain[0] == '\0') {
		if (gethostname(host, sizeof(host)) < 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		email_domain = host;
	}
	char *address;
	size_t local_len = at != NULL ? (size_t)(at - username) : strlen(username);
	if (asprintf(&address, "%.*s@%s", (int)local_len, username, email_domain) < 0)
		return NULL;
	for (char *p = strchr(address, '@'); *p != '\0'; p++)
		*p = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
	return address;
}

/* Addresses of the new user: [0] the main one (when any), then the extras. */
struct new_addresses {
	size_t count;
	char **address;
	char **addrview;
	bson_oid_t *ids;
	size_t inserted;
};

static void new_addresses_free(struct new_addresses *a)
{
	for (size_t i = 0; i < a->count; i++) {
		free(a->address[i]);
		free(a->addrview[i]);
	}
	free(a->address);
	free(a->addrview);
	free(a->ids);
}

static int prepare_addresses(const struct wd_user_create *req, const char *username,
			     struct new_addresses *a, char **error_r)
{
	size_t max = req->extra_address_count + 1;
	memset(a, 0, sizeof(*a));
	a->address = calloc(max, sizeof(char *));
	a->addrview = calloc(max, sizeof(char *));
	a->ids = calloc(max, sizeof(bson_oid_t));
	if (a->address == NULL || a->addrview == NULL || a->ids == NULL)
		return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	if (!req->empty_address) {
		char *source = req->address != NULL ? strdup(req->address) :
						      derived_address(username, req->email_domain);
		const char *error;
		char *main;
		if (source == NULL)
			return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
		int ret = wd_address_normalize(source, WD_ADDRESS_REMOVE_LABEL, &main, &error);
		free(source);
		if (ret < 0)
			return wd__fail(error_r, ret, "main address: %s", error);
		a->address[a->count++] = main; /* owned by `a` from here on */
		if (strchr(main, '*') != NULL)
			return wd__fail(error_r, WD_STORE_ERR_INVALID,
					"main address can not contain *");
		a->addrview[0] = wd_uview(main);
		if (a->addrview[0] == NULL)
			return wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
	}
	for (size_t i = 0; i < req->extra_address_count; i++) {
		int ret = wd__address_prepare(req->extra_addresses[i], false, false,
					      &a->address[a->count], &a->addrview[a->count],
					      error_r);
		if (ret < 0)
			return ret;
		a->count++;
	}
	for (size_t i = 0; i < a->count; i++)
		bson_oid_init(&a->ids[i], NULL);
	return WD_STORE_OK;
}

static void append_string_array(bson_t *doc, const char *key, const char *const *values,
				size_t count)
{
	bson_t array;
	char buf[16];
	const char *index;
	bson_append_array_begin(doc, key, -1, &array);
	for (size_t i = 0; i < count; i++) {
		bson_uint32_to_string((uint32_t)i, &index, buf, sizeof(buf));
		bson_append_utf8(&array, index, -1, values[i], -1);
	}
	bson_append_array_end(doc, &array);
}

/* The users document as UserHandler.create() first inserts it, field by
   field in its order and with its types. */
static bson_t *user_doc(const struct wd_user_create *req, const bson_oid_t *id,
			const char *username, const char *unameview, int64_t now)
{
	bson_t *doc = bson_new(), sub, sub2;
	BSON_APPEND_OID(doc, "_id", id);
	BSON_APPEND_UTF8(doc, "username", username);
	BSON_APPEND_UTF8(doc, "unameview", unameview);
	wd__append_utf8_or_null(doc, "name", req->name);
	BSON_APPEND_UTF8(doc, "password", "");
	append_string_array(doc, "enabled2fa", NULL, 0);
	BSON_APPEND_UTF8(doc, "seed", "");
	BSON_APPEND_UTF8(doc, "pendingSeed", "");
	BSON_APPEND_BOOL(doc, "pendingSeedChanged", false);
	bson_append_document_begin(doc, "webauthn", -1, &sub);
	bson_append_array_begin(&sub, "credentials", -1, &sub2);
	bson_append_array_end(&sub, &sub2);
	bson_append_document_end(doc, &sub);
	BSON_APPEND_INT32(doc, "authVersion", 1);
	BSON_APPEND_UTF8(doc, "address", "");
	wd__append_utf8_or_null(doc, "language", req->language);
	BSON_APPEND_INT32(doc, "storageUsed", 0);
	wd__append_js_number(doc, "quota", req->quota);
	wd__append_js_number(doc, "recipients", req->recipients);
	wd__append_js_number(doc, "forwards", req->forwards);
	wd__append_js_number(doc, "filters", req->filters);
	wd__append_js_number(doc, "imapMaxUpload", req->imap_max_upload);
	wd__append_js_number(doc, "imapMaxDownload", req->imap_max_download);
	wd__append_js_number(doc, "pop3MaxDownload", req->pop3_max_download);
	wd__append_js_number(doc, "pop3MaxMessages", req->pop3_max_messages);
	wd__append_js_number(doc, "imapMaxConnections", req->imap_max_connections);
	wd__append_js_number(doc, "receivedMax", req->received_max);
	append_string_array(doc, "targets", NULL, 0);
	BSON_APPEND_BOOL(doc, "autoreply", false);
	BSON_APPEND_BOOL(doc, "uploadSentMessages", req->upload_sent_messages);
	BSON_APPEND_UTF8(doc, "pubKey", "");
	BSON_APPEND_BOOL(doc, "encryptMessages", req->encrypt_messages);
	BSON_APPEND_BOOL(doc, "encryptForwarded", req->encrypt_forwarded);
	int spam_level = req->spam_level < 0 ? 0 : req->spam_level > 100 ? 100 : req->spam_level;
	BSON_APPEND_INT32(doc, "spamLevel", spam_level);
	wd__append_js_number(doc, "retention", req->retention);
	/* sorted, as WildDuck sorts them with localeCompare */
	const char *scopes[3];
	size_t scope_count = 0;
	if ((req->disabled_scopes & WD_SCOPE_IMAP) != 0)
		scopes[scope_count++] = "imap";
	if ((req->disabled_scopes & WD_SCOPE_POP3) != 0)
		scopes[scope_count++] = "pop3";
	if ((req->disabled_scopes & WD_SCOPE_SMTP) != 0)
		scopes[scope_count++] = "smtp";
	append_string_array(doc, "disabledScopes", scopes, scope_count);
	bson_append_document_begin(doc, "lastLogin", -1, &sub);
	BSON_APPEND_BOOL(&sub, "time", false);
	BSON_APPEND_BOOL(&sub, "authEvent", false);
	BSON_APPEND_BOOL(&sub, "ip", false);
	bson_append_document_end(doc, &sub);
	BSON_APPEND_UTF8(doc, "metaData", req->metadata != NULL ? req->metadata : "");
	BSON_APPEND_UTF8(doc, "internalData", req->internal_data != NULL ? req->internal_data : "");
	BSON_APPEND_BOOL(doc, "activated", false);
	BSON_APPEND_BOOL(doc, "disabled", true);
	BSON_APPEND_BOOL(doc, "suspended", false);
	bson_append_document_begin(doc, "featureFlags", -1, &sub);
	bson_append_document_end(doc, &sub);
	BSON_APPEND_DATE_TIME(doc, "created", now);
	return doc;
}

/* Does a document match `query` in `collection`? WD_STORE_OK when yes. */
static int exists(struct wd_store *store, enum wd_store_db db, const char *collection,
		  const bson_t *query, char **error_r)
{
	struct wd__coll c;
	bson_t doc;
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
	int ret = wd__find_one(wd__coll_open(&c, store, db, collection), query, opts, &doc,
			       error_r);
	wd__coll_close(&c);
	bson_destroy(opts);
	if (ret == WD_STORE_OK)
		bson_destroy(&doc);
	return ret;
}

/* Delete documents by _id (rollback); failures are logged, nothing else can
   be done about them. */
static void delete_ids(struct wd_store *store, enum wd_store_db db, const char *collection,
		       const bson_oid_t *ids, size_t count)
{
	if (count == 0)
		return;
	bson_t filter = BSON_INITIALIZER, id, in;
	bson_append_document_begin(&filter, "_id", -1, &id);
	bson_append_array_begin(&id, "$in", -1, &in);
	for (size_t i = 0; i < count; i++) {
		char buf[16];
		const char *key;
		bson_uint32_to_string((uint32_t)i, &key, buf, sizeof(buf));
		bson_append_oid(&in, key, -1, &ids[i]);
	}
	bson_append_array_end(&id, &in);
	bson_append_document_end(&filter, &id);
	struct wd__coll c;
	bson_error_t error;
	if (!mongoc_collection_delete_many(wd__coll_open(&c, store, db, collection), &filter, NULL,
					   NULL, &error))
		wd_error("store", "user creation rollback: cannot delete from %s: %s", collection,
			 error.message);
	wd__coll_close(&c);
	bson_destroy(&filter);
}

static int insert_mailboxes(struct wd_store *store, bson_t *docs[WD__DEFAULT_MAILBOXES],
			    char **error_r)
{
	struct wd__coll c;
	bson_error_t error;
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	int ret = WD_STORE_OK;
	if (!mongoc_collection_insert_many(wd__coll_open(&c, store, WD_STORE_DB_MAIN, "mailboxes"),
					   (const bson_t **)docs, WD__DEFAULT_MAILBOXES, opts, NULL,
					   &error))
		ret = wd__fail_db(error_r, &error, "cannot create the default mailboxes");
	wd__coll_close(&c);
	bson_destroy(opts);
	return ret;
}

static int insert_address(struct wd_store *store, const bson_oid_t *id, const bson_oid_t *user,
			  const char *address, const char *addrview, int64_t now, char **error_r)
{
	/* the fields UserHandler.create() writes (no name) */
	bson_t *doc = BCON_NEW("_id", BCON_OID(id), "user", BCON_OID(user), "address",
			       BCON_UTF8(address), "addrview", BCON_UTF8(addrview), "created",
			       BCON_DATE_TIME(now));
	struct wd__coll c;
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (!mongoc_collection_insert_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"),
					  doc, NULL, NULL, &error)) {
		ret = wd__fail_db(error_r, &error, "cannot add address");
		if (ret == WD_STORE_ERR_EXISTS) {
			free(*error_r);
			ret = wd__fail(error_r, ret, "address already exists: %s", address);
		}
	}
	wd__coll_close(&c);
	bson_destroy(doc);
	return ret;
}

/* The final step: {_id, activated: false} -> address, activated, enabled,
   password (or tempPassword). */
static int activate(struct wd_store *store, const bson_oid_t *id, const struct wd_user_create *req,
		    const char *address, int64_t now, char **error_r)
{
	const char *hash = req->password_hash != NULL ? req->password_hash : "";
	bson_t *query = BCON_NEW("_id", BCON_OID(id), "activated", BCON_BOOL(false));
	bson_t update = BSON_INITIALIZER, set, temp;
	bson_append_document_begin(&update, "$set", -1, &set);
	BSON_APPEND_UTF8(&set, "address", address);
	BSON_APPEND_BOOL(&set, "activated", true);
	BSON_APPEND_BOOL(&set, "disabled", false);
	if (req->require_password_change) {
		bson_append_document_begin(&set, "tempPassword", -1, &temp);
		BSON_APPEND_DATE_TIME(&temp, "validAfter", now);
		BSON_APPEND_UTF8(&temp, "password", hash);
		BSON_APPEND_DATE_TIME(&temp, "created", now);
		bson_append_document_end(&set, &temp);
	} else {
		BSON_APPEND_UTF8(&set, "password", hash);
	}
	bson_append_document_end(&update, &set);
	struct wd__coll c;
	bson_t reply;
	bson_error_t error;
	int ret = WD_STORE_OK;
	if (!mongoc_collection_update_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"),
					  query, &update, NULL, &reply, &error))
		ret = wd__fail_db(error_r, &error, "cannot activate user");
	else if (wd__doc_int64(&reply, "matchedCount") != 1)
		ret = wd__fail(error_r, WD_STORE_ERR_DATABASE,
			       "cannot activate user: it changed during creation");
	wd__coll_close(&c);
	bson_destroy(&reply);
	bson_destroy(&update);
	bson_destroy(query);
	return ret;
}

int wd_store_user_create(struct wd_store *store, const struct wd_user_create *req,
			 bson_oid_t *user_id_r, char **error_r)
{
	const char *error;
	if (req->username == NULL)
		return wd__fail(error_r, WD_STORE_ERR_INVALID, "username is required");
	int ret = wd_username_validate(req->username, &error);
	if (ret < 0)
		return wd__fail(error_r, ret, "%s", error);
	if (req->quota < 0 || req->retention < 0)
		return wd__fail(error_r, WD_STORE_ERR_INVALID, "negative quota or retention");
	/* the API lower-cases usernames (Joi .lowercase()); they are ASCII */
	char *username = strdup(req->username);
	char *unameview = NULL;
	bson_t *docs[WD__DEFAULT_MAILBOXES] = { NULL };
	bson_oid_t mailbox_ids[WD__DEFAULT_MAILBOXES];
	struct new_addresses addrs;
	bson_t *udoc = NULL, *query;
	bool user_inserted = false, mailboxes_inserted = false;
	bson_oid_t id;
	struct wd__coll c;
	bson_error_t berror;
	int64_t now = wd__now_ms();
	memset(&addrs, 0, sizeof(addrs));
	if (req->user_id != NULL)
		bson_oid_copy(req->user_id, &id);
	else
		bson_oid_init(&id, NULL);
	if (username == NULL) {
		ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
		goto out;
	}
	for (char *p = username; *p != '\0'; p++)
		*p = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
	unameview = wd_uview(username);
	if (unameview == NULL) {
		ret = wd__fail(error_r, WD_STORE_ERR_DATABASE, "out of memory");
		goto out;
	}
	ret = prepare_addresses(req, username, &addrs, error_r);
	if (ret < 0)
		goto out;
	const char *names[4] = { req->sent_name, req->trash_name, req->drafts_name,
				 req->junk_name };
	ret = wd__mailbox_default_docs(&id, names, req->retention, docs, mailbox_ids, error_r);
	if (ret < 0)
		goto out;

	/* refusals that need no write */
	query = BCON_NEW("unameview", BCON_UTF8(unameview));
	ret = exists(store, WD_STORE_DB_USERS, "users", query, error_r);
	bson_destroy(query);
	if (ret == WD_STORE_OK)
		ret = wd__fail(error_r, WD_STORE_ERR_EXISTS, "username already exists");
	for (size_t i = 0; ret == WD_STORE_ERR_NOT_FOUND && i < addrs.count; i++) {
		query = BCON_NEW("addrview", BCON_UTF8(addrs.addrview[i]));
		ret = exists(store, WD_STORE_DB_USERS, "addresses", query, error_r);
		bson_destroy(query);
		if (ret == WD_STORE_OK)
			ret = wd__fail(error_r, WD_STORE_ERR_EXISTS, "address already exists: %s",
				       addrs.address[i]);
	}
	if (ret != WD_STORE_ERR_NOT_FOUND)
		goto out;

	/* 1. the user, inactive */
	udoc = user_doc(req, &id, username, unameview, now);
	ret = WD_STORE_OK;
	if (!mongoc_collection_insert_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"),
					  udoc, NULL, NULL, &berror)) {
		ret = wd__fail_db(error_r, &berror, "cannot create user");
		if (ret == WD_STORE_ERR_EXISTS) {
			free(*error_r);
			ret = wd__fail(error_r, ret, "username already exists");
		}
	}
	wd__coll_close(&c);
	if (ret < 0)
		goto out;
	user_inserted = true;
	/* 2. the default mailboxes */
	ret = insert_mailboxes(store, docs, error_r);
	mailboxes_inserted = true; /* an unordered insert may have stored some */
	if (ret < 0)
		goto out;
	/* 3. the addresses */
	for (size_t i = 0; i < addrs.count; i++) {
		ret = insert_address(store, &addrs.ids[i], &id, addrs.address[i],
				     addrs.addrview[i], now, error_r);
		if (ret < 0)
			goto out;
		addrs.inserted = i + 1;
	}
	/* 4. activate */
	ret = activate(store, &id, req, req->empty_address ? "" : addrs.address[0], now, error_r);
	if (ret == WD_STORE_OK && user_id_r != NULL)
		bson_oid_copy(&id, user_id_r);
out:
	if (ret < 0 && user_inserted) {
		delete_ids(store, WD_STORE_DB_USERS, "addresses", addrs.ids, addrs.inserted);
		if (mailboxes_inserted)
			delete_ids(store, WD_STORE_DB_MAIN, "mailboxes", mailbox_ids,
				   WD__DEFAULT_MAILBOXES);
		delete_ids(store, WD_STORE_DB_USERS, "users", &id, 1);
	}
	if (udoc != NULL)
		bson_destroy(udoc);
	for (size_t i = 0; i < WD__DEFAULT_MAILBOXES; i++) {
		if (docs[i] != NULL)
			bson_destroy(docs[i]);
	}
	new_addresses_free(&addrs);
	free(unameview);
	free(username);
	return ret;
}

/* ---- delete ---- */

/* Messages of a deleted user wait this long for the garbage collector. */
#define USER_DELETE_GRACE_MS (14LL * 24 * 3600 * 1000)

int wd_store_user_delete(struct wd_store *store, const bson_oid_t *user_id,
			 struct wd_user_delete_report *report_r, char **error_r)
{
	struct wd_user_delete_report report = { 0, 0, 0 };
	struct wd__coll c;
	bson_t user;
	bson_t *query = BCON_NEW("_id", BCON_OID(user_id));
	int ret = wd__find_one(wd__coll_open(&c, store, WD_STORE_DB_USERS, "users"), query, NULL,
			       &user, error_r);
	wd__coll_close(&c);
	bson_destroy(query);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		return wd__fail(error_r, ret, "user does not exist");
	if (ret < 0)
		return ret;

	/* the deletedusers copy: the user plus deleteInfo */
	bson_t *deleted = bson_copy(&user);
	bson_t info, list;
	bson_append_document_begin(deleted, "deleteInfo", -1, &info);
	BSON_APPEND_DATE_TIME(&info, "deletedAt", wd__now_ms());
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, &user, "address") && BSON_ITER_HOLDS_UTF8(&iter))
		BSON_APPEND_UTF8(&info, "mainAddress", bson_iter_utf8(&iter, NULL));
	else
		bson_append_null(&info, "mainAddress", -1);
	bson_append_array_begin(&info, "addresses", -1, &list);
	query = BCON_NEW("user", BCON_OID(user_id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(
		wd__coll_open(&c, store, WD_STORE_DB_USERS, "addresses"), query, NULL, NULL);
	const bson_t *doc;
	uint32_t n = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		char buf[16];
		const char *key;
		bson_uint32_to_string(n++, &key, buf, sizeof(buf));
		bson_append_document(&list, key, -1, doc);
	}
	bson_error_t error;
	if (mongoc_cursor_error(cursor, &error))
		ret = wd__fail_db(error_r, &error, "cannot read the user's addresses");
	mongoc_cursor_destroy(cursor);
	wd__coll_close(&c);
	bson_append_array_end(&info, &list);
	bson_append_document_end(deleted, &info);

	if (ret == WD_STORE_OK) {
		/* an older copy of the same user goes first, as in WildDuck */
		bson_t *id_filter = BCON_NEW("_id", BCON_OID(user_id));
		mongoc_collection_t *coll =
			wd__coll_open(&c, store, WD_STORE_DB_USERS, "deletedusers");
		if (!mongoc_collection_delete_one(coll, id_filter, NULL, NULL, &error) ||
		    !mongoc_collection_insert_one(coll, deleted, NULL, NULL, &error))
			ret = wd__fail_db(error_r, &error, "cannot write deletedusers");
		wd__coll_close(&c);
		if (ret == WD_STORE_OK &&
		    !mongoc_collection_delete_one(wd__coll_open(&c, store, WD_STORE_DB_USERS,
								"users"),
						  id_filter, NULL, NULL, &error))
			ret = wd__fail_db(error_r, &error, "cannot delete user");
		wd__coll_close(&c);
		bson_destroy(id_filter);
	}
	bson_t reply;
	if (ret == WD_STORE_OK) {
		if (!mongoc_collection_delete_many(wd__coll_open(&c, store, WD_STORE_DB_USERS,
								 "addresses"),
						   query, NULL, &reply, &error))
			ret = wd__fail_db(error_r, &error, "cannot delete the user's addresses");
		else
			report.addresses = wd__doc_int64(&reply, "deletedCount");
		bson_destroy(&reply);
		wd__coll_close(&c);
	}
	if (ret == WD_STORE_OK) {
		if (!mongoc_collection_delete_many(wd__coll_open(&c, store, WD_STORE_DB_MAIN,
								 "mailboxes"),
						   query, NULL, &reply, &error))
			ret = wd__fail_db(error_r, &error, "cannot delete the user's mailboxes");
		else
			report.mailboxes = wd__doc_int64(&reply, "deletedCount");
		bson_destroy(&reply);
		wd__coll_close(&c);
	}
	/* what WildDuck's user-delete task removes */
	static const struct {
		enum wd_store_db db;
		const char *collection;
	} owned[] = {
		{ WD_STORE_DB_USERS, "asps" },
		{ WD_STORE_DB_MAIN, "filters" },
		{ WD_STORE_DB_MAIN, "autoreplies" },
		{ WD_STORE_DB_MAIN, "addressregister" },
	};
	for (size_t i = 0; ret == WD_STORE_OK && i < WD_N_ELEMENTS(owned); i++) {
		if (!mongoc_collection_delete_many(wd__coll_open(&c, store, owned[i].db,
								 owned[i].collection),
						   query, NULL, NULL, &error))
			ret = wd__fail_db(error_r, &error, "cannot delete the user's data");
		wd__coll_close(&c);
	}
	if (ret == WD_STORE_OK) {
		/* messages go with the next retention GC, without archiving */
		bson_t *expire = BCON_NEW("$set", "{", "exp", BCON_BOOL(true), "userDeleted",
					  BCON_BOOL(true), "rdate",
					  BCON_DOUBLE((double)(wd__now_ms() + USER_DELETE_GRACE_MS)),
					  "}");
		if (!mongoc_collection_update_many(wd__coll_open(&c, store, WD_STORE_DB_MAIN,
								 "messages"),
						   query, expire, NULL, &reply, &error))
			ret = wd__fail_db(error_r, &error, "cannot mark the user's messages");
		else
			report.messages = wd__doc_int64(&reply, "modifiedCount");
		bson_destroy(&reply);
		bson_destroy(expire);
		wd__coll_close(&c);
	}
	bson_destroy(query);
	bson_destroy(deleted);
	bson_destroy(&user);
	if (report_r != NULL)
		*report_r = report;
	return ret;
}
