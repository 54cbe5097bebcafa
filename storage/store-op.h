#ifndef STORE_OP_H
#define STORE_OP_H

/* Helpers for the user, address and mailbox files of libwdstore: one
 * borrowed collection per database step, error kinds from driver errors, and
 * WildDuck's BSON typing (reference §0) for writing and reading fields. */

#include "store-private.h"
#include "wd-store-user.h"

#include <stdarg.h>

/* A collection on a client borrowed for one step. */
struct wd__coll {
	struct wd_store *store;
	enum wd_store_db db;
	mongoc_client_t *client;
	mongoc_collection_t *coll;
};

mongoc_collection_t *wd__coll_open(struct wd__coll *c, struct wd_store *store,
				   enum wd_store_db db, const char *name);
void wd__coll_close(struct wd__coll *c);

/* Sets *error_r to a malloc'd message and returns `kind`. */
int wd__fail(char **error_r, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A driver error: WD_STORE_ERR_EXISTS for a duplicate key (11000), else
   WD_STORE_ERR_DATABASE; the message is "<what>: <driver message>". */
int wd__fail_db(char **error_r, const bson_error_t *error, const char *what);
bool wd__is_duplicate(const bson_error_t *error);

/* The store's update lock (store-private.h) for a read-modify-write of one
   document on servers without atomic updates, keyed by that document's id:
   a mailbox, or a user (users.address against a concurrent $inc of
   storageUsed). Fails with WD_STORE_ERR_DATABASE. */
int wd__doc_lock(struct wd_store *store, const bson_oid_t *id, struct wd_store_lock *lock,
		 char **error_r);
void wd__doc_unlock(struct wd_store *store, struct wd_store_lock *lock);

/* A JavaScript number as the Node driver writes it: int32 when the value
   fits, else double. */
void wd__append_js_number(bson_t *doc, const char *key, int64_t value);
/* A string, or null for NULL (a JS undefined property). */
void wd__append_utf8_or_null(bson_t *doc, const char *key, const char *value);

/* Find the first document matching `query` (opts may be NULL) into *doc_r
   (initialised only on success). WD_STORE_OK, WD_STORE_ERR_NOT_FOUND or
   WD_STORE_ERR_DATABASE; not-found sets no error message. */
int wd__find_one(mongoc_collection_t *coll, const bson_t *query, const bson_t *opts,
		 bson_t *doc_r, char **error_r);

/* Field readers tolerant of WildDuck's mixed number types. */
int64_t wd__doc_int64(const bson_t *doc, const char *key);
bool wd__doc_bool(const bson_t *doc, const char *key);
/* malloc'd copy of a string field; NULL when absent, null or not a string. */
char *wd__doc_strdup(const bson_t *doc, const char *key);
bool wd__doc_oid(const bson_t *doc, const char *key, bson_oid_t *oid_r);
int64_t wd__doc_date(const bson_t *doc, const char *key);

/* The default mailboxes of a new user (store-mailbox.c): fills docs[0..4]
   (INBOX, Sent, Trash, Drafts, Junk), each with a fresh _id also written to
   ids[]. `names` are the four special-use paths in that order (NULL entries:
   English). WD_STORE_ERR_INVALID for an unusable or duplicate name. */
#define WD__DEFAULT_MAILBOXES 5
int wd__mailbox_default_docs(const bson_oid_t *user, const char *const names[4],
			     int64_t retention, bson_t *docs[WD__DEFAULT_MAILBOXES],
			     bson_oid_t ids[WD__DEFAULT_MAILBOXES], char **error_r);

/* Address rules for adding an address (store-address.c): normalised form
   and addrview, or WD_STORE_ERR_INVALID with a malloc'd message. */
int wd__address_prepare(const char *address, bool allow_wildcard, bool main, char **address_r,
			char **addrview_r, char **error_r);

#endif
