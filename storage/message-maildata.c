/* "Maildata" of a stored message (reference §3.3): the decoded text and
 * HTML that webmail and search read (`text`, `textFooter`, `html`, `intro`)
 * and the attachment list (`attachments`, `ha`).
 *
 * Inline text parts are transfer-decoded (GMime's decoders) and converted
 * to UTF-8 from their charset (GLib; WildDuck's default when none is given is
 * windows-1257). Not done yet, compared with WildDuck: format=flowed
 * unwrapping, HTML↔text conversions and cid: rewriting. */
#include "store-private.h"
#include "wd-buffer.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_INDEXED_CHARS 1024
#define TEXT_MAX_BYTES (100 * 1024)
#define HTML_MAX_BYTES (640 * 1024)
#define INTRO_CHARS 128

struct maildata {
	const struct wd_mime_tree *tree;
	const struct wd_mime_node *const *att_nodes;
	size_t att_count, att_next;
	struct wd_buffer text;
	bson_t *html;
	uint32_t html_count;
	size_t html_bytes;
	bson_t *attachments;
	uint32_t attachment_count;
	bool has_unrelated;
	bool nul_ok;
};

/* Transfer-decode and convert a node's body to UTF-8 (appended to out). */
static void decode_body(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			struct wd_buffer *out)
{
	const uint8_t *body = tree->data + node->body.start;
	size_t len = wd_mime_range_len(node->body);
	GMimeContentEncoding encoding = node->transfer_encoding != NULL ?
		g_mime_content_encoding_from_string(node->transfer_encoding) : GMIME_CONTENT_ENCODING_7BIT;
	struct wd_buffer decoded = WD_BUFFER_INIT;
	if (encoding == GMIME_CONTENT_ENCODING_BASE64 ||
	    encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    encoding == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeEncoding state;
		g_mime_encoding_init_decode(&state, encoding);
		uint8_t *dst = wd_buffer_reserve(&decoded, g_mime_encoding_outlen(&state, len) + 16);
		if (dst != NULL)
			wd_buffer_commit(&decoded, g_mime_encoding_flush(&state, (const char *)body, len,
									 (char *)dst));
	} else {
		wd_buffer_append(&decoded, body, len);
	}
	const char *charset = node->charset != NULL ? node->charset : "windows-1257";
	gsize written = 0;
	gchar *utf8 = NULL;
	if (g_ascii_strcasecmp(charset, "utf-8") != 0 && g_ascii_strcasecmp(charset, "us-ascii") != 0)
		utf8 = g_convert((const gchar *)wd_buffer_bytes(&decoded), (gssize)decoded.len, "UTF-8",
				 charset, NULL, &written, NULL);
	if (utf8 != NULL)
		wd_buffer_append(out, utf8, written);
	else
		wd_buffer_append(out, wd_buffer_bytes(&decoded), decoded.len);
	g_free(utf8);
	wd_buffer_release(&decoded);
}

/* CRLF → LF. */
static void normalize_newlines(struct wd_buffer *buf)
{
	uint8_t *p = buf->data + buf->start;
	size_t n = 0;
	for (size_t i = 0; i < buf->len; i++) {
		if (p[i] == '\r' && i + 1 < buf->len && p[i + 1] == '\n')
			continue;
		p[n++] = p[i];
	}
	buf->len = n;
}

static const char *param(const struct wd_mime_content *ct, const char *name)
{
	const struct wd_mime_param *p = wd_mime_content_param(ct, name);
	return p != NULL ? p->value : NULL;
}

static void add_attachment(struct maildata *md, const struct wd_mime_node *node, bool related)
{
	char id[16], key[16], type[256];
	const char *key_str;
	snprintf(id, sizeof(id), "ATT%05u", (unsigned)((md->att_next + 1) % 1000000000u));
	bson_uint32_to_string(md->attachment_count++, &key_str, key, sizeof(key));
	bson_t att;
	bson_append_document_begin(md->attachments, key_str, -1, &att);
	BSON_APPEND_UTF8(&att, "id", id);
	const char *name = node->disposition.present ? param(&node->disposition, "filename") : NULL;
	if (name == NULL)
		name = param(&node->content_type, "name");
	char *decoded = name != NULL ? g_mime_utils_header_decode_text(NULL, name) : NULL;
	if (decoded != NULL)
		wd__append_text(&att, "filename", decoded, strlen(decoded), md->nul_ok);
	else
		BSON_APPEND_UTF8(&att, "filename", "attachment.bin");
	g_free(decoded);
	snprintf(type, sizeof(type), "%s/%s", node->content_type.type, node->content_type.subtype);
	wd__append_text(&att, "contentType", type, strlen(type), md->nul_ok);
	if (node->disposition.present)
		wd__append_text(&att, "disposition", node->disposition.type,
				strlen(node->disposition.type), md->nul_ok);
	else
		BSON_APPEND_BOOL(&att, "disposition", false);
	BSON_APPEND_UTF8(&att, "transferEncoding",
			 node->transfer_encoding != NULL ? node->transfer_encoding : "7bit");
	if (node->content_id != NULL)
		wd__append_text(&att, "cid", node->content_id, strlen(node->content_id), md->nul_ok);
	else
		BSON_APPEND_NULL(&att, "cid");
	BSON_APPEND_BOOL(&att, "related", related);
	uint32_t size = wd_mime_range_len(node->body);
	uint64_t decoded_size = size;
	if (node->transfer_encoding != NULL && strcmp(node->transfer_encoding, "base64") == 0)
		decoded_size = ((uint64_t)size - 2 * (size / 78)) / 4 * 3;
	BSON_APPEND_INT32(&att, "sizeKb", (int32_t)((decoded_size + 1023) / 1024));
	BSON_APPEND_INT32(&att, "size", (int32_t)size);
	bson_append_document_end(md->attachments, &att);
	if (!related)
		md->has_unrelated = true;
}

static void walk(struct maildata *md, const struct wd_mime_node *node, bool alternative,
		 bool related)
{
	if (node->kind == WD_MIME_KIND_MULTIPART) {
		bool alt = alternative || strcmp(node->content_type.subtype, "alternative") == 0;
		bool rel = related || strcmp(node->content_type.subtype, "related") == 0;
		for (uint32_t i = 0; i < node->child_count; i++)
			walk(md, node->children[i], alt, rel);
		return;
	}
	if (node->kind == WD_MIME_KIND_MESSAGE && node->message != NULL) {
		walk(md, node->message, alternative, related);
		return;
	}
	if (md->att_next < md->att_count && md->att_nodes[md->att_next] == node) {
		add_attachment(md, node, related);
		md->att_next++;
		return;
	}
	if (wd_mime_range_len(node->body) == 0)
		return;
	bool html = strcmp(node->content_type.type, "text") == 0 &&
		    strcmp(node->content_type.subtype, "html") == 0;
	if (html) {
		struct wd_buffer part = WD_BUFFER_INIT;
		decode_body(md->tree, node, &part);
		if (md->html_bytes + part.len <= HTML_MAX_BYTES) {
			char key[16];
			const char *key_str;
			bson_uint32_to_string(md->html_count++, &key_str, key, sizeof(key));
			wd__append_text(md->html, key_str, (const char *)wd_buffer_bytes(&part), part.len,
					md->nul_ok);
			md->html_bytes += part.len;
		}
		wd_buffer_release(&part);
	} else if (md->text.len < TEXT_MAX_BYTES) {
		if (md->text.len > 0)
			wd_buffer_append(&md->text, "\n", 1);
		decode_body(md->tree, node, &md->text);
	}
}

/* Bytes of the first `chars` UTF-8 characters of s. */
static size_t utf8_prefix(const char *s, size_t len, size_t chars)
{
	size_t i = 0;
	while (i < len && chars > 0) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		chars--;
	}
	return i;
}

void wd__maildata_append(const struct wd_mime_tree *tree,
			 const struct wd_mime_node *const *att_nodes, size_t att_count, bool nul_ok,
			 bson_t *doc)
{
	struct maildata md = { .tree = tree, .att_nodes = att_nodes, .att_count = att_count,
			       .nul_ok = nul_ok };
	bson_t html, attachments;
	bson_init(&html);
	bson_init(&attachments);
	md.html = &html;
	md.attachments = &attachments;
	walk(&md, tree->root, false, false);

	normalize_newlines(&md.text);
	const char *text = (const char *)wd_buffer_bytes(&md.text);
	size_t len = md.text.len;
	while (len > 0 && (text[0] == ' ' || text[0] == '\n' || text[0] == '\t')) {
		text++;
		len--;
	}
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\t'))
		len--;
	if (len > TEXT_MAX_BYTES)
		len = TEXT_MAX_BYTES;
	if (len > 0) {
		size_t head = utf8_prefix(text, len, TEXT_INDEXED_CHARS);
		wd__append_text(doc, "text", text, head, nul_ok);
		if (head < len)
			wd__append_text(doc, "textFooter", text + head, len - head, nul_ok);
		/* intro: whitespace collapsed, ≤ 128 characters, cut at a word */
		char intro[INTRO_CHARS * 4 + 8];
		size_t n = 0, chars = 0;
		bool space = false;
		for (size_t i = 0; i < len && chars < INTRO_CHARS && n + 4 < sizeof(intro) - 4; i++) {
			char c = text[i];
			if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
				space = n > 0;
				continue;
			}
			if (space) {
				intro[n++] = ' ';
				chars++;
			}
			space = false;
			intro[n++] = c;
			if (((unsigned char)c & 0xc0) != 0x80)
				chars++;
		}
		if (chars >= INTRO_CHARS) {
			char *cut = memrchr(intro, ' ', n);
			if (cut != NULL && cut > intro)
				n = (size_t)(cut - intro);
			memcpy(intro + n, "\xe2\x80\xa6", 3);
			n += 3;
		}
		wd__append_text(doc, "intro", intro, n, nul_ok);
	}
	if (md.html_count > 0)
		BSON_APPEND_ARRAY(doc, "html", &html);
	BSON_APPEND_ARRAY(doc, "attachments", &attachments);
	BSON_APPEND_BOOL(doc, "ha", md.has_unrelated);
	bson_destroy(&html);
	bson_destroy(&attachments);
	wd_buffer_release(&md.text);
}
