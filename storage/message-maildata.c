/* "Maildata" of a stored message (reference §3.3, §2.9): the decoded text
 * and HTML that webmail and search read (`text`, `textFooter`, `html`,
 * `intro`) and the attachment list (`attachments`, `ha`), computed as
 * WildDuck's Indexer.getMaildata() plus the post-processing of
 * MessageHandler.add() do it.
 *
 * Walk. Nodes are visited in document order, descending into embedded
 * message/rfc822 messages, with "inside multipart/alternative" and "inside
 * multipart/related" inherited. Inline text is text/plain, text/html,
 * text/rfc822-headers or message/delivery-status without a disposition or
 * with "inline". Its body (WildDuck's CRLF-normalised view) is decoded from
 * base64 / quoted-printable, converted from its charset (windows-1257 when
 * none is given; undecodable bytes become U+FFFD; an unknown charset is read
 * as UTF-8), and unwrapped when format=flowed (delsp=yes drops the space
 * before a soft break). An HTML part goes to the HTML list trimmed and,
 * outside an alternative and under 2 M UTF-16 units, its html-to-text
 * rendering goes to the text list; a text part goes to the text list
 * trimmed and, outside an alternative, its textToHtml() rendering to the
 * HTML list (text-html.c). Externalised leaves (att_nodes, numbered
 * ATT00001… in the same order by store-message.c) are listed in
 * `attachments` unless they are inline text (large inline text is stored
 * in GridFS but still extracted): id, filename (Content-Disposition
 * filename, else Content-Type name, RFC 2231 charset and RFC 2047 decoded;
 * else 8 random hex digits + "." + an extension for the type), contentType,
 * disposition (or false), transferEncoding, cid ("<id>" or null), related,
 * sizeKb (base64 bodies estimated decoded), size (the normalised encoded
 * length WildDuck's storeNodeBodies() adds). `ha` is true when one is not
 * related; the array is absent when empty.
 *
 * Then "cid:<id>" in every text and HTML string becomes
 * "attachment:ATTnnnnn" for the externalised node with that Content-ID
 * (WildDuck's /\bcid:([^\s"']+)/ rule, last node wins). `text` is the
 * non-blank texts joined with LF, CRLF → LF, trimmed, cut at 1024 UTF-16
 * units; the rest up to 100 Ki units is `textFooter`. HTML strings are kept
 * while their byte total is under 640 KiB; the one crossing it is cut to
 * 640 Ki units. `intro` comes from html-to-text of the joined HTML when
 * there is HTML, else from `text`: its first 2048 units, "[…]" spans,
 * lines starting with '>' and lines of one repeated character removed,
 * whitespace collapsed, at most 128 units cut at the last space + "…".
 *
 * JavaScript strings count UTF-16 units, and so do all the limits above;
 * where WildDuck's substr() splits a surrogate pair its BSON encoder writes
 * U+FFFD, and so do we.
 *
 * Where we differ from WildDuck (knowingly):
 * - HTML → text is our port of html-to-text (see text-html.c for its
 *   limits); decoding uses GMime's base64/QP decoders and iconv, which
 *   differ from libbase64/libqp/iconv-lite on malformed input only.
 * - A message/rfc822 part is not externalised as a whole by store-message.c
 *   (WildDuck stores it and lists it as "xxxxxxxx.eml"), so it is not listed
 *   and the numbering of the attachments after it is one lower.
 * - An RFC 2231 filename (filename*=charset''…) is decoded; WildDuck keeps
 *   the raw "charset''value" text.
 * - The filename extension table covers the common types only ("bin" else).
 * - Per part we keep at most PART_MAX_UNITS of decoded text and stop
 *   collecting text past TEXT_COLLECT_UNITS; both lie beyond what the stored
 *   fields can hold, so the stored values are the same.
 * - `fileContentHash` is added, as WildDuck does, only for files the store
 *   created for this message (store-message.c passes the put results). */
#include "store-private.h"
#include "text-html.h"
#include "wd-buffer.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_INDEXED_UNITS 1024            /* MAX_PLAINTEXT_INDEXED */
#define TEXT_MAX_UNITS (100 * 1024)        /* MAX_PLAINTEXT_CONTENT */
#define HTML_MAX_BYTES (640 * 1024)        /* MAX_HTML_CONTENT (bytes, then units) */
#define HTML_PARSE_MAX_UNITS (2 * 1024 * 1024) /* MAX_HTML_PARSE_LENGTH */
#define INTRO_SOURCE_UNITS 2048
#define INTRO_UNITS 128
/* Decoded text kept per part: more than any stored field can use (the text
   needs ≤ 2 × 100 Ki units before CRLF → LF, the HTML ≤ 640 Ki units). */
#define PART_MAX_UNITS (2 * 1024 * 1024)
/* Joined text collected: enough for 100 Ki units after CRLF → LF. */
#define TEXT_COLLECT_UNITS (512 * 1024)

struct maildata {
	const struct wd_mime_tree *tree;
	const struct wd_mime_node *const *att_nodes;
	/* per att_nodes entry ("" when not created here); NULL: none */
	const char (*content_hashes)[WD_ATTACHMENT_CONTENT_HASH_SIZE];
	size_t att_count, att_next;
	GHashTable *cids;               /* content id → "ATTnnnnn" */
	struct wd_buffer text;          /* non-blank texts joined with LF */
	size_t text_units;
	struct wd_buffer *html;         /* non-blank HTML strings */
	size_t html_count, html_cap, html_bytes;
	bson_t *attachments;
	uint32_t attachment_count;
	bool has_unrelated;
	bool nul_ok;
};

/* ---- strings as JavaScript sees them ---- */

static size_t units_of(uint32_t cp)
{
	return cp >= 0x10000 ? 2 : 1;
}

static size_t utf16_length(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len;)
		n += units_of(wd__utf8_get(s, len, &i));
	return n;
}

/* Append s's first `units` UTF-16 units (String.prototype.substr); a split
   surrogate pair is written as U+FFFD. Returns the bytes consumed. */
static size_t append_units(struct wd_buffer *out, const char *s, size_t len, size_t units,
			   bool *split_r)
{
	size_t i = 0, n = 0;
	*split_r = false;
	while (i < len && n < units) {
		size_t at = i;
		uint32_t cp = wd__utf8_get(s, len, &i);
		if (n + units_of(cp) > units) {
			*split_r = true;
			i = at;
			break;
		}
		n += units_of(cp);
	}
	wd_buffer_append(out, s, i);
	if (*split_r)
		wd_buffer_append(out, "\xef\xbf\xbd", 3);
	return i;
}

/* JavaScript's trim() as byte offsets [*a, *b). */
static void js_trim(const char *s, size_t len, size_t *a, size_t *b)
{
	size_t i = 0;
	while (i < len) {
		size_t k = i;
		if (!wd__js_space(wd__utf8_get(s, len, &k)))
			break;
		i = k;
	}
	size_t end = len;
	while (end > i) {
		size_t k = end - 1;
		while (k > i && ((unsigned char)s[k] & 0xc0) == 0x80)
			k--;
		size_t next = k;
		if (!wd__js_space(wd__utf8_get(s, len, &next)) || next != end)
			break;
		end = k;
	}
	*a = i;
	*b = end;
}

/* Replace invalid UTF-8 with U+FFFD in place (into a new buffer). */
static void sanitize_utf8(struct wd_buffer *buf)
{
	const char *s = (const char *)wd_buffer_bytes(buf);
	if (g_utf8_validate_len(s, buf->len, NULL))
		return;
	struct wd_buffer out = WD_BUFFER_INIT;
	for (size_t i = 0; i < buf->len;)
		wd__utf8_put(&out, wd__utf8_get(s, buf->len, &i));
	wd_buffer_release(buf);
	*buf = out;
}

/* ---- decoding a part ---- */

static void convert_charset(const char *charset, const uint8_t *in, size_t len,
			    struct wd_buffer *out)
{
	GIConv cd = g_iconv_open("UTF-8", charset);
	if (cd == (GIConv)-1) {
		/* iconv-lite throws; WildDuck then reads the bytes as UTF-8 */
		wd_buffer_append(out, in, len);
		return;
	}
	gchar *src = (gchar *)in;
	gsize left = len;
	while (left > 0) {
		uint8_t *dst = wd_buffer_reserve(out, left * 4 + 16);
		if (dst == NULL)
			break;
		gchar *d = (gchar *)dst;
		gsize room = left * 4 + 16;
		gsize r = g_iconv(cd, &src, &left, &d, &room);
		wd_buffer_commit(out, (size_t)((uint8_t *)d - dst));
		if (r == (gsize)-1 && left > 0) {
			/* invalid or incomplete input: U+FFFD, skip a byte */
			if (errno == E2BIG)
				continue;
			wd_buffer_append(out, "\xef\xbf\xbd", 3);
			src++;
			left--;
		}
	}
	g_iconv_close(cd);
}

/* format=flowed (RFC 3676) as libmime.decodeFlowed(): a line ending with a
   space joins the next one (without that space when delsp), except the
   signature separator "-- "; then one leading space is removed from every
   line. */
static void unflow(struct wd_buffer *buf, bool delsp)
{
	const char *s = (const char *)wd_buffer_bytes(buf);
	size_t len = buf->len;
	struct wd_buffer acc = WD_BUFFER_INIT;
	size_t line_start = 0; /* of the last line in acc */
	bool first = true;
	for (size_t i = 0; i <= len;) {
		size_t e = i;
		while (e < len && s[e] != '\n')
			e++;
		size_t le = e;
		if (le > i && s[le - 1] == '\r' && e < len)
			le--;
		if (!first) {
			const char *a = (const char *)wd_buffer_bytes(&acc);
			bool soft = acc.len > 0 && a[acc.len - 1] == ' ' &&
				    !(acc.len - line_start == 3 && memcmp(a + line_start, "-- ", 3) == 0);
			if (soft) {
				if (delsp)
					acc.len--;
			} else {
				wd_buffer_append(&acc, "\n", 1);
				line_start = acc.len;
			}
		}
		wd_buffer_append(&acc, s + i, le - i);
		first = false;
		if (e >= len)
			break;
		i = e + 1;
	}
	/* remove space stuffing: /^ /gm (after \n and \r) */
	uint8_t *a = acc.data == NULL ? NULL : acc.data + acc.start;
	size_t n = 0;
	for (size_t i = 0; i < acc.len; i++) {
		if (a[i] == ' ' && (i == 0 || a[i - 1] == '\n' || a[i - 1] == '\r'))
			continue;
		a[n++] = a[i];
	}
	acc.len = n;
	wd_buffer_release(buf);
	*buf = acc;
}

/* libqp.decode(body.toString()) as WildDuck calls it: the body is read as
   UTF-8 first, so a raw 8-bit byte becomes the low byte of its UTF-16 unit
   (U+FFFD → 0xFD); [\t ]+ before every line end and "=" before CRLF/LF or
   at the very end are removed; "=XX" is a byte, anything else stays. */
static void qp_decode(const char *s, size_t len, struct wd_buffer *out)
{
	uint8_t *dst = wd_buffer_reserve(out, len + 1);
	if (dst == NULL)
		return;
	size_t n = 0, i = 0;
	while (i < len) {
		/* a run of blanks: dropped when a line end (or the end) follows */
		if (s[i] == ' ' || s[i] == '\t') {
			size_t j = i;
			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			size_t k = j;
			uint32_t next = j < len ? wd__utf8_get(s, len, &k) : '\n';
			if (!wd__js_line_end(next))
				memcpy(dst + n, s + i, j - i), n += j - i;
			i = j;
			continue;
		}
		if (s[i] == '=') {
			/* a soft break: "=" + CRLF / LF, or "=" (+ blanks) at the end */
			size_t j = i + 1;
			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j + 1 < len && s[j] == '\r' && s[j + 1] == '\n') {
				i = j + 2;
				continue;
			}
			if (j < len && s[j] == '\n') {
				i = j + 1;
				continue;
			}
			if (j == len) {
				i = j;
				continue;
			}
			if (i + 2 < len && g_ascii_isxdigit(s[i + 1]) && g_ascii_isxdigit(s[i + 2])) {
				dst[n++] = (uint8_t)(g_ascii_xdigit_value(s[i + 1]) << 4 |
						     g_ascii_xdigit_value(s[i + 2]));
				i += 3;
				continue;
			}
		}
		uint32_t cp = wd__utf8_get(s, len, &i);
		if (cp >= 0x10000) {
			/* two UTF-16 units, each truncated to a byte */
			cp -= 0x10000;
			dst[n++] = (uint8_t)(0xd800 | cp >> 10);
			dst[n++] = (uint8_t)(0xdc00 | (cp & 0x3ff));
		} else {
			dst[n++] = (uint8_t)cp;
		}
	}
	wd_buffer_commit(out, n);
}

static bool ascii_charset(const char *charset)
{
	/* WildDuck strips [^a-z0-9] before lower-casing, so only lower-case
	   names are recognised; the others decode the same way anyway */
	char norm[32];
	size_t n = 0;
	for (const char *c = charset; *c != '\0' && n + 1 < sizeof(norm); c++)
		if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))
			norm[n++] = *c;
	norm[n] = '\0';
	return strcmp(norm, "ascii") == 0 || strcmp(norm, "usascii") == 0 ||
	       strcmp(norm, "utf8") == 0 || g_ascii_strcasecmp(charset, "utf-8") == 0 ||
	       g_ascii_strcasecmp(charset, "us-ascii") == 0;
}

/* The decoded UTF-8 content of an inline text node; *units_r is its full
   length before the PART_MAX_UNITS cut. */
static void decode_part(const struct maildata *md, const struct wd_mime_node *node,
			struct wd_buffer *out, size_t *units_r)
{
	struct wd_buffer body = WD_BUFFER_INIT, decoded = WD_BUFFER_INIT;
	wd_mime_wd_body(md->tree, node, &body);
	const char *te = node->transfer_encoding != NULL ? node->transfer_encoding : "";
	if (strcmp(te, "base64") == 0) {
		GMimeEncoding state;
		g_mime_encoding_init_decode(&state, GMIME_CONTENT_ENCODING_BASE64);
		uint8_t *dst = wd_buffer_reserve(&decoded, g_mime_encoding_outlen(&state, body.len) + 16);
		if (dst != NULL)
			wd_buffer_commit(&decoded,
					 g_mime_encoding_flush(&state, (const char *)wd_buffer_bytes(&body),
							       body.len, (char *)dst));
		wd_buffer_release(&body);
	} else if (strcmp(te, "quoted-printable") == 0) {
		qp_decode((const char *)wd_buffer_bytes(&body), body.len, &decoded);
		wd_buffer_release(&body);
	} else {
		decoded = body;
	}
	const char *charset = node->charset != NULL && node->charset[0] != '\0' ? node->charset :
										    "windows-1257";
	struct wd_buffer text = WD_BUFFER_INIT;
	if (ascii_charset(charset))
		text = decoded;
	else {
		convert_charset(charset, wd_buffer_bytes(&decoded), decoded.len, &text);
		wd_buffer_release(&decoded);
	}
	sanitize_utf8(&text);
	const struct wd_mime_param *format = wd_mime_content_param(&node->content_type, "format");
	if (format != NULL) {
		char *f = g_strstrip(g_ascii_strdown(format->value, -1));
		if (strcmp(f, "flowed") == 0) {
			const struct wd_mime_param *d = wd_mime_content_param(&node->content_type, "delsp");
			char *dv = d != NULL ? g_strstrip(g_ascii_strdown(d->value, -1)) : NULL;
			unflow(&text, dv != NULL && strcmp(dv, "yes") == 0);
			g_free(dv);
		}
		g_free(f);
	}
	const char *s = (const char *)wd_buffer_bytes(&text);
	*units_r = utf16_length(s, text.len);
	if (*units_r > PART_MAX_UNITS) {
		/* keep the start; leading blanks first go, as trim() would */
		size_t a, b;
		js_trim(s, text.len, &a, &b);
		bool split;
		append_units(out, s + a, text.len - a, PART_MAX_UNITS, &split);
	} else {
		wd_buffer_append(out, s, text.len);
	}
	wd_buffer_release(&text);
}

/* ---- cid: links ---- */

static bool js_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* str.replace(/\bcid:([^\s"']+)/g, …) with the attachment map. */
static void rewrite_cids(const struct maildata *md, const char *s, size_t len,
			 struct wd_buffer *out)
{
	size_t run = 0;
	for (size_t i = 0; i < len;) {
		if (!(len - i > 4 && memcmp(s + i, "cid:", 4) == 0 &&
		      (i == 0 || !js_word_char(s[i - 1])))) {
			i++;
			continue;
		}
		size_t j = i + 4;
		while (j < len) {
			size_t k = j;
			uint32_t cp = wd__utf8_get(s, len, &k);
			if (wd__js_space(cp) || cp == '"' || cp == '\'')
				break;
			j = k;
		}
		if (j == i + 4) {
			i++;
			continue;
		}
		char *cid = g_strndup(s + i + 4, j - i - 4);
		const char *id = strlen(cid) == j - i - 4 ? g_hash_table_lookup(md->cids, cid) : NULL;
		g_free(cid);
		if (id != NULL) {
			wd_buffer_append(out, s + run, i - run);
			wd_buffer_append_str(out, "attachment:");
			wd_buffer_append_str(out, id);
			run = j;
		}
		i = j;
	}
	wd_buffer_append(out, s + run, len - run);
}

/* ---- the lists ---- */

static void add_text(struct maildata *md, const char *s, size_t len)
{
	size_t a, b;
	js_trim(s, len, &a, &b);
	if (a == b || md->text_units > TEXT_COLLECT_UNITS)
		return;
	struct wd_buffer part = WD_BUFFER_INIT;
	rewrite_cids(md, s + a, b - a, &part);
	if (md->text.len > 0) {
		wd_buffer_append(&md->text, "\n", 1);
		md->text_units++;
	}
	wd_buffer_append(&md->text, wd_buffer_bytes(&part), part.len);
	md->text_units += utf16_length((const char *)wd_buffer_bytes(&part), part.len);
	wd_buffer_release(&part);
}

static void add_html(struct maildata *md, const char *s, size_t len)
{
	size_t a, b;
	js_trim(s, len, &a, &b);
	if (a == b || md->html_bytes >= HTML_MAX_BYTES)
		return; /* blank, or past the cap (WildDuck drops the rest) */
	if (md->html_count == md->html_cap) {
		size_t cap = md->html_cap == 0 ? 4 : md->html_cap * 2;
		struct wd_buffer *n = realloc(md->html, cap * sizeof(*n));
		if (n == NULL)
			return;
		md->html = n;
		md->html_cap = cap;
	}
	struct wd_buffer *part = &md->html[md->html_count++];
	*part = (struct wd_buffer)WD_BUFFER_INIT;
	rewrite_cids(md, s + a, b - a, part);
	if (md->html_bytes + part->len > HTML_MAX_BYTES) {
		/* html.substr(0, MAX_HTML_CONTENT): units, not bytes */
		struct wd_buffer cut = WD_BUFFER_INIT;
		bool split;
		append_units(&cut, (const char *)wd_buffer_bytes(part), part->len, HTML_MAX_BYTES,
			     &split);
		wd_buffer_release(part);
		*part = cut;
	}
	md->html_bytes += part->len;
}

/* ---- attachments ---- */

/* libmime.detectExtension() for the common types; "bin" for the rest. */
static const char *extension_for(const char *type)
{
	static const char *const table[][2] = {
		{ "application/gzip", "bin" }, { "application/json", "json" },
		{ "application/msword", "doc" }, { "application/octet-stream", "bin" },
		{ "application/pdf", "pdf" }, { "application/pgp-signature", "pgp" },
		{ "application/pkcs7-mime", "p7c" }, { "application/pkcs7-signature", "p7s" },
		{ "application/rtf", "rtf" }, { "application/vnd.ms-excel", "xls" },
		{ "application/vnd.ms-powerpoint", "ppt" },
		{ "application/vnd.openxmlformats-officedocument.presentationml.presentation",
		  "pptx" },
		{ "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx" },
		{ "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		  "docx" },
		{ "application/x-gzip", "gz" }, { "application/x-pkcs7-signature", "p7s" },
		{ "application/x-tar", "tar" }, { "application/x-zip-compressed", "zip" },
		{ "application/xml", "xml" }, { "application/zip", "zip" },
		{ "audio/mpeg", "mpga" }, { "audio/wav", "wav" }, { "image/bmp", "bmp" },
		{ "image/gif", "gif" }, { "image/jpeg", "jpeg" }, { "image/png", "png" },
		{ "image/svg+xml", "svg" }, { "image/tiff", "tiff" }, { "image/webp", "webp" },
		{ "image/x-icon", "ico" }, { "message/rfc822", "eml" }, { "text/calendar", "ics" },
		{ "text/csv", "csv" }, { "text/html", "html" }, { "text/plain", "txt" },
		{ "text/x-vcard", "vcf" }, { "text/xml", "xml" }, { "video/mp4", "mp4" },
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(type, table[i][0]) == 0)
			return table[i][1];
	return "bin";
}

/* A parameter value as UTF-8: RFC 2231 charset applied. */
static char *param_utf8(const struct wd_mime_param *p)
{
	if (p->charset == NULL || ascii_charset(p->charset))
		return g_strndup(p->value, p->value_len);
	struct wd_buffer out = WD_BUFFER_INIT;
	convert_charset(p->charset, (const uint8_t *)p->value, p->value_len, &out);
	char *s = g_strndup((const char *)wd_buffer_bytes(&out), out.len);
	wd_buffer_release(&out);
	return s;
}

static char *attachment_filename(const struct wd_mime_node *node, const char *type)
{
	const struct wd_mime_param *p = NULL;
	if (node->disposition.present)
		p = wd_mime_content_param(&node->disposition, "filename");
	if (p == NULL || p->value_len == 0)
		p = wd_mime_content_param(&node->content_type, "name");
	if (p != NULL && p->value_len > 0) {
		char *raw = param_utf8(p);
		char *decoded = g_mime_utils_header_decode_text(NULL, raw);
		char *name = decoded != NULL ? decoded : raw;
		size_t a, b;
		js_trim(name, strlen(name), &a, &b);
		char *result = g_strndup(name + a, b - a);
		g_free(decoded);
		g_free(raw);
		return result;
	}
	return g_strdup_printf("%08x.%s", g_random_int(), extension_for(type));
}

static char *lower_trimmed(const char *s)
{
	return g_strstrip(g_ascii_strdown(s != NULL ? s : "", -1));
}

static void add_attachment(struct maildata *md, const struct wd_mime_node *node, const char *type,
			   const char *disposition, bool related, size_t index)
{
	char id[16], key[16];
	const char *key_str;
	snprintf(id, sizeof(id), "ATT%05u", (unsigned)((index + 1) % 1000000000u));
	bson_uint32_to_string(md->attachment_count++, &key_str, key, sizeof(key));
	bson_t att;
	bson_append_document_begin(md->attachments, key_str, -1, &att);
	BSON_APPEND_UTF8(&att, "id", id);
	char *filename = attachment_filename(node, type);
	wd__append_text(&att, "filename", filename, strlen(filename), md->nul_ok);
	g_free(filename);
	wd__append_text(&att, "contentType", type, strlen(type), md->nul_ok);
	if (disposition != NULL)
		wd__append_text(&att, "disposition", disposition, strlen(disposition), md->nul_ok);
	else
		BSON_APPEND_BOOL(&att, "disposition", false);
	char *te = lower_trimmed(node->transfer_encoding);
	if (te[0] == '\0')
		BSON_APPEND_UTF8(&att, "transferEncoding", "7bit");
	else
		wd__append_text(&att, "transferEncoding", te, strlen(te), md->nul_ok);
	char *cid = node->content_id != NULL ? g_strdup(node->content_id) : NULL;
	if (cid != NULL) {
		size_t n = 0;
		for (size_t i = 0; cid[i] != '\0'; i++)
			if (cid[i] != '<' && cid[i] != '>')
				cid[n++] = cid[i];
		size_t a, b;
		js_trim(cid, n, &a, &b);
		if (a < b) {
			char *v = g_strdup_printf("<%.*s>", (int)(b - a), cid + a);
			wd__append_text(&att, "cid", v, strlen(v), md->nul_ok);
			g_free(v);
		} else {
			BSON_APPEND_NULL(&att, "cid");
		}
	} else {
		BSON_APPEND_NULL(&att, "cid");
	}
	g_free(cid);
	BSON_APPEND_BOOL(&att, "related", related);
	struct wd_mime_wd_info info;
	wd_mime_wd_info(md->tree, node, &info);
	uint64_t size = info.size, estimate = size;
	if (strcmp(te, "base64") == 0) {
		uint64_t encoded = size - 2 * (size / 78);
		estimate = (encoded * 3 + 3) / 4; /* ceil(encoded / 4 * 3) */
	}
	BSON_APPEND_INT32(&att, "sizeKb", (int32_t)((estimate + 1023) / 1024));
	BSON_APPEND_INT32(&att, "size", (int32_t)size);
	if (md->content_hashes != NULL && index < md->att_count &&
	    md->content_hashes[index][0] != '\0')
		BSON_APPEND_UTF8(&att, "fileContentHash", md->content_hashes[index]);
	bson_append_document_end(md->attachments, &att);
	g_free(te);
	if (!related)
		md->has_unrelated = true;
}

/* ---- the walk ---- */

static bool is_type(const char *type, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(type, *list) == 0)
			return true;
	return false;
}

static void extract_text(struct maildata *md, const struct wd_mime_node *node, bool html,
			 bool alternative)
{
	struct wd_buffer content = WD_BUFFER_INIT;
	size_t units;
	decode_part(md, node, &content, &units);
	const char *s = (const char *)wd_buffer_bytes(&content);
	if (html) {
		add_html(md, s, content.len);
		if (!alternative && units > 0 && units < HTML_PARSE_MAX_UNITS &&
		    md->text_units <= TEXT_COLLECT_UNITS) {
			struct wd_buffer text = WD_BUFFER_INIT;
			if (wd__html_to_text(s, content.len, &text) == WD_OK)
				add_text(md, (const char *)wd_buffer_bytes(&text), text.len);
			wd_buffer_release(&text);
		}
	} else {
		add_text(md, s, content.len);
		if (!alternative && md->html_bytes < HTML_MAX_BYTES) {
			struct wd_buffer h = WD_BUFFER_INIT;
			if (wd__text_to_html(s, content.len, &h) == WD_OK)
				add_html(md, (const char *)wd_buffer_bytes(&h), h.len);
			wd_buffer_release(&h);
		}
	}
	wd_buffer_release(&content);
}

static void walk(struct maildata *md, const struct wd_mime_node *node, bool alternative,
		 bool related)
{
	static const char *const inline_types[] = { "text/plain", "text/html",
						    "text/rfc822-headers",
						    "message/delivery-status", NULL };
	char *type = lower_trimmed(node->content_type.value);
	if (type[0] == '\0') {
		g_free(type);
		type = g_strdup_printf("%s/%s", node->content_type.type, node->content_type.subtype);
	}
	alternative = alternative || strcmp(type, "multipart/alternative") == 0;
	related = related || strcmp(type, "multipart/related") == 0;
	char *disposition = node->disposition.present ? lower_trimmed(node->disposition.value) :
							 NULL;
	if (disposition != NULL && disposition[0] == '\0') {
		g_free(disposition);
		disposition = NULL;
	}
	bool inline_text = is_type(type, inline_types) &&
			   (disposition == NULL || strcmp(disposition, "inline") == 0);
	if (inline_text && node->kind == WD_MIME_KIND_LEAF && wd_mime_range_len(node->body) > 0)
		extract_text(md, node, strcmp(type, "text/html") == 0, alternative);
	if (md->att_next < md->att_count && md->att_nodes[md->att_next] == node) {
		if (!inline_text && strncmp(type, "multipart/", 10) != 0)
			add_attachment(md, node, type, disposition, related, md->att_next);
		md->att_next++;
	}
	g_free(type);
	g_free(disposition);
	if (node->kind == WD_MIME_KIND_MESSAGE && node->message != NULL)
		walk(md, node->message, alternative, related);
	else if (node->kind == WD_MIME_KIND_MULTIPART)
		for (uint32_t i = 0; i < node->child_count; i++)
			walk(md, node->children[i], alternative, related);
}

/* ---- intro (MessageHandler.createIntro) ---- */

static void append_intro(bson_t *doc, const char *s, size_t len, bool nul_ok)
{
	/* the first 2048 units, as code points (a split pair reads as U+FFFD) */
	uint32_t cps[INTRO_SOURCE_UNITS + 1];
	size_t n = 0, units = 0;
	for (size_t i = 0; i < len && units < INTRO_SOURCE_UNITS;) {
		uint32_t cp = wd__utf8_get(s, len, &i);
		if (units + units_of(cp) > INTRO_SOURCE_UNITS)
			cp = 0xfffd;
		cps[n++] = cp;
		units += units_of(cp);
	}
	/* \[[^\]]*\] → ' ' */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (cps[i] == '[') {
			size_t j = i + 1;
			while (j < n && cps[j] != ']')
				j++;
			if (j < n) {
				cps[m++] = ' ';
				i = j;
				continue;
			}
		}
		cps[m++] = cps[i];
	}
	n = m;
	/* ^>.*$ → '' (multiline) */
	m = 0;
	for (size_t i = 0; i < n;) {
		bool line_start = i == 0 || wd__js_line_end(cps[i - 1]);
		if (line_start && cps[i] == '>') {
			while (i < n && !wd__js_line_end(cps[i]))
				i++;
			continue;
		}
		cps[m++] = cps[i++];
	}
	n = m;
	/* ^\s*(.)\1+\s*$ → '': a line whose non-blank content is one BMP
	   character repeated; the blanks around it only matter to the
	   whitespace collapsing below, so dropping the content is enough */
	m = 0;
	for (size_t i = 0; i < n;) {
		size_t e = i;
		while (e < n && !wd__js_line_end(cps[e]))
			e++;
		size_t a = i, b = e;
		while (a < b && wd__js_space(cps[a]))
			a++;
		while (b > a && wd__js_space(cps[b - 1]))
			b--;
		bool repeated = b - a >= 2 && cps[a] < 0x10000;
		for (size_t k = a + 1; repeated && k < b; k++)
			repeated = cps[k] == cps[a];
		for (size_t k = i; k < e; k++)
			if (!repeated || k < a || k >= b)
				cps[m++] = cps[k];
		if (e < n)
			cps[m++] = cps[e];
		i = e + 1;
	}
	n = m;
	/* \s+ → ' ', trim */
	m = 0;
	bool space = false;
	for (size_t i = 0; i < n; i++) {
		if (wd__js_space(cps[i])) {
			space = m > 0;
			continue;
		}
		if (space)
			cps[m++] = ' ';
		space = false;
		cps[m++] = cps[i];
	}
	n = m;
	/* ≤ 128 units: cut at the last space, add "…" */
	units = 0;
	for (size_t i = 0; i < n; i++)
		units += units_of(cps[i]);
	bool cut = units > INTRO_UNITS;
	if (cut) {
		size_t keep = 0;
		units = 0;
		while (keep < n && units + units_of(cps[keep]) <= INTRO_UNITS)
			units += units_of(cps[keep++]);
		bool split = keep < n && units < INTRO_UNITS; /* half a pair */
		size_t last_space = 0;
		for (size_t i = 0; i < keep; i++)
			if (cps[i] == ' ')
				last_space = i;
		if (last_space > 0) {
			keep = last_space;
			split = false;
		}
		n = keep;
		if (split)
			cps[n++] = 0xfffd;
		cps[n++] = 0x2026;
	}
	struct wd_buffer out = WD_BUFFER_INIT;
	for (size_t i = 0; i < n; i++)
		wd__utf8_put(&out, cps[i]);
	wd__append_text(doc, "intro", (const char *)wd_buffer_bytes(&out), out.len, nul_ok);
	wd_buffer_release(&out);
}

/* ---- output ---- */

static void append_text_fields(struct maildata *md, bson_t *doc)
{
	const char *s = (const char *)wd_buffer_bytes(&md->text);
	size_t a, b;
	js_trim(s, md->text.len, &a, &b);
	/* CRLF → LF, trim again */
	struct wd_buffer text = WD_BUFFER_INIT;
	for (size_t i = a; i < b; i++) {
		if (s[i] == '\r' && i + 1 < b && s[i + 1] == '\n')
			continue;
		wd_buffer_append(&text, s + i, 1);
	}
	s = (const char *)wd_buffer_bytes(&text);
	js_trim(s, text.len, &a, &b);
	if (a < b) {
		struct wd_buffer head = WD_BUFFER_INIT, footer = WD_BUFFER_INIT;
		bool split;
		size_t used = append_units(&head, s + a, b - a, TEXT_INDEXED_UNITS, &split);
		wd__append_text(doc, "text", (const char *)wd_buffer_bytes(&head), head.len,
				md->nul_ok);
		if (used < b - a) {
			/* the footer starts with the second half of a split pair */
			if (split) {
				size_t i = a + used;
				wd__utf8_get(s, b, &i);
				wd_buffer_append(&footer, "\xef\xbf\xbd", 3);
				used = i - a;
			}
			bool split2;
			append_units(&footer, s + a + used, b - a - used,
				     TEXT_MAX_UNITS - TEXT_INDEXED_UNITS - (split ? 1 : 0), &split2);
			wd__append_text(doc, "textFooter", (const char *)wd_buffer_bytes(&footer),
					footer.len, md->nul_ok);
		}
		if (md->html_count == 0)
			append_intro(doc, (const char *)wd_buffer_bytes(&head), head.len, md->nul_ok);
		wd_buffer_release(&head);
		wd_buffer_release(&footer);
	}
	wd_buffer_release(&text);
}

static void append_html_fields(struct maildata *md, bson_t *doc)
{
	if (md->html_count == 0)
		return;
	bson_t html;
	bson_append_array_begin(doc, "html", -1, &html);
	struct wd_buffer joined = WD_BUFFER_INIT;
	for (size_t i = 0; i < md->html_count; i++) {
		char key[16];
		const char *key_str;
		bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
		const struct wd_buffer *h = &md->html[i];
		wd__append_text(&html, key_str, (const char *)wd_buffer_bytes(h), h->len,
				md->nul_ok);
		wd_buffer_append(&joined, wd_buffer_bytes(h), h->len);
	}
	bson_append_array_end(doc, &html);
	struct wd_buffer text = WD_BUFFER_INIT;
	if (wd__html_to_text((const char *)wd_buffer_bytes(&joined), joined.len, &text) == WD_OK)
		append_intro(doc, (const char *)wd_buffer_bytes(&text), text.len, md->nul_ok);
	wd_buffer_release(&text);
	wd_buffer_release(&joined);
}

void wd__maildata_append(const struct wd_mime_tree *tree,
			 const struct wd_mime_node *const *att_nodes,
			 const char (*content_hashes)[WD_ATTACHMENT_CONTENT_HASH_SIZE],
			 size_t att_count, bool nul_ok,
			 bson_t *doc)
{
	struct maildata md = { .tree = tree, .att_nodes = att_nodes,
			       .content_hashes = content_hashes, .att_count = att_count,
			       .nul_ok = nul_ok };
	md.cids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	for (size_t i = 0; i < att_count; i++) {
		const char *c = att_nodes[i]->content_id;
		if (c == NULL)
			continue;
		char *cid = g_strdup(c);
		size_t n = 0;
		for (size_t k = 0; cid[k] != '\0'; k++)
			if (cid[k] != '<' && cid[k] != '>')
				cid[n++] = cid[k];
		size_t a, b;
		js_trim(cid, n, &a, &b);
		if (a < b)
			g_hash_table_replace(md.cids, g_strndup(cid + a, b - a),
					     g_strdup_printf("ATT%05u", (unsigned)((i + 1) % 1000000000u)));
		g_free(cid);
	}
	bson_t attachments;
	bson_init(&attachments);
	md.attachments = &attachments;
	walk(&md, tree->root, false, false);

	append_text_fields(&md, doc);
	append_html_fields(&md, doc);
	if (md.attachment_count > 0)
		BSON_APPEND_ARRAY(doc, "attachments", &attachments);
	BSON_APPEND_BOOL(doc, "ha", md.has_unrelated);
	bson_destroy(&attachments);
	for (size_t i = 0; i < md.html_count; i++)
		wd_buffer_release(&md.html[i]);
	free(md.html);
	wd_buffer_release(&md.text);
	g_hash_table_destroy(md.cids);
}
