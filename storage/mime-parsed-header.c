/* WildDuck's `parsedHeader` of a mimeTree node (mime-parsed-header.h).
 *
 * WildDuck's indexer (imap-core/lib/indexer/parse-mime-tree.js,
 * processNodeHeader and parseValueParams) builds this object when it parses
 * a message, and its IMAP server, API and filters read it back, so we build
 * it the same way, down to the key order. The node's header lines come from
 * wd_mime_wd_header(), which joins folded lines as WildDuck does (a line
 * starting with SP, HTAB, VT, FF or 0xA0 continues the previous one, joined
 * with CRLF).
 *
 * Keys and values. The header lines are read as Latin-1 (one character per
 * byte). The key is the text before the first ':' (the whole line without
 * one), trimmed and lower-cased; keys with a character outside
 * [A-Za-z0-9*-] or of 100 characters or more are skipped (an empty key is
 * kept). The value is the rest, trimmed with JavaScript's trim() over
 * Latin-1, so byte 0xA0 is stripped as well, even when it ends a UTF-8
 * character ("à" is C3 A0), and then decoded as UTF-8 the Node way (each
 * maximal ill-formed subsequence becomes U+FFFD, js-string.c).
 *
 * Repeats. A key seen once maps to its value with every whitespace run
 * that holds a line break replaced by one space. A repeated key maps to
 * the array of its values in header order, where only the last one is
 * collapsed so (WildDuck walks the lines bottom-up and collapses the value
 * it inserts first). Content-Type, Content-Disposition and the single-valued
 * fields (in-reply-to, message-id, content-transfer-encoding, content-id,
 * content-description, content-language, content-md5, content-location)
 * then take the last occurrence. The key `constructor` is found on
 * Object.prototype by WildDuck's `key in parsedHeader` test, so its values
 * always form an array, none collapsed (the function WildDuck puts at its
 * end is dropped by the BSON serializer).
 *
 * Order. Keys appear in the order WildDuck inserts them: by their last
 * occurrence, bottom-up; a Content-Type WildDuck adds comes last. Keys that
 * are array indexes ("0", "17", not "017") come first in numeric order, as
 * in every JavaScript object (params included).
 *
 * Content-Type and Content-Disposition become {value, type, subtype, params,
 * hasParams} (parseValueParams). A missing Content-Type, or a single empty
 * one, is text/plain; a single empty Content-Disposition stays "". The
 * value is split at every ';' (quotes do not protect it). The first piece,
 * trimmed, is `value` (case kept); `type` is its text before the first '/',
 * lower-cased, `subtype` the rest (case kept). Each other piece is
 * name=value: the name trimmed and lower-cased (the same key test; a
 * trailing ';' yields the name "" with value ""), the value with quotes,
 * apostrophes and whitespace stripped from both ends. `hasParams` is true
 * when a piece passed the key test, and absent otherwise. RFC 2231 pieces
 * (name*, name*N, name*N*, one digit only) are gathered per name in slots
 * 0-9 and turned into "=?CHARSET?Q?...?=" with '%' replaced by '=': when
 * the first piece seen for a name ends in '*' after the optional digit,
 * the charset is taken from slot 0 ("charset'lang'value", the upper-cased
 * charset, ISO-8859-1 when empty or slot 0 is missing); otherwise the
 * charset is UTF-8 and the slots are joined as written, so name*=utf-8''x
 * gives "=?UTF-8?Q?utf-8''x?=" (WildDuck's own result). Such a parameter
 * overwrites a plain one of the same name in place, or is added after the
 * plain ones. The name `constructor` is dropped there (found on
 * Object.prototype again), though it still sets hasParams.
 *
 * Addresses. from, sender, reply-to, to, cc and bcc, unless a single empty
 * value (kept as ""), become the concatenation of addressparser() over each
 * non-empty occurrence: [{address, name}] and {name, group: [...]} with a
 * group's empty name null (JavaScript's undefined).
 *
 * Bounds. Everything is linear in the header size: keys go through a hash
 * table, nothing recurses on the input (group nesting is capped at
 * WD_ADDRESS_DEPTH_MAX), and the object stops at WD_PARSED_HEADER_MAX_BSON.
 *
 * Where we knowingly differ from WildDuck:
 * - The header lines are those of our tree, which differs from WildDuck's
 *   on inputs described in wd-mime-tree.h (padded delimiters, a delimiter
 *   inside a part's header, limits...).
 * - Groups nested deeper than WD_ADDRESS_DEPTH_MAX lose their members.
 * - Unicode case mapping of non-ASCII types and charsets is GLib's
 *   (g_utf8_strdown/strup), which can differ from V8's on rare characters
 *   (final sigma, locale rules, Unicode version). ASCII is exact.
 * - NUL in values becomes U+FFFD when the server refuses it (nul_ok false);
 *   an object past 16 MiB is an error (MongoDB would refuse the message).
 */
#include <glib.h> /* before anything that might pull idn2.h */

#include "mime-parsed-header.h"

#include "address-parser.h"
#include "js-string.h"
#include "store-private.h"
#include "wd-arena.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

/* WildDuck skips header keys and parameter names this long. */
#define KEY_LEN_MAX 100
/* RFC 2231 sections WildDuck understands: one digit. */
#define SLOT_COUNT 10
#define NONE UINT32_MAX

struct ctx {
	struct wd_arena *arena;
	bool nul_ok;
	size_t written; /* bytes of BSON appended so far, at least */
	int rc;         /* sticky: once WD_ERROR, nothing more is written */
};

static void *ctx_alloc(struct ctx *c, size_t size)
{
	void *p = c->rc == WD_OK ? wd_arena_alloc(c->arena, size) : NULL;
	if (p == NULL)
		c->rc = WD_ERROR;
	return p;
}

/* Count `bytes` of output; past the limit everything stops. */
static bool charge(struct ctx *c, size_t bytes)
{
	c->written += bytes;
	if (c->written > WD_PARSED_HEADER_MAX_BSON)
		c->rc = WD_ERROR;
	return c->rc == WD_OK;
}

static void check(struct ctx *c, bool ok)
{
	if (!ok)
		c->rc = WD_ERROR;
}

static bool key_char(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '*';
}

/* ---- JavaScript objects: keys in insertion order, array indexes first ---- */

struct jsmap {
	struct wd_js_text *keys; /* in insertion order */
	uint32_t *index;         /* the array index a key names, or NONE */
	uint32_t count, cap;
	uint32_t *slots;         /* hash table of entry + 1, twice cap */
	uint32_t mask;
};

static void jsmap_free(struct jsmap *m)
{
	free(m->keys);
	free(m->index);
	free(m->slots);
	*m = (struct jsmap){ 0 };
}

static uint32_t hash_text(struct wd_js_text t)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < t.len; i++)
		h = (h ^ (uint8_t)t.s[i]) * 16777619u;
	return h;
}

/* A canonical array index: "0" or no leading zero, at most 2^32 - 2. */
static uint32_t array_index(struct wd_js_text t)
{
	if (t.len == 0 || t.len > 10 || (t.len > 1 && t.s[0] == '0'))
		return NONE;
	uint64_t v = 0;
	for (size_t i = 0; i < t.len; i++) {
		if (t.s[i] < '0' || t.s[i] > '9')
			return NONE;
		v = v * 10 + (uint64_t)(t.s[i] - '0');
	}
	return v <= 0xfffffffeu ? (uint32_t)v : NONE;
}

static bool jsmap_grow(struct ctx *c, struct jsmap *m)
{
	uint32_t cap = m->cap != 0 ? m->cap * 2 : 16;
	if (cap > UINT32_MAX / 4) {
		c->rc = WD_ERROR;
		return false;
	}
	struct wd_js_text *keys = realloc(m->keys, (size_t)cap * sizeof(*keys));
	if (keys != NULL)
		m->keys = keys;
	uint32_t *index = realloc(m->index, (size_t)cap * sizeof(*index));
	if (index != NULL)
		m->index = index;
	uint32_t *slots = calloc((size_t)cap * 2, sizeof(*slots));
	if (keys == NULL || index == NULL || slots == NULL) {
		free(slots);
		c->rc = WD_ERROR;
		return false;
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	m->mask = cap * 2 - 1;
	for (uint32_t e = 0; e < m->count; e++) {
		uint32_t at = hash_text(m->keys[e]) & m->mask;
		while (m->slots[at] != 0)
			at = (at + 1) & m->mask;
		m->slots[at] = e + 1;
	}
	return true;
}

/* The entry for `key`, NONE when missing. */
static uint32_t jsmap_find(const struct jsmap *m, struct wd_js_text key, uint32_t *slot_r)
{
	if (m->cap == 0)
		return NONE;
	uint32_t at = hash_text(key) & m->mask;
	for (; m->slots[at] != 0; at = (at + 1) & m->mask) {
		uint32_t e = m->slots[at] - 1;
		if (m->keys[e].len == key.len && memcmp(m->keys[e].s, key.s, key.len) == 0)
			return e;
	}
	if (slot_r != NULL)
		*slot_r = at;
	return NONE;
}

static uint32_t jsmap_get(const struct jsmap *m, const char *name)
{
	return jsmap_find(m, (struct wd_js_text){ name, strlen(name) }, NULL);
}

/* The entry for `key` (which must outlive the map), added when missing
   (*added_r); NONE on error. */
static uint32_t jsmap_put(struct ctx *c, struct jsmap *m, struct wd_js_text key, bool *added_r)
{
	*added_r = false;
	if (c->rc != WD_OK)
		return NONE;
	uint32_t at = 0;
	uint32_t e = jsmap_find(m, key, &at);
	if (e != NONE)
		return e;
	if (m->count == m->cap) {
		if (!jsmap_grow(c, m))
			return NONE;
		(void)jsmap_find(m, key, &at);
	}
	e = m->count++;
	m->keys[e] = key;
	m->index[e] = array_index(key);
	m->slots[at] = e + 1;
	*added_r = true;
	return e;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The entries in Object.keys() order. */
static uint32_t *jsmap_order(struct ctx *c, const struct jsmap *m)
{
	uint32_t *order = ctx_alloc(c, (size_t)m->count * sizeof(*order) + 1);
	if (order == NULL)
		return NULL;
	uint32_t n = 0, indexes = 0;
	for (uint32_t e = 0; e < m->count; e++)
		indexes += m->index[e] != NONE;
	if (indexes > 0) {
		/* (index, entry) pairs; indexes are unique since keys are */
		uint64_t *pairs = ctx_alloc(c, (size_t)indexes * sizeof(*pairs));
		if (pairs == NULL)
			return NULL;
		for (uint32_t e = 0; e < m->count; e++) {
			if (m->index[e] != NONE)
				pairs[n++] = (uint64_t)m->index[e] << 32 | e;
		}
		qsort(pairs, n, sizeof(*pairs), cmp_u64);
		for (uint32_t i = 0; i < n; i++)
			order[i] = (uint32_t)pairs[i];
	}
	for (uint32_t e = 0; e < m->count; e++) {
		if (m->index[e] == NONE)
			order[n++] = e;
	}
	return order;
}

/* ---- strings ---- */

static char *text_dup(struct ctx *c, struct wd_js_text t)
{
	char *out = ctx_alloc(c, t.len + 1);
	if (out != NULL) {
		memcpy(out, t.s, t.len);
		out[t.len] = '\0';
	}
	return out;
}

/* A string value under `key` (NUL-terminated). */
static void put_text(struct ctx *c, bson_t *doc, const char *key, struct wd_js_text t)
{
	if (c->rc != WD_OK || !charge(c, strlen(key) + t.len + 7))
		return;
	wd__append_text(doc, key, t.s, t.len, c->nul_ok);
}

/* toLowerCase() / toUpperCase(): ASCII here, other text through GLib, one
   NUL-free run at a time (GLib stops at NUL). */
static struct wd_js_text js_case(struct ctx *c, struct wd_js_text t, bool upper)
{
	size_t i = 0;
	while (i < t.len && (uint8_t)t.s[i] < 0x80)
		i++;
	if (i == t.len) {
		char *out = ctx_alloc(c, t.len + 1);
		if (out == NULL)
			return t;
		for (size_t k = 0; k < t.len; k++) {
			char ch = t.s[k];
			if (upper && ch >= 'a' && ch <= 'z')
				ch = (char)(ch - 'a' + 'A');
			else if (!upper && ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			out[k] = ch;
		}
		out[t.len] = '\0';
		return (struct wd_js_text){ out, t.len };
	}
	GString *out = g_string_sized_new(t.len + 8);
	for (size_t start = 0; start <= t.len;) {
		const char *nul = memchr(t.s + start, '\0', t.len - start);
		size_t end = nul != NULL ? (size_t)(nul - t.s) : t.len;
		if (end > start) {
			gchar *m = upper ? g_utf8_strup(t.s + start, (gssize)(end - start)) :
					   g_utf8_strdown(t.s + start, (gssize)(end - start));
			g_string_append(out, m);
			g_free(m);
		}
		if (nul == NULL)
			break;
		g_string_append_c(out, '\0');
		start = end + 1;
	}
	struct wd_js_text r = { out->str, out->len };
	char *copy = text_dup(c, r);
	g_string_free(out, TRUE);
	return copy != NULL ? (struct wd_js_text){ copy, r.len } : t;
}

/* A parameter name or header key lower-cased, when it passes WildDuck's
   test: [a-z0-9*-] after toLowerCase(), under 100 characters. In UTF-8
   text (`unicode`; header keys are Latin-1) U+212A KELVIN SIGN is the one
   other character whose lower case passes. NULL when the key is skipped. */
static char *js_key(struct ctx *c, struct wd_js_text t, bool unicode)
{
	if (t.len >= KEY_LEN_MAX * 3)
		return NULL;
	char buf[KEY_LEN_MAX * 3];
	size_t n = 0;
	for (size_t i = 0; i < t.len;) {
		uint8_t ch = (uint8_t)t.s[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (uint8_t)(ch - 'A' + 'a');
		if (key_char(ch)) {
			buf[n++] = (char)ch;
			i++;
		} else if (unicode && t.len - i >= 3 && memcmp(t.s + i, "\xe2\x84\xaa", 3) == 0) {
			buf[n++] = 'k';
			i += 3;
		} else {
			return NULL;
		}
	}
	if (n >= KEY_LEN_MAX)
		return NULL;
	return text_dup(c, (struct wd_js_text){ buf, n });
}

/* value.replace(/^['"\s]*|['"\s]*$/g, '') */
static struct wd_js_text strip_quotes(struct wd_js_text t)
{
	size_t n;
	for (;;) {
		if (t.len > 0 && (t.s[0] == '"' || t.s[0] == '\'')) {
			t.s++;
			t.len--;
		} else if ((n = wd__js_space_at(t, 0)) > 0) {
			t.s += n;
			t.len -= n;
		} else {
			break;
		}
	}
	for (;;) {
		if (t.len > 0 && (t.s[t.len - 1] == '"' || t.s[t.len - 1] == '\'')) {
			t.len--;
			continue;
		}
		struct wd_js_text trimmed = wd__js_trim(t);
		if (trimmed.len == t.len) /* nothing at the end (the start is clean) */
			break;
		t.len = trimmed.len;
	}
	return t;
}

/* ---- Content-Type / Content-Disposition (parseValueParams) ---- */

/* The RFC 2231 pieces of one parameter name. */
struct word {
	struct wd_js_text slots[SLOT_COUNT];
	uint16_t present;      /* bit per filled slot */
	bool charset_required; /* the first piece seen was name*N* */
};

/* name*, name*N, name*N*, name** (one digit at most): the name's length,
   the slot and whether the key ends with the charset marker; 0 else. */
static size_t rfc2231_key(const char *key, unsigned *slot_r, bool *marked_r)
{
	const char *star = strchr(key, '*');
	if (star == NULL || star == key)
		return 0;
	const char *r = star + 1;
	*slot_r = 0;
	if (*r >= '0' && *r <= '9')
		*slot_r = (unsigned)(*r++ - '0');
	*marked_r = *r == '*';
	if (*marked_r)
		r++;
	return *r == '\0' ? (size_t)(star - key) : 0;
}

static void replace_percent(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%')
			s[i] = '=';
	}
}

/* "=?CHARSET?Q?...?=" for one name's pieces. */
static struct wd_js_text encoded_word(struct ctx *c, const struct word *w)
{
	/* without the marker: UTF-8; with it: slot 0's, or ISO-8859-1 */
	struct wd_js_text charset = w->charset_required ? (struct wd_js_text){ "", 0 } :
							  (struct wd_js_text){ "UTF-8", 5 };
	size_t total = 0;
	for (unsigned i = 0; i < SLOT_COUNT; i++)
		total += w->slots[i].len;
	char *value = ctx_alloc(c, total + 1);
	if (value == NULL)
		return charset;
	size_t n = 0;
	for (unsigned i = 0; i < SLOT_COUNT; i++) {
		if (!(w->present & (1u << i)))
			continue; /* a hole joins as "" */
		struct wd_js_text v = w->slots[i];
		if (w->charset_required && i == 0) {
			/* charset'language'value: split at "'" */
			const char *q1 = memchr(v.s, '\'', v.len), *q2 = NULL;
			charset.s = v.s;
			charset.len = q1 != NULL ? (size_t)(q1 - v.s) : v.len;
			if (q1 != NULL)
				q2 = memchr(q1 + 1, '\'', v.len - charset.len - 1);
			if (q2 != NULL)
				v = (struct wd_js_text){ q2 + 1, v.len - (size_t)(q2 + 1 - v.s) };
			else
				v = (struct wd_js_text){ "", 0 };
		}
		memcpy(value + n, v.s, v.len);
		n += v.len;
	}
	replace_percent(value, n);
	if (w->charset_required)
		charset = charset.len > 0 ? js_case(c, charset, true) :
					    (struct wd_js_text){ "ISO-8859-1", 10 };
	char *out = ctx_alloc(c, charset.len + n + 8);
	if (out == NULL)
		return charset;
	size_t k = 0;
	memcpy(out + k, "=?", 2);
	k += 2;
	memcpy(out + k, charset.s, charset.len);
	k += charset.len;
	memcpy(out + k, "?Q?", 3);
	k += 3;
	memcpy(out + k, value, n);
	k += n;
	memcpy(out + k, "?=", 3);
	return (struct wd_js_text){ out, k + 2 };
}

/* Next ';'-separated piece of *rest; false when none is left. */
static bool next_piece(struct wd_js_text *rest, bool *more, struct wd_js_text *piece_r)
{
	if (!*more)
		return false;
	const char *semi = memchr(rest->s, ';', rest->len);
	size_t len = semi != NULL ? (size_t)(semi - rest->s) : rest->len;
	*piece_r = (struct wd_js_text){ rest->s, len };
	*more = semi != NULL;
	if (semi != NULL)
		*rest = (struct wd_js_text){ semi + 1, rest->len - len - 1 };
	return true;
}

/* {value, type, subtype, params, hasParams?} for `v` under `key`. */
static void put_value_params(struct ctx *c, bson_t *doc, const char *key, struct wd_js_text v)
{
	struct jsmap params = { 0 }, words = { 0 };
	struct wd_js_text *values = NULL; /* per params entry */
	struct word **word_list = NULL;   /* per words entry */
	size_t values_cap = 0, words_cap = 0;
	bool has_params = false, more = true, added;
	struct wd_js_text rest = v, piece;

	(void)next_piece(&rest, &more, &piece);
	struct wd_js_text value = wd__js_trim(piece), type = value, subtype = { "", 0 };
	const char *slash = memchr(value.s, '/', value.len);
	if (slash != NULL) {
		type.len = (size_t)(slash - value.s);
		subtype = (struct wd_js_text){ slash + 1, value.len - type.len - 1 };
	}
	type = js_case(c, type, false);

	while (c->rc == WD_OK && next_piece(&rest, &more, &piece)) {
		const char *eq = memchr(piece.s, '=', piece.len);
		struct wd_js_text name = { piece.s, piece.len };
		if (eq != NULL)
			name.len = (size_t)(eq - piece.s);
		char *lname = js_key(c, wd__js_trim(name), true);
		if (lname == NULL)
			continue;
		struct wd_js_text pv = { "", 0 };
		if (eq != NULL)
			pv = strip_quotes((struct wd_js_text){ eq + 1, piece.len - name.len - 1 });
		has_params = true;
		unsigned slot;
		bool marked;
		size_t base = rfc2231_key(lname, &slot, &marked);
		if (base > 0) {
			lname[base] = '\0';
			if (strcmp(lname, "constructor") == 0)
				continue; /* lost on Object.prototype.constructor */
			struct wd_js_text wname = { lname, base };
			uint32_t e = jsmap_put(c, &words, wname, &added);
			if (e == NONE)
				break;
			if (added) {
				if (!charge(c, base + 7 + 12))
					break;
				if (e >= words_cap) {
					words_cap = words.cap;
					struct word **n;
					n = realloc(word_list, words_cap * sizeof(*n));
					if (n == NULL) {
						c->rc = WD_ERROR;
						break;
					}
					word_list = n;
				}
				word_list[e] = ctx_alloc(c, sizeof(struct word));
				if (word_list[e] == NULL)
					break;
				memset(word_list[e], 0, sizeof(struct word));
				word_list[e]->charset_required = marked;
			}
			word_list[e]->slots[slot] = pv;
			word_list[e]->present |= (uint16_t)(1u << slot);
			continue;
		}
		struct wd_js_text pname = { lname, strlen(lname) };
		uint32_t e = jsmap_put(c, &params, pname, &added);
		if (e == NONE)
			break;
		if (added && !charge(c, strlen(lname) + 7))
			break;
		if (e >= values_cap) {
			values_cap = params.cap;
			struct wd_js_text *n = realloc(values, values_cap * sizeof(*n));
			if (n == NULL) {
				c->rc = WD_ERROR;
				break;
			}
			values = n;
		}
		values[e] = pv;
	}

	/* the RFC 2231 words, in Object.keys() order, as encoded words */
	uint32_t *order = c->rc == WD_OK ? jsmap_order(c, &words) : NULL;
	for (uint32_t i = 0; order != NULL && i < words.count && c->rc == WD_OK; i++) {
		uint32_t w = order[i];
		struct wd_js_text ew = encoded_word(c, word_list[w]);
		uint32_t e = jsmap_put(c, &params, words.keys[w], &added);
		if (e == NONE)
			break;
		if (e >= values_cap) {
			values_cap = params.cap;
			struct wd_js_text *n = realloc(values, values_cap * sizeof(*n));
			if (n == NULL) {
				c->rc = WD_ERROR;
				break;
			}
			values = n;
		}
		values[e] = ew;
	}

	bson_t obj, sub;
	if (c->rc == WD_OK && charge(c, strlen(key) + 64)) {
		/* whatever happens, every document begun is ended */
		if (!bson_append_document_begin(doc, key, -1, &obj)) {
			c->rc = WD_ERROR;
		} else {
			put_text(c, &obj, "value", value);
			put_text(c, &obj, "type", type);
			put_text(c, &obj, "subtype", subtype);
			if (bson_append_document_begin(&obj, "params", -1, &sub)) {
				order = jsmap_order(c, &params);
				/* keys are NUL-terminated arena copies */
				for (uint32_t i = 0; order != NULL && i < params.count; i++) {
					uint32_t e = order[i];
					put_text(c, &sub, params.keys[e].s, values[e]);
				}
				check(c, bson_append_document_end(&obj, &sub));
			} else {
				c->rc = WD_ERROR;
			}
			if (has_params && c->rc == WD_OK)
				check(c, BSON_APPEND_BOOL(&obj, "hasParams", true));
			check(c, bson_append_document_end(doc, &obj));
		}
	}
	free(values);
	free(word_list);
	jsmap_free(&params);
	jsmap_free(&words);
}

/* ---- address fields ---- */

static void put_address_list(struct ctx *c, bson_t *array, const struct wd_address *addr,
			     uint32_t *n)
{
	char buf[16];
	const char *key;
	for (; addr != NULL && c->rc == WD_OK; addr = addr->next) {
		bson_t obj, members;
		bson_uint32_to_string((*n)++, &key, buf, sizeof(buf));
		if (!charge(c, 32))
			return;
		if (!bson_append_document_begin(array, key, -1, &obj)) {
			c->rc = WD_ERROR;
			return;
		}
		if (addr->group) {
			/* {name, group}; a group without a name has name undefined */
			if (addr->name.len > 0)
				put_text(c, &obj, "name", addr->name);
			else
				check(c, BSON_APPEND_NULL(&obj, "name"));
			if (bson_append_array_begin(&obj, "group", -1, &members)) {
				uint32_t m = 0;
				/* nesting is bounded by WD_ADDRESS_DEPTH_MAX */
				put_address_list(c, &members, addr->members, &m);
				check(c, bson_append_array_end(&obj, &members));
			} else {
				c->rc = WD_ERROR;
			}
		} else {
			put_text(c, &obj, "address", addr->address);
			put_text(c, &obj, "name", addr->name);
		}
		check(c, bson_append_document_end(array, &obj));
	}
}

/* ---- header fields (processNodeHeader) ---- */

/* One header field with a valid key. */
struct hfield {
	const uint8_t *value; /* raw bytes, trimmed as Latin-1 */
	size_t len;
	uint32_t next;        /* next field with the same key, NONE at the end */
};

/* One parsedHeader key. */
struct hkey {
	uint32_t first, last; /* fields, in header order */
	uint32_t count;
	bool added;           /* a Content-Type WildDuck adds: text/plain */
};

/* JavaScript's trim() over a Latin-1 string: whitespace is TAB..CR, SP
   and NBSP (0xA0). */
static bool latin1_space(uint8_t ch)
{
	return ch == ' ' || (ch >= 0x09 && ch <= 0x0d) || ch == 0xa0;
}

static void latin1_trim(const uint8_t **s, size_t *len)
{
	while (*len > 0 && latin1_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && latin1_space((*s)[*len - 1]))
		(*len)--;
}

/* Buffer.from(value, 'binary').toString(), then fold collapsing when
   `collapse`. */
static struct wd_js_text field_text(struct ctx *c, const struct hfield *f, bool collapse)
{
	if (f->len > WD_PARSED_HEADER_MAX_BSON) {
		c->rc = WD_ERROR; /* cannot be stored */
		return (struct wd_js_text){ "", 0 };
	}
	char *out = ctx_alloc(c, f->len * 3 + 1);
	if (out == NULL)
		return (struct wd_js_text){ "", 0 };
	size_t n = wd__js_utf8_from_bytes(out, f->value, f->len, false);
	if (collapse)
		n = wd__js_collapse_folds(out, n);
	return (struct wd_js_text){ out, n };
}

static bool key_in(const char *key, const char *const *list, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (strcmp(key, list[i]) == 0)
			return true;
	}
	return false;
}

static const char *const single_keys[] = {
	"in-reply-to", "message-id", "content-transfer-encoding", "content-id",
	"content-description", "content-language", "content-md5", "content-location",
};

static const char *const address_keys[] = { "from", "sender", "reply-to", "to", "cc", "bcc" };

static void put_key(struct ctx *c, bson_t *doc, const char *key, const struct hkey *k,
		    const struct hfield *fields)
{
	const struct hfield *last = k->added ? NULL : &fields[k->last];
	bool lone_empty = last != NULL && k->count == 1 && last->len == 0;
	bool content = strcmp(key, "content-type") == 0 || strcmp(key, "content-disposition") == 0;
	char buf[16];
	const char *index_key;
	bson_t array;

	if (k->added || (lone_empty && strcmp(key, "content-type") == 0)) {
		put_value_params(c, doc, key, (struct wd_js_text){ "text/plain", 10 });
	} else if (content && !lone_empty) {
		put_value_params(c, doc, key, field_text(c, last, true));
	} else if (key_in(key, address_keys, WD_N_ELEMENTS(address_keys)) && !lone_empty) {
		struct wd_address *list;
		uint32_t n = 0;
		if (!charge(c, strlen(key) + 8) || !bson_append_array_begin(doc, key, -1, &array)) {
			c->rc = WD_ERROR;
			return;
		}
		for (uint32_t i = k->first; i != NONE && c->rc == WD_OK; i = fields[i].next) {
			if (fields[i].len == 0)
				continue;
			struct wd_js_text v = field_text(c, &fields[i], i == k->last);
			if (c->rc != WD_OK || wd__address_parse(c->arena, v, &list) != WD_OK) {
				c->rc = WD_ERROR;
				break;
			}
			put_address_list(c, &array, list, &n);
		}
		check(c, bson_append_array_end(doc, &array));
	} else if (k->count == 1 && strcmp(key, "constructor") != 0) {
		put_text(c, doc, key, field_text(c, last, true));
	} else if (key_in(key, single_keys, WD_N_ELEMENTS(single_keys))) {
		put_text(c, doc, key, field_text(c, last, true));
	} else {
		/* repeated: the values in order, only the last one collapsed
		   (for `constructor` none is, see the top of the file) */
		bool constructor = strcmp(key, "constructor") == 0;
		uint32_t n = 0;
		if (!charge(c, strlen(key) + 8) || !bson_append_array_begin(doc, key, -1, &array)) {
			c->rc = WD_ERROR;
			return;
		}
		for (uint32_t i = k->first; i != NONE && c->rc == WD_OK; i = fields[i].next) {
			bson_uint32_to_string(n++, &index_key, buf, sizeof(buf));
			put_text(c, &array, index_key,
				 field_text(c, &fields[i], i == k->last && !constructor));
		}
		check(c, bson_append_array_end(doc, &array));
	}
}

int wd__parsed_header_append(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
			     bool nul_ok, bson_t *parsed)
{
	struct ctx c = { .nul_ok = nul_ok, .rc = WD_OK };
	struct wd_mime_wd_field *lines = NULL;
	size_t count = 0;
	struct jsmap keys = { 0 };
	struct hkey *hkeys = NULL;
	size_t hkeys_cap = 0;
	bool added;

	c.arena = wd_arena_create(16 * 1024);
	if (c.arena == NULL)
		return WD_ERROR;
	if (wd_mime_wd_header(tree, node, c.arena, &lines, &count) != WD_OK || count >= NONE)
		c.rc = WD_ERROR;
	struct hfield *fields = ctx_alloc(&c, count * sizeof(*fields) + 1);

	/* bottom-up, as WildDuck inserts the keys */
	for (size_t i = count; c.rc == WD_OK && i-- > 0;) {
		const uint8_t *d = lines[i].data;
		size_t len = lines[i].len;
		const uint8_t *colon = memchr(d, ':', len);
		const uint8_t *ks = d, *vs = colon != NULL ? colon + 1 : d + len;
		size_t klen = colon != NULL ? (size_t)(colon - d) : len;
		size_t vlen = (size_t)(d + len - vs);
		latin1_trim(&ks, &klen);
		char *key = js_key(&c, (struct wd_js_text){ (const char *)ks, klen }, false);
		if (key == NULL)
			continue;
		latin1_trim(&vs, &vlen);
		uint32_t e = jsmap_put(&c, &keys, (struct wd_js_text){ key, strlen(key) }, &added);
		if (e == NONE)
			break;
		if (e >= hkeys_cap) {
			hkeys_cap = keys.cap;
			struct hkey *n = realloc(hkeys, hkeys_cap * sizeof(*n));
			if (n == NULL) {
				c.rc = WD_ERROR;
				break;
			}
			hkeys = n;
		}
		if (added)
			hkeys[e] = (struct hkey){ .first = NONE, .last = (uint32_t)i };
		fields[i] = (struct hfield){ vs, vlen, hkeys[e].first };
		hkeys[e].first = (uint32_t)i;
		hkeys[e].count++;
	}

	/* a missing Content-Type is added (a lone empty one is replaced) */
	if (c.rc == WD_OK && jsmap_get(&keys, "content-type") == NONE) {
		struct wd_js_text ct = { "content-type", 12 };
		uint32_t e = jsmap_put(&c, &keys, ct, &added);
		if (e != NONE && e >= hkeys_cap) {
			hkeys_cap = keys.cap;
			struct hkey *n = realloc(hkeys, hkeys_cap * sizeof(*n));
			if (n == NULL)
				c.rc = WD_ERROR;
			else
				hkeys = n;
		}
		if (e != NONE && c.rc == WD_OK)
			hkeys[e] = (struct hkey){ .first = NONE, .last = 0, .added = true };
	}

	uint32_t *order = c.rc == WD_OK ? jsmap_order(&c, &keys) : NULL;
	c.written = parsed->len;
	for (uint32_t i = 0; order != NULL && i < keys.count && c.rc == WD_OK; i++)
		put_key(&c, parsed, keys.keys[order[i]].s, &hkeys[order[i]], fields);

	free(hkeys);
	jsmap_free(&keys);
	wd_arena_destroy(&c.arena);
	return c.rc;
}
