#ifndef WD_STORE_SEARCH_H
#define WD_STORE_SEARCH_H

/* IMAP SEARCH (RFC 3501 §6.4.4 + RFC 7162 MODSEQ) over WildDuck's message
 * documents, without $text (reference §4.12, DESIGN.md §3).
 *
 * The IMAP layer parses a search program into this key tree (sequence
 * numbers, RECENT/NEW/OLD and $ already turned into UID sets by the
 * session). wd_search_compile() turns it into a MongoDB filter with RFC
 * substring semantics: case-insensitive, regex-escaped $regex on the indexed
 * headers. Keys the database cannot decide exactly (a header WildDuck does
 * not index, BODY and TEXT over the whole message) compile to a superset and
 * set *residual_r: the caller then runs wd_search_matches() on each candidate
 * with the message's data, which decides the full key tree exactly. */

#include "wd-store.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wd_search_op {
	WD_SEARCH_ALL,
	WD_SEARCH_AND,       /* children */
	WD_SEARCH_OR,        /* children (IMAP OR is binary; any count works) */
	WD_SEARCH_NOT,       /* child */
	WD_SEARCH_UID,       /* ranges */
	WD_SEARCH_FLAG,      /* flag: a system flag or keyword; set: true = has it */
	WD_SEARCH_HEADER,    /* name, value (FROM/TO/CC/BCC/SUBJECT become HEADER) */
	WD_SEARCH_BODY,      /* value */
	WD_SEARCH_TEXT,      /* value (headers and body) */
	WD_SEARCH_BEFORE,    /* internal date, day in ms at 00:00 UTC */
	WD_SEARCH_ON,
	WD_SEARCH_SINCE,
	WD_SEARCH_SENTBEFORE, /* Date: header */
	WD_SEARCH_SENTON,
	WD_SEARCH_SENTSINCE,
	WD_SEARCH_LARGER,    /* size */
	WD_SEARCH_SMALLER,
	WD_SEARCH_MODSEQ,    /* modseq >= number */
};

struct wd_search_uid_range {
	uint32_t first, last; /* inclusive; last = UINT32_MAX for "*" */
};

struct wd_search_key {
	enum wd_search_op op;
	struct wd_search_key **children; /* AND, OR, NOT (one child) */
	size_t child_count;
	const struct wd_search_uid_range *ranges;
	size_t range_count;
	const char *flag;  /* "\\Seen", "\\Answered", "$Forwarded"... */
	bool set;
	const char *name;  /* HEADER field name */
	const char *value; /* HEADER, BODY, TEXT substring (UTF-8) */
	int64_t day_ms;
	uint64_t number;   /* LARGER, SMALLER, MODSEQ */
};

/* Appends the filter for `key` to `query` (which should already hold
   {mailbox: …}), using what the server supports (`caps`). *residual_r says
   whether candidates must be re-checked with wd_search_matches(). */
void wd_search_compile(const struct wd_search_key *key, const struct wd_store_caps *caps,
		       bson_t *query, bool *residual_r);

/* What the evaluator needs to know about one message. */
struct wd_search_message {
	const bson_t *doc;       /* the messages document (flags, uid, size, dates, headers) */
	/* Raw header fields of the message, unfolded, "Name: value" (from
	   mimeTree.header), and the decoded text of the body for BODY/TEXT;
	   NULL when the caller did not load them. */
	const char *const *header_lines;
	size_t header_line_count;
	const char *body_text;
};

bool wd_search_matches(const struct wd_search_key *key, const struct wd_search_message *msg);

/* Lower-cases UTF-8 text (ASCII and Latin/Greek/Cyrillic ranges through
   towlower) into a malloc'd string, and escapes a string for $regex. */
char *wd_search_fold(const char *text);
char *wd_search_regex_escape(const char *text);

#endif
