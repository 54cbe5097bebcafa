/* IMAP ENVELOPE and BODYSTRUCTURE from a MIME tree (wd-imap-structure.h).
 *
 * Everything is written straight into the caller's buffer through a small
 * writer whose error is sticky, so the formatting code reads like the RFC
 * 3501 grammar. Header values are looked up in the node's field list (first
 * occurrence for ENVELOPE, as RFC 5322 allows each field once) and unfolded
 * into a scratch buffer. Address lists go through a tokenizer (atoms, quoted
 * strings, domain literals, specials; comments and whitespace skipped but
 * remembered as spacing) and a forgiving parser: whatever the input, every
 * token is consumed and the output stays well-formed. */
#include "wd-imap-structure.h"

#include "wd-buffer.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Longer strings are sent as literals. */
#define IMAP_QUOTED_MAX 1000

struct writer {
	struct wd_buffer *out;
	const struct wd_mime_tree *tree;
	unsigned flags;
	int rc;
};

static void put(struct writer *w, const void *data, size_t len)
{
	if (w->rc == WD_OK && wd_buffer_append(w->out, data, len) != WD_OK)
		w->rc = WD_ERROR;
}

static void puts_(struct writer *w, const char *str)
{
	put(w, str, strlen(str));
}

static bool utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* An IMAP string: quoted when possible, a literal otherwise. */
static void put_string(struct writer *w, const void *data, size_t len)
{
	const uint8_t *s = data;
	bool quoted = len <= IMAP_QUOTED_MAX;
	bool eight_bit = false;
	for (size_t i = 0; quoted && i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			quoted = false;
		else if (s[i] >= 0x80)
			eight_bit = true;
	}
	if (quoted && eight_bit)
		quoted = (w->flags & WD_IMAP_UTF8) != 0 && utf8_valid(s, len);
	if (!quoted) {
		char head[32];
		int n = snprintf(head, sizeof(head), "{%zu}\r\n", len);
		put(w, head, (size_t)n);
		put(w, s, len);
		return;
	}
	put(w, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			put(w, s + run, i - run);
			put(w, "\\", 1);
			run = i;
		}
	}
	put(w, s + run, len - run);
	put(w, "\"", 1);
}

static void put_nstring(struct writer *w, const char *str)
{
	if (str == NULL)
		puts_(w, "NIL");
	else
		put_string(w, str, strlen(str));
}

static void put_upper(struct writer *w, const char *str)
{
	char tmp[IMAP_QUOTED_MAX];
	size_t len = strlen(str);
	if (len > sizeof(tmp)) {
		put_string(w, str, len);
		return;
	}
	for (size_t i = 0; i < len; i++)
		tmp[i] = (str[i] >= 'a' && str[i] <= 'z') ? (char)(str[i] - 'a' + 'A') : str[i];
	put_string(w, tmp, len);
}

/* ---- header lookup ---- */

static const struct wd_mime_field *find_field(const struct wd_mime_tree *tree,
					      const struct wd_mime_node *node, const char *name)
{
	size_t name_len = strlen(name);
	for (uint32_t i = 0; i < node->field_count; i++) {
		const struct wd_mime_field *f = &node->fields[i];
		if (f->name_len == name_len &&
		    strncasecmp((const char *)tree->data + f->name_start, name, name_len) == 0)
			return f;
	}
	return NULL;
}

/* Unfold a field's value into `scratch` (cleared first): CR and LF removed,
   leading and trailing SP/HTAB trimmed. */
static bool unfold(const struct wd_mime_tree *tree, const struct wd_mime_field *f,
		   struct wd_buffer *scratch, const uint8_t **value_r, size_t *len_r)
{
	wd_buffer_clear(scratch);
	const uint8_t *s = tree->data;
	uint32_t start = f->value_start, end = f->range.end;
	while (start < end && (s[start] == ' ' || s[start] == '\t' || s[start] == '\r' ||
			       s[start] == '\n'))
		start++;
	uint32_t run = start;
	for (uint32_t i = start; i < end; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (wd_buffer_append(scratch, s + run, i - run) != WD_OK)
				return false;
			run = i + 1;
		}
	}
	if (wd_buffer_append(scratch, s + run, end - run) != WD_OK)
		return false;
	const uint8_t *v = wd_buffer_bytes(scratch);
	size_t len = scratch->len;
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	*value_r = v;
	*len_r = len;
	return true;
}

/* A header as an nstring: NIL when the field is missing. */
static void put_header_string(struct writer *w, const struct wd_mime_node *node,
			      const char *name, struct wd_buffer *scratch)
{
	const struct wd_mime_field *f = find_field(w->tree, node, name);
	const uint8_t *v;
	size_t len;
	if (f == NULL) {
		puts_(w, "NIL");
	} else if (!unfold(w->tree, f, scratch, &v, &len)) {
		w->rc = WD_ERROR;
	} else {
		put_string(w, v, len);
	}
}

/* ---- address lists (RFC 5322, best effort) ---- */

enum token_kind { TOK_END, TOK_ATOM, TOK_QUOTED, TOK_SPECIAL };

struct token {
	enum token_kind kind;
	const uint8_t *data; /* atom text, quoted content (escapes kept) */
	size_t len;
	char special;
	bool space_before;   /* whitespace or a comment precedes it */
};

struct lexer {
	const uint8_t *s;
	size_t len, pos;
};

static bool is_special(uint8_t c)
{
	return c != '\0' && strchr("()<>[]:;@,.\"", c) != NULL;
}

static struct token lex_next(struct lexer *lx)
{
	struct token t = { .kind = TOK_END };
	const uint8_t *s = lx->s;
	for (;;) {
		if (lx->pos >= lx->len)
			return t;
		uint8_t c = s[lx->pos];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			lx->pos++;
			t.space_before = true;
		} else if (c == '(') {
			unsigned depth = 0;
			while (lx->pos < lx->len) {
				c = s[lx->pos++];
				if (c == '\\')
					lx->pos++;
				else if (c == '(')
					depth++;
				else if (c == ')' && --depth == 0)
					break;
			}
			if (lx->pos > lx->len)
				lx->pos = lx->len;
			t.space_before = true;
		} else if (c == ')') {
			lx->pos++; /* stray */
		} else {
			break;
		}
	}
	uint8_t c = s[lx->pos];
	if (c == '"') {
		size_t start = ++lx->pos;
		while (lx->pos < lx->len && s[lx->pos] != '"')
			lx->pos += s[lx->pos] == '\\' ? 2 : 1;
		if (lx->pos > lx->len)
			lx->pos = lx->len;
		t.kind = TOK_QUOTED;
		t.data = s + start;
		t.len = lx->pos - start;
		if (lx->pos < lx->len)
			lx->pos++; /* closing quote */
	} else if (c == '[') {
		size_t start = lx->pos++;
		while (lx->pos < lx->len && s[lx->pos] != ']')
			lx->pos += s[lx->pos] == '\\' ? 2 : 1;
		if (lx->pos < lx->len)
			lx->pos++;
		else
			lx->pos = lx->len;
		t.kind = TOK_ATOM;
		t.data = s + start;
		t.len = lx->pos - start;
	} else if (is_special(c)) {
		lx->pos++;
		t.kind = TOK_SPECIAL;
		t.special = (char)c;
	} else {
		size_t start = lx->pos;
		while (lx->pos < lx->len && !is_special(s[lx->pos]) && s[lx->pos] != ' ' &&
		       s[lx->pos] != '\t' && s[lx->pos] != '\r' && s[lx->pos] != '\n')
			lx->pos++;
		t.kind = TOK_ATOM;
		t.data = s + start;
		t.len = lx->pos - start;
	}
	return t;
}

/* Append a word token's text (quoted content unescaped). */
static int append_word(struct wd_buffer *buf, const struct token *t)
{
	if (t->kind != TOK_QUOTED)
		return wd_buffer_append(buf, t->data, t->len);
	size_t run = 0;
	for (size_t i = 0; i < t->len; i++) {
		if (t->data[i] == '\\' && i + 1 < t->len) {
			if (wd_buffer_append(buf, t->data + run, i - run) != WD_OK)
				return WD_ERROR;
			run = ++i;
		}
	}
	return wd_buffer_append(buf, t->data + run, t->len - run);
}

struct addr_parser {
	struct writer *w;
	struct lexer lx;
	struct token tok;
	struct wd_buffer phrase, local, domain;
	bool any; /* an address was written (the list is not NIL) */
};

static void ap_advance(struct addr_parser *p)
{
	p->tok = lex_next(&p->lx);
}

static bool ap_at(const struct addr_parser *p, char special)
{
	return p->tok.kind == TOK_SPECIAL && p->tok.special == special;
}

static bool ap_item_end(const struct addr_parser *p)
{
	return p->tok.kind == TOK_END || ap_at(p, ',') || ap_at(p, ';');
}

static void ap_open(struct addr_parser *p)
{
	if (!p->any)
		puts_(p->w, "(");
	p->any = true;
}

static void ap_put_buf(struct addr_parser *p, const struct wd_buffer *buf, bool nil_if_empty)
{
	if (nil_if_empty && buf->len == 0)
		puts_(p->w, "NIL");
	else
		put_string(p->w, wd_buffer_bytes(buf), buf->len);
}

static void ap_emit(struct addr_parser *p, bool has_name, const struct wd_buffer *mailbox,
		    bool has_host)
{
	ap_open(p);
	puts_(p->w, "(");
	if (has_name)
		ap_put_buf(p, &p->phrase, true);
	else
		puts_(p->w, "NIL");
	puts_(p->w, " NIL ");
	ap_put_buf(p, mailbox, false);
	puts_(p->w, " ");
	if (has_host)
		ap_put_buf(p, &p->domain, true);
	else
		puts_(p->w, "NIL");
	puts_(p->w, ")");
}

/* Append word or dot tokens to `buf` until a stop token. With `spaced`,
   input spacing is kept as single spaces (phrases); otherwise tokens are
   concatenated (local parts and domains). */
static void ap_collect(struct addr_parser *p, struct wd_buffer *buf, bool spaced,
		       const char *stops)
{
	while (p->tok.kind != TOK_END &&
	       !(p->tok.kind == TOK_SPECIAL && strchr(stops, p->tok.special) != NULL)) {
		int rc = WD_OK;
		if (spaced && p->tok.space_before && buf->len > 0)
			rc = wd_buffer_append(buf, " ", 1);
		if (rc == WD_OK) {
			if (p->tok.kind == TOK_SPECIAL)
				rc = wd_buffer_append(buf, &p->tok.special, 1);
			else
				rc = append_word(buf, &p->tok);
		}
		if (rc != WD_OK)
			p->w->rc = WD_ERROR;
		ap_advance(p);
	}
}

/* <[@route,@route:]local@domain> — the current token is '<'. */
static void ap_angle(struct addr_parser *p)
{
	ap_advance(p);
	if (ap_at(p, '@')) {
		while (p->tok.kind != TOK_END && !ap_at(p, ':') && !ap_at(p, '>'))
			ap_advance(p);
		if (ap_at(p, ':'))
			ap_advance(p);
	}
	ap_collect(p, &p->local, false, "@>,;<:");
	bool has_host = false;
	if (ap_at(p, '@')) {
		ap_advance(p);
		ap_collect(p, &p->domain, false, ">,;<:@");
		has_host = p->domain.len > 0;
	}
	ap_emit(p, p->phrase.len > 0, &p->local, has_host);
	/* whatever follows up to the end of the item is ignored */
	while (!ap_item_end(p))
		ap_advance(p);
}

/* One mailbox (or, at top level, a group); stops at ',' ';' or the end. */
static void ap_item(struct addr_parser *p, bool in_group)
{
	wd_buffer_clear(&p->phrase);
	wd_buffer_clear(&p->local);
	wd_buffer_clear(&p->domain);
	/* The words before the first delimiter are either a display name or a
	   local part: collect both spellings. */
	struct lexer saved_lx = p->lx;
	struct token saved_tok = p->tok;
	ap_collect(p, &p->phrase, true, "<:@,;>");
	if (ap_at(p, '<')) {
		ap_angle(p);
		return;
	}
	if (ap_at(p, ':') && !in_group) {
		ap_advance(p);
		ap_open(p);
		puts_(p->w, "(NIL NIL ");
		ap_put_buf(p, &p->phrase, false);
		puts_(p->w, " NIL)");
		while (p->tok.kind != TOK_END && !ap_at(p, ';')) {
			if (ap_at(p, ','))
				ap_advance(p);
			else
				ap_item(p, true);
		}
		if (ap_at(p, ';'))
			ap_advance(p);
		puts_(p->w, "(NIL NIL NIL NIL)");
		return;
	}
	/* A bare addr-spec: re-read the words as a local part. */
	p->lx = saved_lx;
	p->tok = saved_tok;
	ap_collect(p, &p->local, false, "<:@,;>");
	bool has_host = false;
	if (ap_at(p, '@')) {
		ap_advance(p);
		ap_collect(p, &p->domain, false, "<:@,;>");
		has_host = p->domain.len > 0;
	}
	/* without '@' the words are a mailbox name: keep their spacing */
	if (has_host)
		ap_emit(p, false, &p->local, true);
	else if (p->phrase.len > 0)
		ap_emit(p, false, &p->phrase, false);
	/* skip junk ('<' after an addr-spec, stray ':' '>' '@') to the item end */
	while (!ap_item_end(p))
		ap_advance(p);
}

static void put_address_list(struct writer *w, const struct wd_mime_node *node,
			     const char *name, struct wd_buffer *scratch)
{
	const struct wd_mime_field *f = find_field(w->tree, node, name);
	const uint8_t *v;
	size_t len;
	if (f == NULL) {
		puts_(w, "NIL");
		return;
	}
	if (!unfold(w->tree, f, scratch, &v, &len)) {
		w->rc = WD_ERROR;
		return;
	}
	struct addr_parser p = {
		.w = w, .lx = { v, len, 0 },
		.phrase = WD_BUFFER_INIT, .local = WD_BUFFER_INIT, .domain = WD_BUFFER_INIT,
	};
	ap_advance(&p);
	while (p.tok.kind != TOK_END) {
		if (ap_at(&p, ',') || ap_at(&p, ';'))
			ap_advance(&p);
		else
			ap_item(&p, false);
	}
	puts_(w, p.any ? ")" : "NIL");
	wd_buffer_release(&p.phrase);
	wd_buffer_release(&p.local);
	wd_buffer_release(&p.domain);
}

/* ---- ENVELOPE ---- */

static void put_envelope(struct writer *w, const struct wd_mime_node *msg,
			 struct wd_buffer *scratch)
{
	puts_(w, "(");
	put_header_string(w, msg, "date", scratch);
	puts_(w, " ");
	put_header_string(w, msg, "subject", scratch);
	puts_(w, " ");
	put_address_list(w, msg, "from", scratch);
	/* RFC 3501: sender and reply-to default to from */
	const char *defaults[] = { "sender", "reply-to" };
	for (size_t i = 0; i < WD_N_ELEMENTS(defaults); i++) {
		puts_(w, " ");
		const char *name = find_field(w->tree, msg, defaults[i]) != NULL ? defaults[i] : "from";
		put_address_list(w, msg, name, scratch);
	}
	const char *lists[] = { "to", "cc", "bcc" };
	for (size_t i = 0; i < WD_N_ELEMENTS(lists); i++) {
		puts_(w, " ");
		put_address_list(w, msg, lists[i], scratch);
	}
	puts_(w, " ");
	put_header_string(w, msg, "in-reply-to", scratch);
	puts_(w, " ");
	put_header_string(w, msg, "message-id", scratch);
	puts_(w, ")");
}

int wd_imap_envelope(const struct wd_mime_tree *tree, const struct wd_mime_node *message_root,
		     unsigned flags, struct wd_buffer *out)
{
	struct writer w = { .out = out, .tree = tree, .flags = flags, .rc = WD_OK };
	struct wd_buffer scratch = WD_BUFFER_INIT;
	put_envelope(&w, message_root, &scratch);
	wd_buffer_release(&scratch);
	return w.rc;
}

/* ---- BODYSTRUCTURE ---- */

/* Lines as the MIME tree counts them: a run of CRs then LF is one
   terminator, a lone CR another; a last line without one counts too. */
static uint32_t count_lines(const uint8_t *s, struct wd_mime_range r)
{
	uint32_t lines = 0;
	uint32_t i = r.start;
	bool open = false;
	while (i < r.end) {
		if (s[i] == '\n') {
			lines++;
			open = false;
			i++;
		} else if (s[i] == '\r') {
			uint32_t j = i;
			while (j < r.end && s[j] == '\r')
				j++;
			if (j < r.end && s[j] == '\n') {
				lines++;
				i = j + 1;
			} else {
				lines++;
				i++;
			}
			open = false;
		} else {
			open = true;
			i++;
		}
	}
	return lines + (open ? 1 : 0);
}

static void put_params(struct writer *w, const struct wd_mime_content *c, bool default_charset)
{
	if (c->param_count == 0 && !default_charset) {
		puts_(w, "NIL");
		return;
	}
	puts_(w, "(");
	bool first = true;
	if (default_charset) {
		puts_(w, "\"charset\" \"US-ASCII\"");
		first = false;
	}
	for (uint32_t i = 0; i < c->param_count; i++) {
		if (!first)
			puts_(w, " ");
		first = false;
		put_nstring(w, c->params[i].name);
		puts_(w, " ");
		put_string(w, c->params[i].value, c->params[i].value_len);
	}
	puts_(w, ")");
}

static void put_disposition(struct writer *w, const struct wd_mime_node *node)
{
	if (!node->disposition.present || node->disposition.value == NULL ||
	    node->disposition.value[0] == '\0') {
		puts_(w, "NIL");
		return;
	}
	puts_(w, "(");
	put_nstring(w, node->disposition.value);
	puts_(w, " ");
	put_params(w, &node->disposition, false);
	puts_(w, ")");
}

/* Content-Language: NIL, one string, or a list of strings. */
static void put_language(struct writer *w, const struct wd_mime_node *node,
			 struct wd_buffer *scratch)
{
	const struct wd_mime_field *f = find_field(w->tree, node, "content-language");
	const uint8_t *v;
	size_t len;
	if (f == NULL) {
		puts_(w, "NIL");
		return;
	}
	if (!unfold(w->tree, f, scratch, &v, &len)) {
		w->rc = WD_ERROR;
		return;
	}
	struct lexer lx = { v, len, 0 };
	size_t count = 0;
	for (struct token t = lex_next(&lx); t.kind != TOK_END; t = lex_next(&lx))
		count += t.kind == TOK_ATOM || t.kind == TOK_QUOTED;
	if (count == 0) {
		puts_(w, "NIL");
		return;
	}
	if (count > 1)
		puts_(w, "(");
	lx.pos = 0;
	bool first = true;
	for (struct token t = lex_next(&lx); t.kind != TOK_END; t = lex_next(&lx)) {
		if (t.kind != TOK_ATOM && t.kind != TOK_QUOTED)
			continue;
		if (!first)
			puts_(w, " ");
		first = false;
		put_string(w, t.data, t.len);
	}
	if (count > 1)
		puts_(w, ")");
}

static void put_body_ext_tail(struct writer *w, const struct wd_mime_node *node,
			      struct wd_buffer *scratch)
{
	puts_(w, " ");
	put_disposition(w, node);
	puts_(w, " ");
	put_language(w, node, scratch);
	puts_(w, " ");
	put_header_string(w, node, "content-location", scratch);
}

static void put_body(struct writer *w, const struct wd_mime_node *node, bool ext,
		     struct wd_buffer *scratch, unsigned depth);

static void put_multipart(struct writer *w, const struct wd_mime_node *node, bool ext,
			  struct wd_buffer *scratch, unsigned depth)
{
	puts_(w, "(");
	if (node->child_count == 0) {
		/* no parts found: RFC 3501 needs one; send an empty text part
		   as Dovecot does */
		puts_(w, "(\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0");
		puts_(w, ext ? " NIL NIL NIL NIL)" : ")");
	}
	for (uint32_t i = 0; i < node->child_count; i++)
		put_body(w, node->children[i], ext, scratch, depth + 1);
	puts_(w, " ");
	const char *value = node->content_type.value;
	const char *slash = value != NULL ? strchr(value, '/') : NULL;
	if (slash != NULL) {
		const char *sub = slash + 1;
		while (*sub == ' ' || *sub == '\t')
			sub++;
		size_t len = strlen(sub);
		while (len > 0 && (sub[len - 1] == ' ' || sub[len - 1] == '\t'))
			len--;
		put_string(w, sub, len);
	} else {
		put_upper(w, node->content_type.subtype);
	}
	if (ext) {
		puts_(w, " ");
		put_params(w, &node->content_type, false);
		put_body_ext_tail(w, node, scratch);
	}
	puts_(w, ")");
}

static void put_body(struct writer *w, const struct wd_mime_node *node, bool ext,
		     struct wd_buffer *scratch, unsigned depth)
{
	if (w->rc != WD_OK)
		return;
	if (node->kind == WD_MIME_KIND_MULTIPART) {
		put_multipart(w, node, ext, scratch, depth);
		return;
	}
	const struct wd_mime_content *ct = &node->content_type;
	/* type and subtype as written in the header; defaults upper-case */
	const char *type = NULL, *sub = NULL;
	size_t type_len = 0, sub_len = 0;
	const char *slash = ct->present && ct->value != NULL ? strchr(ct->value, '/') : NULL;
	if (slash != NULL) {
		type = ct->value;
		type_len = (size_t)(slash - ct->value);
		while (type_len > 0 && (type[type_len - 1] == ' ' || type[type_len - 1] == '\t'))
			type_len--;
		sub = slash + 1;
		while (*sub == ' ' || *sub == '\t')
			sub++;
		sub_len = strlen(sub);
		while (sub_len > 0 && (sub[sub_len - 1] == ' ' || sub[sub_len - 1] == '\t'))
			sub_len--;
	}
	bool is_text;
	puts_(w, "(");
	if (type_len == 0 || sub_len == 0) {
		/* missing or unusable Content-Type: the parser's default */
		bool valid = !ct->present && ct->type != NULL && ct->type[0] != '\0' &&
			     ct->subtype != NULL && ct->subtype[0] != '\0';
		const char *dtype = valid ? ct->type : "text";
		const char *dsub = valid ? ct->subtype : "plain";
		is_text = strcmp(dtype, "text") == 0;
		put_upper(w, dtype);
		puts_(w, " ");
		put_upper(w, dsub);
	} else {
		is_text = type_len == 4 && strncasecmp(type, "text", 4) == 0;
		put_string(w, type, type_len);
		puts_(w, " ");
		put_string(w, sub, sub_len);
	}
	puts_(w, " ");
	put_params(w, ct, is_text && wd_mime_content_param(ct, "charset") == NULL);
	puts_(w, " ");
	put_nstring(w, node->content_id);
	puts_(w, " ");
	put_nstring(w, node->description);
	puts_(w, " ");
	put_upper(w, node->transfer_encoding != NULL ? node->transfer_encoding : "7bit");
	char num[32];
	snprintf(num, sizeof(num), " %u", wd_mime_range_len(node->body));
	puts_(w, num);
	if (node->kind == WD_MIME_KIND_MESSAGE && node->message != NULL) {
		puts_(w, " ");
		put_envelope(w, node->message, scratch);
		puts_(w, " ");
		put_body(w, node->message, ext, scratch, depth + 1);
		is_text = true; /* body-type-msg ends with lines too */
	}
	if (is_text) {
		snprintf(num, sizeof(num), " %u", count_lines(w->tree->data, node->body));
		puts_(w, num);
	}
	if (ext) {
		puts_(w, " NIL"); /* md5 */
		put_body_ext_tail(w, node, scratch);
	}
	puts_(w, ")");
}

int wd_imap_bodystructure(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			  bool extensible, unsigned flags, struct wd_buffer *out)
{
	struct writer w = { .out = out, .tree = tree, .flags = flags, .rc = WD_OK };
	struct wd_buffer scratch = WD_BUFFER_INIT;
	put_body(&w, node, extensible, &scratch, 0);
	wd_buffer_release(&scratch);
	return w.rc;
}
