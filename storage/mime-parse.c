/* MIME structure parser: partitions a message into header blocks, bodies,
 * preambles, delimiter lines, close delimiters and epilogues (see the design
 * comment in wd-mime-tree.h for the rules).
 *
 * The parse is top-down: an entity's header block is read, then, if it is a
 * multipart, its body is split on its own boundary into parts whose ranges
 * are final before any of them is parsed; each part is then parsed within
 * its range. Splitting first is what makes outer boundaries win and what
 * lets the part limit leave "the rest" in the last part: a part's extent
 * never changes after it has been parsed. Recursion depth is the tree depth,
 * bounded by max_depth (clamped to WD_MIME_MAX_DEPTH_CAP).
 *
 * The only failure is running out of memory; every input yields a tree. */
#include "wd-mime-tree-private.h"

#include "wd-arena.h"
#include "wd-result.h"
#include "wd-str.h"

#include <stdlib.h>
#include <string.h>

/* The Content-* fields the parser reads; the last occurrence wins. */
enum slot {
	SLOT_TYPE,
	SLOT_DISPOSITION,
	SLOT_ENCODING,
	SLOT_ID,
	SLOT_DESCRIPTION,
	SLOT_COUNT
};

static const struct {
	const char *name;
	uint32_t len;
} slot_names[SLOT_COUNT] = {
	[SLOT_TYPE] = { "content-type", 12 },
	[SLOT_DISPOSITION] = { "content-disposition", 19 },
	[SLOT_ENCODING] = { "content-transfer-encoding", 25 },
	[SLOT_ID] = { "content-id", 10 },
	[SLOT_DESCRIPTION] = { "content-description", 19 },
};

struct field_slot {
	uint32_t value_start;
	uint32_t end;
	bool set;
};

struct parse_ctx {
	struct wd_arena *arena;
	const uint8_t *data;
	struct wd_mime_tree *tree;
	uint32_t parts_left;
	uint32_t fields_left;
	/* Fields of the node being read; copied to the arena at its exact size. */
	struct wd_mime_field *scratch;
	size_t scratch_cap;
	bool oom;
};

static const struct wd_mime_content default_text_plain = {
	.value = "text/plain", .type = "text", .subtype = "plain",
};
static const struct wd_mime_content default_message_rfc822 = {
	.value = "message/rfc822", .type = "message", .subtype = "rfc822",
};
static const struct wd_mime_content no_disposition = {
	.value = "", .type = "", .subtype = "",
};

void wd_mime_limits_init(struct wd_mime_limits *limits_r)
{
	const struct wd_mime_limits defaults = WD_MIME_LIMITS_DEFAULT;
	*limits_r = defaults;
}

uint32_t wd__mime_count_terminators(const uint8_t *data, uint32_t start, uint32_t end)
{
	uint32_t count = 0, i = start;
	while (i < end) {
		const uint8_t *p = data + i;
		/* Most bytes are text: let memchr skip to the next LF and count
		   CRs only when one is in between. */
		const uint8_t *lf = memchr(p, '\n', end - i);
		uint32_t stop = lf == NULL ? end : (uint32_t)(lf - data);
		const uint8_t *cr = memchr(p, '\r', stop - i);
		if (cr == NULL) {
			if (lf == NULL)
				break;
			count++;
			i = stop + 1;
			continue;
		}
		/* CRs before the LF: each run not directly followed by the LF is
		   made of lone CRs; the run touching the LF joins it. */
		uint32_t j = (uint32_t)(cr - data);
		while (j < stop) {
			if (data[j] == '\r') {
				uint32_t q = j;
				while (q < stop && data[q] == '\r')
					q++;
				if (q == stop && lf != NULL) {
					j = q;
					break;
				}
				count += q - j;
				j = q;
			} else {
				j++;
			}
		}
		if (lf == NULL)
			break;
		count++;
		i = stop + 1;
	}
	return count;
}

static struct wd_mime_node *node_new(struct parse_ctx *ctx, struct wd_mime_node *parent,
				     uint32_t depth, uint32_t start, uint32_t end)
{
	struct wd_mime_node *node = wd_arena_zalloc(ctx->arena, sizeof(*node));
	if (node == NULL) {
		ctx->oom = true;
		return NULL;
	}
	node->kind = WD_MIME_KIND_LEAF;
	node->parent = parent;
	node->depth = depth;
	node->index = 1;
	node->range.start = start;
	node->range.end = end;
	node->delimiter.start = node->delimiter.end = start;
	node->content_type = default_text_plain;
	node->disposition = no_disposition;
	ctx->tree->part_count++;
	return node;
}

static bool is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static bool padding_only(const uint8_t *data, uint32_t start, uint32_t end)
{
	for (uint32_t i = start; i < end; i++) {
		if (!is_wsp(data[i]))
			return false;
	}
	return true;
}

static void finish_field(struct parse_ctx *ctx, struct wd_mime_node *node,
			 const struct wd_mime_field *field, bool has_colon, uint32_t *count,
			 uint32_t limit, struct field_slot *slots)
{
	struct wd_mime_field f = *field;
	if (!has_colon)
		f.value_start = f.range.end;

	if (f.name_len > 0) {
		for (int i = 0; i < SLOT_COUNT; i++) {
			if (f.name_len == slot_names[i].len &&
			    wd_mem_eq_nocase(ctx->data + f.name_start, slot_names[i].name,
					     f.name_len)) {
				slots[i].value_start = f.value_start;
				slots[i].end = f.range.end;
				slots[i].set = true;
				break;
			}
		}
	}

	if (*count >= limit) {
		node->fields_truncated = true;
		if (*count >= ctx->fields_left)
			ctx->tree->fields_capped = true;
		return;
	}
	if (*count == ctx->scratch_cap) {
		size_t cap = ctx->scratch_cap == 0 ? 32 : ctx->scratch_cap * 2;
		struct wd_mime_field *scratch = realloc(ctx->scratch, cap * sizeof(*scratch));
		if (scratch == NULL) {
			ctx->oom = true;
			return;
		}
		ctx->scratch = scratch;
		ctx->scratch_cap = cap;
	}
	ctx->scratch[(*count)++] = f;
}

static int parse_facts(struct parse_ctx *ctx, struct wd_mime_node *node,
		       const struct field_slot *slots)
{
	struct wd_arena *arena = ctx->arena;
	const uint8_t *data = ctx->data;
	size_t len;

	if (slots[SLOT_TYPE].set) {
		char *value = wd__mime_unfold(arena, data, slots[SLOT_TYPE].value_start,
					      slots[SLOT_TYPE].end, &len);
		if (value == NULL ||
		    wd__mime_parse_content(arena, (const uint8_t *)value, len, false,
					   &node->content_type) < 0)
			return WD_ERROR;
		const struct wd_mime_param *charset =
			wd_mime_content_param(&node->content_type, "charset");
		if (charset != NULL)
			node->charset = charset->value;
	} else if (node->parent != NULL && node->parent->kind == WD_MIME_KIND_MULTIPART &&
		   strcmp(node->parent->content_type.subtype, "digest") == 0) {
		node->content_type = default_message_rfc822;
	}
	if (slots[SLOT_DISPOSITION].set) {
		char *value = wd__mime_unfold(arena, data, slots[SLOT_DISPOSITION].value_start,
					      slots[SLOT_DISPOSITION].end, &len);
		if (value == NULL ||
		    wd__mime_parse_content(arena, (const uint8_t *)value, len, true,
					   &node->disposition) < 0)
			return WD_ERROR;
	}
	if (slots[SLOT_ENCODING].set) {
		node->transfer_encoding = wd__mime_unfold_lower(
			arena, data, slots[SLOT_ENCODING].value_start, slots[SLOT_ENCODING].end);
		if (node->transfer_encoding == NULL)
			return WD_ERROR;
	}
	if (slots[SLOT_ID].set) {
		node->content_id = wd__mime_unfold(arena, data, slots[SLOT_ID].value_start,
						   slots[SLOT_ID].end, &len);
		if (node->content_id == NULL)
			return WD_ERROR;
	}
	if (slots[SLOT_DESCRIPTION].set) {
		node->description = wd__mime_unfold(arena, data, slots[SLOT_DESCRIPTION].value_start,
						    slots[SLOT_DESCRIPTION].end, &len);
		if (node->description == NULL)
			return WD_ERROR;
	}
	return WD_OK;
}

/* Read the header block of `node` (whose range is set): fields, facts, and
   the header/body split. */
static void parse_header(struct parse_ctx *ctx, struct wd_mime_node *node)
{
	const uint8_t *data = ctx->data;
	struct field_slot slots[SLOT_COUNT];
	memset(slots, 0, sizeof(slots));
	uint32_t limit = ctx->tree->limits.max_header_fields;
	if (limit > ctx->fields_left)
		limit = ctx->fields_left;

	struct wd_mime_line_reader reader;
	struct wd_mime_line line;
	struct wd_mime_field field;
	bool open = false, has_colon = false;
	uint32_t count = 0, header_end = node->range.end;

	wd__mime_lines_init(&reader, data, node->range.start, node->range.end);
	while (wd__mime_lines_next(&reader, &line) && !ctx->oom) {
		if (line.text_end == line.start) {
			/* The empty line ends the header; without a terminator
			   it is just the end of the entity. */
			header_end = line.end;
			node->has_blank_line = line.end > line.text_end;
			break;
		}
		if (open && is_wsp(data[line.start])) {
			field.range.end = line.end;
			continue;
		}
		if (open)
			finish_field(ctx, node, &field, has_colon, &count, limit, slots);
		open = true;
		field.range.start = line.start;
		field.range.end = line.end;
		/* Only a first line can start with whitespace here. */
		uint32_t name_start = line.start;
		while (name_start < line.text_end && is_wsp(data[name_start]))
			name_start++;
		const uint8_t *colon = memchr(data + name_start, ':', line.text_end - name_start);
		has_colon = colon != NULL;
		field.name_start = name_start;
		field.name_len = 0;
		field.value_start = line.end;
		if (has_colon) {
			uint32_t name_end = (uint32_t)(colon - data);
			while (name_end > name_start && is_wsp(data[name_end - 1]))
				name_end--;
			field.name_len = name_end - name_start;
			field.value_start = (uint32_t)(colon - data) + 1;
		}
	}
	if (open && !ctx->oom)
		finish_field(ctx, node, &field, has_colon, &count, limit, slots);
	if (ctx->oom)
		return;

	node->header.start = node->range.start;
	node->header.end = header_end;
	node->body.start = header_end;
	node->body.end = node->range.end;
	node->preamble.start = node->preamble.end = node->body.end;
	node->close_delimiter = node->epilogue = node->preamble;

	if (count > 0) {
		struct wd_mime_field *fields = wd_arena_alloc(ctx->arena, count * sizeof(*fields));
		if (fields == NULL) {
			ctx->oom = true;
			return;
		}
		memcpy(fields, ctx->scratch, count * sizeof(*fields));
		node->fields = fields;
		node->field_count = count;
		ctx->fields_left -= count;
		ctx->tree->field_count += count;
	}
	if (parse_facts(ctx, node, slots) < 0)
		ctx->oom = true;
}

static void parse_entity(struct parse_ctx *ctx, struct wd_mime_node *node);

/* Split a multipart body on its boundary into parts (not parsed yet). */
static void split_multipart(struct parse_ctx *ctx, struct wd_mime_node *node)
{
	const uint8_t *data = ctx->data;
	const uint8_t *boundary = (const uint8_t *)node->boundary;
	uint32_t blen = node->boundary_len;
	struct wd_mime_range body = node->body;
	struct wd_mime_node *first = NULL, *last = NULL;
	uint32_t count = 0, prev_text_end = body.start;
	bool stopped = false;

	node->preamble.start = body.start;
	node->preamble.end = body.end;

	struct wd_mime_line_reader reader;
	struct wd_mime_line line;
	wd__mime_lines_init(&reader, data, body.start, body.end);
	while (wd__mime_lines_next(&reader, &line)) {
		uint32_t text_len = line.text_end - line.start;
		const uint8_t *p = data + line.start;
		if (text_len >= blen + 2 && p[0] == '-' && p[1] == '-' &&
		    memcmp(p + 2, boundary, blen) == 0) {
			uint32_t rest = line.start + 2 + blen;
			bool delimiter = padding_only(data, rest, line.text_end);
			bool close = !delimiter && count > 0 && rest + 2 <= line.text_end &&
				     data[rest] == '-' && data[rest + 1] == '-' &&
				     padding_only(data, rest + 2, line.text_end);
			/* The line break before the line is the delimiter's,
			   unless the line opens the body or directly follows
			   the previous delimiter, which owns that break. */
			uint32_t segment_start = last == NULL ? body.start : last->range.start;
			uint32_t dstart = line.start == segment_start ? line.start : prev_text_end;
			if (delimiter) {
				if (ctx->parts_left == 0) {
					stopped = true;
					break;
				}
				struct wd_mime_node *child =
					node_new(ctx, node, node->depth + 1, line.end, body.end);
				if (child == NULL)
					return;
				ctx->parts_left--;
				child->delimiter.start = dstart;
				child->delimiter.end = line.end;
				child->index = count + 1;
				if (last == NULL) {
					node->preamble.end = dstart;
					first = child;
				} else {
					last->range.end = dstart;
					last->next = child;
				}
				last = child;
				count++;
			} else if (close) {
				last->range.end = dstart;
				node->has_close = true;
				node->close_delimiter.start = dstart;
				node->close_delimiter.end = line.end;
				node->epilogue.start = line.end;
				break;
			}
		}
		prev_text_end = line.text_end;
	}

	if (stopped) {
		ctx->tree->parts_capped = true;
		if (count == 0) {
			/* Not a single part fits: keep the body whole. */
			node->kind = WD_MIME_KIND_LEAF;
			node->opaque = true;
			node->preamble.start = node->preamble.end = body.end;
			return;
		}
	}
	node->child_count = count;
	if (count == 0)
		return;
	node->children = wd_arena_alloc(ctx->arena, count * sizeof(*node->children));
	if (node->children == NULL) {
		ctx->oom = true;
		return;
	}
	uint32_t i = 0;
	for (struct wd_mime_node *child = first; child != NULL; child = child->next)
		node->children[i++] = child;
	for (i = 0; i < count && !ctx->oom; i++)
		parse_entity(ctx, node->children[i]);
}

/* WildDuck's rule: an identity encoding (an empty value counts as none). */
static bool is_parsed_message(const struct wd_mime_node *node)
{
	const char *cte = node->transfer_encoding;
	return strcmp(node->content_type.type, "message") == 0 &&
	       strcmp(node->content_type.subtype, "rfc822") == 0 &&
	       (cte == NULL || cte[0] == '\0' || strcmp(cte, "7bit") == 0 ||
		strcmp(cte, "8bit") == 0 || strcmp(cte, "binary") == 0);
}

static void parse_entity(struct parse_ctx *ctx, struct wd_mime_node *node)
{
	parse_header(ctx, node);
	if (ctx->oom)
		return;

	struct wd_mime_tree *tree = ctx->tree;
	const struct wd_mime_content *ct = &node->content_type;
	const struct wd_mime_param *boundary = NULL;
	bool multipart = false, message = false;
	if (strcmp(ct->type, "multipart") == 0) {
		boundary = wd_mime_content_param(ct, "boundary");
		multipart = boundary != NULL && boundary->value_len > 0;
	} else {
		message = is_parsed_message(node);
	}
	if (!multipart && !message)
		return;
	if (node->depth >= tree->limits.max_depth) {
		node->opaque = true;
		tree->depth_capped = true;
		return;
	}

	if (multipart) {
		node->kind = WD_MIME_KIND_MULTIPART;
		node->boundary = boundary->value;
		node->boundary_len = (uint32_t)boundary->value_len;
		split_multipart(ctx, node);
		return;
	}
	if (ctx->parts_left == 0) {
		node->opaque = true;
		tree->parts_capped = true;
		return;
	}
	struct wd_mime_node *embedded =
		node_new(ctx, node, node->depth + 1, node->body.start, node->body.end);
	if (embedded == NULL)
		return;
	ctx->parts_left--;
	node->kind = WD_MIME_KIND_MESSAGE;
	node->message = embedded;
	parse_entity(ctx, embedded);
}

int wd_mime_tree_parse(struct wd_arena *arena, const uint8_t *data, size_t len,
		       const struct wd_mime_limits *limits, struct wd_mime_tree **tree_r,
		       const char **error_r)
{
	*tree_r = NULL;
	if (len > WD_MIME_MAX_MESSAGE_SIZE) {
		*error_r = "message too large to parse";
		return WD_ERROR;
	}
	if (data == NULL)
		data = (const uint8_t *)"";

	struct wd_mime_tree *tree = wd_arena_zalloc(arena, sizeof(*tree));
	if (tree == NULL) {
		*error_r = "out of memory";
		return WD_ERROR;
	}
	tree->data = data;
	tree->size = len;
	if (limits != NULL)
		tree->limits = *limits;
	else
		wd_mime_limits_init(&tree->limits);
	if (tree->limits.max_depth > WD_MIME_MAX_DEPTH_CAP)
		tree->limits.max_depth = WD_MIME_MAX_DEPTH_CAP;

	struct parse_ctx ctx = {
		.arena = arena,
		.data = data,
		.tree = tree,
		/* The root always exists, even with a limit of 0. */
		.parts_left = tree->limits.max_parts > 0 ? tree->limits.max_parts - 1 : 0,
		.fields_left = tree->limits.max_total_fields,
	};
	tree->root = node_new(&ctx, NULL, 0, 0, (uint32_t)len);
	if (tree->root != NULL)
		parse_entity(&ctx, tree->root);
	free(ctx.scratch);
	if (ctx.oom) {
		*error_r = "out of memory";
		return WD_ERROR;
	}
	*tree_r = tree;
	return WD_OK;
}

const struct wd_mime_node *wd_mime_node_child(const struct wd_mime_node *node, uint32_t index)
{
	if (node->kind != WD_MIME_KIND_MULTIPART || index == 0 || index > node->child_count)
		return NULL;
	return node->children[index - 1];
}
