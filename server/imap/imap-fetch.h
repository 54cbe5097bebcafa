#ifndef WD_IMAP_FETCH_H
#define WD_IMAP_FETCH_H

/* FETCH responses (RFC 3501 §6.4.5, §7.4.2; RFC 3516 BINARY; RFC 7162
 * MODSEQ; RFC 8474 EMAILID/THREADID) rendered from message documents.
 *
 * Three layers, each usable alone:
 *
 * 1. wd_imap_fetch_projection() names the document fields the items need,
 *    so a FETCH 1:* FLAGS loads uid, flags and modseq and nothing else.
 * 2. The loader streams the documents of a UID range list of one mailbox,
 *    sorted by UID, a batch at a time from ONE query (a cursor kept open
 *    between batches), so a 1,000,000-message mailbox is never in memory
 *    and FerretDB scans its collection once per FETCH, not once per batch.
 * 3. The message generator writes one "* n FETCH (...)" response as the
 *    output drains: the small items from the document at once; each body
 *    item as a literal whose "{n}" comes from the reader's exact size, then
 *    its bytes pulled a GridFS chunk at a time (storage/wd-store-message.h),
 *    so a 20 MB BODY[] never sits in memory. BINARY decodes base64 and
 *    quoted-printable as it streams; its size (and whether the data holds a
 *    NUL, which makes it a literal8 "~{n}") comes from a first decoding pass
 *    made before the response starts, so an unknown encoding is refused
 *    with NO [UNKNOWN-CTE] before any byte of that message is written.
 *
 * wd_imap_fetch_run ties them together for the session: it loads batches,
 * maps UIDs to sequence numbers from spans the session copied out of its
 * view, sets \Seen for non-PEEK body items on a read-write mailbox (one
 * store call per batch, FLAGS then include \Seen), and renders the
 * responses within an output budget.
 *
 * Threading: every function that takes a wd_store blocks (database and
 * GridFS reads); call them from the worker pool. The objects hold no
 * reference to the session or connection; a job may use one while the
 * loop thread does not, and hand it back. */

#include "imap-fetch-args.h"
#include "wd-store-search.h"
#include "wd-store.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_buffer;

/* What the session has enabled or selected. */
enum wd_imap_fetch_flags {
	WD_IMAP_FETCH_F_UTF8 = 1 << 0,      /* UTF8=ACCEPT: ENVELOPE etc. in their UTF-8 form */
	WD_IMAP_FETCH_F_CONDSTORE = 1 << 1, /* CONDSTORE enabled: MODSEQ with every FLAGS */
	WD_IMAP_FETCH_F_READONLY = 1 << 2,  /* EXAMINE: body items never set \Seen */
};

/* Batch size of the loader when 0 is given. */
#define WD_IMAP_FETCH_BATCH_DEFAULT 500

/* ---- projection ---- */

/* Append to `projection` the fields the items of `args` need: always _id
   and uid; flags, idate, size, modseq, wdc.imap, root, thread as needed. */
void wd_imap_fetch_projection(const struct wd_imap_fetch_args *args, unsigned flags,
			      bson_t *projection);

/* ---- loader ---- */

struct wd_imap_fetch_loader;

/* Documents of `mailbox` whose uid lies in ranges[0..range_count) (first <=
   last, ascending, as wd_search_uid_range; last UINT32_MAX means "*"), with
   modseq > changedsince when changedsince is not 0, sorted by uid. The
   ranges are copied. The loader borrows a database client until destroyed. */
struct wd_imap_fetch_loader *wd_imap_fetch_loader_create(struct wd_store *store,
							 const bson_oid_t *mailbox,
							 const struct wd_search_uid_range *ranges,
							 size_t range_count, const bson_t *projection,
							 uint64_t changedsince, size_t batch_size);
/* The next batch: *docs_r holds *count_r documents (at most batch_size),
   valid until the next call or destroy. *count_r 0 means the end. */
int wd_imap_fetch_loader_next(struct wd_imap_fetch_loader *loader, const bson_t *const **docs_r,
			      size_t *count_r, char **error_r);
void wd_imap_fetch_loader_destroy(struct wd_imap_fetch_loader **loader);

/* ---- one message ---- */

struct wd_imap_fetch_msg;

/* A generator for the FETCH response of the message `doc` (loaded with the
   projection above) at sequence number `seq`. `recent`: the session counts
   it as \Recent. `args` and `doc` must outlive the generator. */
struct wd_imap_fetch_msg *wd_imap_fetch_msg_create(struct wd_store *store,
						   const struct wd_imap_fetch_args *args,
						   unsigned flags, uint32_t seq, const bson_t *doc,
						   bool recent);
/* True when the fetch sets \Seen on this message: a non-PEEK body item on a
   read-write mailbox, and the message is not \Seen yet. */
bool wd_imap_fetch_msg_needs_seen(const struct wd_imap_fetch_msg *msg);
/* The session set \Seen (its new MODSEQ is `modseq`): FLAGS is sent, with
   \Seen, and MODSEQ shows the new value. Call before the first write. */
void wd_imap_fetch_msg_seen_set(struct wd_imap_fetch_msg *msg, uint64_t modseq);
/* Append the response to `out`: WD_OK when it is complete, WD_AGAIN when at
   least `budget` bytes were appended (a step goes past the budget by at most
   one storage chunk, WD_ATTACHMENT_CHUNK_SIZE); call again when the output
   has drained. WD_ERROR with *error_r (malloc'd; text for a tagged NO, e.g.
   "[UNKNOWN-CTE] ..."); if wd_imap_fetch_msg_broken() then says true, part
   of the response was written and the connection must be closed. */
int wd_imap_fetch_msg_write(struct wd_imap_fetch_msg *msg, struct wd_buffer *out, size_t budget,
			    char **error_r);
bool wd_imap_fetch_msg_broken(const struct wd_imap_fetch_msg *msg);
void wd_imap_fetch_msg_destroy(struct wd_imap_fetch_msg **msg);

/* ---- a whole FETCH command ---- */

/* UIDs uid_first..uid_last all exist in the session's view with
   consecutive sequence numbers from seq_first (a run of its UID map). */
struct wd_imap_fetch_span {
	uint32_t uid_first, uid_last;
	uint32_t seq_first;
};

struct wd_imap_fetch_request {
	struct wd_store *store;
	bson_oid_t mailbox;
	const struct wd_imap_fetch_args *args; /* must outlive the run */
	unsigned flags;                        /* enum wd_imap_fetch_flags */
	/* the messages to fetch, ascending and disjoint; copied */
	const struct wd_imap_fetch_span *spans;
	size_t span_count;
	/* UIDs the session counts as \Recent (ascending, disjoint; copied) */
	const struct wd_search_uid_range *recent;
	size_t recent_count;
	const char *session_id; /* journal `ignore` of the \Seen changes, or NULL */
	size_t batch_size;      /* 0: WD_IMAP_FETCH_BATCH_DEFAULT */
};

struct wd_imap_fetch_run;

struct wd_imap_fetch_run *wd_imap_fetch_run_create(const struct wd_imap_fetch_request *request);
/* Append FETCH responses to `out` until at least `budget` bytes were
   appended (WD_AGAIN) or every message was sent (WD_OK). WD_ERROR as
   wd_imap_fetch_msg_write(); wd_imap_fetch_run_broken() tells whether the
   output stopped inside a response. Blocking. */
int wd_imap_fetch_run_step(struct wd_imap_fetch_run *run, struct wd_buffer *out, size_t budget,
			   char **error_r);
bool wd_imap_fetch_run_broken(const struct wd_imap_fetch_run *run);
/* Messages of the spans that no longer exist in the database (expunged by
   another session; RFC 2180 §4.1): they got no response. Without
   CHANGEDSINCE only. */
uint64_t wd_imap_fetch_run_missing(const struct wd_imap_fetch_run *run);
/* The highest MODSEQ given by the \Seen updates of this run (0: none). */
uint64_t wd_imap_fetch_run_seen_modseq(const struct wd_imap_fetch_run *run);
void wd_imap_fetch_run_destroy(struct wd_imap_fetch_run **run);

/* INTERNALDATE "dd-Mon-yyyy hh:mm:ss +0000" (with the quotes) for a time in
   ms since the epoch, in UTC. buf holds at least 29 bytes. */
void wd_imap_fetch_internaldate(int64_t ms, char *buf, size_t size);

#endif
