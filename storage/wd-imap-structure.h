#ifndef WD_IMAP_STRUCTURE_H
#define WD_IMAP_STRUCTURE_H

/* IMAP ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 §7.4.2, §9) computed from
 * a parsed MIME tree (wd-mime-tree.h).
 *
 * Header values are sent raw: unfolded (CR and LF removed, whitespace kept)
 * and trimmed, never RFC 2047 decoded, as Dovecot and WildDuck do. Strings
 * are NIL when absent, quoted when short and plain, literals ({n}CRLF bytes)
 * otherwise. Without WD_IMAP_UTF8 any 8-bit byte forces a literal; with it
 * (the client enabled UTF8=ACCEPT, RFC 6855) valid UTF-8 may be quoted.
 *
 * Address lists are parsed best effort by a small RFC 5322 parser: any input
 * gives some list, never an error. */

#include <stdbool.h>

struct wd_buffer;
struct wd_mime_tree;
struct wd_mime_node;

/* The client enabled UTF8=ACCEPT: quoted strings may carry UTF-8. */
#define WD_IMAP_UTF8 0x1u

/* Append the ENVELOPE of the message rooted at `message_root` (the tree's
   root or an embedded message root) to `out`, from "(" to ")". WD_ERROR only
   when the buffer cannot grow. */
int wd_imap_envelope(const struct wd_mime_tree *tree, const struct wd_mime_node *message_root,
		     unsigned flags, struct wd_buffer *out);

/* Append the body structure of `node` to `out`: BODYSTRUCTURE (with
   extension data: md5, disposition, language, location) when `extensible`,
   the non-extensible BODY form otherwise. WD_ERROR only when the buffer
   cannot grow. */
int wd_imap_bodystructure(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			  bool extensible, unsigned flags, struct wd_buffer *out);

#endif
