#ifndef MESSAGE_PIECES_H
#define MESSAGE_PIECES_H

/* Internals of reading stored messages (libwdstore only).
 *
 * A stored message is read as a list of pieces: literal byte runs held in
 * the message document and attachment bodies held in GridFS. Our own
 * documents list them in `wdc.pieces`; a document written by WildDuck is
 * turned into the same list from its `mimeTree` (message-legacy.c), so one
 * reader serves both.
 *
 * `wdc.tree` (message-layout.c) keeps the MIME structure of our documents as
 * byte offsets, so IMAP sections are resolved without fetching or parsing the
 * message: the reader then streams only the section's ranges. */

#include "wd-mime-tree.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_arena;
struct wd_buffer;

struct wd__piece {
	uint64_t offset;         /* where the piece starts in the message */
	uint32_t len;            /* bytes it contributes, exactly */
	const uint8_t *literal;  /* the bytes, or NULL for an attachment */
	const uint8_t *hash;     /* attachment file id (WD_ATTACHMENT_HASH_LEN) */
};

struct wd__pieces {
	struct wd__piece *items;
	size_t count, cap;
	uint64_t size;           /* sum of the lengths */
};

/* Append a piece; literal bytes are referenced, not copied. */
int wd__pieces_add(struct wd__pieces *pieces, const uint8_t *literal, const uint8_t *hash,
		   uint64_t len);
void wd__pieces_free(struct wd__pieces *pieces);

/* ---- wdc.tree: the MIME layout of a message (message-layout.c) ---- */

/* Append the layout of `tree` (every node in pre-order with its kind, header
   and body ranges and number of children). */
int wd__layout_encode(const struct wd_mime_tree *tree, struct wd_buffer *out);
/* Rebuild the node skeleton from a layout, in `arena`: kinds, ranges,
   has_blank_line, children and embedded messages; no header fields and no
   data. Enough for wd_mime_tree_find_part() and wd_mime_section_get() of
   every section type except HEADER.FIELDS(.NOT). Rejects a layout that is
   malformed or does not fit a message of `size` bytes. */
int wd__layout_decode(struct wd_arena *arena, const uint8_t *data, size_t len, uint64_t size,
		      struct wd_mime_tree **tree_r, const char **error_r);

/* ---- documents written by WildDuck (message-legacy.c) ---- */

/* The pieces WildDuck's rebuild() streams for `mime_tree` (reference §3.2),
   cut or padded with spaces to `size` bytes as its IMAP server serves them.
   Header lines are decoded from binary strings into arena memory; bodies
   are referenced in the document, which must outlive the pieces. */
int wd__legacy_pieces(const bson_t *mime_tree, uint64_t size, struct wd_arena *arena,
		      struct wd__pieces *pieces, const char **error_r);

#endif
