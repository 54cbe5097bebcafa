#ifndef WD_IMAP_SEARCH_H
#define WD_IMAP_SEARCH_H

/* SEARCH execution (RFC 3501 §6.4.4) and its responses: SEARCH, ESEARCH
 * (RFC 4731) and the MODSEQ of the matches (RFC 7162 §3.1.5).
 *
 * wd_imap_search_run() takes the storage key tree that
 * wd_imap_search_to_store() built (sequence numbers, "$" and RECENT are UID
 * sets by then), compiles it with wd_search_compile() for what the server
 * can do, and runs ONE query over the mailbox. When the compiler says the
 * query is only a superset (a header WildDuck does not index, BODY, TEXT,
 * FerretDB without $elemMatch on fields), the candidates come with what
 * wd_search_matches() needs to decide (the document's flags, dates, size,
 * indexed headers, and only when the tree asks for them the raw header
 * lines (mimeTree.header) and the text (text + textFooter, else html)), and
 * are filtered here. Otherwise the projection is the UID (and MODSEQ).
 * Matches are kept as a sorted, merged UID range list.
 *
 * Run it on the worker pool (it blocks); format on the loop thread, where
 * the session's view maps UIDs to sequence numbers through the callback. */

#include "wd-buffer.h"
#include "wd-store-search.h"
#include "wd-store.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_imap_search_result {
	struct wd_search_uid_range *ranges; /* matching UIDs, ascending, merged (malloc'd) */
	size_t range_count;
	uint64_t count;           /* number of matching UIDs */
	uint64_t highest_modseq;  /* of the matches; with want_modseq only */
};

/* Search `mailbox` for `key`. Only UIDs up to max_uid (the last UID of the
   session's view; 0 = no limit) are returned, so messages the client has
   not been told about never appear. want_modseq: compute highest_modseq
   (the program used MODSEQ). */
int wd_imap_search_run(struct wd_store *store, const bson_oid_t *mailbox,
		       const struct wd_search_key *key, uint32_t max_uid, bool want_modseq,
		       struct wd_imap_search_result *result_r, char **error_r);
void wd_imap_search_result_free(struct wd_imap_search_result *result);

/* Maps a matching UID to the number the response lists: its sequence
   number (SEARCH) or the UID (UID SEARCH). 0 leaves it out (the view no
   longer holds it). Must be ascending in the UID. NULL means the UID. */
typedef uint32_t wd_imap_search_map_cb(void *context, uint32_t uid);

/* "* SEARCH 2 5 6\r\n", with " (MODSEQ n)" when with_modseq and there are
   matches (RFC 7162). */
int wd_imap_search_format(struct wd_buffer *out, const struct wd_imap_search_result *result,
			  wd_imap_search_map_cb *map, void *context, bool with_modseq);

/* "* ESEARCH (TAG "x") UID MIN 1 MAX 9 COUNT 5 ALL 1:3,5,9 MODSEQ n\r\n"
   (RFC 4731, RFC 7162 §3.1.5). return_options are enum
   wd_imap_search_return bits (imap-search-args.h; SAVE is the session's
   business); 0 means ALL. MIN, MAX and ALL are left out when nothing
   matched, COUNT never is; MODSEQ needs matches too. uid: "UID" after the
   tag (UID SEARCH). */
int wd_imap_esearch_format(struct wd_buffer *out, const char *tag, bool uid,
			   unsigned return_options, const struct wd_imap_search_result *result,
			   wd_imap_search_map_cb *map, void *context, bool with_modseq);

/* Append a set as IMAP writes it: "1:3,5,9" (ascending numbers; empty
   appends nothing). For callers that already have the numbers. */
int wd_imap_search_format_set(struct wd_buffer *out, const struct wd_search_uid_range *ranges,
			      size_t count);

#endif
