/* Walking a MIME tree's pieces: rebuild and invariant checks.
 *
 * The pieces of a tree tile the message, so emitting them in order gives
 * the input back. The walk uses only the tree (ranges and links), never the
 * input as a whole: this is the same walk that will later rebuild a message
 * from separately stored pieces. Recursion follows the tree depth, which
 * the parser bounds. */
#include "wd-mime-tree-private.h"

#include "wd-buffer.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>

static int walk_node(const struct wd_mime_node *node, wd_mime_piece_cb *callback, void *context)
{
	int ret = callback(context, WD_MIME_PIECE_HEADER, node, node->header);
	if (ret != WD_OK)
		return ret;
	switch (node->kind) {
	case WD_MIME_KIND_LEAF:
		return callback(context, WD_MIME_PIECE_BODY, node, node->body);
	case WD_MIME_KIND_MESSAGE:
		return walk_node(node->message, callback, context);
	case WD_MIME_KIND_MULTIPART:
		break;
	}
	ret = callback(context, WD_MIME_PIECE_PREAMBLE, node, node->preamble);
	for (uint32_t i = 0; i < node->child_count && ret == WD_OK; i++) {
		const struct wd_mime_node *child = node->children[i];
		ret = callback(context, WD_MIME_PIECE_DELIMITER, child, child->delimiter);
		if (ret == WD_OK)
			ret = walk_node(child, callback, context);
	}
	if (ret == WD_OK && node->has_close)
		ret = callback(context, WD_MIME_PIECE_CLOSE, node, node->close_delimiter);
	if (ret == WD_OK)
		ret = callback(context, WD_MIME_PIECE_EPILOGUE, node, node->epilogue);
	return ret;
}

int wd_mime_tree_walk(const struct wd_mime_tree *tree, wd_mime_piece_cb *callback,
		      void *context)
{
	return walk_node(tree->root, callback, context);
}

struct rebuild_ctx {
	const uint8_t *data;
	struct wd_buffer *out;
};

static int rebuild_piece(void *context, enum wd_mime_piece piece,
			 const struct wd_mime_node *node, struct wd_mime_range range)
{
	struct rebuild_ctx *ctx = context;
	(void)piece;
	(void)node;
	return wd_buffer_append(ctx->out, ctx->data + range.start, wd_mime_range_len(range));
}

int wd_mime_tree_rebuild(const struct wd_mime_tree *tree, struct wd_buffer *out)
{
	struct rebuild_ctx ctx = { tree->data, out };
	return wd_mime_tree_walk(tree, rebuild_piece, &ctx);
}

size_t wd_mime_tree_exact_size(const struct wd_mime_tree *tree)
{
	return tree->size;
}

/* ---- invariant checks ---- */

struct check_ctx {
	const struct wd_mime_tree *tree;
	uint32_t cursor;
	char error[160];
};

static int check_fail(struct check_ctx *ctx, const struct wd_mime_node *node, const char *what)
{
	snprintf(ctx->error, sizeof(ctx->error), "node at %u (depth %u): %s",
		 node->range.start, node->depth, what);
	return WD_ERROR;
}

static bool range_within(struct wd_mime_range range, struct wd_mime_range outer)
{
	return range.start <= range.end && range.start >= outer.start && range.end <= outer.end;
}

/* The delimiter line after its optional preceding line break: "--" boundary
   then `suffix`. */
static bool delimiter_text_ok(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			      struct wd_mime_range range, const char *suffix)
{
	const uint8_t *p = tree->data + range.start, *end = tree->data + range.end;
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	size_t need = 2 + node->boundary_len + strlen(suffix);
	return (size_t)(end - p) >= need && p[0] == '-' && p[1] == '-' &&
	       memcmp(p + 2, node->boundary, node->boundary_len) == 0 &&
	       memcmp(p + 2 + node->boundary_len, suffix, strlen(suffix)) == 0;
}

static int check_node(struct check_ctx *ctx, const struct wd_mime_node *node)
{
	const struct wd_mime_tree *tree = ctx->tree;
	if (node->header.start != node->range.start || node->header.end != node->body.start ||
	    node->body.end != node->range.end || node->header.start > node->header.end ||
	    node->body.start > node->body.end)
		return check_fail(ctx, node, "header/body do not split the range");
	if (node->depth > tree->limits.max_depth)
		return check_fail(ctx, node, "deeper than the limit");
	for (uint32_t i = 0; i < node->field_count; i++) {
		const struct wd_mime_field *f = &node->fields[i];
		if (!range_within(f->range, node->header) ||
		    (i > 0 && f->range.start != node->fields[i - 1].range.end) ||
		    f->name_start + f->name_len > f->range.end)
			return check_fail(ctx, node, "bad field range");
	}

	switch (node->kind) {
	case WD_MIME_KIND_LEAF:
		if (node->child_count != 0 || node->message != NULL)
			return check_fail(ctx, node, "leaf with children");
		return WD_OK;
	case WD_MIME_KIND_MESSAGE:
		if (node->message == NULL || node->message->parent != node ||
		    node->message->depth != node->depth + 1 ||
		    node->message->range.start != node->body.start ||
		    node->message->range.end != node->body.end)
			return check_fail(ctx, node, "embedded message does not fill the body");
		return check_node(ctx, node->message);
	case WD_MIME_KIND_MULTIPART:
		break;
	}

	if (node->boundary_len == 0 || node->preamble.start != node->body.start ||
	    node->epilogue.end != node->body.end)
		return check_fail(ctx, node, "multipart body not covered");
	uint32_t pos = node->preamble.end;
	const struct wd_mime_node *prev = NULL;
	for (uint32_t i = 0; i < node->child_count; i++) {
		const struct wd_mime_node *child = node->children[i];
		if (child->parent != node || child->depth != node->depth + 1 ||
		    child->index != i + 1 || (prev != NULL && prev->next != child) ||
		    child->delimiter.start != pos || child->delimiter.end != child->range.start)
			return check_fail(ctx, node, "part links or ranges broken");
		if (!delimiter_text_ok(tree, node, child->delimiter, ""))
			return check_fail(ctx, node, "delimiter line does not hold the boundary");
		int ret = check_node(ctx, child);
		if (ret != WD_OK)
			return ret;
		pos = child->range.end;
		prev = child;
	}
	if (prev != NULL && prev->next != NULL)
		return check_fail(ctx, node, "last part has a sibling");
	if (node->has_close) {
		if (node->child_count == 0 || node->close_delimiter.start != pos ||
		    node->close_delimiter.end != node->epilogue.start ||
		    !delimiter_text_ok(tree, node, node->close_delimiter, "--"))
			return check_fail(ctx, node, "bad close delimiter");
	} else if (node->epilogue.start != pos || node->epilogue.start != node->epilogue.end) {
		return check_fail(ctx, node, "epilogue without close delimiter");
	}
	return WD_OK;
}

static int check_piece(void *context, enum wd_mime_piece piece, const struct wd_mime_node *node,
		       struct wd_mime_range range)
{
	struct check_ctx *ctx = context;
	(void)piece;
	if (range.start != ctx->cursor || range.end < range.start || range.end > ctx->tree->size)
		return check_fail(ctx, node, "pieces do not tile the message");
	ctx->cursor = range.end;
	return WD_OK;
}

int wd_mime_tree_check(const struct wd_mime_tree *tree, const char **error_r)
{
	static __thread struct check_ctx ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.tree = tree;
	const struct wd_mime_node *root = tree->root;
	if (root == NULL || root->range.start != 0 || root->range.end != tree->size ||
	    root->parent != NULL || root->depth != 0) {
		*error_r = "root does not cover the message";
		return WD_ERROR;
	}
	if (wd_mime_tree_walk(tree, check_piece, &ctx) != WD_OK ||
	    check_node(&ctx, root) != WD_OK) {
		*error_r = ctx.error;
		return WD_ERROR;
	}
	if (ctx.cursor != tree->size) {
		*error_r = "pieces end before the message does";
		return WD_ERROR;
	}
	return WD_OK;
}
