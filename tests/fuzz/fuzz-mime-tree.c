/* Fuzz target for the MIME tree (storage/wd-mime-tree.h).
 *
 * Besides memory safety it checks the parser's contract, aborting on any
 * breach:
 *   - every input parses (the only failure is running out of memory);
 *   - the tree passes wd_mime_tree_check() and rebuilds to the input byte
 *     for byte, with the default limits and with tiny ones (which exercise
 *     the depth, part and field limits on small inputs);
 *   - sections stay inside the message and say their size; HEADER + TEXT is
 *     the message; BODY[path] and BODY[path.MIME] of every node (found by
 *     computing its IMAP part number) are its body and header block; a
 *     partial is the matching slice of the whole section;
 *   - WildDuck views: the built body is as long as the computed size, and
 *     getSize() runs on every message root. */
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PATH 1024
#define MAX_VISITED_NODES 64

static const char *const section_texts[] = {
	"",
	"HEADER",
	"TEXT",
	"1",
	"1.MIME",
	"2",
	"2.1",
	"1.HEADER",
	"1.TEXT",
	"3.HEADER",
	"2.2.MIME",
	"1.1.1",
	"HEADER.FIELDS (Subject From)",
	"HEADER.FIELDS.NOT (Content-Type)",
	"1.HEADER.FIELDS (content-type x)",
};

static void section_bytes(const struct wd_mime_tree *tree, const struct wd_mime_section *section,
			  struct wd_buffer *out)
{
	uint64_t total = 0;
	for (size_t i = 0; i < section->range_count; i++) {
		CHECK(section->ranges[i].start <= section->ranges[i].end);
		CHECK(section->ranges[i].end <= tree->size);
		total += wd_mime_range_len(section->ranges[i]);
	}
	CHECK(total + section->suffix_len == section->size);
	CHECK(wd_mime_section_write(tree, section, out) == WD_OK);
	CHECK(out->len == section->size);
}

static void check_sections(const struct wd_mime_tree *tree, struct wd_arena *arena,
			   const uint8_t *data, size_t size)
{
	struct wd_buffer full = WD_BUFFER_INIT, part = WD_BUFFER_INIT;
	for (size_t i = 0; i < sizeof(section_texts) / sizeof(section_texts[0]); i++) {
		struct wd_mime_section_spec spec;
		struct wd_mime_section section;
		const char *error = NULL;
		const char *text = section_texts[i];
		CHECK(wd_mime_section_spec_parse(arena, text, strlen(text), &spec, &error) == WD_OK);
		if (wd_mime_section_get(tree, &spec, arena, &section, &error) != WD_OK) {
			CHECK(error != NULL);
			continue;
		}
		wd_buffer_clear(&full);
		section_bytes(tree, &section, &full);
		if (i == 0)
			CHECK(full.len == size && memcmp(wd_buffer_bytes(&full), data, size) == 0);

		/* A partial, from offsets taken from the input. */
		uint64_t offset = size > 0 ? data[i % size] : 0;
		uint64_t length = size > 1 ? data[(i + 1) % size] : UINT64_MAX;
		wd_mime_section_partial(&section, offset, length);
		wd_buffer_clear(&part);
		section_bytes(tree, &section, &part);
		uint64_t expect = offset >= full.len ? 0 : full.len - offset;
		if (length < expect)
			expect = length;
		CHECK(part.len == expect);
		if (expect > 0)
			CHECK(memcmp(wd_buffer_bytes(&part), wd_buffer_bytes(&full) + offset, expect) == 0);
	}

	/* HEADER + TEXT is the whole message. */
	struct wd_mime_section_spec spec = { 0 };
	struct wd_mime_section header, body;
	const char *error;
	spec.type = WD_MIME_SECTION_HEADER;
	CHECK(wd_mime_section_get(tree, &spec, arena, &header, &error) == WD_OK);
	spec.type = WD_MIME_SECTION_TEXT;
	CHECK(wd_mime_section_get(tree, &spec, arena, &body, &error) == WD_OK);
	CHECK(header.size + body.size == size);
	wd_buffer_release(&full);
	wd_buffer_release(&part);
}

struct visit {
	const struct wd_mime_tree *tree;
	struct wd_arena *arena;
	uint32_t path[MAX_PATH];
	unsigned int visited;
};

static void expect_section(struct visit *v, size_t path_len, enum wd_mime_section_type type,
			   struct wd_mime_range expected)
{
	struct wd_mime_section_spec spec = { 0 };
	struct wd_mime_section section;
	const char *error = NULL;
	spec.path = v->path;
	spec.path_len = path_len;
	spec.type = type;
	CHECK(wd_mime_section_get(v->tree, &spec, v->arena, &section, &error) == WD_OK);
	CHECK(section.size == wd_mime_range_len(expected));
	if (section.size > 0) {
		CHECK(section.range_count == 1);
		CHECK(section.ranges[0].start == expected.start);
	}
}

static void check_views(struct visit *v, const struct wd_mime_node *node)
{
	struct wd_mime_wd_info info;
	struct wd_buffer body = WD_BUFFER_INIT;
	struct wd_mime_wd_field *fields;
	size_t count;
	wd_mime_wd_info(v->tree, node, &info);
	CHECK(wd_mime_wd_body(v->tree, node, &body) == WD_OK);
	CHECK(body.len == info.size);
	wd_buffer_release(&body);
	CHECK(wd_mime_wd_header(v->tree, node, v->arena, &fields, &count) == WD_OK);
	for (size_t i = 0; i < count; i++)
		CHECK(fields[i].len > 0);
}

/* Visit a node whose IMAP part number is path[0..path_len). */
static void visit_node(struct visit *v, const struct wd_mime_node *node, size_t path_len)
{
	if (v->visited++ >= MAX_VISITED_NODES)
		return;
	check_views(v, node);
	if (path_len > 0 && node->parent != NULL && node->parent->kind == WD_MIME_KIND_MULTIPART) {
		bool as_body = true;
		const char *error = NULL;
		CHECK(wd_mime_tree_find_part(v->tree, v->path, path_len, &as_body, &error) == node);
		CHECK(!as_body);
		expect_section(v, path_len, WD_MIME_SECTION_BODY, node->body);
		expect_section(v, path_len, WD_MIME_SECTION_MIME, node->header);
	}
	switch (node->kind) {
	case WD_MIME_KIND_LEAF:
		if (path_len == 0) {
			/* Part 1 of a non-multipart message is its body. */
			bool as_body = false;
			const char *error = NULL;
			v->path[0] = 1;
			CHECK(wd_mime_tree_find_part(v->tree, v->path, 1, &as_body, &error) == node);
			CHECK(as_body);
			expect_section(v, 1, WD_MIME_SECTION_BODY, node->body);
		}
		break;
	case WD_MIME_KIND_MESSAGE: {
		/* A top-level message/rfc822 is part 1 of the message. */
		const struct wd_mime_node *message = node->message;
		size_t base = path_len;
		if (base == 0) {
			v->path[0] = 1;
			base = 1;
		}
		const char *error = NULL;
		CHECK(wd_mime_tree_find_part(v->tree, v->path, base, NULL, &error) == node);
		expect_section(v, base, WD_MIME_SECTION_HEADER, message->header);
		expect_section(v, base, WD_MIME_SECTION_TEXT, message->body);
		(void)wd_mime_wd_get_size(v->tree, message);
		if (base + 1 >= MAX_PATH)
			break;
		if (message->kind == WD_MIME_KIND_MULTIPART) {
			/* The embedded message's parts continue the number. */
			check_views(v, message);
			for (uint32_t i = 0; i < message->child_count; i++) {
				v->path[base] = i + 1;
				visit_node(v, message->children[i], base + 1);
			}
			break;
		}
		/* Part 1 of a non-multipart embedded message is its body. */
		bool as_body = false;
		v->path[base] = 1;
		CHECK(wd_mime_tree_find_part(v->tree, v->path, base + 1, &as_body, &error) ==
		      message);
		CHECK(as_body);
		expect_section(v, base + 1, WD_MIME_SECTION_BODY, message->body);
		if (message->kind == WD_MIME_KIND_MESSAGE)
			visit_node(v, message, base + 1);
		else
			check_views(v, message);
		break;
	}
	case WD_MIME_KIND_MULTIPART:
		for (uint32_t i = 0; i < node->child_count && path_len + 1 < MAX_PATH; i++) {
			v->path[path_len] = i + 1;
			visit_node(v, node->children[i], path_len + 1);
		}
		break;
	}
}

static void check_tree(const struct wd_mime_tree *tree, struct wd_arena *arena,
		       const uint8_t *data, size_t size)
{
	const char *error = NULL;
	if (wd_mime_tree_check(tree, &error) != WD_OK) {
		fprintf(stderr, "tree check: %s\n", error);
		abort();
	}
	struct wd_buffer out = WD_BUFFER_INIT;
	CHECK(wd_mime_tree_rebuild(tree, &out) == WD_OK);
	CHECK(out.len == size);
	CHECK(size == 0 || memcmp(wd_buffer_bytes(&out), data, size) == 0);
	CHECK(wd_mime_tree_exact_size(tree) == size);
	wd_buffer_release(&out);

	check_sections(tree, arena, data, size);
	struct visit *v = calloc(1, sizeof(*v));
	CHECK(v != NULL);
	v->tree = tree;
	v->arena = arena;
	visit_node(v, tree->root, 0);
	(void)wd_mime_wd_get_size(tree, tree->root);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > WD_MIME_MAX_MESSAGE_SIZE)
		return 0;
	struct wd_arena *arena = wd_arena_create(0);
	CHECK(arena != NULL);
	struct wd_mime_tree *tree = NULL;
	const char *error = NULL;
	CHECK(wd_mime_tree_parse(arena, data, size, NULL, &tree, &error) == WD_OK);
	check_tree(tree, arena, data, size);

	/* Tiny limits, so that small inputs reach every limit path. */
	struct wd_mime_limits limits = { 3, 6, 4, 9 };
	CHECK(wd_mime_tree_parse(arena, data, size, &limits, &tree, &error) == WD_OK);
	CHECK(tree->part_count <= 6 && tree->field_count <= 9);
	check_tree(tree, arena, data, size);
	wd_arena_destroy(&arena);
	return 0;
}
