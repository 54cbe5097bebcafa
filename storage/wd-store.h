#ifndef WD_STORE_H
#define WD_STORE_H

/* libwdstore: WildDuck's data model over MongoDB (libmongoc), GridFS and Redis.
 *
 * A wd_store is opened once per process from the configuration and shared by
 * every thread. Its calls are blocking (run them on the worker pool, never on
 * an event loop thread); each call borrows a client from a mongoc client pool
 * for its duration, so the object is thread-safe.
 *
 * Databases follow WildDuck's `dbs.*` keys (reference §1): `dbs.mongo` is the
 * main database; `dbs.users`, `dbs.gridfs` and `dbs.sender` are each either a
 * bare database name on the main connection or a full mongodb:// URL with its
 * own connection, and default to the main database (`dbs.sender` defaults to
 * "zone-mta"). */

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>

struct wd_config;
struct wd_store;

enum wd_store_db {
	WD_STORE_DB_MAIN,
	WD_STORE_DB_USERS,
	WD_STORE_DB_GRIDFS,
	WD_STORE_DB_SENDER,
	WD_STORE_DB_COUNT
};

/* What the database server can do, detected once at open (DESIGN.md §3):
   code asks these flags instead of testing for FerretDB here and there. */
struct wd_store_caps {
	bool ferretdb;             /* buildInfo has ferretdb* fields */
	char version[64];          /* MongoDB version the server reports */
	char ferretdb_version[32]; /* e.g. "v1.24.2" when ferretdb */
	bool nested_arrays;        /* documents may hold arrays of arrays (envelope cache) */
	bool text_indexes;         /* $text indexes and queries */
	bool partial_indexes;      /* partialFilterExpression and sparse indexes */
	bool hashed_indexes;
	bool ttl_enforced;         /* the server deletes expired TTL documents itself */
	bool nul_in_strings;       /* strings may contain U+0000 */
	/* Updates are atomic per document. FerretDB 1.x computes an update from a
	   read outside its write transaction and replaces the whole document, so
	   concurrent updates of one document lose each other; the store then
	   serialises updates of a mailbox (and its messages) itself. */
	bool atomic_updates;
	/* $elemMatch with field conditions ({headers: {$elemMatch: {key, value}}});
	   FerretDB 1.x only takes operator conditions there. */
	bool elem_match_fields;
};

struct wd_store *wd_store_open(const struct wd_config *config, char **error_r);
void wd_store_close(struct wd_store **store);

const struct wd_store_caps *wd_store_caps(const struct wd_store *store);
const char *wd_store_db_name(const struct wd_store *store, enum wd_store_db db);

/* Borrow a client for `db` for the duration of one operation (blocks while
   the pool is exhausted), and give it back. */
mongoc_client_t *wd_store_client(struct wd_store *store, enum wd_store_db db);
void wd_store_client_release(struct wd_store *store, enum wd_store_db db, mongoc_client_t *client);
/* A collection handle on a borrowed client (destroy it before releasing). */
mongoc_collection_t *wd_store_collection(struct wd_store *store, mongoc_client_t *client,
					 enum wd_store_db db, const char *name);

/* Index creation (reference §1.1). Each index is created on its own so that
   one the server rejects (FerretDB: text, partial, sparse, hashed) does not
   stop the others; rejections are logged with the server's reason. Existing
   indexes are fine. Returns 0, or -1 when the database is unreachable. */
struct wd_store_index_report {
	unsigned created;   /* created now or already present */
	unsigned rejected;  /* refused by the server */
};
int wd_store_ensure_indexes(struct wd_store *store, struct wd_store_index_report *report,
			    char **error_r);

/* One Redis command (argv form) on this thread's connection to dbs.redis,
   for modules above storage that keep keys of their own (the IMAP \Recent
   watermark). NULL when Redis cannot be reached: callers degrade. Free the
   reply with freeReplyObject() (hiredis). */
struct redisReply;
struct redisReply *wd_store_redis_argv(struct wd_store *store, int argc, const char **argv,
				       const size_t *argv_len);

/* Library version string (libwdstore and the driver). */
const char *wd_store_version(void);

#endif
