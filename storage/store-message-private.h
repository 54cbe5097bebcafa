#ifndef STORE_MESSAGE_PRIVATE_H
#define STORE_MESSAGE_PRIVATE_H

/* What store-message.c decides about a message that other files of
 * libwdstore compute again without storing it (message-summary.c), so both
 * use one rule. */

#include <bson/bson.h>
#include <stdbool.h>

struct wd_mime_tree;
struct wd_mime_node;

/* GMime's one-time initialisation, before any GMime call of the store. */
void wd__gmime_init(void);

/* A leaf body that goes to GridFS as an attachment and, unless it is inline
   text, is listed in `attachments` (non-empty, and not inline text or inline
   text over WildDuck's 300 KiB). */
bool wd__body_is_attachment(const struct wd_mime_node *node);

/* Appends the `headers` array (reference §3.4): the root's indexed fields
   (to, cc, subject, from, sender, reply-to, message-id, thread-index,
   list-id, delivered-to) in header order, RFC 2047-decoded, lower-cased,
   list-id reduced to its <id>. */
void wd__indexed_headers_append(const struct wd_mime_tree *tree, bson_t *doc, bool nul_ok);

#endif
