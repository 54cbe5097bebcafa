/* IMAP BODY[section] over a MIME tree (RFC 3501 §6.4.5), as byte ranges.
 *
 * A section is a list of ranges of the input plus a short synthesized
 * suffix, so FETCH can stream it from wherever the pieces are stored and a
 * partial <start.length> is applied by trimming ranges, never by copying.
 * Everything except HEADER.FIELDS(.NOT) is one contiguous range; the field
 * subset is one range per run of adjacent selected fields, then the blank
 * line. Part numbering follows RFC 3501: numbers index the parts of a
 * multipart, "1" of a non-multipart message is its body, and a number after
 * a message/rfc822 part applies to the embedded message. */
#include "wd-mime-tree-private.h"

#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "wd-str.h"

#include <string.h>

/* ---- section text ---- */

static bool keyword_at(const char *text, size_t len, size_t pos, const char *keyword)
{
	size_t n = strlen(keyword);
	return len - pos >= n && wd_mem_eq_nocase(text + pos, keyword, n);
}

static bool is_atom_char(char c)
{
	return (unsigned char)c > 32 && (unsigned char)c < 127 && c != '(' && c != ')' &&
	       c != '"' && c != '{' && c != '\\' && c != '%' && c != '*';
}

/* header-list = "(" astring *(SP astring) ")" at text[*pos]. */
static int parse_field_list(struct wd_arena *arena, const char *text, size_t len, size_t *pos,
			    struct wd_mime_section_spec *spec, const char **error_r)
{
	size_t p = *pos;
	if (p >= len || text[p] != ' ' || p + 1 >= len || text[p + 1] != '(') {
		*error_r = "expected a header field list";
		return WD_ERROR;
	}
	p += 2;
	/* At most one name per two bytes of text. */
	const char **names = wd_arena_alloc(arena, ((len - p) / 2 + 1) * sizeof(*names));
	if (names == NULL) {
		*error_r = "out of memory";
		return WD_ERROR;
	}
	size_t count = 0;
	for (;;) {
		if (p < len && text[p] == ')' && count > 0)
			break;
		if (count > 0) {
			if (p >= len || text[p] != ' ') {
				*error_r = "expected a space between header field names";
				return WD_ERROR;
			}
			p++;
		}
		char *name;
		if (p < len && text[p] == '"') {
			size_t q = p + 1, n = 0;
			for (; q < len && text[q] != '"'; q++, n++) {
				if (text[q] == '\\' && q + 1 < len)
					q++;
			}
			name = wd_arena_alloc(arena, n + 1);
			if (name == NULL) {
				*error_r = "out of memory";
				return WD_ERROR;
			}
			n = 0;
			for (p++; p < len && text[p] != '"'; p++) {
				if (text[p] == '\\' && p + 1 < len)
					p++;
				name[n++] = text[p];
			}
			if (p >= len) {
				*error_r = "unterminated quoted header field name";
				return WD_ERROR;
			}
			p++;
			name[n] = '\0';
		} else {
			size_t start = p;
			while (p < len && is_atom_char(text[p]))
				p++;
			if (p == start) {
				*error_r = "expected a header field name";
				return WD_ERROR;
			}
			name = wd_arena_strndup(arena, text + start, p - start);
			if (name == NULL) {
				*error_r = "out of memory";
				return WD_ERROR;
			}
		}
		names[count++] = name;
	}
	*pos = p + 1;
	spec->fields = names;
	spec->field_count = count;
	return WD_OK;
}

int wd_mime_section_spec_parse(struct wd_arena *arena, const char *text, size_t len,
			       struct wd_mime_section_spec *spec_r, const char **error_r)
{
	memset(spec_r, 0, sizeof(*spec_r));
	spec_r->type = WD_MIME_SECTION_BODY;
	size_t pos = 0;

	uint32_t *path = wd_arena_alloc(arena, (len / 2 + 1) * sizeof(*path));
	if (path == NULL) {
		*error_r = "out of memory";
		return WD_ERROR;
	}
	size_t path_len = 0;
	bool need_keyword = false;
	while (pos < len && text[pos] >= '0' && text[pos] <= '9') {
		size_t start = pos;
		while (pos < len && text[pos] >= '0' && text[pos] <= '9')
			pos++;
		uint64_t number;
		if (text[start] == '0' || wd_str_to_uint64(text + start, pos - start, &number) < 0 ||
		    number > UINT32_MAX) {
			*error_r = "invalid part number";
			return WD_ERROR;
		}
		path[path_len++] = (uint32_t)number;
		need_keyword = false;
		if (pos < len && text[pos] == '.') {
			pos++;
			need_keyword = true;
		} else {
			break;
		}
	}
	spec_r->path = path;
	spec_r->path_len = path_len;

	if (pos == len && !need_keyword)
		return WD_OK;
	if (path_len > 0 && !need_keyword) {
		*error_r = "expected '.' after a part number";
		return WD_ERROR;
	}
	if (keyword_at(text, len, pos, "HEADER.FIELDS.NOT")) {
		spec_r->type = WD_MIME_SECTION_HEADER_FIELDS_NOT;
		pos += 17;
		if (parse_field_list(arena, text, len, &pos, spec_r, error_r) < 0)
			return WD_ERROR;
	} else if (keyword_at(text, len, pos, "HEADER.FIELDS")) {
		spec_r->type = WD_MIME_SECTION_HEADER_FIELDS;
		pos += 13;
		if (parse_field_list(arena, text, len, &pos, spec_r, error_r) < 0)
			return WD_ERROR;
	} else if (keyword_at(text, len, pos, "HEADER")) {
		spec_r->type = WD_MIME_SECTION_HEADER;
		pos += 6;
	} else if (keyword_at(text, len, pos, "TEXT")) {
		spec_r->type = WD_MIME_SECTION_TEXT;
		pos += 4;
	} else if (path_len > 0 && keyword_at(text, len, pos, "MIME")) {
		spec_r->type = WD_MIME_SECTION_MIME;
		pos += 4;
	} else {
		*error_r = "unknown section";
		return WD_ERROR;
	}
	if (pos != len) {
		*error_r = "unexpected text after the section";
		return WD_ERROR;
	}
	return WD_OK;
}

/* ---- resolution ---- */

const struct wd_mime_node *wd_mime_tree_find_part(const struct wd_mime_tree *tree,
						  const uint32_t *path, size_t path_len,
						  bool *as_body_r, const char **error_r)
{
	const struct wd_mime_node *node = tree->root;
	bool message_level = true, as_body = false;

	for (size_t i = 0; i < path_len; i++) {
		if (!message_level && node->kind == WD_MIME_KIND_MESSAGE) {
			node = node->message;
			message_level = true;
		}
		if (node->kind == WD_MIME_KIND_MULTIPART) {
			node = wd_mime_node_child(node, path[i]);
			if (node == NULL) {
				*error_r = "no such part";
				return NULL;
			}
			as_body = false;
		} else if (message_level && path[i] == 1) {
			/* The single part of a non-multipart message. */
			as_body = true;
		} else {
			*error_r = "no such part";
			return NULL;
		}
		message_level = false;
	}
	if (as_body_r != NULL)
		*as_body_r = as_body;
	return node;
}

/* ---- building sections ---- */

static void section_add(struct wd_mime_section *section, struct wd_mime_range range)
{
	if (range.end == range.start)
		return;
	section->size += wd_mime_range_len(range);
	if (section->range_count > 0 &&
	    section->ranges[section->range_count - 1].end == range.start) {
		section->ranges[section->range_count - 1].end = range.end;
		return;
	}
	section->ranges[section->range_count++] = range;
}

static bool field_selected(const uint8_t *data, const struct wd_mime_field *field,
			   const struct wd_mime_section_spec *spec)
{
	for (size_t i = 0; i < spec->field_count; i++) {
		const char *name = spec->fields[i];
		if (strlen(name) == field->name_len &&
		    wd_mem_eq_nocase(data + field->name_start, name, field->name_len))
			return true;
	}
	return false;
}

/* The header block's blank line: its last terminator. A CR run before a
   final LF is all part of it (a previous line's terminator cannot end in a
   CR there, or the reader would have joined the two). */
static struct wd_mime_range blank_line(const uint8_t *data, const struct wd_mime_node *node)
{
	struct wd_mime_range range = { node->header.end, node->header.end };
	if (range.start > node->header.start) {
		range.start--;
		if (data[range.start] == '\n') {
			while (range.start > node->header.start && data[range.start - 1] == '\r')
				range.start--;
		}
	}
	return range;
}

static int header_fields(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			 const struct wd_mime_section_spec *spec, bool negate,
			 struct wd_mime_section *section)
{
	const uint8_t *data = tree->data;
	bool last_terminated = true;
	for (uint32_t i = 0; i < node->field_count; i++) {
		const struct wd_mime_field *field = &node->fields[i];
		if (field->name_len == 0 || field_selected(data, field, spec) == negate)
			continue;
		section_add(section, field->range);
		uint8_t last = data[field->range.end - 1];
		last_terminated = last == '\r' || last == '\n';
	}
	if (node->has_blank_line) {
		section_add(section, blank_line(data, node));
	} else {
		/* IMAP wants the subset to end with a blank line: make one. */
		section->suffix = last_terminated ? "\r\n" : "\r\n\r\n";
		section->suffix_len = last_terminated ? 2 : 4;
		section->size += section->suffix_len;
	}
	return WD_OK;
}

int wd_mime_section_get(const struct wd_mime_tree *tree, const struct wd_mime_section_spec *spec,
			struct wd_arena *arena, struct wd_mime_section *section_r,
			const char **error_r)
{
	memset(section_r, 0, sizeof(*section_r));
	section_r->suffix = "";

	const struct wd_mime_node *node =
		wd_mime_tree_find_part(tree, spec->path, spec->path_len, NULL, error_r);
	if (node == NULL)
		return WD_ERROR;

	const struct wd_mime_node *message = tree->root;
	if (spec->type != WD_MIME_SECTION_BODY && spec->type != WD_MIME_SECTION_MIME &&
	    spec->path_len > 0) {
		if (node->kind != WD_MIME_KIND_MESSAGE) {
			*error_r = "part is not a message/rfc822";
			return WD_ERROR;
		}
		message = node->message;
	}

	size_t max_ranges = 1;
	if (spec->type == WD_MIME_SECTION_HEADER_FIELDS ||
	    spec->type == WD_MIME_SECTION_HEADER_FIELDS_NOT)
		max_ranges = (size_t)message->field_count + 1;
	section_r->ranges = wd_arena_alloc(arena, max_ranges * sizeof(*section_r->ranges));
	if (section_r->ranges == NULL) {
		*error_r = "out of memory";
		return WD_ERROR;
	}

	switch (spec->type) {
	case WD_MIME_SECTION_BODY:
		section_add(section_r, spec->path_len == 0 ? node->range : node->body);
		break;
	case WD_MIME_SECTION_MIME:
		if (spec->path_len == 0) {
			*error_r = "MIME needs a part number";
			return WD_ERROR;
		}
		section_add(section_r, node->header);
		break;
	case WD_MIME_SECTION_HEADER:
		section_add(section_r, message->header);
		break;
	case WD_MIME_SECTION_TEXT:
		section_add(section_r, message->body);
		break;
	case WD_MIME_SECTION_HEADER_FIELDS:
	case WD_MIME_SECTION_HEADER_FIELDS_NOT:
		return header_fields(tree, message, spec,
				     spec->type == WD_MIME_SECTION_HEADER_FIELDS_NOT, section_r);
	}
	return WD_OK;
}

void wd_mime_section_partial(struct wd_mime_section *section, uint64_t offset, uint64_t length)
{
	if (offset >= section->size) {
		section->range_count = 0;
		section->suffix_len = 0;
		section->size = 0;
		return;
	}
	uint64_t keep = section->size - offset;
	if (length < keep)
		keep = length;

	/* Drop `offset` bytes from the front. */
	uint64_t skip = offset;
	while (section->range_count > 0 && skip >= wd_mime_range_len(section->ranges[0])) {
		skip -= wd_mime_range_len(section->ranges[0]);
		section->ranges++;
		section->range_count--;
	}
	if (section->range_count > 0) {
		section->ranges[0].start += (uint32_t)skip;
	} else {
		section->suffix += skip;
		section->suffix_len -= (size_t)skip;
	}

	/* Keep `keep` bytes. */
	uint64_t left = keep;
	size_t i;
	for (i = 0; i < section->range_count && left > 0; i++) {
		uint32_t len = wd_mime_range_len(section->ranges[i]);
		if (len >= left) {
			section->ranges[i].end = section->ranges[i].start + (uint32_t)left;
			left = 0;
		} else {
			left -= len;
		}
	}
	section->range_count = i;
	if (section->suffix_len > left)
		section->suffix_len = (size_t)left;
	section->size = keep;
}

int wd_mime_section_write(const struct wd_mime_tree *tree, const struct wd_mime_section *section,
			  struct wd_buffer *out)
{
	for (size_t i = 0; i < section->range_count; i++) {
		struct wd_mime_range r = section->ranges[i];
		if (wd_buffer_append(out, tree->data + r.start, wd_mime_range_len(r)) < 0)
			return WD_ERROR;
	}
	return wd_buffer_append(out, section->suffix, section->suffix_len);
}
