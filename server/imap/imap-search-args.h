#ifndef WD_IMAP_SEARCH_ARGS_H
#define WD_IMAP_SEARCH_ARGS_H

/* SEARCH programs (RFC 3501 §6.4.4, RFC 4731 ESEARCH RETURN, RFC 5182
 * SEARCHRES "$", RFC 7162 MODSEQ) in two steps.
 *
 * 1. wd_imap_search_parse() turns the arguments into an intermediate key
 *    tree that keeps what only the session can interpret as it was
 *    written: sequence sets (numbers and "*"), "$", RECENT, NEW and OLD.
 *    It needs nothing but the arguments, so it is tested and fuzzed alone.
 * 2. wd_imap_search_to_store() takes the session's view (UIDs by sequence
 *    number, the saved result, the \Recent UIDs) and builds the storage
 *    key tree of storage/wd-store-search.h, where every message set is a
 *    UID range list.
 *
 * Both steps allocate in the caller's arena (the command's). Depth and key
 * count are bounded so that "NOT NOT NOT ..." cannot exhaust the stack. */

#include "imap-parser.h"
#include "imap-seqset.h"
#include "wd-arena.h"
#include "wd-store-search.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wd_imap_search_type {
	WD_IMAP_SEARCH_ALL,
	WD_IMAP_SEARCH_AND,    /* children */
	WD_IMAP_SEARCH_OR,     /* two children */
	WD_IMAP_SEARCH_NOT,    /* one child */
	WD_IMAP_SEARCH_SEQSET, /* set: sequence numbers, or set.saved for "$" */
	WD_IMAP_SEARCH_UIDSET, /* set: UIDs, or set.saved for "UID $" */
	WD_IMAP_SEARCH_FLAG,   /* flag, flag_set */
	WD_IMAP_SEARCH_RECENT,
	WD_IMAP_SEARCH_NEW,    /* RECENT and not \Seen */
	WD_IMAP_SEARCH_OLD,    /* not RECENT */
	WD_IMAP_SEARCH_HEADER, /* name, value (FROM, TO, CC, BCC, SUBJECT too) */
	WD_IMAP_SEARCH_BODY,   /* value */
	WD_IMAP_SEARCH_TEXT,   /* value */
	WD_IMAP_SEARCH_BEFORE, /* day_ms: internal date */
	WD_IMAP_SEARCH_ON,
	WD_IMAP_SEARCH_SINCE,
	WD_IMAP_SEARCH_SENTBEFORE, /* day_ms: Date: header */
	WD_IMAP_SEARCH_SENTON,
	WD_IMAP_SEARCH_SENTSINCE,
	WD_IMAP_SEARCH_LARGER, /* number */
	WD_IMAP_SEARCH_SMALLER,
	WD_IMAP_SEARCH_MODSEQ, /* number, optional modseq_entry and modseq_type */
};

struct wd_imap_search_key {
	enum wd_imap_search_type type;
	struct wd_imap_search_key **children;
	size_t child_count;
	struct wd_imap_seqset set;
	const char *flag; /* "\\Seen", or a keyword */
	bool flag_set;    /* SEEN: true, UNSEEN: false */
	const char *name; /* HEADER field name */
	const char *value;
	int64_t day_ms;   /* 00:00 UTC of the day, in ms since the epoch */
	uint64_t number;
	const char *modseq_entry; /* "/flags/\\draft" */
	const char *modseq_type;  /* "priv", "shared" or "all" (lower case) */
};

enum wd_imap_search_return {
	WD_IMAP_SEARCH_RETURN_MIN = 1 << 0,
	WD_IMAP_SEARCH_RETURN_MAX = 1 << 1,
	WD_IMAP_SEARCH_RETURN_ALL = 1 << 2,
	WD_IMAP_SEARCH_RETURN_COUNT = 1 << 3,
	WD_IMAP_SEARCH_RETURN_SAVE = 1 << 4,
};

struct wd_imap_search_program {
	struct wd_imap_search_key *root; /* an AND of the criteria */
	const char *charset;             /* as given, or NULL */
	bool esearch;                    /* RETURN (...) was given: answer ESEARCH */
	unsigned return_options;         /* enum wd_imap_search_return; "RETURN ()" is ALL */
	bool uses_modseq;                /* a MODSEQ key: answer with (MODSEQ n) */
	bool uses_saved;                 /* "$" appears */
	bool bad_charset;                /* on error: answer NO [BADCHARSET (UTF-8 US-ASCII)] */
};

struct wd_imap_search_limits {
	unsigned max_depth;  /* nesting of (), NOT and OR (default 32) */
	unsigned max_keys;   /* search keys in one program (default 1000) */
	size_t max_ranges;   /* ranges in one sequence set (default 10000) */
};

/* args[0..count): the arguments of SEARCH (of UID SEARCH too). NULL limits
   means the defaults. */
int wd_imap_search_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			 const struct wd_imap_search_limits *limits,
			 struct wd_imap_search_program *program_r, const char **error_r);

/* What the session knows of the selected mailbox. */
struct wd_imap_view;
struct wd_imap_search_view {
	const struct wd_imap_view *view;    /* sequence numbers ↔ UIDs; NULL: empty */
	const struct wd_imap_seqset *saved; /* saved result ("$") as UIDs, normalised; NULL: empty */
	const uint32_t *recent;             /* UIDs with \Recent, ascending */
	size_t recent_count;
};

/* Build the storage key tree. Sequence numbers past the view match
   nothing; "*" is the last message (of the view); an empty set becomes
   NOT ALL. */
int wd_imap_search_to_store(struct wd_arena *arena, const struct wd_imap_search_key *key,
			    const struct wd_imap_search_view *view,
			    struct wd_search_key **key_r, const char **error_r);

#endif
