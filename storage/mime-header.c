/* Header field values: unfolding, and Content-Type / Content-Disposition
 * parsing with RFC 2231 parameter continuations.
 *
 * Values are parsed leniently because the input is whatever was delivered:
 * the main value ends at the first ';' (as in WildDuck), a parameter value is
 * a quoted string (with backslash escapes, which may hold ';'; one without
 * its closing quote runs to the end of the field) or the text up to the next
 * ';' with stray quotes and whitespace stripped from its ends (WildDuck
 * strips them too, which rescues boundary='x'). Parameter names must be RFC
 * 2045 tokens shorter than 100 bytes; others are skipped. Everything here is
 * copied into the arena: these are the few bytes of a message the parser
 * does copy. */
#include "wd-mime-tree-private.h"

#include "wd-arena.h"
#include "wd-result.h"
#include "wd-str.h"

#include <stdlib.h>
#include <string.h>

#define PARAM_NAME_MAX 100
#define RFC2231_SECTION_MAX 9999

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

static bool is_token_char(uint8_t c)
{
	if (c <= 32 || c >= 127)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static void trim(const uint8_t **p, size_t *len)
{
	while (*len > 0 && is_space((*p)[0])) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*p)[*len - 1]))
		(*len)--;
}

static char *dup_lower(struct wd_arena *arena, const uint8_t *p, size_t len)
{
	char *s = wd_arena_strndup(arena, (const char *)p, len);
	if (s != NULL) {
		for (size_t i = 0; i < len; i++)
			s[i] = wd_ascii_lower(s[i]);
	}
	return s;
}

char *wd__mime_unfold(struct wd_arena *arena, const uint8_t *data, uint32_t start, uint32_t end,
		      size_t *len_r)
{
	const uint8_t *p = data + start;
	size_t len = end - start;
	trim(&p, &len);
	char *out = wd_arena_alloc(arena, len + 1);
	if (out == NULL)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\r' && p[i] != '\n')
			out[n++] = (char)p[i];
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

char *wd__mime_unfold_lower(struct wd_arena *arena, const uint8_t *data, uint32_t start,
			    uint32_t end)
{
	size_t len;
	char *s = wd__mime_unfold(arena, data, start, end, &len);
	if (s != NULL) {
		for (size_t i = 0; i < len; i++)
			s[i] = wd_ascii_lower(s[i]);
	}
	return s;
}

/* A parameter as written, before RFC 2231 merging. */
struct raw_param {
	const char *name; /* lower-case base name (before any '*') */
	size_t name_len;
	const uint8_t *value;
	size_t value_len;
	uint32_t pos;     /* order of appearance */
	int32_t section;  /* RFC 2231 section number; -1 for a plain parameter */
	bool extended;    /* percent-encoded (name* or name*N*) */
};

static int raw_param_cmp(const void *_a, const void *_b)
{
	const struct raw_param *a = _a, *b = _b;
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);
	if (c != 0)
		return c;
	if (a->name_len != b->name_len)
		return a->name_len < b->name_len ? -1 : 1;
	if (a->section != b->section)
		return a->section < b->section ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* Where a merged parameter goes in the final order. */
struct param_order {
	uint32_t first_pos;
	uint32_t index;
};

static int param_order_cmp(const void *_a, const void *_b)
{
	const struct param_order *a = _a, *b = _b;
	return a->first_pos < b->first_pos ? -1 : a->first_pos > b->first_pos;
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Append p[0..len) to out at *n, percent-decoding when asked. out has room
   for len bytes: decoding only shrinks. */
static void append_segment(char *out, size_t *n, const uint8_t *p, size_t len, bool decode)
{
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (decode && p[i] == '%' && i + 2 < len && (hi = hex_value(p[i + 1])) >= 0 &&
		    (lo = hex_value(p[i + 2])) >= 0) {
			out[(*n)++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[(*n)++] = (char)p[i];
		}
	}
}

/* Read one parameter starting at *pos (just after a ';'). Returns false
   when the parameter is to be skipped. */
static bool read_param(struct wd_arena *arena, const uint8_t *v, size_t len, size_t *pos,
		       struct raw_param *param_r, bool *oom_r)
{
	size_t p = *pos;
	size_t name_start = p;
	while (p < len && v[p] != '=' && v[p] != ';')
		p++;
	const uint8_t *name = v + name_start;
	size_t name_len = p - name_start;
	trim(&name, &name_len);

	const uint8_t *value = (const uint8_t *)"";
	size_t value_len = 0;
	if (p < len && v[p] == '=') {
		p++;
		while (p < len && is_space(v[p]))
			p++;
		if (p < len && v[p] == '"') {
			/* Quoted string: measure, then unescape into the arena
			   (sized to the string, so many parameters stay linear). */
			size_t q = ++p, n = 0;
			while (q < len && v[q] != '"') {
				if (v[q] == '\\' && q + 1 < len)
					q++;
				q++;
				n++;
			}
			uint8_t *out = wd_arena_alloc(arena, n + 1);
			if (out == NULL) {
				*oom_r = true;
				return false;
			}
			n = 0;
			while (p < len && v[p] != '"') {
				if (v[p] == '\\' && p + 1 < len)
					p++;
				out[n++] = v[p++];
			}
			value = out;
			value_len = n;
			while (p < len && v[p] != ';')
				p++;
		} else {
			size_t value_start = p;
			while (p < len && v[p] != ';')
				p++;
			value = v + value_start;
			value_len = p - value_start;
			while (value_len > 0 && (is_space(value[0]) || value[0] == '"' || value[0] == '\'')) {
				value++;
				value_len--;
			}
			while (value_len > 0 && (is_space(value[value_len - 1]) ||
						 value[value_len - 1] == '"' ||
						 value[value_len - 1] == '\''))
				value_len--;
		}
	}
	*pos = p;

	if (name_len == 0 || name_len >= PARAM_NAME_MAX)
		return false;
	for (size_t i = 0; i < name_len; i++) {
		if (!is_token_char(name[i]))
			return false;
	}

	/* RFC 2231: name*, name*N, name*N*. Anything else with a '*' is a
	   plain (if odd) name. */
	param_r->section = -1;
	param_r->extended = false;
	const uint8_t *star = memchr(name, '*', name_len);
	if (star != NULL && star > name) {
		const uint8_t *s = star + 1, *e = name + name_len;
		int32_t section = 0;
		bool digits = false, valid = true;
		while (s < e && *s >= '0' && *s <= '9' && valid) {
			valid = section <= RFC2231_SECTION_MAX / 10;
			section = section * 10 + (*s - '0');
			digits = true;
			s++;
		}
		if (valid && !digits && s == e) {
			/* name*: one extended value */
			param_r->section = 0;
			param_r->extended = true;
			name_len = (size_t)(star - name);
		} else if (valid && digits && (s == e || (s + 1 == e && *s == '*'))) {
			/* name*N or name*N* */
			param_r->section = section;
			param_r->extended = s < e;
			name_len = (size_t)(star - name);
		}
	}
	param_r->name = dup_lower(arena, name, name_len);
	if (param_r->name == NULL) {
		*oom_r = true;
		return false;
	}
	param_r->name_len = name_len;
	param_r->value = value;
	param_r->value_len = value_len;
	return true;
}

/* Merge one group of raw parameters with the same name (sorted by section,
   then position) into `out`. */
static int merge_group(struct wd_arena *arena, struct raw_param *group, size_t count,
		       struct wd_mime_param *out, uint32_t *first_pos_r)
{
	uint32_t first_pos = UINT32_MAX;
	bool rfc2231 = false;
	size_t total = 0;
	for (size_t i = 0; i < count; i++) {
		if (group[i].pos < first_pos)
			first_pos = group[i].pos;
		if (group[i].section >= 0)
			rfc2231 = true;
		total += group[i].value_len;
	}
	*first_pos_r = first_pos;
	out->name = group[0].name;
	out->charset = NULL;
	out->language = NULL;

	if (!rfc2231) {
		/* Plain duplicates: the last one wins (as in WildDuck). */
		const struct raw_param *last = &group[0];
		for (size_t i = 1; i < count; i++) {
			if (group[i].pos > last->pos)
				last = &group[i];
		}
		out->value = wd_arena_strndup(arena, (const char *)last->value, last->value_len);
		out->value_len = last->value_len;
		return out->value == NULL ? WD_ERROR : WD_OK;
	}

	char *value = wd_arena_alloc(arena, total + 1);
	if (value == NULL)
		return WD_ERROR;
	size_t n = 0;
	int32_t prev_section = -1;
	bool any_extended = false;
	for (size_t i = 0; i < count; i++) {
		const struct raw_param *seg = &group[i];
		/* Plain entries lose to the continuation; a repeated section
		   keeps its first occurrence. */
		if (seg->section < 0 || seg->section == prev_section)
			continue;
		prev_section = seg->section;
		const uint8_t *p = seg->value;
		size_t len = seg->value_len;
		if (seg->extended && seg->section == 0) {
			/* charset'language'value */
			const uint8_t *q1 = memchr(p, '\'', len);
			const uint8_t *q2 = q1 == NULL ? NULL : memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - p));
			if (q2 != NULL) {
				out->charset = wd_arena_strndup(arena, (const char *)p, (size_t)(q1 - p));
				if (q2 > q1 + 1)
					out->language = wd_arena_strndup(arena, (const char *)q1 + 1,
									 (size_t)(q2 - q1 - 1));
				if (out->charset == NULL)
					return WD_ERROR;
				len -= (size_t)(q2 + 1 - p);
				p = q2 + 1;
			}
		}
		if (seg->extended)
			any_extended = true;
		append_segment(value, &n, p, len, seg->extended);
	}
	if (any_extended && out->charset == NULL)
		out->charset = "";
	value[n] = '\0';
	out->value = value;
	out->value_len = n;
	return WD_OK;
}

int wd__mime_parse_content(struct wd_arena *arena, const uint8_t *v, size_t len,
			   bool disposition, struct wd_mime_content *content)
{
	const uint8_t *semi = memchr(v, ';', len);
	const uint8_t *main_value = v;
	size_t main_len = semi == NULL ? len : (size_t)(semi - v);
	trim(&main_value, &main_len);

	content->present = true;
	content->value = wd_arena_strndup(arena, (const char *)main_value, main_len);
	if (content->value == NULL)
		return WD_ERROR;
	if (disposition) {
		content->type = dup_lower(arena, main_value, main_len);
		content->subtype = "";
	} else {
		const uint8_t *slash = memchr(main_value, '/', main_len);
		const uint8_t *type = main_value, *subtype = (const uint8_t *)"";
		size_t type_len = main_len, subtype_len = 0;
		if (slash != NULL) {
			type_len = (size_t)(slash - main_value);
			subtype = slash + 1;
			subtype_len = main_len - type_len - 1;
		}
		trim(&type, &type_len);
		trim(&subtype, &subtype_len);
		content->type = dup_lower(arena, type, type_len);
		content->subtype = dup_lower(arena, subtype, subtype_len);
	}
	if (content->type == NULL || content->subtype == NULL)
		return WD_ERROR;
	content->params = NULL;
	content->param_count = 0;
	if (semi == NULL)
		return WD_OK;

	/* At most one parameter per ';'. */
	size_t max_params = 0;
	for (const uint8_t *p = semi; p != NULL; p = memchr(p + 1, ';', len - (size_t)(p + 1 - v)))
		max_params++;
	struct raw_param *raw = malloc(max_params * sizeof(*raw));
	if (raw == NULL)
		return WD_ERROR;
	size_t raw_count = 0, pos = (size_t)(semi - v);
	bool oom = false;
	while (pos < len && !oom) {
		pos++; /* the ';' */
		struct raw_param param;
		if (read_param(arena, v, len, &pos, &param, &oom)) {
			param.pos = (uint32_t)raw_count;
			raw[raw_count++] = param;
		}
	}
	if (oom) {
		free(raw);
		return WD_ERROR;
	}

	/* Group by name; each group becomes one parameter. Sorting keeps this
	   O(n log n) for headers with many parameters. */
	qsort(raw, raw_count, sizeof(*raw), raw_param_cmp);
	struct wd_mime_param *params = wd_arena_alloc(arena, (raw_count + 1) * sizeof(*params));
	struct param_order *order = malloc((raw_count + 1) * sizeof(*order));
	if (params == NULL || order == NULL) {
		free(raw);
		free(order);
		return WD_ERROR;
	}
	size_t count = 0;
	for (size_t i = 0; i < raw_count;) {
		size_t j = i + 1;
		while (j < raw_count && raw[j].name_len == raw[i].name_len &&
		       memcmp(raw[j].name, raw[i].name, raw[i].name_len) == 0)
			j++;
		uint32_t first_pos;
		if (merge_group(arena, raw + i, j - i, &params[count], &first_pos) < 0) {
			oom = true;
			break;
		}
		order[count].first_pos = first_pos;
		order[count].index = (uint32_t)count;
		count++;
		i = j;
	}
	free(raw);
	if (oom) {
		free(order);
		return WD_ERROR;
	}
	qsort(order, count, sizeof(*order), param_order_cmp);
	struct wd_mime_param *sorted = wd_arena_alloc(arena, (count + 1) * sizeof(*sorted));
	if (sorted == NULL) {
		free(order);
		return WD_ERROR;
	}
	for (size_t i = 0; i < count; i++)
		sorted[i] = params[order[i].index];
	free(order);
	content->params = sorted;
	content->param_count = (uint32_t)count;
	return WD_OK;
}

const struct wd_mime_param *wd_mime_content_param(const struct wd_mime_content *content,
						  const char *name)
{
	for (uint32_t i = 0; i < content->param_count; i++) {
		if (strcmp(content->params[i].name, name) == 0)
			return &content->params[i];
	}
	return NULL;
}
