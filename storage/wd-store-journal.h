#ifndef WD_STORE_JOURNAL_H
#define WD_STORE_JOURNAL_H

/* UID/MODSEQ allocation, the per-mailbox change journal, change
 * notifications and our own expiry of TTL data (reference §2.11, §4.1–4.3,
 * §4.7). Blocking calls for worker threads.
 *
 * Allocation is one atomic findOneAndUpdate on the mailbox document, so any
 * number of processes (ours and WildDuck's) can append to one mailbox: UIDs
 * are unique and MODSEQ grows with UID.
 *
 * Writing journal entries follows WildDuck's addEntries(): entries that name
 * a message but carry no modseq share ONE new modseq, which is also applied
 * to those messages with $max; then the entries are inserted, the cached
 * Redis counters total:/unseen:<mailbox> are adjusted, and the caller
 * notifies the user with wd_store_notify() (PUBLISH wd_events
 * {"e":"<user>"}), after its whole batch. */

#include "wd-store.h"

#include <stdbool.h>
#include <stdint.h>

/* New message: uid = uidNext++, and with `with_modseq` modseq = ++modifyIndex
   (APPEND, delivery). Without, *modseq_r is the current modifyIndex (COPY and
   MOVE, whose journal entries allocate one modseq for the batch). */
int wd_store_allocate_uid(struct wd_store *store, const bson_oid_t *mailbox, bool with_modseq,
			  uint32_t *uid_r, uint32_t *modseq_r, char **error_r);
/* ++modifyIndex; the new value (STORE: one per command). */
int wd_store_allocate_modseq(struct wd_store *store, const bson_oid_t *mailbox,
			     uint32_t *modseq_r, char **error_r);

enum wd_journal_command {
	WD_JOURNAL_EXISTS,
	WD_JOURNAL_EXPUNGE,
	WD_JOURNAL_FETCH,
	WD_JOURNAL_CREATE,
	WD_JOURNAL_RENAME,
	WD_JOURNAL_DELETE,
};

/* One journal entry. Optional fields are absent when zero/NULL/false, except
   `unseen` (-1 = absent). */
struct wd_journal_entry {
	enum wd_journal_command command;
	uint32_t uid;
	uint32_t modseq;          /* 0 = allocate (set on return) */
	bool has_message;
	bson_oid_t message;
	bool has_thread;
	bson_oid_t thread;
	const char *ignore;       /* IMAP session id that made the change */
	const char *const *flags; /* FETCH: the full new flag list */
	size_t flag_count;
	bool has_flags;
	int unseen;               /* -1 absent, 0/1 */
	bool unseen_change;
	int64_t idate_ms;         /* EXISTS: internal date; 0 = absent */
	int junk;                 /* EXISTS: +1 into Junk, -1 out of it; 0 = absent */
	const char *path;         /* CREATE/RENAME */
	/* filled when read back */
	bson_oid_t id;
	bson_oid_t mailbox;
	bson_oid_t user;
	int64_t created_ms;
};

const char *wd_journal_command_name(enum wd_journal_command command);

/* Writes `count` entries for `mailbox` (see above). *user_r (may be NULL) gets
   the mailbox owner, for wd_store_notify(). */
int wd_store_journal_add(struct wd_store *store, const bson_oid_t *mailbox,
			 struct wd_journal_entry *entries, size_t count, bson_oid_t *user_r,
			 char **error_r);

/* Calls `fn` for every entry of `mailbox` with modseq > `modseq`, in modseq
   order (ties in insertion order). Pointers in the entry live for the call.
   `fn` returns false to stop. */
typedef bool wd_journal_fn(const struct wd_journal_entry *entry, void *context);
int wd_store_journal_since(struct wd_store *store, const bson_oid_t *mailbox, uint32_t modseq,
			   wd_journal_fn *fn, void *context, char **error_r);
/* The same read straight from FerretDB's SQLite file (dbs.ferretdbSqlite),
   which wd_store_journal_since() tries first: WD_OK, WD_STORE_FDB_NONE (1:
   not FerretDB/SQLite, no directory or no journal table; nothing was
   called) or WD_ERROR with *error_r. */
int wd_store_journal_since_fdb(struct wd_store *store, const bson_oid_t *mailbox,
			       uint32_t modseq, wd_journal_fn *fn, void *context, char **error_r);

/* PUBLISH wd_events {"e":"<user hex>"}. Returns 0 also when Redis is down
   (logged): sessions then catch up on their next journal read. */
int wd_store_notify(struct wd_store *store, const bson_oid_t *user);

/* TTL data the server does not expire itself (FerretDB): journal older than
   3 h, threads not updated for 180 d, authlog and app passwords past their
   `expires`, message log entries older than 180 d (wd-store-messagelog.h). Run periodically by one process (any process: deletes are
   idempotent). Does nothing when the server enforces TTL indexes. */
struct wd_store_expiry_report {
	int64_t journal, threads, authlog, asps, messagelog;
};
int wd_store_expire_ttl(struct wd_store *store, int64_t now_ms,
			struct wd_store_expiry_report *report, char **error_r);

#endif
