/* A message's facts for delivery (wd-message-summary.h).
 *
 * The message is parsed once; the indexed headers, the root's parsedHeader
 * and the maildata (text, attachment list) are then built by the same
 * functions wd_store_message_add() uses for the stored document, into a
 * scratch BSON document that we read back. The attachment leaves are chosen
 * by the store's rule (wd__body_is_attachment) without storing anything, so
 * the list and the text come out as they will be stored. */
#include "wd-message-summary.h"
#include "mime-parsed-header.h"
#include "store-message-private.h"
#include "store-private.h"
#include "wd-arena.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

struct leaves {
	const struct wd_mime_node **nodes;
	size_t count, cap;
};

static int leaf_cb(void *context, enum wd_mime_piece piece, const struct wd_mime_node *node,
		   struct wd_mime_range range)
{
	struct leaves *leaves = context;
	if (piece != WD_MIME_PIECE_BODY || !wd__body_is_attachment(node))
		return WD_OK;
	if (leaves->count == leaves->cap) {
		size_t cap = leaves->cap == 0 ? 8 : leaves->cap * 2;
		const struct wd_mime_node **nodes = realloc(leaves->nodes, cap * sizeof(*nodes));
		if (nodes == NULL)
			return WD_ERROR;
		leaves->nodes = nodes;
		leaves->cap = cap;
	}
	leaves->nodes[leaves->count++] = node;
	return WD_OK;
}

static void read_maildata(const bson_t *doc, struct wd_message_summary *summary)
{
	bson_iter_t iter;
	size_t text_len = 0, footer_len = 0;
	const char *text = "", *footer = "";
	uint32_t n;
	if (bson_iter_init_find(&iter, doc, "text") && BSON_ITER_HOLDS_UTF8(&iter)) {
		text = bson_iter_utf8(&iter, &n);
		text_len = n;
	}
	if (bson_iter_init_find(&iter, doc, "textFooter") && BSON_ITER_HOLDS_UTF8(&iter)) {
		footer = bson_iter_utf8(&iter, &n);
		footer_len = n;
	}
	summary->text = malloc(text_len + footer_len + 1);
	if (summary->text != NULL) {
		memcpy(summary->text, text, text_len);
		memcpy(summary->text + text_len, footer, footer_len);
		summary->text[text_len + footer_len] = '\0';
	}
	bson_iter_t child;
	if (bson_iter_init_find(&iter, doc, "attachments") && BSON_ITER_HOLDS_ARRAY(&iter) &&
	    bson_iter_recurse(&iter, &child)) {
		while (bson_iter_next(&child))
			summary->attachment_count++;
	}
	summary->has_attachments = bson_iter_init_find(&iter, doc, "ha") &&
				   BSON_ITER_HOLDS_BOOL(&iter) && bson_iter_bool(&iter);
}

int wd_message_summary_build(const uint8_t *raw, size_t len, struct wd_message_summary *summary_r,
			     char **error_r)
{
	memset(summary_r, 0, sizeof(*summary_r));
	*error_r = NULL;
	wd__gmime_init();
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *parse_error;
	if (wd_mime_tree_parse(arena, raw, len, NULL, &tree, &parse_error) < 0) {
		*error_r = wd__store_error("cannot parse message: %s", parse_error);
		wd_arena_destroy(&arena);
		return WD_ERROR;
	}
	struct leaves leaves = { 0 };
	int ret = wd_mime_tree_walk(tree, leaf_cb, &leaves);
	summary_r->headers = bson_new();
	summary_r->parsed_header = bson_new();
	if (ret == WD_OK) {
		wd__indexed_headers_append(tree, summary_r->headers, true);
		ret = wd__parsed_header_append(tree, tree->root, true, summary_r->parsed_header);
	}
	if (ret == WD_OK) {
		bson_t maildata = BSON_INITIALIZER;
		wd__maildata_append(tree, leaves.nodes, NULL, leaves.count, true, &maildata);
		read_maildata(&maildata, summary_r);
		bson_destroy(&maildata);
		if (summary_r->text == NULL)
			ret = WD_ERROR;
	}
	free(leaves.nodes);
	wd_arena_destroy(&arena);
	if (ret != WD_OK) {
		wd_message_summary_clear(summary_r);
		*error_r = wd__store_error("cannot summarise message: out of memory or headers too large");
		return WD_ERROR;
	}
	return WD_OK;
}

void wd_message_summary_clear(struct wd_message_summary *summary)
{
	if (summary->headers != NULL)
		bson_destroy(summary->headers);
	if (summary->parsed_header != NULL)
		bson_destroy(summary->parsed_header);
	free(summary->text);
	memset(summary, 0, sizeof(*summary));
}
