#ifndef WD_IMAP_MAILBOX_ARGS_H
#define WD_IMAP_MAILBOX_ARGS_H

/* Arguments of the mailbox commands:
 *   SELECT / EXAMINE mailbox [(CONDSTORE | QRESYNC (...))]   RFC 3501, 7162
 *   LIST [(selection)] reference pattern(s) [RETURN (...)]   RFC 5258, 5819, 6154
 *   STATUS mailbox (items)                                   RFC 3501, 7162, 8438, 7889, 8474
 * Mailbox names and patterns are returned as sent (astrings): turning
 * mUTF-7 into UTF-8 depends on whether the session enabled UTF8=ACCEPT,
 * which the handler knows (see imap-utf7.h). */

#include "imap-parser.h"
#include "imap-seqset.h"
#include "wd-arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_imap_select_args {
	const char *mailbox;
	size_t mailbox_len;
	bool condstore;
	bool qresync;
	/* QRESYNC (uidvalidity modseq [known-uids] [(known-seqs known-seq-uids)]) */
	uint32_t uidvalidity;
	uint64_t modseq;
	struct wd_imap_seqset known_uids;     /* count 0 when not given */
	bool has_seq_match;
	struct wd_imap_seqset known_seqs;     /* sequence numbers ... */
	struct wd_imap_seqset known_seq_uids; /* ... and their UIDs, pairwise */
};

/* args: all arguments of SELECT or EXAMINE. */
int wd_imap_select_args_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			      struct wd_imap_select_args *select_r, const char **error_r);

enum wd_imap_status_item {
	WD_IMAP_STATUS_MESSAGES = 1 << 0,
	WD_IMAP_STATUS_RECENT = 1 << 1,
	WD_IMAP_STATUS_UIDNEXT = 1 << 2,
	WD_IMAP_STATUS_UIDVALIDITY = 1 << 3,
	WD_IMAP_STATUS_UNSEEN = 1 << 4,
	WD_IMAP_STATUS_HIGHESTMODSEQ = 1 << 5,
	WD_IMAP_STATUS_SIZE = 1 << 6,
	WD_IMAP_STATUS_APPENDLIMIT = 1 << 7,
	WD_IMAP_STATUS_MAILBOXID = 1 << 8,
	WD_IMAP_STATUS_DELETED = 1 << 9,
};

/* A parenthesised list of status items (STATUS, LIST ... RETURN (STATUS (...))). */
int wd_imap_status_items_parse(const struct wd_imap_arg *arg, unsigned *items_r,
			       const char **error_r);

enum wd_imap_list_select {
	WD_IMAP_LIST_SELECT_SUBSCRIBED = 1 << 0,
	WD_IMAP_LIST_SELECT_REMOTE = 1 << 1,
	WD_IMAP_LIST_SELECT_RECURSIVEMATCH = 1 << 2,
	WD_IMAP_LIST_SELECT_SPECIAL_USE = 1 << 3,
};

enum wd_imap_list_return {
	WD_IMAP_LIST_RETURN_SUBSCRIBED = 1 << 0,
	WD_IMAP_LIST_RETURN_CHILDREN = 1 << 1,
	WD_IMAP_LIST_RETURN_SPECIAL_USE = 1 << 2,
	WD_IMAP_LIST_RETURN_STATUS = 1 << 3,
};

#define WD_IMAP_LIST_MAX_PATTERNS 100

struct wd_imap_list_args {
	bool extended;        /* LIST-EXTENDED syntax was used: answer in its form */
	unsigned select;      /* enum wd_imap_list_select */
	unsigned return_opts; /* enum wd_imap_list_return */
	unsigned status_items;
	const char *reference;
	const char **patterns; /* one or more; "" is allowed (hierarchy delimiter query) */
	size_t pattern_count;
};

/* args: all arguments of LIST (or LSUB, which takes no options). */
int wd_imap_list_args_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			    struct wd_imap_list_args *list_r, const char **error_r);

#endif
