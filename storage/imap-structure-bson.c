/* WildDuck's cached `envelope` and `bodystructure` (wd-imap-structure-bson.h).
 *
 * WildDuck computes both when it stores a message (MessageHandler
 * prepareMessage: Indexer.getEnvelope / getBodyStructure with upperCaseKeys
 * and the location field), before attachment bodies are externalized, from
 * the `parsedHeader` of each node of its MIME tree. We derive the same from
 * our tree: header lines as WildDuck joins them (wd_mime_wd_header), node
 * sizes and line counts as it counts them (wd_mime_wd_info), and the
 * Content-Type / Content-Disposition our parser already split and merged.
 * Every rule below names the WildDuck code (imap-core/lib/indexer/) it
 * follows.
 *
 * Header values (parse-mime-tree.js processNodeHeader). A header line's key
 * is the text before its first ':', trimmed, and only keys made of
 * [A-Za-z0-9*-] shorter than 100 bytes count; the value is the rest,
 * trimmed and read as UTF-8 (bad bytes become U+FFFD). The last occurrence
 * of a field also has each whitespace run holding a line break replaced by
 * one space. Single-valued fields use the last occurrence; an empty value is
 * null.
 *
 * Envelope (create-envelope.js): an array of ten
 *   0 date         string | null (raw, never decoded)
 *   1 subject      Binary, always (empty when missing): RFC 2047 decoded
 *                  and trimmed
 *   2..7 from, sender, reply-to, to, cc, bcc
 *                  null or an array of [name, null, user, domain]; sender
 *                  and reply-to fall back to from when they hold no address
 *   8 in-reply-to, 9 message-id   string | null
 * An address is [name Binary|null, null, user Binary|null, domain
 * Binary|null]: name and user RFC 2047 decoded, user the text before the
 * first '@', domain the text after the last one (so an address without '@'
 * gives the same text twice, as in WildDuck), with punycode labels turned
 * into Unicode (punycode.js toUnicode: labels starting "xn--", the
 * ideographic full stops treated as dots, the whole domain kept as written
 * when a label does not decode). A group is [null, null, name, null] with
 * name Binary, or the UTF-8 string "" when the group has no name; then its
 * members; then [null, null, null, null]. Address lists are parsed with the
 * rules of nodemailer's addressparser (6.9), which WildDuck uses at parse
 * time: its tokenizer (quotes, comments, angle brackets, groups, ',' and ';'
 * as separators), its merging of words glued to a closing quote, and its
 * guessing of the address from plain text. All occurrences of an address
 * field are concatenated.
 *
 * Body structure (body-structure.js, extension form):
 *   multipart  [part..., SUBTYPE|null, params|null, disposition, language,
 *              location]; one empty array stands for "no parts"; SUBTYPE is
 *              null without a boundary parameter
 *   text/any   [TYPE, SUBTYPE, params|null, id, description, ENCODING, size,
 *              lineCount, md5, disposition, language, location]
 *   message/rfc822 with a parsed message
 *              [basic fields..., size, envelope, bodystructure, lineCount,
 *              md5, disposition, language, location]
 *   others     [basic fields..., size, md5, disposition, language, location]
 * TYPE, SUBTYPE, ENCODING (default 7BIT), parameter names and the
 * disposition value are upper-cased strings; a part with an empty type or
 * subtype is TEXT/PLAIN (when one of them says text/plain) or
 * APPLICATION/OCTET-STREAM. params is a flat array [NAME, value, ...] with
 * values as Binary, RFC 2047 decoded (RFC 2231 values converted from their
 * charset) and trimmed. disposition is null or [VALUE, params|null]. id,
 * description, md5 and location are strings or null; language is null or an
 * array of strings (Content-Language split at spaces and commas). size and
 * lineCount are int32 (WildDuck's node.size and node.lineCount).
 *
 * Where we knowingly differ from WildDuck (all on unusual input):
 * - The structure is our tree's (see wd-mime-tree.h for where it differs from
 *   WildDuck's: padded delimiters, message/rfc822 in upper case, digest parts
 *   without Content-Type are message/rfc822, depth and part limits...).
 *   Content-Type parameters come from our parser: quoted strings are
 *   unescaped, ';' inside quotes does not split, RFC 2231 values are
 *   percent-decoded and converted from their charset (WildDuck turns them
 *   into Q encoded words, so it also maps '_' to a space), and the
 *   parameters are listed in order of first appearance (WildDuck lists plain
 *   ones before RFC 2231 ones). Type and subtype are trimmed. An empty
 *   segment (such as a trailing ';') is no parameter; WildDuck lists it as
 *   the pair "" "".
 * - The single-segment form name*=charset''value: WildDuck's parser only
 *   takes a charset from name*0*= and so stores "charset''value" here; we
 *   store the decoded value. A value without a charset is read as UTF-8
 *   when it is valid UTF-8, else as ISO-8859-1 (WildDuck's fallback).
 * - Subject: WildDuck re-reads the already decoded subject as Latin-1, which
 *   garbles raw 8-bit subjects, and turns a repeated Subject into a buffer of
 *   meaningless bytes (Buffer.from of an array); we decode raw bytes as
 *   UTF-8 and use the last non-blank Subject. A repeated Date would be
 *   stored as an array of strings; we store the last one.
 * - Values are trimmed of ASCII whitespace before UTF-8 decoding; WildDuck's
 *   trim also strips byte 0xA0, which cuts characters such as "à" in half.
 * - NUL bytes in header values become U+FFFD. Whitespace other than ASCII
 *   (U+00A0...) around a type, subtype or parameter name is kept (WildDuck's
 *   JavaScript trim() removes it).
 * - RFC 2047 decoding is GMime's, which agrees with libmime on well-formed
 *   words.
 * - Groups nested deeper than WD_ADDRESS_DEPTH_MAX lose their members, and
 *   punycode labels longer than PUNYCODE_LABEL_MAX stay as written
 *   (WildDuck has no limits; both are far beyond real mail). */
#include <gmime/gmime.h> /* GLib/GMime before anything that might pull idn2.h */

#include "wd-imap-structure-bson.h"

#include "address-parser.h"
#include "js-string.h"

#include "wd-arena.h"
#include "wd-mime-tree.h"
#include "wd-result.h"
#include "wd-str.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* DNS labels are at most 63 bytes; decoding is quadratic in the label. */
#define PUNYCODE_LABEL_MAX 1024
/* WildDuck skips header keys and parameter names this long. */
#define KEY_LEN_MAX 100

struct ctx {
	const struct wd_mime_tree *tree;
	struct wd_arena *arena; /* scratch for one call */
	uint32_t *code_points;  /* punycode scratch, PUNYCODE_LABEL_MAX entries */
	int rc;                 /* sticky: once WD_ERROR, nothing more is written */
};

static const struct wd_js_text empty_text = { "", 0 };

static void *ctx_alloc(struct ctx *c, size_t size)
{
	void *p = c->rc == WD_OK ? wd_arena_alloc(c->arena, size) : NULL;
	if (p == NULL)
		c->rc = WD_ERROR;
	return p;
}

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
	g_mime_init();
}

/* ---- UTF-8 and JavaScript strings (js-string.h) ---- */

/* Bytes read as UTF-8 into a fresh arena string: ill-formed sequences and
   NUL become U+FFFD. */
static struct wd_js_text utf8_sanitize(struct ctx *c, const void *data, size_t len)
{
	char *out = ctx_alloc(c, len * 3 + 1);
	if (out == NULL)
		return empty_text;
	size_t n = wd__js_utf8_from_bytes(out, data, len, true);
	return (struct wd_js_text){ out, n };
}

static bool ascii_space(uint8_t c)
{
	return c == ' ' || (c >= 0x09 && c <= 0x0d);
}

/* Unicode upper case (JS toUpperCase), for type names and keys. */
static struct wd_js_text upper(struct ctx *c, const char *s, size_t len)
{
	struct wd_js_text t = utf8_sanitize(c, s, len);
	if (c->rc != WD_OK)
		return empty_text;
	char *up = g_utf8_strup(t.s, (gssize)t.len);
	if (up == NULL)
		return t;
	size_t n = strlen(up);
	char *out = ctx_alloc(c, n + 1);
	if (out != NULL)
		memcpy(out, up, n + 1);
	g_free(up);
	return out != NULL ? (struct wd_js_text){ out, n } : empty_text;
}

/* libmime decodeWords: RFC 2047 encoded words anywhere in the text. */
static struct wd_js_text decode_words(struct ctx *c, struct wd_js_text t)
{
	if (c->rc != WD_OK || t.len < 2 || memmem(t.s, t.len, "=?", 2) == NULL)
		return t;
	char *z = ctx_alloc(c, t.len + 1);
	if (z == NULL)
		return empty_text;
	memcpy(z, t.s, t.len);
	z[t.len] = '\0';
	pthread_once(&gmime_once, gmime_init_once);
	char *decoded = g_mime_utils_header_decode_text(NULL, z);
	if (decoded == NULL)
		return t;
	struct wd_js_text out = utf8_sanitize(c, decoded, strlen(decoded));
	g_free(decoded);
	return out;
}

/* An RFC 2231 value (already percent-decoded) converted from its charset.
   Without a charset the bytes are UTF-8 when they can be, else ISO-8859-1
   (WildDuck's default for an empty charset). Falls back to reading the
   bytes as UTF-8. */
static struct wd_js_text convert_charset(struct ctx *c, const char *charset, const char *value,
				   size_t len)
{
	if (charset[0] == '\0') {
		if (g_utf8_validate(value, (gssize)len, NULL))
			return utf8_sanitize(c, value, len);
		charset = "iso-8859-1";
	}
	pthread_once(&gmime_once, gmime_init_once);
	gsize written = 0;
	gchar *utf8 = g_convert(value, (gssize)len, "UTF-8", g_mime_charset_iconv_name(charset),
				NULL, &written, NULL);
	if (utf8 == NULL)
		return utf8_sanitize(c, value, len);
	struct wd_js_text out = utf8_sanitize(c, utf8, written);
	g_free(utf8);
	return out;
}

/* ---- header values (parse-mime-tree.js processNodeHeader) ---- */

struct hfield {
	const char *key; /* as written; compared without case */
	size_t key_len;
	const uint8_t *value; /* raw bytes, trimmed */
	size_t len;
};

struct hindex {
	struct hfield *fields;
	size_t count;
};

static bool key_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '*';
}

static void header_index(struct ctx *c, const struct wd_mime_node *node, struct hindex *idx)
{
	struct wd_mime_wd_field *lines = NULL;
	size_t count = 0;
	idx->fields = NULL;
	idx->count = 0;
	if (c->rc != WD_OK)
		return;
	if (wd_mime_wd_header(c->tree, node, c->arena, &lines, &count) != WD_OK) {
		c->rc = WD_ERROR;
		return;
	}
	if (count == 0)
		return;
	idx->fields = ctx_alloc(c, count * sizeof(*idx->fields));
	if (idx->fields == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *d = lines[i].data;
		size_t len = lines[i].len;
		const uint8_t *colon = memchr(d, ':', len);
		size_t ks = 0, ke = colon != NULL ? (size_t)(colon - d) : len;
		/* the key is trimmed as a Latin-1 string: 0xA0 is a space there */
		while (ks < ke && (ascii_space(d[ks]) || d[ks] == 0xa0))
			ks++;
		while (ke > ks && (ascii_space(d[ke - 1]) || d[ke - 1] == 0xa0))
			ke--;
		bool valid = ke > ks && ke - ks < KEY_LEN_MAX;
		for (size_t k = ks; valid && k < ke; k++)
			valid = key_char(d[k]);
		if (!valid)
			continue;
		size_t vs = colon != NULL ? (size_t)(colon - d) + 1 : len, ve = len;
		while (vs < ve && ascii_space(d[vs]))
			vs++;
		while (ve > vs && ascii_space(d[ve - 1]))
			ve--;
		idx->fields[idx->count++] = (struct hfield){
			(const char *)d + ks, ke - ks, d + vs, ve - vs,
		};
	}
}

static bool hfield_is(const struct hfield *f, const char *name)
{
	size_t len = strlen(name);
	return f->key_len == len && g_ascii_strncasecmp(f->key, name, len) == 0;
}

/* The last occurrence of `name`, or NULL; *count_r (may be NULL) gets the
   number of occurrences. */
static const struct hfield *hlast(const struct hindex *idx, const char *name, size_t *count_r)
{
	const struct hfield *last = NULL;
	size_t count = 0;
	for (size_t i = 0; i < idx->count; i++) {
		if (hfield_is(&idx->fields[i], name)) {
			last = &idx->fields[i];
			count++;
		}
	}
	if (count_r != NULL)
		*count_r = count;
	return last;
}

/* A value as text; `collapse` (the last occurrence) replaces each run of
   whitespace that holds a line break with one space. */
static struct wd_js_text header_text(struct ctx *c, const struct hfield *f, bool collapse)
{
	struct wd_js_text t = utf8_sanitize(c, f->value, f->len);
	if (!collapse || c->rc != WD_OK)
		return t;
	char *out = (char *)t.s; /* fresh from utf8_sanitize: edit in place */
	t.len = wd__js_collapse_folds(out, t.len);
	out[t.len] = '\0';
	return t;
}

/* ---- BSON arrays ---- */

struct arr {
	bson_t b;
	uint32_t n;
	bool open;
};

static const char *arr_key(struct arr *a, char *buf, size_t size)
{
	const char *key;
	bson_uint32_to_string(a->n++, &key, buf, size);
	return key;
}

static void check(struct ctx *c, bool ok)
{
	if (!ok)
		c->rc = WD_ERROR;
}

static void put_null(struct ctx *c, struct arr *a)
{
	char buf[16];
	if (c->rc == WD_OK)
		check(c, bson_append_null(&a->b, arr_key(a, buf, sizeof(buf)), -1));
}

static void put_str(struct ctx *c, struct arr *a, struct wd_js_text t)
{
	char buf[16];
	if (c->rc == WD_OK)
		check(c, bson_append_utf8(&a->b, arr_key(a, buf, sizeof(buf)), -1, t.s, (int)t.len));
}

static void put_cstr(struct ctx *c, struct arr *a, const char *s)
{
	put_str(c, a, (struct wd_js_text){ s, strlen(s) });
}

static void put_bin(struct ctx *c, struct arr *a, struct wd_js_text t)
{
	char buf[16];
	if (c->rc == WD_OK)
		check(c, bson_append_binary(&a->b, arr_key(a, buf, sizeof(buf)), -1,
					    BSON_SUBTYPE_BINARY, (const uint8_t *)t.s,
					    (uint32_t)t.len));
}

/* A JS number: int32 when it fits, double otherwise. */
static void put_num(struct ctx *c, struct arr *a, uint64_t v)
{
	char buf[16];
	if (c->rc != WD_OK)
		return;
	const char *key = arr_key(a, buf, sizeof(buf));
	if (v <= INT32_MAX)
		check(c, bson_append_int32(&a->b, key, -1, (int32_t)v));
	else
		check(c, bson_append_double(&a->b, key, -1, (double)v));
}

static void arr_begin(struct ctx *c, struct arr *parent, struct arr *child)
{
	char buf[16];
	child->n = 0;
	child->open = false;
	if (c->rc != WD_OK)
		return;
	child->open = bson_append_array_begin(&parent->b, arr_key(parent, buf, sizeof(buf)), -1,
					      &child->b);
	check(c, child->open);
}

static void arr_end(struct ctx *c, struct arr *parent, struct arr *child)
{
	if (child->open)
		check(c, bson_append_array_end(&parent->b, &child->b));
	child->open = false;
}

/* A header value as a string, null when missing or empty. */
static void put_header(struct ctx *c, struct arr *a, const struct hindex *idx, const char *name)
{
	const struct hfield *f = hlast(idx, name, NULL);
	struct wd_js_text t = f != NULL ? header_text(c, f, true) : empty_text;
	if (t.len == 0)
		put_null(c, a);
	else
		put_str(c, a, t);
}

/* All addresses of every occurrence of an address field, in order. */
static struct wd_address *header_addresses(struct ctx *c, const struct hindex *idx,
					const char *name)
{
	struct wd_address *head = NULL, **tail = &head;
	const struct hfield *last = hlast(idx, name, NULL);
	for (size_t i = 0; i < idx->count && c->rc == WD_OK; i++) {
		const struct hfield *f = &idx->fields[i];
		if (!hfield_is(f, name))
			continue;
		struct wd_js_text v = header_text(c, f, f == last);
		if (v.len == 0)
			continue;
		if (wd__address_parse(c->arena, v, tail) != WD_OK) {
			c->rc = WD_ERROR;
			break;
		}
		while (*tail != NULL)
			tail = &(*tail)->next;
	}
	return head;
}

/* ---- punycode (RFC 3492 decoding, as punycode.js toUnicode) ---- */

#define PUNY_MAXINT 0x7fffffffu

static uint32_t puny_adapt(uint32_t delta, uint32_t points, bool first)
{
	uint32_t k = 0;
	delta = first ? delta / 700 : delta >> 1;
	delta += delta / points;
	for (; delta > 35 * 26 / 2; k += 36)
		delta /= 35;
	return k + 36 * delta / (delta + 38);
}

static uint32_t puny_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return 26 + (uint32_t)(c - '0');
	if (c >= 'A' && c <= 'Z')
		return (uint32_t)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (uint32_t)(c - 'a');
	return 36;
}

/* Decode one label (after "xn--", lower-cased) into code points; out has
   room for len entries. False where punycode.js throws. */
static bool puny_decode(const uint8_t *in, size_t len, uint32_t *out, size_t *count_r)
{
	size_t basic = 0, n_out = 0;
	for (size_t j = 0; j < len; j++) {
		if (in[j] == '-')
			basic = j;
	}
	for (size_t j = 0; j < basic; j++) {
		if (in[j] >= 0x80)
			return false;
		out[n_out++] = in[j];
	}
	uint32_t n = 128, bias = 72, i = 0;
	for (size_t index = basic > 0 ? basic + 1 : 0; index < len;) {
		uint32_t oldi = i, w = 1;
		for (uint32_t k = 36;; k += 36) {
			if (index >= len)
				return false;
			uint32_t digit = puny_digit(in[index++]);
			if (digit >= 36 || digit > (PUNY_MAXINT - i) / w)
				return false;
			i += digit * w;
			uint32_t t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
			if (digit < t)
				break;
			if (w > PUNY_MAXINT / (36 - t))
				return false;
			w *= 36 - t;
		}
		uint32_t points = (uint32_t)n_out + 1;
		bias = puny_adapt(i - oldi, points, oldi == 0);
		if (i / points > PUNY_MAXINT - n)
			return false;
		n += i / points;
		i %= points;
		memmove(out + i + 1, out + i, (n_out - i) * sizeof(*out));
		out[i++] = n;
		n_out++;
	}
	*count_r = n_out;
	return true;
}

/* Code points as JS String.fromCodePoint + Buffer.from would give: false
   past U+10FFFF (a RangeError), surrogate pairs combined, lone ones
   U+FFFD. Appends to out at *n. */
static bool puny_encode(const uint32_t *cps, size_t count, char *out, size_t *n)
{
	for (size_t j = 0; j < count; j++) {
		uint32_t cp = cps[j];
		if (cp > 0x10ffff)
			return false;
		if (cp >= 0xd800 && cp <= 0xdbff && j + 1 < count && cps[j + 1] >= 0xdc00 &&
		    cps[j + 1] <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (cps[j + 1] - 0xdc00);
			j++;
		} else if (cp >= 0xd800 && cp <= 0xdfff) {
			cp = 0xfffd;
		}
		*n += wd_utf8_encode(cp, out + *n);
	}
	return true;
}

static struct wd_js_text domain_to_unicode(struct ctx *c, struct wd_js_text d)
{
	/* nothing to do without an ACE label or a full stop other than '.' */
	if (memmem(d.s, d.len, "xn--", 4) == NULL && memchr(d.s, 0xe3, d.len) == NULL &&
	    memchr(d.s, 0xef, d.len) == NULL)
		return d;
	if (c->code_points == NULL)
		c->code_points = ctx_alloc(c, PUNYCODE_LABEL_MAX * sizeof(*c->code_points));
	uint32_t *cps = c->code_points;
	/* U+3002, U+FF0E and U+FF61 separate labels like '.' does */
	char *norm = ctx_alloc(c, d.len + 1);
	char *out = ctx_alloc(c, d.len * 4 + 1);
	if (norm == NULL || out == NULL || cps == NULL)
		return d;
	size_t len = 0;
	for (size_t i = 0; i < d.len;) {
		const char *p = d.s + i;
		if (d.len - i >= 3 && (memcmp(p, "\xe3\x80\x82", 3) == 0 ||
				       memcmp(p, "\xef\xbc\x8e", 3) == 0 ||
				       memcmp(p, "\xef\xbd\xa1", 3) == 0)) {
			norm[len++] = '.';
			i += 3;
		} else {
			norm[len++] = *p;
			i++;
		}
	}
	size_t n = 0;
	for (size_t start = 0; start <= len;) {
		const char *dot = memchr(norm + start, '.', len - start);
		size_t end = dot != NULL ? (size_t)(dot - norm) : len;
		const char *label = norm + start;
		size_t label_len = end - start;
		if (start > 0)
			out[n++] = '.';
		if (label_len >= 4 && memcmp(label, "xn--", 4) == 0 &&
		    label_len - 4 <= PUNYCODE_LABEL_MAX) {
			uint8_t lower[PUNYCODE_LABEL_MAX];
			size_t count;
			for (size_t k = 4; k < label_len; k++)
				lower[k - 4] = (uint8_t)g_ascii_tolower(label[k]);
			if (!puny_decode(lower, label_len - 4, cps, &count) ||
			    !puny_encode(cps, count, out, &n))
				return d; /* WildDuck keeps the domain as written */
		} else {
			memcpy(out + n, label, label_len);
			n += label_len;
		}
		if (dot == NULL)
			break;
		start = end + 1;
	}
	out[n] = '\0';
	return (struct wd_js_text){ out, n };
}

/* ---- envelope (create-envelope.js) ---- */

/* A part of an address as Binary, null when empty. */
static void put_address_part(struct ctx *c, struct arr *a, struct wd_js_text t, bool domain)
{
	if (t.len == 0)
		put_null(c, a);
	else
		put_bin(c, a, domain ? domain_to_unicode(c, t) : decode_words(c, t));
}

static void put_addresses(struct ctx *c, struct arr *list, const struct wd_address *addr)
{
	for (; addr != NULL && c->rc == WD_OK; addr = addr->next) {
		struct arr e;
		arr_begin(c, list, &e);
		if (addr->group) {
			/* [null, null, name, null], the members, [null, null, null, null] */
			put_null(c, &e);
			put_null(c, &e);
			if (addr->name.len > 0)
				put_bin(c, &e, decode_words(c, addr->name));
			else
				put_cstr(c, &e, ""); /* WildDuck's '' stays a string */
			put_null(c, &e);
			arr_end(c, list, &e);
			put_addresses(c, list, addr->members);
			arr_begin(c, list, &e);
			for (int i = 0; i < 4; i++)
				put_null(c, &e);
			arr_end(c, list, &e);
			continue;
		}
		/* [name, null, user, domain]: user before the first '@', domain
		   after the last one (both the whole address without one) */
		struct wd_js_text user = addr->address, domain = addr->address;
		const char *at = memchr(user.s, '@', user.len);
		if (at != NULL) {
			user.len = (size_t)(at - user.s);
			const char *last = at;
			while ((at = memchr(last + 1, '@', addr->address.len -
							   (size_t)(last + 1 - addr->address.s))) != NULL)
				last = at;
			domain.s = last + 1;
			domain.len = addr->address.len - (size_t)(last + 1 - addr->address.s);
		}
		put_address_part(c, &e, addr->name, false);
		put_null(c, &e);
		put_address_part(c, &e, user, false);
		put_address_part(c, &e, domain, true);
		arr_end(c, list, &e);
	}
}

/* processAddress(list, defaults): null when both are empty. */
static void put_address_list(struct ctx *c, struct arr *env, const struct wd_address *list,
			     const struct wd_address *defaults)
{
	if (list == NULL)
		list = defaults;
	if (list == NULL) {
		put_null(c, env);
		return;
	}
	struct arr a;
	arr_begin(c, env, &a);
	put_addresses(c, &a, list);
	arr_end(c, env, &a);
}

static void put_envelope(struct ctx *c, struct arr *env, const struct wd_mime_node *msg)
{
	struct hindex idx;
	header_index(c, msg, &idx);
	put_header(c, env, &idx, "date");

	/* the last Subject that is not blank (see the top of the file) */
	struct wd_js_text subject = empty_text;
	for (size_t i = idx.count; i-- > 0 && c->rc == WD_OK;) {
		if (!hfield_is(&idx.fields[i], "subject"))
			continue;
		subject = wd__js_trim(header_text(c, &idx.fields[i], true));
		if (subject.len > 0)
			break;
	}
	put_bin(c, env, wd__js_trim(decode_words(c, subject)));

	struct wd_address *from = header_addresses(c, &idx, "from");
	put_address_list(c, env, from, NULL);
	put_address_list(c, env, header_addresses(c, &idx, "sender"), from);
	put_address_list(c, env, header_addresses(c, &idx, "reply-to"), from);
	put_address_list(c, env, header_addresses(c, &idx, "to"), NULL);
	put_address_list(c, env, header_addresses(c, &idx, "cc"), NULL);
	put_address_list(c, env, header_addresses(c, &idx, "bcc"), NULL);
	put_header(c, env, &idx, "in-reply-to");
	put_header(c, env, &idx, "message-id");
}

/* ---- body structure (body-structure.js) ---- */

/* WildDuck's parameter names: [A-Za-z0-9*-] (ours are lower-cased). */
static bool param_name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len >= KEY_LEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!key_char((uint8_t)name[i]))
			return false;
	}
	return true;
}

/* [NAME, value, ...] or null. */
static void put_params(struct ctx *c, struct arr *a, const struct wd_mime_content *ct)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < ct->param_count; i++)
		kept += param_name_ok(ct->params[i].name);
	if (kept == 0) {
		put_null(c, a);
		return;
	}
	struct arr p;
	arr_begin(c, a, &p);
	for (uint32_t i = 0; i < ct->param_count && c->rc == WD_OK; i++) {
		const struct wd_mime_param *param = &ct->params[i];
		if (!param_name_ok(param->name))
			continue;
		put_str(c, &p, upper(c, param->name, strlen(param->name)));
		struct wd_js_text v;
		if (param->charset != NULL)
			v = convert_charset(c, param->charset, param->value, param->value_len);
		else
			v = decode_words(c, utf8_sanitize(c, param->value, param->value_len));
		put_bin(c, &p, wd__js_trim(v));
	}
	arr_end(c, a, &p);
}

/* md5 (unless for a multipart), disposition, language, location. */
static void put_extension(struct ctx *c, struct arr *a, const struct wd_mime_node *node,
			  const struct hindex *idx, bool md5)
{
	if (md5)
		put_header(c, a, idx, "content-md5");

	/* a lone empty Content-Disposition is ignored, as a missing one */
	size_t count;
	const struct hfield *f = hlast(idx, "content-disposition", &count);
	if (f == NULL || !node->disposition.present || (count == 1 && f->len == 0)) {
		put_null(c, a);
	} else {
		struct arr d;
		arr_begin(c, a, &d);
		const char *value = node->disposition.value != NULL ? node->disposition.value : "";
		struct wd_js_text v = wd__js_trim(utf8_sanitize(c, value, strlen(value)));
		put_str(c, &d, upper(c, v.s, v.len));
		put_params(c, &d, &node->disposition);
		arr_end(c, a, &d);
	}

	/* Content-Language: split at runs of spaces and commas */
	f = hlast(idx, "content-language", NULL);
	struct wd_js_text lang = f != NULL ? header_text(c, f, true) : empty_text;
	size_t s = 0, e = lang.len;
	while (s < e && (lang.s[s] == ' ' || lang.s[s] == ','))
		s++;
	while (e > s && (lang.s[e - 1] == ' ' || lang.s[e - 1] == ','))
		e--;
	if (s == e) {
		put_null(c, a);
	} else {
		struct arr l;
		arr_begin(c, a, &l);
		while (s < e) {
			size_t t = s;
			while (t < e && lang.s[t] != ' ' && lang.s[t] != ',')
				t++;
			put_str(c, &l, (struct wd_js_text){ lang.s + s, t - s });
			while (t < e && (lang.s[t] == ' ' || lang.s[t] == ','))
				t++;
			s = t;
		}
		arr_end(c, a, &l);
	}

	put_header(c, a, idx, "content-location");
}

static void put_structure(struct ctx *c, struct arr *s, const struct wd_mime_node *node)
{
	struct hindex idx;
	header_index(c, node, &idx);
	if (c->rc != WD_OK)
		return;
	const struct wd_mime_content *ct = &node->content_type;
	/* a lone empty Content-Type counts as missing: text/plain */
	static const struct wd_mime_content text_plain = {
		.value = "text/plain", .type = "text", .subtype = "plain",
	};
	size_t ct_count;
	const struct hfield *ct_field = hlast(&idx, "content-type", &ct_count);
	if (ct_count == 1 && ct_field->len == 0)
		ct = &text_plain;
	const char *type = ct->type != NULL ? ct->type : "";
	const char *subtype = ct->subtype != NULL ? ct->subtype : "";
	struct arr child;

	if (strcmp(type, "multipart") == 0) {
		if (node->kind == WD_MIME_KIND_MULTIPART && node->child_count > 0) {
			for (uint32_t i = 0; i < node->child_count && c->rc == WD_OK; i++) {
				arr_begin(c, s, &child);
				put_structure(c, &child, node->children[i]);
				arr_end(c, s, &child);
			}
		} else {
			arr_begin(c, s, &child); /* no parts: [] */
			arr_end(c, s, &child);
		}
		/* node.multipart: the subtype, set only with a boundary */
		const struct wd_mime_param *b = wd_mime_content_param(ct, "boundary");
		if (b != NULL && b->value_len > 0 && subtype[0] != '\0')
			put_str(c, s, upper(c, subtype, strlen(subtype)));
		else
			put_null(c, s);
		put_params(c, s, ct);
		put_extension(c, s, node, &idx, false);
		return;
	}

	bool text = strcmp(type, "text") == 0;
	bool rfc822 = strcmp(type, "message") == 0 && strcmp(subtype, "rfc822") == 0 &&
		      node->kind == WD_MIME_KIND_MESSAGE && node->message != NULL;
	if (type[0] == '\0' || subtype[0] == '\0') {
		bool plain = text || strcmp(subtype, "plain") == 0;
		type = plain ? "text" : "application";
		subtype = plain ? "plain" : "octet-stream";
	}
	put_str(c, s, upper(c, type, strlen(type)));
	put_str(c, s, upper(c, subtype, strlen(subtype)));
	put_params(c, s, ct);
	put_header(c, s, &idx, "content-id");
	put_header(c, s, &idx, "content-description");
	const struct hfield *f = hlast(&idx, "content-transfer-encoding", NULL);
	struct wd_js_text encoding = f != NULL ? header_text(c, f, true) : empty_text;
	if (encoding.len == 0)
		encoding = (struct wd_js_text){ "7bit", 4 };
	put_str(c, s, upper(c, encoding.s, encoding.len));
	struct wd_mime_wd_info info;
	wd_mime_wd_info(c->tree, node, &info);
	put_num(c, s, info.size);
	if (rfc822) {
		arr_begin(c, s, &child);
		put_envelope(c, &child, node->message);
		arr_end(c, s, &child);
		arr_begin(c, s, &child);
		put_structure(c, &child, node->message);
		arr_end(c, s, &child);
	}
	if (rfc822 || text)
		put_num(c, s, info.line_count);
	put_extension(c, s, node, &idx, true);
}

/* ---- API ---- */

static int run(const struct wd_mime_tree *tree, const struct wd_mime_node *node, bson_t *parent,
	       const char *key, bool envelope)
{
	struct ctx c = { .tree = tree, .rc = WD_OK };
	c.arena = wd_arena_create(16 * 1024);
	if (c.arena == NULL)
		return WD_ERROR;
	struct arr top;
	top.n = 0;
	top.open = bson_append_array_begin(parent, key, -1, &top.b);
	if (!top.open) {
		wd_arena_destroy(&c.arena);
		return WD_ERROR;
	}
	if (envelope)
		put_envelope(&c, &top, node);
	else
		put_structure(&c, &top, node);
	if (!bson_append_array_end(parent, &top.b))
		c.rc = WD_ERROR;
	wd_arena_destroy(&c.arena);
	return c.rc;
}

int wd_imap_envelope_bson(const struct wd_mime_tree *tree, const struct wd_mime_node *message_root,
			  bson_t *parent, const char *key)
{
	return run(tree, message_root, parent, key, true);
}

int wd_imap_bodystructure_bson(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			       bson_t *parent, const char *key)
{
	return run(tree, node, parent, key, false);
}
