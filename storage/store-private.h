#ifndef STORE_PRIVATE_H
#define STORE_PRIVATE_H

/* Internals shared by the files of libwdstore (not for other libraries). */

#include "wd-store.h"
#include "wd-store-attachment.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>

/* A Redis command on this thread's connection to `dbs.redis` (connected on
   first use, reconnected after an error, one retry). NULL when Redis cannot
   be reached: callers degrade (no notification, counters recomputed later),
   they never fail a database write because of Redis. Free with
   freeReplyObject(). */
redisReply *wd__store_redis(struct wd_store *store, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
redisReply *wd__store_redis_argv(struct wd_store *store, int argc, const char **argv,
				 const size_t *argv_len);

/* Replica-set defaults of a connection URL (store.c): w=majority with
   journal unless the URL sets a write concern; a warning for a read
   preference other than primary. url_text is for the warning. */
void wd__store_uri_defaults(mongoc_uri_t *uri, const char *url_text);

/* The Redis settings and per-thread connections of a store (store-redis.c). */
struct wd_config;
struct wd_store_redis;
int wd__store_redis_init(struct wd_store_redis **redis_r, const struct wd_config *config,
			 char **error_r);
void wd__store_redis_deinit(struct wd_store_redis **redis);
struct wd_store_redis *wd__store_get_redis(struct wd_store *store);

/* ++modifyIndex of `mailbox`, returning the new value and the owner in one
   round trip (store-uid.c; the journal needs both). The caller holds the
   mailbox update lock. */
int wd__store_allocate_modseq_owner(struct wd_store *store, const bson_oid_t *mailbox,
				    uint32_t *modseq_r, bson_oid_t *user_r, char **error_r);
/* The owner of `mailbox` and its current modifyIndex, without changing it. */
int wd__store_mailbox_owner(struct wd_store *store, const bson_oid_t *mailbox,
			    uint32_t *modseq_r, bson_oid_t *user_r, char **error_r);

/* Serialising read-modify-writes where the server's updates are not atomic
   (wd_store_caps.atomic_updates false): a striped mutex for the threads of
   this process plus a Redis lock for other processes (store-lock.c), keyed by
   a name: "mb:<mailbox hex>" for a mailbox document and its messages,
   "att:<hash hex>" for an attachment's counters. Hold it across the
   read-modify-write only, never across another lock of the same kind. With
   atomic updates it does nothing. */
#define WD_STORE_LOCK_STRIPES 64
struct wd_store_lock {
	pthread_mutex_t *local;
	bool redis_held;
	char key[96];
	char token[40];
};
int wd__store_lock(struct wd_store *store, const char *name, struct wd_store_lock *lock,
		   char **error_r);
void wd__store_unlock(struct wd_store *store, struct wd_store_lock *lock);
int wd__store_mailbox_lock(struct wd_store *store, const bson_oid_t *mailbox,
			   struct wd_store_lock *lock, char **error_r);
#define wd__store_mailbox_unlock wd__store_unlock
pthread_mutex_t *wd__store_lock_stripe(struct wd_store *store, const char *name);

/* WildDuck's mailbox write lock for EXPUNGE and MOVE (store-write-lock.c):
   Redis key mail:mbwr:<mailbox> in ioredfour's format, shared with Node
   processes. Returns WD_OK also when Redis is down (held stays false). */
struct wd_store_write_lock {
	char key[48];
	long long index;
	bool held;
};
int wd__store_write_lock(struct wd_store *store, const bson_oid_t *mailbox, unsigned ttl_ms,
			 unsigned wait_ms, struct wd_store_write_lock *lock, char **error_r);
void wd__store_write_unlock(struct wd_store *store, struct wd_store_write_lock *lock);

/* What storing into a mailbox needs to know of it (store-message.c). */
struct wd__mailbox_info {
	bson_oid_t user;
	int64_t retention; /* ms, 0 = none */
	bool junk;         /* specialUse \Junk */
};
int wd__store_mailbox_info(struct wd_store *store, const bson_oid_t *mailbox,
			   struct wd__mailbox_info *info, char **error_r);
/* One update of the document `id`, under the update lock named by lock_id
   (the mailbox for messages, the user for users). `what` completes
   "cannot %s" in the error. */
int wd__store_update_by_id(struct wd_store *store, enum wd_store_db db, const char *collection,
			   const bson_oid_t *lock_id, const bson_oid_t *id, const bson_t *update,
			   const char *what, char **error_r);
/* users.storageUsed += delta, under the user's update lock. */
int wd__store_change_quota(struct wd_store *store, const bson_oid_t *user, int64_t delta,
			   char **error_r);

/* UTF-8 text as a BSON string; invalid bytes (and NUL where the server
   refuses it) become U+FFFD (store-message.c). */
void wd__append_text(bson_t *doc, const char *key, const char *text, size_t len, bool nul_ok);

/* Appends text, textFooter, intro, html, attachments and ha for a parsed
   message whose externalised leaves are att_nodes; content_hashes (NULL, or
   per leaf "" / the fileContentHash of a file this store created) go to the
   attachment entries as WildDuck lists them (message-maildata.c). */
struct wd_mime_tree;
struct wd_mime_node;
void wd__maildata_append(const struct wd_mime_tree *tree,
			 const struct wd_mime_node *const *att_nodes,
			 const char (*content_hashes)[WD_ATTACHMENT_CONTENT_HASH_SIZE],
			 size_t att_count, bool nul_ok,
			 bson_t *doc);

/* wd_store_journal_add() for a caller that knows the mailbox owner: when
   every entry carries its modseq, the mailbox document is not read. */
struct wd_journal_entry;
int wd__store_journal_add_for(struct wd_store *store, const bson_oid_t *mailbox,
			      const bson_oid_t *known_user, struct wd_journal_entry *entries,
			      size_t count, bson_oid_t *user_r, char **error_r);

/* Wall clock and monotonic clock in milliseconds (store-op.c, store-lock.c). */
int64_t wd__now_ms(void);
int64_t wd__monotonic_ms(void);

/* FerretDB's SQLite directory when configured (dbs.ferretdbSqlite or
   WD_FERRETDB_SQLITE), else NULL; and the _id lookup indexes added there
   after the collections exist (store-ferretdb-sqlite.c). */
const char *wd__store_ferretdb_sqlite(const struct wd_store *store);
int wd__store_ferretdb_id_indexes(struct wd_store *store, const char *dir);
/* Database `which` of FerretDB's SQLite directory opened read-only (close it
   with sqlite3_close), the table name of `collection` in `table`, with the
   index named <table><index> present: WD_OK, or WD_STORE_FDB_NONE when the
   direct path does not apply (store-ferretdb-sqlite.c). */
struct sqlite3;
int wd__store_fdb_open(struct wd_store *store, enum wd_store_db which, const char *collection,
		       const char *index, struct sqlite3 **db_r, char *table, size_t table_size);

/* malloc'd printf, for error_r messages. */
char *wd__store_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
