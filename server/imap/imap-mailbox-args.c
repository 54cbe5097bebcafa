/* SELECT/EXAMINE parameters, STATUS items and LIST-EXTENDED options
 * (imap-mailbox-args.h). Keyword lists are small tables matched without
 * regard to case; every option may appear once, unknown ones are errors
 * (RFC 5258 §3: a server MUST reject unknown selection options). */
#include "imap-mailbox-args.h"

#include "wd-result.h"
#include "wd-str.h"

#include <string.h>

struct keyword {
	const char *word;
	unsigned bit;
};

/* Index of `arg` (an atom) in `table`, or -1. */
static int keyword_find(const struct keyword *table, size_t n, const struct wd_imap_arg *arg)
{
	for (size_t i = 0; i < n; i++) {
		if (wd_imap_arg_atom_equals(arg, table[i].word))
			return (int)i;
	}
	return -1;
}

static bool get_number(const struct wd_imap_arg *arg, uint64_t min, uint64_t max, uint64_t *n_r)
{
	const char *s;
	return wd_imap_arg_get_atom(arg, &s) && wd_str_to_uint64(s, arg->len, n_r) == WD_OK &&
	       *n_r >= min && *n_r <= max;
}

static int parse_uid_set(struct wd_arena *arena, const struct wd_imap_arg *arg,
			 struct wd_imap_seqset *set_r, const char **error_r)
{
	const char *s;

	if (!wd_imap_arg_get_atom(arg, &s)) {
		*error_r = "Expected a sequence set";
		return WD_ERROR;
	}
	return wd_imap_seqset_parse(arena, s, arg->len, 0, 0, set_r, error_r);
}

/* QRESYNC (uidvalidity modseq [known-uids] [(known-seqs known-seq-uids)]) */
static int parse_qresync(struct wd_arena *arena, const struct wd_imap_arg *arg,
			 struct wd_imap_select_args *sel, const char **error_r)
{
	const struct wd_imap_arg *list, *match;
	size_t count, match_count, i = 2;
	uint64_t n;

	if (!wd_imap_arg_get_list(arg, &list, &count) || count < 2 || count > 4)
		goto invalid;
	if (!get_number(&list[0], 1, UINT32_MAX, &n))
		goto invalid;
	sel->uidvalidity = (uint32_t)n;
	if (!get_number(&list[1], 0, INT64_MAX, &sel->modseq))
		goto invalid;
	if (i < count && list[i].type == WD_IMAP_ARG_ATOM) {
		if (parse_uid_set(arena, &list[i], &sel->known_uids, error_r) < 0)
			return WD_ERROR;
		i++;
	}
	if (i < count) {
		if (!wd_imap_arg_get_list(&list[i], &match, &match_count) || match_count != 2 ||
		    parse_uid_set(arena, &match[0], &sel->known_seqs, error_r) < 0 ||
		    parse_uid_set(arena, &match[1], &sel->known_seq_uids, error_r) < 0)
			goto invalid;
		sel->has_seq_match = true;
		i++;
	}
	if (i != count)
		goto invalid;
	return WD_OK;
invalid:
	*error_r = "Invalid QRESYNC parameters";
	return WD_ERROR;
}

int wd_imap_select_args_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			      struct wd_imap_select_args *sel, const char **error_r)
{
	const struct wd_imap_arg *params;
	size_t param_count;

	memset(sel, 0, sizeof(*sel));
	if (count < 1 || count > 2 || !wd_imap_arg_get_astring(&args[0], &sel->mailbox,
							       &sel->mailbox_len)) {
		*error_r = "Expected a mailbox name and optional parameters";
		return WD_ERROR;
	}
	if (count == 1)
		return WD_OK;
	if (!wd_imap_arg_get_list(&args[1], &params, &param_count) || param_count == 0) {
		*error_r = "Invalid SELECT parameters";
		return WD_ERROR;
	}
	for (size_t i = 0; i < param_count; i++) {
		if (wd_imap_arg_atom_equals(&params[i], "CONDSTORE") && !sel->condstore) {
			sel->condstore = true;
		} else if (wd_imap_arg_atom_equals(&params[i], "QRESYNC") && !sel->qresync &&
			   i + 1 < param_count) {
			if (parse_qresync(arena, &params[++i], sel, error_r) < 0)
				return WD_ERROR;
			sel->qresync = true;
		} else {
			*error_r = "Unknown or repeated SELECT parameter";
			return WD_ERROR;
		}
	}
	return WD_OK;
}

static const struct keyword status_items[] = {
	{ "MESSAGES", WD_IMAP_STATUS_MESSAGES },
	{ "RECENT", WD_IMAP_STATUS_RECENT },
	{ "UIDNEXT", WD_IMAP_STATUS_UIDNEXT },
	{ "UIDVALIDITY", WD_IMAP_STATUS_UIDVALIDITY },
	{ "UNSEEN", WD_IMAP_STATUS_UNSEEN },
	{ "HIGHESTMODSEQ", WD_IMAP_STATUS_HIGHESTMODSEQ },
	{ "SIZE", WD_IMAP_STATUS_SIZE },
	{ "APPENDLIMIT", WD_IMAP_STATUS_APPENDLIMIT },
	{ "MAILBOXID", WD_IMAP_STATUS_MAILBOXID },
	{ "DELETED", WD_IMAP_STATUS_DELETED },
};

/* Options of a list into *bits; each once. */
static int parse_options(const struct wd_imap_arg *list, size_t count,
			 const struct keyword *table, size_t n, unsigned *bits,
			 const char *error, const char **error_r)
{
	for (size_t i = 0; i < count; i++) {
		int k = keyword_find(table, n, &list[i]);
		if (k < 0 || (*bits & table[k].bit) != 0) {
			*error_r = error;
			return WD_ERROR;
		}
		*bits |= table[k].bit;
	}
	return WD_OK;
}

int wd_imap_status_items_parse(const struct wd_imap_arg *arg, unsigned *items_r,
			       const char **error_r)
{
	const struct wd_imap_arg *list;
	size_t count;

	*items_r = 0;
	if (!wd_imap_arg_get_list(arg, &list, &count) || count == 0) {
		*error_r = "Expected a list of status items";
		return WD_ERROR;
	}
	return parse_options(list, count, status_items, WD_N_ELEMENTS(status_items), items_r,
			     "Unknown or repeated status item", error_r);
}

static const struct keyword list_select[] = {
	{ "SUBSCRIBED", WD_IMAP_LIST_SELECT_SUBSCRIBED },
	{ "REMOTE", WD_IMAP_LIST_SELECT_REMOTE },
	{ "RECURSIVEMATCH", WD_IMAP_LIST_SELECT_RECURSIVEMATCH },
	{ "SPECIAL-USE", WD_IMAP_LIST_SELECT_SPECIAL_USE },
};

static const struct keyword list_return[] = {
	{ "SUBSCRIBED", WD_IMAP_LIST_RETURN_SUBSCRIBED },
	{ "CHILDREN", WD_IMAP_LIST_RETURN_CHILDREN },
	{ "SPECIAL-USE", WD_IMAP_LIST_RETURN_SPECIAL_USE },
};

static int parse_list_return(const struct wd_imap_arg *arg, struct wd_imap_list_args *l,
			     const char **error_r)
{
	const struct wd_imap_arg *list;
	size_t count;

	if (!wd_imap_arg_get_list(arg, &list, &count)) {
		*error_r = "RETURN expects a list";
		return WD_ERROR;
	}
	for (size_t i = 0; i < count; i++) {
		if (wd_imap_arg_atom_equals(&list[i], "STATUS") &&
		    (l->return_opts & WD_IMAP_LIST_RETURN_STATUS) == 0 && i + 1 < count) {
			if (wd_imap_status_items_parse(&list[++i], &l->status_items, error_r) < 0)
				return WD_ERROR;
			l->return_opts |= WD_IMAP_LIST_RETURN_STATUS;
		} else if (parse_options(&list[i], 1, list_return, WD_N_ELEMENTS(list_return),
					 &l->return_opts, "Unknown or repeated LIST return option",
					 error_r) < 0) {
			return WD_ERROR;
		}
	}
	return WD_OK;
}

/* list-mailbox: an atom (with % and *), a string, or NIL read as "NIL". */
static bool get_pattern(const struct wd_imap_arg *arg, const char **str_r)
{
	return wd_imap_arg_get_astring(arg, str_r, NULL);
}

int wd_imap_list_args_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			    struct wd_imap_list_args *l, const char **error_r)
{
	size_t pos = 0;

	memset(l, 0, sizeof(*l));
	if (count > 0 && args[0].type == WD_IMAP_ARG_LIST) {
		l->extended = true;
		if (parse_options(args[0].list, args[0].count, list_select,
				  WD_N_ELEMENTS(list_select), &l->select,
				  "Unknown or repeated LIST selection option", error_r) < 0)
			return WD_ERROR;
		if (l->select == WD_IMAP_LIST_SELECT_RECURSIVEMATCH) {
			*error_r = "RECURSIVEMATCH needs another selection option";
			return WD_ERROR;
		}
		pos++;
	}
	if (pos + 2 > count || !get_pattern(&args[pos], &l->reference)) {
		*error_r = "Expected a reference and a mailbox pattern";
		return WD_ERROR;
	}
	const struct wd_imap_arg *pats = &args[pos + 1];
	size_t pat_count = 1;
	if (pats->type == WD_IMAP_ARG_LIST) {
		l->extended = true;
		pat_count = pats->count;
		pats = pats->list;
		if (pat_count == 0 || pat_count > WD_IMAP_LIST_MAX_PATTERNS) {
			*error_r = "Invalid number of mailbox patterns";
			return WD_ERROR;
		}
	}
	l->patterns = wd_arena_alloc(arena, pat_count * sizeof(*l->patterns));
	if (l->patterns == NULL) {
		*error_r = "Out of memory";
		return WD_ERROR;
	}
	for (size_t i = 0; i < pat_count; i++) {
		if (!get_pattern(&pats[i], &l->patterns[i])) {
			*error_r = "Invalid mailbox pattern";
			return WD_ERROR;
		}
	}
	l->pattern_count = pat_count;
	pos += 2;
	if (pos < count) {
		if (pos + 2 != count || !wd_imap_arg_atom_equals(&args[pos], "RETURN")) {
			*error_r = "Unexpected LIST arguments";
			return WD_ERROR;
		}
		l->extended = true;
		if (parse_list_return(&args[pos + 1], l, error_r) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}
