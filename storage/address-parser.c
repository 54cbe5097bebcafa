/* nodemailer's addressparser (address-parser.h), as WildDuck runs it on
 * every address header (from, sender, reply-to, to, cc, bcc) when it parses
 * a message; the result is stored in `parsedHeader` and read back for the
 * IMAP ENVELOPE.
 *
 * The rules of nodemailer 6.9's lib/addressparser:
 * - Tokenizer: '"', '(', '<', ':' open a quoted string, comment, address or
 *   group that only its closing character ('"', ')', '>', ';') ends; ','
 *   and ';' separate addresses outside of those; '\' escapes inside quotes.
 *   LF reads as a space, other control characters are dropped, each text
 *   token is trimmed and empty ones vanish. A closing operator directly
 *   followed by text (not SP, HTAB, CR, LF, ',' or ';') glues that text to
 *   the previous word of the same kind ("a"b is one word).
 * - Per address: text inside <> is the address (an unquoted name with a
 *   stray '<' loses everything up to it), comments stand in for a missing
 *   name, a ':' makes a group whose member text is parsed again. Without
 *   <>, the last word shaped like local@domain is the address, else the
 *   first thing matching /\s*\b[^@\s]+@[^\s]+\b\s* / inside a word is cut
 *   out of it. Only the first address counts; the others join the name.
 *   When name and address are equal, the one without '@' is emptied.
 * Names are not decoded (encoded words stay as written).
 *
 * Where we differ: groups nested deeper than WD_ADDRESS_DEPTH_MAX lose their
 * members (addressparser has no limit and is quadratic in the nesting).
 * Text is handled as UTF-8 bytes instead of UTF-16 code units, which
 * changes nothing because every special character is ASCII. */
#include "address-parser.h"

#include "wd-arena.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

struct ctx {
	struct wd_arena *arena;
	int rc; /* sticky: once WD_ERROR, nothing more is allocated */
};

static const struct wd_js_text empty_text = { "", 0 };

static void *ctx_alloc(struct ctx *c, size_t size)
{
	void *p = c->rc == WD_OK ? wd_arena_alloc(c->arena, size) : NULL;
	if (p == NULL)
		c->rc = WD_ERROR;
	return p;
}

enum { TOKEN_TEXT, TOKEN_OPERATOR };

struct token {
	uint8_t kind;
	char op;
	bool no_break; /* a closing operator directly followed by text */
	struct wd_js_text value;
};

struct tokenizer {
	const uint8_t *s;
	size_t len, pos;
	char expecting; /* the operator that closes the open one */
	bool escaped;
	char *buf;      /* text of all text tokens, in order */
	size_t used, text_start;
	bool text_open;
	bool has_pending;
	struct token pending;
};

static char closing_operator(char op)
{
	switch (op) {
	case '"':
		return '"';
	case '(':
		return ')';
	case '<':
		return '>';
	case ':':
		return ';';
	default:
		return '\0'; /* ',' and ';' */
	}
}

/* Close the current text token; false when it is empty after trimming
   (addressparser drops those). */
static bool tokenizer_close_text(struct tokenizer *t, struct token *out)
{
	t->text_open = false;
	struct wd_js_text v = wd__js_trim(
		(struct wd_js_text){ t->buf + t->text_start, t->used - t->text_start });
	if (v.len == 0)
		return false;
	*out = (struct token){ .kind = TOKEN_TEXT, .value = v };
	return true;
}

static bool tokenizer_next(struct tokenizer *t, struct token *out)
{
	for (;;) {
		if (t->has_pending) {
			t->has_pending = false;
			*out = t->pending;
			return true;
		}
		if (t->pos >= t->len) {
			if (t->text_open && tokenizer_close_text(t, out))
				return true;
			return false;
		}
		uint8_t ch = t->s[t->pos++];
		bool has_next = t->pos < t->len;
		uint8_t next = has_next ? t->s[t->pos] : 0;
		struct token op = { .kind = TOKEN_OPERATOR, .op = (char)ch };
		bool is_op = false;
		if (t->escaped) {
			/* taken literally below */
		} else if (t->expecting != '\0' && ch == (uint8_t)t->expecting) {
			op.no_break = has_next &&
				      (next == '\0' || strchr(" \t\r\n,;", next) == NULL);
			t->expecting = '\0';
			is_op = true;
		} else if (t->expecting == '\0' && ch != '\0' && strchr("\"(<,:;", ch) != NULL) {
			t->expecting = closing_operator((char)ch);
			is_op = true;
		} else if (t->expecting == '"' && ch == '\\') {
			t->escaped = true;
			continue;
		}
		if (is_op) {
			t->escaped = false;
			op.value = (struct wd_js_text){ (const char *)t->s + t->pos - 1, 1 };
			if (t->text_open) {
				t->pending = op;
				t->has_pending = true;
				if (tokenizer_close_text(t, out))
					return true;
				continue;
			}
			*out = op;
			return true;
		}
		if (!t->text_open) {
			t->text_open = true;
			t->text_start = t->used;
		}
		if (ch == '\n')
			ch = ' ';
		if (ch >= 0x21 || ch == ' ' || ch == '\t')
			t->buf[t->used++] = (char)ch; /* other control bytes are dropped */
		t->escaped = false;
	}
}

/* A list of strings, each built from pieces (words glued to a closing
   quote are joined to the previous string; pieces avoid quadratic copies). */
struct piece {
	struct piece *next;
	struct wd_js_text t;
};

struct str {
	struct piece *head, *tail;
	size_t len;
	struct wd_js_text flat; /* valid once joined */
	bool flat_valid;
};

struct strs {
	struct str *items;
	size_t count, cap;
};

static void strs_free(struct strs *v)
{
	free(v->items);
	*v = (struct strs){ 0 };
}

static struct str *strs_push(struct ctx *c, struct strs *v)
{
	if (v->count == v->cap) {
		size_t cap = v->cap != 0 ? v->cap * 2 : 4;
		struct str *items = realloc(v->items, cap * sizeof(*items));
		if (items == NULL) {
			c->rc = WD_ERROR;
			return NULL;
		}
		v->items = items;
		v->cap = cap;
	}
	struct str *s = &v->items[v->count++];
	*s = (struct str){ 0 };
	return s;
}

static void str_add(struct ctx *c, struct str *s, struct wd_js_text t)
{
	struct piece *p = ctx_alloc(c, sizeof(*p));
	if (p == NULL)
		return;
	*p = (struct piece){ NULL, t };
	if (s->tail != NULL)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
	s->len += t.len;
	s->flat_valid = false;
}

static struct wd_js_text str_flat(struct ctx *c, struct str *s)
{
	if (s->flat_valid)
		return s->flat;
	if (s->head == s->tail && s->head != NULL) {
		s->flat = s->head->t;
	} else {
		char *out = ctx_alloc(c, s->len + 1);
		if (out == NULL)
			return empty_text;
		size_t n = 0;
		for (struct piece *p = s->head; p != NULL; p = p->next) {
			memcpy(out + n, p->t.s, p->t.len);
			n += p->t.len;
		}
		out[n] = '\0';
		s->flat = (struct wd_js_text){ out, n };
	}
	s->flat_valid = true;
	return s->flat;
}

static void str_set(struct ctx *c, struct str *s, struct wd_js_text t)
{
	*s = (struct str){ 0 };
	str_add(c, s, t);
	s->flat = t;
	s->flat_valid = true;
}

/* Elements [from, count) joined with `sep`. */
static struct wd_js_text strs_join(struct ctx *c, struct strs *v, size_t from, const char *sep)
{
	if (from >= v->count)
		return empty_text;
	if (from + 1 == v->count)
		return str_flat(c, &v->items[from]);
	size_t sep_len = strlen(sep), total = 0;
	for (size_t i = from; i < v->count; i++)
		total += v->items[i].len + (i > from ? sep_len : 0);
	char *out = ctx_alloc(c, total + 1);
	if (out == NULL)
		return empty_text;
	size_t n = 0;
	for (size_t i = from; i < v->count; i++) {
		if (i > from) {
			memcpy(out + n, sep, sep_len);
			n += sep_len;
		}
		struct wd_js_text t = str_flat(c, &v->items[i]);
		memcpy(out + n, t.s, t.len);
		n += t.len;
	}
	out[n] = '\0';
	return (struct wd_js_text){ out, n };
}

/* Length of the character at t.s[i] (the text is well-formed UTF-8). */
static size_t char_len(struct wd_js_text t, size_t i)
{
	size_t bad, n = wd__js_utf8_sequence((const uint8_t *)t.s + i, t.len - i, &bad);
	return n > 0 ? n : 1;
}

/* Length of the JS whitespace (\s) character starting at i, else 0. */
static size_t ws_at(struct wd_js_text t, size_t i)
{
	return i < t.len ? wd__js_space_at(t, i) : 0;
}

/* Start of the run of whitespace characters that ends at `end`. */
static size_t ws_run_start(struct wd_js_text t, size_t end)
{
	while (end > 0) {
		size_t start = end - 1;
		while (start > 0 && end - start < 4 && ((uint8_t)t.s[start] & 0xc0) == 0x80)
			start--;
		if (ws_at(t, start) != end - start)
			break;
		end = start;
	}
	return end;
}

static bool word(const struct wd_js_text t, size_t i)
{
	if (i >= t.len)
		return false;
	uint8_t c = (uint8_t)t.s[i];
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* \b between positions i-1 and i (never inside a multi-byte character,
   whose bytes are all non-word) */
static bool boundary_at(const struct wd_js_text t, size_t i)
{
	return (i > 0 && word(t, i - 1)) != word(t, i);
}

/* /^[^@\s]+@[^@\s]+$/ */
static bool is_bare_address(struct wd_js_text t)
{
	const char *at = memchr(t.s, '@', t.len);
	if (at == NULL || at == t.s || at == t.s + t.len - 1 ||
	    memchr(at + 1, '@', (size_t)(t.s + t.len - at - 1)) != NULL)
		return false;
	for (size_t i = 0; i < t.len; i += char_len(t, i)) {
		if (ws_at(t, i) > 0)
			return false;
	}
	return true;
}

/* text.replace(/\s*\b[^@\s]+@[^\s]+\b\s* /, ' ').trim(), with the address
   (the match without its spaces) in *found_r; found_r->s is NULL when
   nothing matched. Leftmost match, linear: within one run of non-space
   characters the match must end at the last word boundary of the run. */
static struct wd_js_text extract_address(struct ctx *c, struct wd_js_text t,
					struct wd_js_text *found_r)
{
	found_r->s = NULL;
	found_r->len = 0;
	size_t i = 0, n;
	while (i < t.len) {
		if ((n = ws_at(t, i)) > 0) {
			i += n;
			continue;
		}
		size_t run_start = i, run_end = i;
		while (run_end < t.len && ws_at(t, run_end) == 0)
			run_end += char_len(t, run_end);
		/* the last boundary inside (run_start, run_end] */
		size_t last_b = run_end;
		while (last_b > run_start && !boundary_at(t, last_b))
			last_b--;
		size_t next_at = run_start; /* next '@' at or after q */
		for (size_t q = run_start; q < run_end; q++) {
			if (next_at < q)
				next_at = q;
			while (next_at < run_end && t.s[next_at] != '@')
				next_at++;
			if (next_at >= run_end)
				break; /* no '@' left in this run */
			if (next_at == q || !boundary_at(t, q) || last_b < next_at + 2)
				continue;
			/* matched [q, last_b), with the spaces around it */
			size_t start = q == run_start ? ws_run_start(t, q) : q, end = last_b;
			if (end == run_end)
				while ((n = ws_at(t, end)) > 0)
					end += n;
			*found_r = (struct wd_js_text){ t.s + q, last_b - q };
			char *out = ctx_alloc(c, t.len + 2);
			if (out == NULL)
				return empty_text;
			memcpy(out, t.s, start);
			out[start] = ' ';
			memcpy(out + start + 1, t.s + end, t.len - end);
			out[start + 1 + t.len - end] = '\0';
			return wd__js_trim((struct wd_js_text){ out, start + 1 + t.len - end });
		}
		i = run_end;
	}
	return wd__js_trim(t);
}

static struct wd_address *parse_addresses(struct ctx *c, struct wd_js_text s, unsigned depth);

enum { DATA_ADDRESS, DATA_COMMENT, DATA_GROUP, DATA_TEXT, DATA_COUNT };

/* One address (addressparser _handleAddress): the tokens between
   separators. Appends to *tail_r. */
static void handle_address(struct ctx *c, const struct token *tokens, size_t count,
			   unsigned depth, struct wd_address ***tail_r)
{
	struct strs data[DATA_COUNT] = { { 0 } };
	int state = DATA_TEXT;
	bool is_group = false;
	for (size_t i = 0; i < count && c->rc == WD_OK; i++) {
		const struct token *tk = &tokens[i];
		if (tk->kind == TOKEN_OPERATOR) {
			state = tk->op == '<' ? DATA_ADDRESS : tk->op == '(' ? DATA_COMMENT :
				tk->op == ':' ? DATA_GROUP : DATA_TEXT;
			if (tk->op == ':')
				is_group = true;
			continue;
		}
		struct wd_js_text v = tk->value;
		if (state == DATA_ADDRESS) {
			/* an unquoted name with a stray '<': drop up to it */
			const char *lt = memchr(v.s, '<', v.len);
			if (lt != NULL) {
				v = (struct wd_js_text){ lt + 1, v.len - (size_t)(lt + 1 - v.s) };
				size_t n;
				while (v.len > 0 && (n = wd__js_space_at(v, 0)) > 0) {
					v.s += n;
					v.len -= n;
				}
			}
		}
		struct strs *d = &data[state];
		if (i > 0 && tokens[i - 1].no_break && d->count > 0) {
			str_add(c, &d->items[d->count - 1], v);
		} else {
			struct str *s = strs_push(c, d);
			if (s != NULL)
				str_add(c, s, v);
		}
	}

	if (data[DATA_TEXT].count == 0 && data[DATA_COMMENT].count > 0) {
		data[DATA_TEXT] = data[DATA_COMMENT];
		data[DATA_COMMENT] = (struct strs){ 0 };
	}

	struct wd_address *a = ctx_alloc(c, sizeof(*a));
	if (a == NULL)
		goto out;
	*a = (struct wd_address){ 0 };
	if (is_group) {
		a->group = true;
		a->name = strs_join(c, &data[DATA_TEXT], 0, " ");
		if (data[DATA_GROUP].count > 0 && depth < WD_ADDRESS_DEPTH_MAX)
			a->members = parse_addresses(c, strs_join(c, &data[DATA_GROUP], 0, ","),
						     depth + 1);
	} else {
		struct strs *text = &data[DATA_TEXT], *addr = &data[DATA_ADDRESS];
		if (addr->count == 0 && text->count > 0) {
			/* guess the address from the text: a word that is one */
			for (size_t i = text->count; i-- > 0;) {
				struct wd_js_text t = str_flat(c, &text->items[i]);
				if (is_bare_address(t)) {
					struct str *s = strs_push(c, addr);
					if (s != NULL)
						str_set(c, s, t);
					memmove(&text->items[i], &text->items[i + 1],
						(text->count - i - 1) * sizeof(text->items[0]));
					text->count--;
					break;
				}
			}
			/* ... or something like one inside a word run */
			for (size_t i = text->count; addr->count == 0 && i-- > 0;) {
				struct wd_js_text found;
				struct wd_js_text t;
				t = extract_address(c, str_flat(c, &text->items[i]), &found);
				str_set(c, &text->items[i], t);
				if (found.s != NULL) {
					struct str *s = strs_push(c, addr);
					if (s != NULL)
						str_set(c, s, wd__js_trim(found));
				}
			}
		}
		if (text->count == 0 && data[DATA_COMMENT].count > 0) {
			strs_free(text);
			*text = data[DATA_COMMENT];
			data[DATA_COMMENT] = (struct strs){ 0 };
		}
		/* only the first address counts; the others join the text */
		struct wd_js_text t_text, t_addr;
		if (addr->count > 1) {
			struct wd_js_text rest = strs_join(c, addr, 1, " ");
			struct wd_js_text head = strs_join(c, text, 0, " ");
			if (text->count > 0) {
				char *out = ctx_alloc(c, head.len + 1 + rest.len + 1);
				if (out == NULL)
					goto out;
				memcpy(out, head.s, head.len);
				out[head.len] = ' ';
				memcpy(out + head.len + 1, rest.s, rest.len);
				out[head.len + 1 + rest.len] = '\0';
				t_text = (struct wd_js_text){ out, head.len + 1 + rest.len };
			} else {
				t_text = rest;
			}
			addr->count = 1;
		} else {
			t_text = strs_join(c, text, 0, " ");
		}
		t_addr = strs_join(c, addr, 0, " ");
		a->address = t_addr.len > 0 ? t_addr : t_text;
		a->name = t_text.len > 0 ? t_text : t_addr;
		if (a->address.len == a->name.len &&
		    memcmp(a->address.s, a->name.s, a->name.len) == 0) {
			if (memchr(a->address.s, '@', a->address.len) != NULL)
				a->name = empty_text;
			else
				a->address = empty_text;
		}
	}
	**tail_r = a;
	*tail_r = &a->next;
out:
	for (int i = 0; i < DATA_COUNT; i++)
		strs_free(&data[i]);
}

/* addressparser(): the addresses of one header value, NULL when none. */
static struct wd_address *parse_addresses(struct ctx *c, struct wd_js_text s, unsigned depth)
{
	struct wd_address *head = NULL, **tail = &head;
	struct tokenizer t = { .s = (const uint8_t *)s.s, .len = s.len };
	t.buf = ctx_alloc(c, s.len + 1);
	if (t.buf == NULL)
		return NULL;
	struct token *tokens = NULL, tk;
	size_t count = 0, cap = 0;
	for (;;) {
		bool more = tokenizer_next(&t, &tk);
		if (!more || (tk.kind == TOKEN_OPERATOR && (tk.op == ',' || tk.op == ';'))) {
			if (count > 0)
				handle_address(c, tokens, count, depth, &tail);
			count = 0;
			if (!more || c->rc != WD_OK)
				break;
			continue;
		}
		if (count == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 16;
			struct token *n = realloc(tokens, ncap * sizeof(*n));
			if (n == NULL) {
				c->rc = WD_ERROR;
				break;
			}
			tokens = n;
			cap = ncap;
		}
		tokens[count++] = tk;
	}
	free(tokens);
	return head;
}

int wd__address_parse(struct wd_arena *arena, struct wd_js_text value,
		      struct wd_address **list_r)
{
	struct ctx c = { arena, WD_OK };
	*list_r = NULL;
	if (value.len == 0)
		return WD_OK;
	struct wd_address *list = parse_addresses(&c, value, 0);
	if (c.rc != WD_OK)
		return WD_ERROR;
	*list_r = list;
	return WD_OK;
}
