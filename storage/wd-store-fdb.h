#ifndef WD_STORE_FDB_H
#define WD_STORE_FDB_H

/* A read-only fast path for a mailbox's message metadata on FerretDB's
 * SQLite backend (store-ferretdb-sqlite.c).
 *
 * FerretDB 1.24 pushes no filter but {_id} down to SQLite: every query on
 * `messages` by mailbox decodes every document of the collection (about
 * 7.6 KB of JSON each) in FerretDB, 1-3 ms apiece, so SELECT, STATUS and
 * FETCH FLAGS of a 10,000-message mailbox took 30-100 s. The metadata those
 * commands need (uid, modseq, unseen, undeleted, size, flags) is small, so
 * when the store knows FerretDB's SQLite directory it adds one covering
 * index on those fields of `messages` and these functions read it straight
 * from SQLite, read-only, in uid order: no document is decoded. SQLite
 * readers see what FerretDB committed, as a client of FerretDB would.
 *
 * Every function answers WD_STORE_FDB_NONE when the fast path does not
 * apply (not FerretDB, no directory configured, index or table missing, the
 * SQLite layout not the one expected): the caller then runs its ordinary
 * query. Never used for writes. */

#include "wd-store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_STORE_FDB_NONE 1

/* One message as the index holds it. flags is the JSON text of the `flags`
   array (e.g. ["\\Seen","$Label1"]), valid during the callback only. */
struct wd_store_fdb_msg {
	bson_oid_t id;
	uint32_t uid;
	uint64_t modseq;
	bool unseen, undeleted;
	int64_t size;
	const char *flags_json;
	size_t flags_len;
};

/* Called per message in ascending uid order; a non-zero return stops the
   scan and is returned. */
typedef int wd_store_fdb_msg_fn(void *ctx, const struct wd_store_fdb_msg *msg);

/* The messages of `mailbox` with uid_first <= uid <= uid_last.
   WD_OK, WD_STORE_FDB_NONE (nothing was called), the callback's non-zero
   value, or WD_STORE_ERR_DATABASE with *error_r (free it) when SQLite failed
   midway. Blocking; any thread. */
int wd_store_fdb_messages(struct wd_store *store, const bson_oid_t *mailbox, uint32_t uid_first,
			  uint32_t uid_last, wd_store_fdb_msg_fn *fn, void *ctx, char **error_r);

/* The same as a cursor, optionally only messages with modseq above
   modseq_above (CHANGEDSINCE; 0: all). open: WD_OK or WD_STORE_FDB_NONE.
   next: 1 with *msg filled (valid until the next call), 0 at the end,
   WD_STORE_ERR_DATABASE with *error_r. A cursor holds its own read-only
   SQLite connection; it may move between threads, one at a time. */
struct wd_store_fdb_cursor;
int wd_store_fdb_cursor_open(struct wd_store *store, const bson_oid_t *mailbox,
			     uint32_t uid_first, uint32_t uid_last, uint64_t modseq_above,
			     struct wd_store_fdb_cursor **cursor_r);
int wd_store_fdb_cursor_next(struct wd_store_fdb_cursor *cursor, struct wd_store_fdb_msg *msg,
			     char **error_r);
void wd_store_fdb_cursor_close(struct wd_store_fdb_cursor **cursor);

/* What a cursor reads besides the index row. uids: only these UIDs of the
   range (any order); docs: also each message's document, straight from
   SQLite (decoded by wd_store_fdb_sjson_to_bson), whole or with an
   inclusion `projection` (dotted paths into objects allowed). */
struct wd_store_fdb_select {
	const uint32_t *uids;
	size_t uid_count;
	bool docs;
	const bson_t *projection;
};
int wd_store_fdb_cursor_select(struct wd_store *store, const bson_oid_t *mailbox,
			       uint32_t uid_first, uint32_t uid_last, uint64_t modseq_above,
			       const struct wd_store_fdb_select *select,
			       struct wd_store_fdb_cursor **cursor_r);
/* The document of the row wd_store_fdb_cursor_next() returned last,
   appended to `doc`: WD_OK, or WD_STORE_FDB_NONE when the cursor reads no
   documents or this one cannot be decoded exactly (the caller then runs
   its ordinary query for the whole command). */
int wd_store_fdb_cursor_doc(struct wd_store_fdb_cursor *cursor, bson_t *doc);

/* A FerretDB sjson text (the document with its "$s" type schema) as BSON,
   as FerretDB would return it for a find with `projection` (inclusion
   only; NULL: whole). WD_OK, or WD_ERROR for a type or shape this decoder
   does not handle exactly (store-fdb-sjson.c). */
int wd_store_fdb_sjson_to_bson(const char *json, size_t len, const bson_t *projection,
			       bson_t *out);

/* The documents of `mailbox` with these UIDs (any order; duplicates are
   read once), sorted by uid: the rows of these UIDs read from SQLite
   through the metadata index and decoded here, no FerretDB round trip, so
   the cost follows the number of messages asked for, not the collection's
   size. A document that cannot be decoded exactly makes it answer
   WD_STORE_FDB_NONE. `projection` (inclusion, or
   NULL for whole documents) gets mailbox and uid added. WD_OK with
   *docs_r a malloc'd array of *count_r bson_copy()'d documents (free each
   with bson_destroy, then the array), WD_STORE_FDB_NONE, or
   WD_STORE_ERR_DATABASE with *error_r. */
int wd_store_fdb_load_uids(struct wd_store *store, const bson_oid_t *mailbox,
			   const uint32_t *uids, size_t count, const bson_t *projection,
			   bson_t ***docs_r, size_t *count_r, char **error_r);

/* WildDuck's thread lookup {user, ids: {$in: ids}, subject} (store-thread.c)
   from SQLite through an index on (user, subject) instead of a FerretDB
   scan of every thread: WD_OK with *found_r and *thread_r (the first match,
   in FerretDB's scan order), or WD_STORE_FDB_NONE. The caller holds the
   user's thread lock, so no thread of this user appears in between. */
int wd_store_fdb_thread_find(struct wd_store *store, const bson_oid_t *user, const char *subject,
			     const char ids[][32], size_t id_count, bool *found_r,
			     bson_oid_t *thread_r);

/* A find_one by {f1: v1, f2: v2} (strings or ObjectIds, in this order) of
   a lookup store-ferretdb-sqlite.c indexes — mailboxes {user, path},
   addressregister {user, addrview} — answered from SQLite: WD_OK with
   *found_r and the first match's _id (FerretDB's scan order), so the
   caller reads or updates it by _id; WD_STORE_FDB_NONE for any other
   filter, collection or database. */
int wd_store_fdb_find_id(struct wd_store *store, const char *collection, const bson_t *filter,
			 bool *found_r, bson_oid_t *id_r);

/* Append to `doc` (initialised) the fields of one index row as the
   messages document has them: _id, uid, modseq, size, unseen, undeleted,
   flags (an array of strings). */
void wd_store_fdb_msg_bson(const struct wd_store_fdb_msg *msg, bson_t *doc);

/* Parse a flags JSON text (an array of strings) into its elements, one at
   a time: *pos starts at 0; each call stores the next flag's unescaped
   text in buf (NUL-terminated, truncated to size) and returns true, false
   at the end or on malformed input. */
bool wd_store_fdb_next_flag(const char *json, size_t len, size_t *pos, char *buf, size_t size);

#endif
