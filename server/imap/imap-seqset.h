#ifndef WD_IMAP_SEQSET_H
#define WD_IMAP_SEQSET_H

/* IMAP sequence sets (RFC 3501 §9 sequence-set, RFC 5182 "$").
 *
 * A set is parsed into ranges kept as written, with "*" stored as
 * WD_IMAP_SEQ_STAR (UINT32_MAX, the same convention as the store's
 * wd_search_uid_range). What "*" means depends on the mailbox, so
 * normalisation happens in two steps: wd_imap_seqset_resolve() replaces "*"
 * with the largest number in use; wd_imap_seqset_normalize() orders each
 * range, sorts and merges. Membership, counting and iteration expect a
 * normalised set. "$" (the saved search result) is not a range: it sets
 * `saved` and the session substitutes its saved set. */

#include "wd-arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_IMAP_SEQ_STAR UINT32_MAX
/* Default limit on the number of ranges ("1,3,5,..." has one per number). */
#define WD_IMAP_SEQSET_MAX_RANGES_DEFAULT 10000

struct wd_imap_seq_range {
	uint32_t first, last; /* as written before normalisation: 4:2 stays 4:2 */
};

struct wd_imap_seqset {
	struct wd_imap_seq_range *ranges; /* in the arena given at parse */
	size_t count;
	bool saved;    /* "$" */
	bool has_star; /* some range uses "*" */
};

enum wd_imap_seqset_flags {
	WD_IMAP_SEQSET_ALLOW_SAVED = 1 << 0, /* accept "$" (SEARCHRES) */
};

/* Parse str[0..len). max_ranges 0 means the default. */
int wd_imap_seqset_parse(struct wd_arena *arena, const char *str, size_t len,
			 unsigned flags, size_t max_ranges,
			 struct wd_imap_seqset *set_r, const char **error_r);

/* Whether str[0..len) has the shape of a sequence set (digits, ':', ',',
   '*', or "$" alone): used by SEARCH to tell a set from a search key. */
bool wd_imap_seqset_looks_like(const char *str, size_t len);

/* Replace "*" with `star` (the largest number in use; 0 for an empty
   mailbox, where "*" matches nothing), then normalise. */
void wd_imap_seqset_resolve(struct wd_imap_seqset *set, uint32_t star);
/* Order each range, sort, merge overlapping and adjacent ranges; ranges
   that contain 0 (only after resolving with star 0) lose it. */
void wd_imap_seqset_normalize(struct wd_imap_seqset *set);

/* On a normalised set. */
bool wd_imap_seqset_contains(const struct wd_imap_seqset *set, uint32_t n);
uint64_t wd_imap_seqset_count(const struct wd_imap_seqset *set);

struct wd_imap_seqset_iter {
	const struct wd_imap_seqset *set;
	size_t range;
	uint64_t next;
};

void wd_imap_seqset_iter_init(struct wd_imap_seqset_iter *iter, const struct wd_imap_seqset *set);
/* Next number in ascending order; false at the end. */
bool wd_imap_seqset_iter_next(struct wd_imap_seqset_iter *iter, uint32_t *n_r);

#endif
