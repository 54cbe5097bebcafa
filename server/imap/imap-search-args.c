/* SEARCH grammar and the conversion to storage keys (imap-search-args.h).
 *
 * Parsing is recursive descent over the argument tree: parse_key() reads
 * one search-key at args[*pos] and advances *pos; parenthesised groups
 * recurse into the list. Every recursion (group, NOT, OR) passes depth + 1
 * and every key counts against max_keys, so hostile input is bounded in
 * both stack and memory. Keys that need only the keyword come from a table;
 * the few with their own shape (HEADER, UID, MODSEQ, NOT, OR) have code.
 *
 * Conversion walks the tree once. A sequence range a:b maps to the UID
 * range uids[a-1]:uids[b-1], which is exact because the view holds every
 * message of the mailbox up to its last UID, in UID order. */
#include "imap-search-args.h"
#include "imap-view.h"

#include "imap-utf7.h"
#include "wd-result.h"
#include "wd-str.h"

#include <string.h>

#define DAY_MS (86400 * (int64_t)1000)

enum key_arg {
	KEY_NONE,
	KEY_STRING, /* value */
	KEY_DATE,
	KEY_NUMBER,
	KEY_KEYWORD, /* flag */
};

struct key_def {
	const char *word;
	enum wd_imap_search_type type;
	enum key_arg arg;
	const char *text; /* the flag of FLAG keys, the header of HEADER keys */
	bool flag_set;
};

static const struct key_def key_defs[] = {
	{ "ALL", WD_IMAP_SEARCH_ALL, KEY_NONE, NULL, false },
	{ "ANSWERED", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Answered", true },
	{ "UNANSWERED", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Answered", false },
	{ "DELETED", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Deleted", true },
	{ "UNDELETED", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Deleted", false },
	{ "DRAFT", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Draft", true },
	{ "UNDRAFT", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Draft", false },
	{ "FLAGGED", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Flagged", true },
	{ "UNFLAGGED", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Flagged", false },
	{ "SEEN", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Seen", true },
	{ "UNSEEN", WD_IMAP_SEARCH_FLAG, KEY_NONE, "\\Seen", false },
	{ "KEYWORD", WD_IMAP_SEARCH_FLAG, KEY_KEYWORD, NULL, true },
	{ "UNKEYWORD", WD_IMAP_SEARCH_FLAG, KEY_KEYWORD, NULL, false },
	{ "NEW", WD_IMAP_SEARCH_NEW, KEY_NONE, NULL, false },
	{ "OLD", WD_IMAP_SEARCH_OLD, KEY_NONE, NULL, false },
	{ "RECENT", WD_IMAP_SEARCH_RECENT, KEY_NONE, NULL, false },
	{ "BCC", WD_IMAP_SEARCH_HEADER, KEY_STRING, "bcc", false },
	{ "CC", WD_IMAP_SEARCH_HEADER, KEY_STRING, "cc", false },
	{ "FROM", WD_IMAP_SEARCH_HEADER, KEY_STRING, "from", false },
	{ "SUBJECT", WD_IMAP_SEARCH_HEADER, KEY_STRING, "subject", false },
	{ "TO", WD_IMAP_SEARCH_HEADER, KEY_STRING, "to", false },
	{ "BODY", WD_IMAP_SEARCH_BODY, KEY_STRING, NULL, false },
	{ "TEXT", WD_IMAP_SEARCH_TEXT, KEY_STRING, NULL, false },
	{ "BEFORE", WD_IMAP_SEARCH_BEFORE, KEY_DATE, NULL, false },
	{ "ON", WD_IMAP_SEARCH_ON, KEY_DATE, NULL, false },
	{ "SINCE", WD_IMAP_SEARCH_SINCE, KEY_DATE, NULL, false },
	{ "SENTBEFORE", WD_IMAP_SEARCH_SENTBEFORE, KEY_DATE, NULL, false },
	{ "SENTON", WD_IMAP_SEARCH_SENTON, KEY_DATE, NULL, false },
	{ "SENTSINCE", WD_IMAP_SEARCH_SENTSINCE, KEY_DATE, NULL, false },
	{ "LARGER", WD_IMAP_SEARCH_LARGER, KEY_NUMBER, NULL, false },
	{ "SMALLER", WD_IMAP_SEARCH_SMALLER, KEY_NUMBER, NULL, false },
};

struct search_parse {
	struct wd_arena *arena;
	struct wd_imap_search_limits limits;
	struct wd_imap_search_program *program;
	unsigned keys;
	const char *error;
};

static struct wd_imap_search_key *fail_null(struct search_parse *s, const char *error)
{
	if (s->error == NULL)
		s->error = error;
	return NULL;
}

static struct wd_imap_search_key *new_key(struct search_parse *s, enum wd_imap_search_type type)
{
	struct wd_imap_search_key *key;

	if (++s->keys > s->limits.max_keys)
		return fail_null(s, "Too many search keys");
	key = wd_arena_zalloc(s->arena, sizeof(*key));
	if (key == NULL)
		return fail_null(s, "Out of memory");
	key->type = type;
	return key;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* date-text "d-Mon-yyyy" (day 1 or 2 digits), as an atom or a string. */
static int parse_date(const char *s, size_t len, int64_t *day_ms_r)
{
	static const char months[] = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC";
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t dlen = 0;
	unsigned day = 0, month = 0, year = 0;

	while (dlen < len && dlen < 2 && s[dlen] >= '0' && s[dlen] <= '9')
		day = day * 10 + (unsigned)(s[dlen++] - '0');
	if (dlen == 0 || len != dlen + 9 || s[dlen] != '-' || s[dlen + 4] != '-')
		return WD_ERROR;
	for (month = 0; month < 12; month++) {
		if (wd_mem_eq_nocase(s + dlen + 1, months + month * 3, 3))
			break;
	}
	if (month == 12)
		return WD_ERROR;
	for (size_t i = dlen + 5; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return WD_ERROR;
		year = year * 10 + (unsigned)(s[i] - '0');
	}
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day == 0 || day > mdays[month] || (month == 1 && day == 29 && !leap))
		return WD_ERROR;
	*day_ms_r = days_from_civil(year, month + 1, day) * DAY_MS;
	return WD_OK;
}

/* A search string: astring with valid UTF-8 and no NUL. */
static const char *get_string(struct search_parse *s, const struct wd_imap_arg *arg)
{
	const char *str;
	size_t len;

	if (!wd_imap_arg_get_astring(arg, &str, &len)) {
		s->error = "Expected a string";
		return NULL;
	}
	if (!wd_imap_utf8_is_valid((const uint8_t *)str, len) || memchr(str, 0, len) != NULL) {
		s->error = "Search string is not valid UTF-8";
		return NULL;
	}
	return str;
}

static bool get_number(const struct wd_imap_arg *arg, uint64_t max, uint64_t *n_r)
{
	const char *str;
	return wd_imap_arg_get_atom(arg, &str) && wd_str_to_uint64(str, arg->len, n_r) == WD_OK &&
	       *n_r <= max;
}

static struct wd_imap_search_key *parse_key(struct search_parse *s, const struct wd_imap_arg *args,
					    size_t count, size_t *pos, unsigned depth);

/* All of args[0..count) as one AND key. */
static struct wd_imap_search_key *parse_and(struct search_parse *s, const struct wd_imap_arg *args,
					    size_t count, unsigned depth)
{
	struct wd_imap_search_key *and = new_key(s, WD_IMAP_SEARCH_AND);
	size_t pos = 0, n = 0;

	if (and == NULL)
		return NULL;
	if (count == 0)
		return fail_null(s, "Missing search key");
	/* at most one key per argument */
	and->children = wd_arena_alloc(s->arena, count * sizeof(*and->children));
	if (and->children == NULL)
		return fail_null(s, "Out of memory");
	while (pos < count) {
		struct wd_imap_search_key *child = parse_key(s, args, count, &pos, depth);
		if (child == NULL)
			return NULL;
		and->children[n++] = child;
	}
	and->child_count = n;
	return and;
}

static struct wd_imap_search_key *parse_set(struct search_parse *s, const struct wd_imap_arg *arg,
					    enum wd_imap_search_type type)
{
	struct wd_imap_search_key *key;
	const char *str, *error;

	if (!wd_imap_arg_get_atom(arg, &str))
		return fail_null(s, "Expected a sequence set");
	key = new_key(s, type);
	if (key == NULL)
		return NULL;
	if (wd_imap_seqset_parse(s->arena, str, arg->len, WD_IMAP_SEQSET_ALLOW_SAVED,
				 s->limits.max_ranges, &key->set, &error) < 0)
		return fail_null(s, error);
	if (key->set.saved)
		s->program->uses_saved = true;
	return key;
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer */
static struct wd_imap_search_key *parse_modseq(struct search_parse *s,
					       const struct wd_imap_arg *args, size_t count,
					       size_t *pos)
{
	struct wd_imap_search_key *key = new_key(s, WD_IMAP_SEARCH_MODSEQ);
	const char *entry, *type;
	size_t len;

	if (key == NULL)
		return NULL;
	if (*pos < count && args[*pos].type == WD_IMAP_ARG_STRING) {
		if (!wd_imap_arg_get_string(&args[*pos], &entry, &len) ||
		    !wd_str_has_prefix_nocase(entry, "/flags/") || len <= 7 ||
		    *pos + 1 >= count || !wd_imap_arg_get_atom(&args[*pos + 1], &type) ||
		    !(wd_str_eq_nocase(type, "priv") || wd_str_eq_nocase(type, "shared") ||
		      wd_str_eq_nocase(type, "all")))
			return fail_null(s, "Invalid MODSEQ entry");
		key->modseq_entry = entry;
		key->modseq_type = wd_arena_strdup(s->arena, type);
		if (key->modseq_type == NULL)
			return fail_null(s, "Out of memory");
		for (char *c = (char *)key->modseq_type; *c != '\0'; c++)
			*c = wd_ascii_lower(*c);
		*pos += 2;
	}
	if (*pos >= count || !get_number(&args[*pos], INT64_MAX, &key->number))
		return fail_null(s, "Invalid MODSEQ value");
	(*pos)++;
	s->program->uses_modseq = true;
	return key;
}

static struct wd_imap_search_key *parse_simple(struct search_parse *s, const struct key_def *def,
					       const struct wd_imap_arg *args, size_t count,
					       size_t *pos)
{
	struct wd_imap_search_key *key = new_key(s, def->type);
	const struct wd_imap_arg *arg = *pos < count ? &args[*pos] : NULL;
	const char *str;
	size_t len;

	if (key == NULL)
		return NULL;
	key->flag = def->type == WD_IMAP_SEARCH_FLAG ? def->text : NULL;
	key->name = def->type == WD_IMAP_SEARCH_HEADER ? def->text : NULL;
	key->flag_set = def->flag_set;
	if (def->arg == KEY_NONE)
		return key;
	if (arg == NULL)
		return fail_null(s, "Missing search key argument");
	(*pos)++;
	switch (def->arg) {
	case KEY_NONE:
		break;
	case KEY_STRING:
		key->value = get_string(s, arg);
		return key->value == NULL ? NULL : key;
	case KEY_DATE:
		if (!wd_imap_arg_get_astring(arg, &str, &len) || arg->type == WD_IMAP_ARG_LITERAL ||
		    parse_date(str, len, &key->day_ms) < 0)
			return fail_null(s, "Invalid date");
		break;
	case KEY_NUMBER:
		if (!get_number(arg, UINT64_MAX, &key->number))
			return fail_null(s, "Invalid number");
		break;
	case KEY_KEYWORD:
		if (!wd_imap_arg_get_atom(arg, &str) || str[0] == '\\' ||
		    strpbrk(str, "*%]") != NULL)
			return fail_null(s, "Invalid keyword");
		key->flag = str;
		break;
	}
	return key;
}

static struct wd_imap_search_key *parse_key(struct search_parse *s, const struct wd_imap_arg *args,
					    size_t count, size_t *pos, unsigned depth)
{
	const struct wd_imap_arg *arg = &args[(*pos)++];
	struct wd_imap_search_key *key;
	const char *word;

	if (depth > s->limits.max_depth)
		return fail_null(s, "Search program nested too deeply");
	if (arg->type == WD_IMAP_ARG_LIST)
		return parse_and(s, arg->list, arg->count, depth + 1);
	if (!wd_imap_arg_get_atom(arg, &word))
		return fail_null(s, "Expected a search key");
	for (size_t i = 0; i < WD_N_ELEMENTS(key_defs); i++) {
		if (wd_str_eq_nocase(word, key_defs[i].word))
			return parse_simple(s, &key_defs[i], args, count, pos);
	}
	if (wd_str_eq_nocase(word, "NOT") || wd_str_eq_nocase(word, "OR")) {
		size_t n = word[0] == 'N' || word[0] == 'n' ? 1 : 2;
		key = new_key(s, n == 1 ? WD_IMAP_SEARCH_NOT : WD_IMAP_SEARCH_OR);
		if (key == NULL)
			return NULL;
		key->children = wd_arena_alloc(s->arena, n * sizeof(*key->children));
		if (key->children == NULL)
			return fail_null(s, "Out of memory");
		for (key->child_count = 0; key->child_count < n; key->child_count++) {
			if (*pos >= count)
				return fail_null(s, "Missing search key");
			key->children[key->child_count] = parse_key(s, args, count, pos, depth + 1);
			if (key->children[key->child_count] == NULL)
				return NULL;
		}
		return key;
	}
	if (wd_str_eq_nocase(word, "HEADER")) {
		if (*pos + 2 > count)
			return fail_null(s, "Missing HEADER arguments");
		key = new_key(s, WD_IMAP_SEARCH_HEADER);
		if (key == NULL)
			return NULL;
		key->name = get_string(s, &args[*pos]);
		key->value = key->name == NULL ? NULL : get_string(s, &args[*pos + 1]);
		*pos += 2;
		if (key->value == NULL)
			return NULL;
		if (key->name[0] == '\0' || strpbrk(key->name, ": \t") != NULL)
			return fail_null(s, "Invalid header name");
		return key;
	}
	if (wd_str_eq_nocase(word, "UID")) {
		if (*pos >= count)
			return fail_null(s, "Missing UID set");
		return parse_set(s, &args[(*pos)++], WD_IMAP_SEARCH_UIDSET);
	}
	if (wd_str_eq_nocase(word, "MODSEQ"))
		return parse_modseq(s, args, count, pos);
	if (wd_imap_seqset_looks_like(word, arg->len))
		return parse_set(s, arg, WD_IMAP_SEARCH_SEQSET);
	return fail_null(s, "Unknown search key");
}

static int parse_return(struct search_parse *s, const struct wd_imap_arg *arg)
{
	static const struct {
		const char *word;
		unsigned bit;
	} options[] = {
		{ "MIN", WD_IMAP_SEARCH_RETURN_MIN }, { "MAX", WD_IMAP_SEARCH_RETURN_MAX },
		{ "ALL", WD_IMAP_SEARCH_RETURN_ALL }, { "COUNT", WD_IMAP_SEARCH_RETURN_COUNT },
		{ "SAVE", WD_IMAP_SEARCH_RETURN_SAVE },
	};
	const struct wd_imap_arg *list;
	size_t count;

	if (!wd_imap_arg_get_list(arg, &list, &count)) {
		s->error = "RETURN expects a list";
		return WD_ERROR;
	}
	s->program->esearch = true;
	for (size_t i = 0; i < count; i++) {
		size_t k = 0;
		while (k < WD_N_ELEMENTS(options) && !wd_imap_arg_atom_equals(&list[i], options[k].word))
			k++;
		if (k == WD_N_ELEMENTS(options)) {
			s->error = "Unknown RETURN option";
			return WD_ERROR;
		}
		s->program->return_options |= options[k].bit;
	}
	if (s->program->return_options == 0)
		s->program->return_options = WD_IMAP_SEARCH_RETURN_ALL;
	return WD_OK;
}

int wd_imap_search_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			 const struct wd_imap_search_limits *limits,
			 struct wd_imap_search_program *program, const char **error_r)
{
	struct search_parse s = { .arena = arena, .program = program };
	size_t pos = 0;

	memset(program, 0, sizeof(*program));
	if (limits != NULL)
		s.limits = *limits;
	if (s.limits.max_depth == 0)
		s.limits.max_depth = 32;
	if (s.limits.max_keys == 0)
		s.limits.max_keys = 1000;
	if (pos + 1 < count && wd_imap_arg_atom_equals(&args[pos], "RETURN")) {
		if (parse_return(&s, &args[pos + 1]) < 0)
			goto fail;
		pos += 2;
	}
	if (pos < count && wd_imap_arg_atom_equals(&args[pos], "CHARSET")) {
		const char *charset;
		if (pos + 1 >= count || !wd_imap_arg_get_astring(&args[pos + 1], &charset, NULL)) {
			s.error = "Missing charset";
			goto fail;
		}
		program->charset = charset;
		if (!wd_str_eq_nocase(charset, "UTF-8") && !wd_str_eq_nocase(charset, "US-ASCII")) {
			program->bad_charset = true;
			s.error = "Unsupported charset";
			goto fail;
		}
		pos += 2;
	}
	program->root = parse_and(&s, args + pos, count - pos, 0);
	if (program->root == NULL)
		goto fail;
	return WD_OK;
fail:
	*error_r = s.error != NULL ? s.error : "Invalid search program";
	return WD_ERROR;
}

/* ---- conversion to storage keys ---- */

struct convert {
	struct wd_arena *arena;
	const struct wd_imap_search_view *view;
	const char *error;
};

static struct wd_search_key *store_key(struct convert *c, enum wd_search_op op)
{
	struct wd_search_key *key = wd_arena_zalloc(c->arena, sizeof(*key));
	if (key == NULL)
		c->error = "Out of memory";
	else
		key->op = op;
	return key;
}

/* A UID key over `ranges`, or NOT ALL when there are none. */
static struct wd_search_key *uid_key(struct convert *c, struct wd_search_uid_range *ranges,
				     size_t count)
{
	struct wd_search_key *key;

	if (count == 0) {
		struct wd_search_key **child = wd_arena_alloc(c->arena, sizeof(*child));
		key = store_key(c, WD_SEARCH_NOT);
		if (key == NULL || child == NULL || (*child = store_key(c, WD_SEARCH_ALL)) == NULL)
			return NULL;
		key->children = child;
		key->child_count = 1;
		return key;
	}
	key = store_key(c, WD_SEARCH_UID);
	if (key != NULL) {
		key->ranges = ranges;
		key->range_count = count;
	}
	return key;
}

static struct wd_search_key *ranges_key(struct convert *c, const struct wd_imap_seq_range *src,
					size_t count)
{
	struct wd_search_uid_range *ranges = wd_arena_alloc(c->arena, (count + 1) * sizeof(*ranges));

	if (ranges == NULL) {
		c->error = "Out of memory";
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		ranges[i].first = src[i].first;
		ranges[i].last = src[i].last;
	}
	return uid_key(c, ranges, count);
}

static struct wd_search_key *set_key(struct convert *c, const struct wd_imap_search_key *key)
{
	const struct wd_imap_search_view *view = c->view;
	struct wd_imap_seqset set = key->set;

	if (set.saved) {
		if (view->saved == NULL)
			return uid_key(c, NULL, 0);
		return ranges_key(c, view->saved->ranges, view->saved->count);
	}
	/* resolve a copy: the parsed tree stays as written */
	set.ranges = wd_arena_alloc(c->arena, (set.count + 1) * sizeof(*set.ranges));
	if (set.ranges == NULL) {
		c->error = "Out of memory";
		return NULL;
	}
	memcpy(set.ranges, key->set.ranges, set.count * sizeof(*set.ranges));
	uint32_t count = view->view != NULL ? wd_imap_view_count(view->view) : 0;
	if (key->type == WD_IMAP_SEARCH_UIDSET) {
		wd_imap_seqset_resolve(&set, count > 0 ? wd_imap_view_last_uid(view->view) : 0);
		return ranges_key(c, set.ranges, set.count);
	}
	wd_imap_seqset_resolve(&set, count < UINT32_MAX ? count : UINT32_MAX - 1);
	/* A range of sequence numbers is the UID range from its first to its
	   last message: every UID between them that exists is in the view. */
	size_t n = 0;
	for (size_t i = 0; i < set.count; i++) {
		if (set.ranges[i].first > count)
			break; /* sorted: the rest is past the view too */
		uint32_t last = set.ranges[i].last <= count ? set.ranges[i].last : count;
		set.ranges[n].first = wd_imap_view_uid(view->view, set.ranges[i].first);
		set.ranges[n].last = wd_imap_view_uid(view->view, last);
		n++;
	}
	return ranges_key(c, set.ranges, n);
}

static struct wd_search_key *recent_key(struct convert *c)
{
	const struct wd_imap_search_view *view = c->view;
	struct wd_search_uid_range *ranges =
		wd_arena_alloc(c->arena, (view->recent_count + 1) * sizeof(*ranges));
	size_t n = 0;

	if (ranges == NULL) {
		c->error = "Out of memory";
		return NULL;
	}
	for (size_t i = 0; i < view->recent_count; i++) {
		uint32_t uid = view->recent[i];
		if (n > 0 && ranges[n - 1].last + 1 == uid) {
			ranges[n - 1].last = uid;
			continue;
		}
		ranges[n].first = ranges[n].last = uid;
		n++;
	}
	return uid_key(c, ranges, n);
}

static struct wd_search_key *with_children(struct convert *c, enum wd_search_op op, size_t count)
{
	struct wd_search_key *key = store_key(c, op);

	if (key == NULL)
		return NULL;
	key->children = wd_arena_zalloc(c->arena, (count + 1) * sizeof(*key->children));
	if (key->children == NULL) {
		c->error = "Out of memory";
		return NULL;
	}
	key->child_count = count;
	return key;
}

static struct wd_search_key *convert_key(struct convert *c, const struct wd_imap_search_key *key)
{
	static const enum wd_search_op simple_ops[] = {
		[WD_IMAP_SEARCH_ALL] = WD_SEARCH_ALL,
		[WD_IMAP_SEARCH_FLAG] = WD_SEARCH_FLAG,
		[WD_IMAP_SEARCH_HEADER] = WD_SEARCH_HEADER,
		[WD_IMAP_SEARCH_BODY] = WD_SEARCH_BODY,
		[WD_IMAP_SEARCH_TEXT] = WD_SEARCH_TEXT,
		[WD_IMAP_SEARCH_BEFORE] = WD_SEARCH_BEFORE,
		[WD_IMAP_SEARCH_ON] = WD_SEARCH_ON,
		[WD_IMAP_SEARCH_SINCE] = WD_SEARCH_SINCE,
		[WD_IMAP_SEARCH_SENTBEFORE] = WD_SEARCH_SENTBEFORE,
		[WD_IMAP_SEARCH_SENTON] = WD_SEARCH_SENTON,
		[WD_IMAP_SEARCH_SENTSINCE] = WD_SEARCH_SENTSINCE,
		[WD_IMAP_SEARCH_LARGER] = WD_SEARCH_LARGER,
		[WD_IMAP_SEARCH_SMALLER] = WD_SEARCH_SMALLER,
		[WD_IMAP_SEARCH_MODSEQ] = WD_SEARCH_MODSEQ,
	};
	struct wd_search_key *out;

	switch (key->type) {
	case WD_IMAP_SEARCH_AND:
	case WD_IMAP_SEARCH_OR:
	case WD_IMAP_SEARCH_NOT:
		out = with_children(c, key->type == WD_IMAP_SEARCH_AND ? WD_SEARCH_AND :
				       key->type == WD_IMAP_SEARCH_OR ? WD_SEARCH_OR : WD_SEARCH_NOT,
				    key->child_count);
		for (size_t i = 0; out != NULL && i < key->child_count; i++) {
			out->children[i] = convert_key(c, key->children[i]);
			if (out->children[i] == NULL)
				return NULL;
		}
		return out;
	case WD_IMAP_SEARCH_SEQSET:
	case WD_IMAP_SEARCH_UIDSET:
		return set_key(c, key);
	case WD_IMAP_SEARCH_RECENT:
		return recent_key(c);
	case WD_IMAP_SEARCH_OLD:
		out = with_children(c, WD_SEARCH_NOT, 1);
		if (out != NULL && (out->children[0] = recent_key(c)) == NULL)
			return NULL;
		return out;
	case WD_IMAP_SEARCH_NEW:
		out = with_children(c, WD_SEARCH_AND, 2);
		if (out == NULL || (out->children[0] = recent_key(c)) == NULL ||
		    (out->children[1] = store_key(c, WD_SEARCH_FLAG)) == NULL)
			return NULL;
		out->children[1]->flag = "\\Seen";
		out->children[1]->set = false;
		return out;
	default:
		out = store_key(c, simple_ops[key->type]);
		if (out != NULL) {
			out->flag = key->flag;
			out->set = key->flag_set;
			out->name = key->name;
			out->value = key->value;
			out->day_ms = key->day_ms;
			out->number = key->number;
		}
		return out;
	}
}

int wd_imap_search_to_store(struct wd_arena *arena, const struct wd_imap_search_key *key,
			    const struct wd_imap_search_view *view,
			    struct wd_search_key **key_r, const char **error_r)
{
	struct convert c = { .arena = arena, .view = view };

	*key_r = convert_key(&c, key);
	if (*key_r == NULL) {
		*error_r = c.error != NULL ? c.error : "Out of memory";
		return WD_ERROR;
	}
	return WD_OK;
}
