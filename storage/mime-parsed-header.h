#ifndef MIME_PARSED_HEADER_H
#define MIME_PARSED_HEADER_H

/* WildDuck's `parsedHeader` object of a mimeTree node (reference §3.1),
 * private to libwdstore. The rules and our deliberate differences are at
 * the top of mime-parsed-header.c. */

#include <bson/bson.h>
#include <stdbool.h>

struct wd_mime_tree;
struct wd_mime_node;

/* Largest parsedHeader we build: MongoDB's document limit, which the whole
   message document must fit in anyway. */
#define WD_PARSED_HEADER_MAX_BSON (16u * 1024u * 1024u)

/* Append every key of `node`'s parsedHeader, in WildDuck's order, to
   `parsed`, a document the caller has begun (bson_append_document_begin)
   and ends. `nul_ok`: the server stores NUL in strings (else NUL becomes
   U+FFFD, see wd__append_text()). Works on any node of any tree
   wd_mime_tree_parse() produced; linear in the node's header size.
   WD_ERROR when memory runs out or the object would pass
   WD_PARSED_HEADER_MAX_BSON; `parsed` then holds a partial object and the
   message cannot be stored. */
int wd__parsed_header_append(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			     bool nul_ok, bson_t *parsed);

#endif
