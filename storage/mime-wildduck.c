/* WildDuck's views of a MIME node (reference §3.1, §3.2), derived from our
 * exact ranges.
 *
 * WildDuck keeps a node's body as a list of line pieces, each one the line
 * with the terminator before it (the first without). Because our reader
 * splits lines where WildDuck's does and our ranges begin and end at line
 * boundaries, its pieces can be recovered from ranges:
 *
 * - a leaf's pieces join to exactly our body range, and their number minus
 *   one (lineCount) is the number of terminators in it;
 * - a multipart's pieces are its preamble lines (none when the first
 *   delimiter opens the body or there is no blank line, else the preamble's
 *   lines including the last, possibly empty, one) and, after a close
 *   delimiter that has its own terminator, the epilogue lines. The first
 *   epilogue piece carries the close line's terminator only when there was
 *   a preamble piece, which is how WildDuck glues the epilogue to the
 *   preamble. If the joined text does not end with LF, an LF is added.
 *
 * Then `\r?\n` becomes CRLF (lone CRs stay) and size is the result's length.
 * getSize() adds per node: the header lines joined and ended with CRLF, a
 * CRLF before every piece but the first, the body size (after a CRLF for a
 * non-empty leaf, none for a multipart's preamble), "--boundary" before each
 * part (once when there are none) and "--boundary--" CRLF at the end. It
 * does not descend into embedded messages: their bytes are the body of the
 * message/rfc822 part. */
#include "wd-mime-tree-private.h"

#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

/* The body WildDuck stores, as up to three byte runs to be joined. */
struct wd_body {
	struct {
		const uint8_t *data;
		uint32_t len;
	} runs[3];
	int run_count;
	uint32_t line_count;
	bool add_lf; /* multipart: the joined text gets an LF when it lacks one */
};

static void add_run(struct wd_body *body, const uint8_t *data, uint32_t start, uint32_t end)
{
	if (end > start) {
		body->runs[body->run_count].data = data + start;
		body->runs[body->run_count].len = end - start;
		body->run_count++;
	}
}

/* The CR/LF bytes that end a close delimiter line (the text before them
   ends in '-' or padding, so scanning back cannot overrun it). */
static uint32_t close_terminator_start(const uint8_t *data, struct wd_mime_range close)
{
	uint32_t p = close.end;
	while (p > close.start && (data[p - 1] == '\r' || data[p - 1] == '\n'))
		p--;
	return p;
}

static void wd_body_of(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
		       struct wd_body *body)
{
	const uint8_t *data = tree->data;
	memset(body, 0, sizeof(*body));

	if (node->kind != WD_MIME_KIND_MULTIPART) {
		add_run(body, data, node->body.start, node->body.end);
		body->line_count =
			wd__mime_count_terminators(data, node->body.start, node->body.end);
		return;
	}

	uint32_t preamble_pieces = 0, epilogue_pieces = 0;
	bool delimiter_opens_body = node->child_count > 0 &&
				    node->children[0]->delimiter.start == node->body.start &&
				    data[node->body.start] == '-';
	if (node->has_blank_line && !delimiter_opens_body)
		preamble_pieces = wd__mime_count_terminators(data, node->preamble.start,
							     node->preamble.end) + 1;
	uint32_t term_start = 0;
	if (node->has_close) {
		term_start = close_terminator_start(data, node->close_delimiter);
		if (term_start < node->close_delimiter.end)
			epilogue_pieces = wd__mime_count_terminators(data, node->epilogue.start,
								     node->epilogue.end) + 1;
	}

	add_run(body, data, node->preamble.start, node->preamble.end);
	if (epilogue_pieces > 0) {
		if (preamble_pieces > 0)
			add_run(body, data, term_start, node->close_delimiter.end);
		add_run(body, data, node->epilogue.start, node->epilogue.end);
	}
	uint32_t pieces = preamble_pieces + epilogue_pieces;
	body->line_count = pieces > 0 ? pieces - 1 : 0;
	body->add_lf = true;
}

/* `\r?\n` → CRLF over the joined runs: counts, and appends when out != NULL. */
struct normalizer {
	struct wd_buffer *out;
	uint64_t size;
	bool prev_cr;
	int ret;
};

static void normalize(struct normalizer *n, const uint8_t *data, size_t len)
{
	size_t last = 0;
	for (size_t i = 0; i < len;) {
		const uint8_t *lf = memchr(data + i, '\n', len - i);
		if (lf == NULL)
			break;
		size_t at = (size_t)(lf - data);
		bool has_cr = at > 0 ? data[at - 1] == '\r' : n->prev_cr;
		if (!has_cr) {
			n->size++;
			if (n->out != NULL && n->ret == WD_OK) {
				if (wd_buffer_append(n->out, data + last, at - last) < 0 ||
				    wd_buffer_append(n->out, "\r", 1) < 0)
					n->ret = WD_ERROR;
				last = at;
			}
		}
		i = at + 1;
	}
	if (n->out != NULL && n->ret == WD_OK &&
	    wd_buffer_append(n->out, data + last, len - last) < 0)
		n->ret = WD_ERROR;
	n->size += len;
	if (len > 0)
		n->prev_cr = data[len - 1] == '\r';
}

static int wd_body_run(const struct wd_body *body, struct normalizer *n)
{
	uint8_t last = 0;
	for (int i = 0; i < body->run_count; i++) {
		normalize(n, body->runs[i].data, body->runs[i].len);
		last = body->runs[i].data[body->runs[i].len - 1];
	}
	if (body->add_lf && body->run_count > 0 && last != '\n')
		normalize(n, (const uint8_t *)"\n", 1);
	return n->ret;
}

void wd_mime_wd_info(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
		     struct wd_mime_wd_info *info_r)
{
	struct wd_body body;
	struct normalizer n = { NULL, 0, false, WD_OK };
	wd_body_of(tree, node, &body);
	(void)wd_body_run(&body, &n);
	info_r->line_count = body.line_count;
	info_r->size = n.size;
}

int wd_mime_wd_body(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
		    struct wd_buffer *out)
{
	struct wd_body body;
	struct normalizer n = { out, 0, false, WD_OK };
	wd_body_of(tree, node, &body);
	return wd_body_run(&body, &n);
}

/* WildDuck's \s at the start of a header line (Latin-1 view of the bytes):
   it makes the line a continuation of the previous one. */
static bool js_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == 0xa0;
}

int wd_mime_wd_header(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
		      struct wd_arena *arena, struct wd_mime_wd_field **fields_r,
		      size_t *count_r)
{
	const uint8_t *data = tree->data;
	struct wd_mime_line_reader reader;
	struct wd_mime_line line;
	size_t lines = 0, text = 0;

	/* Header lines are the non-empty lines before the blank line. */
	wd__mime_lines_init(&reader, data, node->header.start, node->header.end);
	while (wd__mime_lines_next(&reader, &line)) {
		if (line.text_end > line.start) {
			lines++;
			text += line.text_end - line.start;
		}
	}
	*fields_r = NULL;
	*count_r = 0;
	if (lines == 0)
		return WD_OK;

	struct wd_mime_wd_field *fields = wd_arena_alloc(arena, lines * sizeof(*fields));
	uint8_t *buf = wd_arena_alloc(arena, text + 2 * lines);
	if (fields == NULL || buf == NULL)
		return WD_ERROR;
	size_t count = 0, used = 0, index = 0;
	wd__mime_lines_init(&reader, data, node->header.start, node->header.end);
	while (wd__mime_lines_next(&reader, &line)) {
		uint32_t len = line.text_end - line.start;
		if (len == 0)
			continue;
		if (index > 0 && js_space(data[line.start])) {
			/* A continuation: CRLF + the line, appended in place (the
			   previous field is the last thing in buf). */
			memcpy(buf + used, "\r\n", 2);
			memcpy(buf + used + 2, data + line.start, len);
			used += 2 + len;
			fields[count - 1].len += 2 + len;
		} else {
			memcpy(buf + used, data + line.start, len);
			fields[count].data = buf + used;
			fields[count].len = len;
			count++;
			used += len;
		}
		index++;
	}
	*fields_r = fields;
	*count_r = count;
	return WD_OK;
}

/* Length of the header piece: the lines joined with CRLF plus a final CRLF
   (just CRLF for a node without header lines). */
static uint64_t header_piece_size(const struct wd_mime_tree *tree,
				  const struct wd_mime_node *node)
{
	struct wd_mime_line_reader reader;
	struct wd_mime_line line;
	uint64_t size = 0, lines = 0;
	wd__mime_lines_init(&reader, tree->data, node->header.start, node->header.end);
	while (wd__mime_lines_next(&reader, &line)) {
		if (line.text_end > line.start) {
			size += line.text_end - line.start;
			lines++;
		}
	}
	return size + 2 * (lines > 0 ? lines : 1);
}

static uint64_t get_size(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			 bool first)
{
	struct wd_mime_wd_info info;
	uint64_t size = header_piece_size(tree, node) + (first ? 0 : 2);
	wd_mime_wd_info(tree, node, &info);
	if (node->kind != WD_MIME_KIND_MULTIPART) {
		if (info.size > 0)
			size += 2 + info.size;
		return size;
	}
	uint64_t delimiter = 2 + 2 + (uint64_t)node->boundary_len; /* CRLF "--" boundary */
	size += info.size;
	size += delimiter * (node->child_count > 0 ? node->child_count : 1);
	for (uint32_t i = 0; i < node->child_count; i++)
		size += get_size(tree, node->children[i], false);
	return size + delimiter + 4; /* "--" CRLF after the last one */
}

uint64_t wd_mime_wd_get_size(const struct wd_mime_tree *tree, const struct wd_mime_node *node)
{
	return get_size(tree, node, true);
}
