#ifndef WD_IMAP_STRUCTURE_BSON_H
#define WD_IMAP_STRUCTURE_BSON_H

/* WildDuck's cached `envelope` and `bodystructure` fields of a message
 * document (reference §2.9, §3.5): the IMAP ENVELOPE and BODYSTRUCTURE (with
 * extension data) as nested BSON arrays, computed from a parsed MIME tree
 * (wd-mime-tree.h) the way WildDuck's indexer computes them when it stores a
 * message. The element types matter: WildDuck's FETCH turns Binary values
 * into encoded words (or sends them as UTF-8), and sends strings as they are.
 * The shape and our few deliberate differences are described at the top of
 * imap-structure-bson.c.
 *
 * Both functions accept any tree wd_mime_tree_parse() produced and never
 * fail on its content. WD_ERROR means memory ran out or the BSON document
 * grew past its size limit; `parent` may then hold a partial array and must
 * be discarded. */

#include <bson/bson.h>

struct wd_mime_tree;
struct wd_mime_node;

/* Append WildDuck's `envelope` array for the message rooted at
   `message_root` (the tree's root or an embedded message root) to `parent`
   under `key`:
   [date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id]. */
int wd_imap_envelope_bson(const struct wd_mime_tree *tree, const struct wd_mime_node *message_root,
			  bson_t *parent, const char *key);

/* Append WildDuck's `bodystructure` array (extension form) of `node`
   (normally the tree's root) to `parent` under `key`. */
int wd_imap_bodystructure_bson(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			       bson_t *parent, const char *key);

#endif
