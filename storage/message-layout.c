/* wdc.tree: the MIME layout of a stored message, as byte offsets.
 *
 * Written once when the message is stored, from the same parse that split
 * it into pieces, so BODY[section] is resolved from the document alone: no
 * GridFS read and no parse of the message (only HEADER.FIELDS reads the
 * header block it filters). The offsets are positions in the exact message
 * bytes, so a section is a list of ranges the reader streams.
 *
 * Format: one version byte (1), then every node in pre-order, 21 bytes each,
 * little-endian: flags (bits 0-1 kind, bit 2 has_blank_line), header.start,
 * header.end, body.start, body.end, child count. A multipart's children
 * follow it; a message/rfc822 node is followed by its embedded message root.
 * 1000 parts cost 21 KB; the parser caps parts at 20000.
 *
 * The decoder trusts nothing: the layout comes from the database. Every
 * range must lie inside its parent's body and inside the message, depth and
 * node count are bounded, and any violation rejects the layout (the reader
 * then falls back to parsing the message). */
#include "message-pieces.h"

#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

#define LAYOUT_VERSION 1
#define NODE_BYTES 21
#define FLAG_KIND_MASK 0x3u
#define FLAG_BLANK_LINE 0x4u
/* Embedded messages add a level per message/rfc822 part. */
#define MAX_DEPTH (2 * WD_MIME_MAX_DEPTH_CAP + 2)

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int encode_node(const struct wd_mime_node *node, struct wd_buffer *out)
{
	uint8_t *p = wd_buffer_reserve(out, NODE_BYTES);
	if (p == NULL)
		return WD_ERROR;
	p[0] = (uint8_t)((unsigned)node->kind | (node->has_blank_line ? FLAG_BLANK_LINE : 0));
	put_u32(p + 1, node->header.start);
	put_u32(p + 5, node->header.end);
	put_u32(p + 9, node->body.start);
	put_u32(p + 13, node->body.end);
	put_u32(p + 17, node->kind == WD_MIME_KIND_MULTIPART ? node->child_count : 0);
	wd_buffer_commit(out, NODE_BYTES);
	if (node->kind == WD_MIME_KIND_MESSAGE)
		return encode_node(node->message, out);
	for (uint32_t i = 0; node->kind == WD_MIME_KIND_MULTIPART && i < node->child_count; i++) {
		if (encode_node(node->children[i], out) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

int wd__layout_encode(const struct wd_mime_tree *tree, struct wd_buffer *out)
{
	uint8_t version = LAYOUT_VERSION;
	if (wd_buffer_append(out, &version, 1) < 0)
		return WD_ERROR;
	return encode_node(tree->root, out);
}

struct decoder {
	struct wd_arena *arena;
	const uint8_t *data;
	size_t len, pos;
	uint32_t parts;
	const char *error;
};

static struct wd_mime_node *decode_node(struct decoder *d, struct wd_mime_node *parent,
					struct wd_mime_range within, uint32_t depth)
{
	if (depth > MAX_DEPTH) {
		d->error = "layout nests too deep";
		return NULL;
	}
	if (d->len - d->pos < NODE_BYTES) {
		d->error = "layout is truncated";
		return NULL;
	}
	const uint8_t *p = d->data + d->pos;
	d->pos += NODE_BYTES;
	struct wd_mime_node *node = wd_arena_zalloc(d->arena, sizeof(*node));
	if (node == NULL) {
		d->error = "out of memory";
		return NULL;
	}
	unsigned kind = p[0] & FLAG_KIND_MASK;
	node->header = (struct wd_mime_range){ get_u32(p + 1), get_u32(p + 5) };
	node->body = (struct wd_mime_range){ get_u32(p + 9), get_u32(p + 13) };
	uint32_t children = get_u32(p + 17);
	if (kind > WD_MIME_KIND_MESSAGE || (p[0] & ~(FLAG_KIND_MASK | FLAG_BLANK_LINE)) != 0 ||
	    node->header.start < within.start || node->header.start > node->header.end ||
	    node->header.end > node->body.start || node->body.start > node->body.end ||
	    node->body.end > within.end) {
		d->error = "layout has a bad node";
		return NULL;
	}
	node->kind = (enum wd_mime_kind)kind;
	node->has_blank_line = (p[0] & FLAG_BLANK_LINE) != 0;
	node->range = (struct wd_mime_range){ node->header.start, node->body.end };
	node->parent = parent;
	node->depth = depth;
	node->index = 1;
	d->parts++;

	if (node->kind == WD_MIME_KIND_MESSAGE) {
		node->message = decode_node(d, node, node->body, depth + 1);
		return node->message != NULL ? node : NULL;
	}
	if (node->kind != WD_MIME_KIND_MULTIPART)
		return node;
	/* Each child takes NODE_BYTES, which bounds the count by the input. */
	if (children > (d->len - d->pos) / NODE_BYTES) {
		d->error = "layout is truncated";
		return NULL;
	}
	node->children = wd_arena_alloc(d->arena, (children + 1) * sizeof(*node->children));
	if (node->children == NULL) {
		d->error = "out of memory";
		return NULL;
	}
	node->child_count = children;
	for (uint32_t i = 0; i < children; i++) {
		struct wd_mime_node *child = decode_node(d, node, node->body, depth + 1);
		if (child == NULL)
			return NULL;
		child->index = i + 1;
		if (i > 0)
			node->children[i - 1]->next = child;
		node->children[i] = child;
	}
	return node;
}

int wd__layout_decode(struct wd_arena *arena, const uint8_t *data, size_t len, uint64_t size,
		      struct wd_mime_tree **tree_r, const char **error_r)
{
	if (len < 1 || data[0] != LAYOUT_VERSION) {
		*error_r = "unknown layout version";
		return WD_ERROR;
	}
	if (size > WD_MIME_MAX_MESSAGE_SIZE) {
		*error_r = "message too large for a layout";
		return WD_ERROR;
	}
	struct decoder d = { .arena = arena, .data = data, .len = len, .pos = 1 };
	struct wd_mime_range whole = { 0, (uint32_t)size };
	struct wd_mime_node *root = decode_node(&d, NULL, whole, 0);
	if (root == NULL) {
		*error_r = d.error;
		return WD_ERROR;
	}
	if (d.pos != len || root->range.start != 0 || root->range.end != size) {
		*error_r = "layout does not cover the message";
		return WD_ERROR;
	}
	struct wd_mime_tree *tree = wd_arena_zalloc(arena, sizeof(*tree));
	if (tree == NULL) {
		*error_r = "out of memory";
		return WD_ERROR;
	}
	tree->size = size;
	tree->root = root;
	tree->part_count = d.parts;
	*tree_r = tree;
	return WD_OK;
}
