#ifndef WD_IMAP_FETCH_ARGS_H
#define WD_IMAP_FETCH_ARGS_H

/* FETCH attributes and modifiers (RFC 3501 §6.4.5, RFC 3516 BINARY,
 * RFC 7162 CONDSTORE/QRESYNC, RFC 8474 OBJECTID) → one struct.
 *
 * Simple attributes become bits in `items`; the macros ALL, FAST and FULL
 * expand to theirs. Every attribute that returns message bytes (BODY[...],
 * BODY.PEEK[...], BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...], RFC822,
 * RFC822.HEADER, RFC822.TEXT) becomes one wd_imap_fetch_body with the
 * section parsed by wd_mime_section_spec_parse(), the partial range, and
 * the name to answer with ("BODY[HEADER]<0>", "RFC822.TEXT"...).
 * UID FETCH always returns UID; CHANGEDSINCE always returns MODSEQ. */

#include "imap-parser.h"
#include "wd-arena.h"
#include "wd-mime-tree.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wd_imap_fetch_item {
	WD_IMAP_FETCH_FLAGS = 1 << 0,
	WD_IMAP_FETCH_INTERNALDATE = 1 << 1,
	WD_IMAP_FETCH_RFC822_SIZE = 1 << 2,
	WD_IMAP_FETCH_ENVELOPE = 1 << 3,
	WD_IMAP_FETCH_BODY = 1 << 4,          /* BODY without a section: structure */
	WD_IMAP_FETCH_BODYSTRUCTURE = 1 << 5,
	WD_IMAP_FETCH_UID = 1 << 6,
	WD_IMAP_FETCH_MODSEQ = 1 << 7,
	WD_IMAP_FETCH_EMAILID = 1 << 8,
	WD_IMAP_FETCH_THREADID = 1 << 9,
};

enum wd_imap_fetch_body_kind {
	WD_IMAP_FETCH_SECTION,     /* BODY[...] / BODY.PEEK[...] */
	WD_IMAP_FETCH_BINARY,      /* BINARY[...] / BINARY.PEEK[...]: decoded content */
	WD_IMAP_FETCH_BINARY_SIZE, /* BINARY.SIZE[...] */
	WD_IMAP_FETCH_RFC822,      /* RFC822, RFC822.HEADER, RFC822.TEXT (section in spec) */
};

struct wd_imap_fetch_body {
	enum wd_imap_fetch_body_kind kind;
	bool peek;                 /* does not set \Seen */
	const char *section;       /* text between the brackets, as sent */
	struct wd_mime_section_spec spec;
	bool partial;
	uint64_t offset, length;   /* <offset.length>, length ≥ 1 */
	const char *response_name; /* e.g. "BODY[1.TEXT]<100>", "BINARY.SIZE[2]", "RFC822" */
};

struct wd_imap_fetch_args {
	uint32_t items; /* enum wd_imap_fetch_item */
	struct wd_imap_fetch_body *bodies;
	size_t body_count;
	bool sets_seen; /* some non-peek body: the command sets \Seen */
	bool changedsince_set;
	uint64_t changedsince;
	bool vanished; /* UID FETCH ... (CHANGEDSINCE n VANISHED) */
};

#define WD_IMAP_FETCH_MAX_BODIES 64

/* args[0..count) are the arguments after the sequence set: one attribute
   or a list of them, then an optional list of modifiers. `uid` for UID
   FETCH. */
int wd_imap_fetch_args_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			     bool uid, struct wd_imap_fetch_args *fetch_r, const char **error_r);

#endif
