#ifndef WD_IMAP_SYNC_H
#define WD_IMAP_SYNC_H

/* Changes made by other sessions and instances, brought into a session's
 * view of the selected mailbox (RFC 3501 §7, RFC 2180 §4, RFC 7162).
 *
 * Three steps, two threads:
 *
 * 1. worker thread: wd_imap_sync_read_journal() reads the journal after the
 *    session's modseq (wd_store_journal_since) into a change set;
 *    wd_imap_sync_read_full() instead reads the mailbox's current UID list
 *    and the flags of messages changed after the modseq (after a journal
 *    gap, when Redis was down, periodically). Neither touches the session.
 * 2. loop thread: wd_imap_sync_add() queues a change set against the view.
 *    EXISTS for a UID the view (or the queue) already has is ignored, so a
 *    journal read that overlaps a load is harmless; an EXPUNGE of a message
 *    announced nowhere yet cancels its EXISTS. Nothing is sent yet.
 * 3. loop thread, at a point the session chooses: wd_imap_sync_emit()
 *    writes untagged responses and changes the view: FETCH (UID n FLAGS
 *    (...) [MODSEQ (m)]) for messages in the view, EXPUNGE (or VANISHED
 *    with QRESYNC) only when the caller says expunges may be sent (never
 *    during FETCH, STORE or SEARCH by sequence number: the view keeps those
 *    UIDs until then), and EXISTS with the new count.
 *
 * FETCH entries carrying this session's id (`ignore`) are not announced
 * again: the session answered its own STORE. EXISTS entries are, whoever
 * made them (RFC 3501: an APPEND to the selected mailbox is seen through
 * EXISTS); EXPUNGE entries of this session name UIDs it removed already.
 *
 * \Recent (RFC 3501 §2.3.2) across instances: a per-mailbox watermark in
 * Redis, the highest UID some session has seen, raised with a Lua script
 * (atomic on the one Redis all instances share). A session that selects
 * the mailbox read-write, or learns of new messages while selected, claims
 * (old watermark, uidNext-1]: exactly one session gets each message as
 * recent. Redis unreachable: nothing is claimed (no \Recent), as Dovecot
 * does when it cannot lock its index. */

#include "imap-view.h"
#include "wd-buffer.h"
#include "wd-store-journal.h"

#include <stdbool.h>
#include <stdint.h>

/* One change as the journal states it. */
struct wd_imap_change {
	enum wd_journal_command command; /* EXISTS, EXPUNGE or FETCH */
	uint32_t uid;
	uint32_t modseq;
	char *flags; /* FETCH: the flag list, space-separated (malloc'd) */
};

/* A change set, made on a worker thread and handed to the loop thread. */
struct wd_imap_changes {
	uint64_t modseq;                /* the session's modseq after these changes */
	struct wd_imap_change *items;   /* in journal order */
	size_t count, cap;
	struct wd_imap_view *current;   /* full re-sync: every UID in the mailbox now */
	uint32_t recent_first, recent_last; /* UIDs claimed as \Recent; first 0: none */
	bool truncated;                 /* more FETCH changes than kept (flags not sent) */
	/* where the read's time went (diagnostics: the IDLE debug log) */
	uint64_t database_ns;           /* journal or mailbox queries */
	uint64_t redis_ns;              /* the \Recent claim */
};

struct wd_imap_changes *wd_imap_changes_create(void);
void wd_imap_changes_free(struct wd_imap_changes **changes);
/* Append one change (flags copied); WD_ERROR on allocation failure. */
int wd_imap_changes_add(struct wd_imap_changes *changes, enum wd_journal_command command,
			uint32_t uid, uint32_t modseq, const char *const *flags, size_t flag_count);

/* ---- worker thread (blocking) ---- */

/* Limits of one read: past max_changes journal entries the read becomes a
   full re-sync (the queue stays bounded); max_flag_changes bounds the flag
   changes a full re-sync reports. */
#define WD_IMAP_SYNC_MAX_CHANGES 50000
#define WD_IMAP_SYNC_MAX_FLAG_CHANGES 10000

/* Journal entries of `mailbox` after `modseq`. FETCH entries whose ignore is
   session_id are left out. With `claim_recent`, new UIDs are claimed as
   \Recent (wd_imap_recent_claim). */
int wd_imap_sync_read_journal(struct wd_store *store, const bson_oid_t *mailbox, uint64_t modseq,
			      const char *session_id, bool claim_recent,
			      struct wd_imap_changes **changes_r, char **error_r);
/* Full re-sync: the mailbox's modifyIndex, its UIDs (changes->current) and
   FETCH changes for messages whose modseq is above `modseq`. */
int wd_imap_sync_read_full(struct wd_store *store, const bson_oid_t *mailbox, uint64_t modseq,
			   bool claim_recent, struct wd_imap_changes **changes_r, char **error_r);

/* The mailbox's \Recent watermark without claiming anything: UIDs above
   it are recent for the next session that selects the mailbox (STATUS
   RECENT). 0 when no session claimed any yet; WD_ERROR without Redis. */
int wd_imap_recent_watermark(struct wd_store *store, const bson_oid_t *mailbox,
			     uint32_t *watermark_r);
/* Raise the mailbox's \Recent watermark to `last_uid` (uidNext - 1);
   *first_r gets the first UID this caller claimed (> last_uid when none).
   WD_ERROR when Redis cannot be reached (then nothing is claimed). */
int wd_imap_recent_claim(struct wd_store *store, const bson_oid_t *mailbox, uint32_t last_uid,
			 uint32_t *first_r);

/* ---- loop thread (sans-I/O) ---- */

struct wd_imap_sync;

/* modseq: the HIGHESTMODSEQ the view was loaded at. */
struct wd_imap_sync *wd_imap_sync_create(uint64_t modseq);
void wd_imap_sync_destroy(struct wd_imap_sync **sync);
/* The modseq the next journal read starts after. */
uint64_t wd_imap_sync_modseq(const struct wd_imap_sync *sync);

/* Queue `changes` (taken over and freed) against `view`. */
int wd_imap_sync_add(struct wd_imap_sync *sync, const struct wd_imap_view *view,
		     struct wd_imap_changes *changes);

enum wd_imap_sync_emit_flags {
	WD_IMAP_SYNC_EXPUNGE_OK = 1 << 0, /* EXPUNGE / VANISHED may be sent now */
	WD_IMAP_SYNC_CONDSTORE = 1 << 1,  /* FETCH carries MODSEQ */
	WD_IMAP_SYNC_QRESYNC = 1 << 2,    /* VANISHED instead of EXPUNGE */
};

/* Write the untagged responses that may be sent now to `out` and change
   the view to match. WD_ERROR only when `out` refused the bytes (its limit)
   or memory ran out; what was written stays consistent with the view. */
int wd_imap_sync_emit(struct wd_imap_sync *sync, struct wd_imap_view *view, unsigned flags,
		      struct wd_buffer *out);
/* Whether anything waits for wd_imap_sync_emit(); with EXPUNGE_OK clear,
   deferred expunges do not count. */
bool wd_imap_sync_pending(const struct wd_imap_sync *sync, unsigned flags);
/* Whether `uid` is expunged but not yet announced (RFC 2180 §4.1: FETCH of
   such a message may answer NO). */
bool wd_imap_sync_is_expunged(const struct wd_imap_sync *sync, uint32_t uid);

/* \Recent in this session: the UIDs claimed at SELECT (from
   wd_imap_recent_claim), whose count SELECT reports itself ("* n RECENT");
   later claims come with change sets, and emit sends "* n RECENT" with
   every EXISTS. Counted against the view. */
void wd_imap_sync_recent_add(struct wd_imap_sync *sync, uint32_t first, uint32_t last);
bool wd_imap_sync_is_recent(const struct wd_imap_sync *sync, uint32_t uid);
uint32_t wd_imap_sync_recent_count(const struct wd_imap_sync *sync,
				   const struct wd_imap_view *view);
/* The \Recent UID ranges (ascending, disjoint; last may be UINT32_MAX),
   valid until the next change of the sync. */
const struct wd_imap_seq_range *wd_imap_sync_recent_ranges(const struct wd_imap_sync *sync,
							   size_t *count_r);

/* When to read again. Reads are due when notified (wd_events), every
   poll_ms while Redis is down, and a full re-sync when the last read is
   older than the journal can be trusted to reach (its TTL is 3 h), after
   Redis came back, or every full_ms. */
struct wd_imap_sync_policy {
	int64_t poll_ms;      /* default 30 s */
	int64_t gap_ms;       /* default 2.5 h */
	int64_t full_ms;      /* default 1 h */
};
enum wd_imap_sync_due {
	WD_IMAP_SYNC_NONE,
	WD_IMAP_SYNC_JOURNAL,
	WD_IMAP_SYNC_FULL,
};
void wd_imap_sync_policy_default(struct wd_imap_sync_policy *policy);
/* `notified`: a wd_events message named this user since the last read;
   `redis_up`: the subscription is alive now. */
enum wd_imap_sync_due wd_imap_sync_due(struct wd_imap_sync *sync,
				       const struct wd_imap_sync_policy *policy, int64_t now_ms,
				       bool notified, bool redis_up);
/* Record that a read of that kind was done at now_ms (its changes added). */
void wd_imap_sync_read_done(struct wd_imap_sync *sync, enum wd_imap_sync_due kind,
			    int64_t now_ms);

/* One read of the kind wd_imap_sync_due() chose: FULL reads the mailbox
   (wd_imap_sync_read_full), anything else the journal. */
int wd_imap_sync_read(struct wd_store *store, const bson_oid_t *mailbox, uint64_t modseq,
		      const char *session_id, bool claim_recent, enum wd_imap_sync_due kind,
		      struct wd_imap_changes **changes_r, char **error_r);

/* QRESYNC SELECT (RFC 7162 §3.2.5.1): "* VANISHED (EARLIER) uids" for the
   client's known UIDs (NULL or empty: 1:uid_next-1) that the view no longer
   holds, computed exactly from the view. Nothing is written when none
   vanished. */
int wd_imap_sync_vanished_earlier(const struct wd_imap_view *view, struct wd_arena *arena,
				  const struct wd_imap_seqset *known_uids, uint32_t uid_next,
				  struct wd_buffer *out);

/* "1:3,5,9:12" for a normalised set. */
int wd_imap_sync_write_set(const struct wd_imap_seqset *set, struct wd_buffer *out);

#endif
