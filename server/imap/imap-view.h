#ifndef WD_IMAP_VIEW_H
#define WD_IMAP_VIEW_H

/* The selected mailbox as one session sees it: the UIDs in sequence order.
 *
 * Sequence number n is the n-th UID of the view. The view changes only
 * through wd_imap_view_append() (a new message, UID above every UID in the
 * view: untagged EXISTS) and wd_imap_view_expunge() (untagged EXPUNGE or
 * VANISHED); the session decides when (imap-sync.h).
 *
 * Storage is compact (imap-view.c): blocks of runs of consecutive UIDs, and
 * blocks whose runs are mostly single UIDs are turned into 16-bit offset
 * lists. Measured (tests/unit/imap/test-imap-view.c asserts the bounds):
 * 1,000,000 messages with 100 gaps take 1.2 KiB; the worst cases, no two
 * consecutive UIDs, cost 2.7 bytes per message when the UIDs are within
 * 65536 of each other and 4.8 bytes when sparser (a flat array: 4); a run
 * shredded by expunging every other message, 2.8. Lookups are O(log blocks
 * + 64); iterating a set never expands ranges into per-message arrays.
 *
 * A view belongs to the session's loop thread. The loader runs on a worker
 * thread and hands a new view over. */

#include "imap-seqset.h"
#include "wd-arena.h"
#include "wd-store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_imap_view;

struct wd_imap_view *wd_imap_view_create(void);
void wd_imap_view_destroy(struct wd_imap_view **view);

/* Add `uid` as sequence number count+1. uid must be above the last UID
   (WD_ERROR otherwise, or on allocation failure; the view is unchanged). */
int wd_imap_view_append(struct wd_imap_view *view, uint32_t uid);
/* Number of messages (EXISTS). */
uint32_t wd_imap_view_count(const struct wd_imap_view *view);
/* UID of sequence number `seq` (1-based); 0 when out of range. */
uint32_t wd_imap_view_uid(const struct wd_imap_view *view, uint32_t seq);
/* Sequence number of `uid`; 0 when the view does not hold it. */
uint32_t wd_imap_view_seq(const struct wd_imap_view *view, uint32_t uid);
/* Sequence number of the first message whose UID is >= uid (count+1 when
   none): the position where UID ranges start. */
uint32_t wd_imap_view_seq_ceil(const struct wd_imap_view *view, uint32_t uid);
/* Last UID (0 for an empty view). */
uint32_t wd_imap_view_last_uid(const struct wd_imap_view *view);
/* Remove `uid`; *seq_r (may be NULL) gets the sequence number it had. WD_OK,
   or WD_ERROR when the view does not hold it. */
int wd_imap_view_expunge(struct wd_imap_view *view, uint32_t uid, uint32_t *seq_r);
/* Heap bytes held by the view (with the struct itself). */
size_t wd_imap_view_memory(const struct wd_imap_view *view);

/* ---- sets ---- */

/* Iteration over (seq, uid) pairs in ascending order, one range at a time
   under the hood. A sequence set is resolved against the view ("*" = the
   last sequence number; numbers past the view are skipped); a UID set
   yields only the UIDs the view holds ("*" = the last UID). The set is
   copied into `arena` when it must be resolved or normalised; the view must
   not change during the iteration. */
struct wd_imap_view_iter {
	const struct wd_imap_view *view;
	struct wd_imap_seqset set; /* normalised, as sequence numbers */
	size_t range;
	uint64_t next_seq;         /* 0 before the first range */
	/* position of sequence number pos_seq (0: none): the next lookup steps
	   from it instead of searching */
	uint32_t pos_seq;
	size_t pos_block;
	uint32_t pos_entry, pos_off;
};
int wd_imap_view_iter_init(struct wd_imap_view_iter *iter, const struct wd_imap_view *view,
			   struct wd_arena *arena, const struct wd_imap_seqset *set, bool uid);
bool wd_imap_view_iter_next(struct wd_imap_view_iter *iter, uint32_t *seq_r, uint32_t *uid_r);

/* Sequence set -> UID set (normalised; one range per run of the view that
   the set touches). uid_set_r's ranges live in `arena`. */
int wd_imap_view_seqs_to_uids(const struct wd_imap_view *view, struct wd_arena *arena,
			      const struct wd_imap_seqset *seqs, struct wd_imap_seqset *uids_r);
/* UID set -> sequence set of the UIDs the view holds (normalised). */
int wd_imap_view_uids_to_seqs(const struct wd_imap_view *view, struct wd_arena *arena,
			      const struct wd_imap_seqset *uids, struct wd_imap_seqset *seqs_r);
/* The whole view as a UID set (normalised), e.g. for a full re-sync diff or
   a SEARCH over every message. */
int wd_imap_view_to_uidset(const struct wd_imap_view *view, struct wd_arena *arena,
			   struct wd_imap_seqset *uids_r);

/* ---- loading (blocking, worker thread) ---- */

/* What SELECT / EXAMINE report, read together with the view. */
struct wd_imap_mailbox_state {
	uint32_t uid_validity;
	uint32_t uid_next;
	uint64_t highest_modseq;  /* mailbox modifyIndex */
	uint32_t exists;          /* = wd_imap_view_count() */
	uint32_t first_unseen;    /* sequence number of the first unseen message, 0: none */
	char **flags;             /* the mailbox's keywords (`flags`), malloc'd */
	size_t flag_count;
};
void wd_imap_mailbox_state_free(struct wd_imap_mailbox_state *state);

/* Reads the mailbox document (uidValidity, uidNext, modifyIndex, flags),
   then the message UIDs streamed from one cursor sorted by uid. The mailbox
   is read first, so the journal after highest_modseq covers every change the
   scan may have missed (wd_imap_sync ignores what the view already holds).
   WD_STORE_ERR_NOT_FOUND (wd-store-user.h) when the mailbox does not exist. */
int wd_imap_view_load_state(struct wd_store *store, const bson_oid_t *mailbox,
			    struct wd_imap_view **view_r, struct wd_imap_mailbox_state *state_r,
			    char **error_r);
/* The same, keeping only the view and HIGHESTMODSEQ. */
int wd_imap_view_load(struct wd_store *store, const bson_oid_t *mailbox,
		      struct wd_imap_view **view_r, uint64_t *highest_modseq_r, char **error_r);

#endif
