/* FETCH attribute grammar (see imap-fetch-args.h).
 *
 * The parser hands BODY[...]<p.l> over as one atom (the tokenizer keeps the
 * bracket section whole), so this file splits it: the name before '[', the
 * section up to the matching ']' (quoted strings inside may hold ']'), and
 * an optional "<offset.length>". The section text itself is parsed by the
 * MIME layer's wd_mime_section_spec_parse(), the same code that later
 * resolves it, so what FETCH accepts and what it can answer never drift. */
#include "imap-fetch-args.h"

#include "wd-result.h"
#include "wd-str.h"

#include <string.h>

struct simple_item {
	const char *name;
	uint32_t items;
};

static const struct simple_item simple_items[] = {
	{ "FLAGS", WD_IMAP_FETCH_FLAGS },
	{ "INTERNALDATE", WD_IMAP_FETCH_INTERNALDATE },
	{ "RFC822.SIZE", WD_IMAP_FETCH_RFC822_SIZE },
	{ "ENVELOPE", WD_IMAP_FETCH_ENVELOPE },
	{ "BODY", WD_IMAP_FETCH_BODY },
	{ "BODYSTRUCTURE", WD_IMAP_FETCH_BODYSTRUCTURE },
	{ "UID", WD_IMAP_FETCH_UID },
	{ "MODSEQ", WD_IMAP_FETCH_MODSEQ },
	{ "EMAILID", WD_IMAP_FETCH_EMAILID },
	{ "THREADID", WD_IMAP_FETCH_THREADID },
};

#define ITEMS_FAST (WD_IMAP_FETCH_FLAGS | WD_IMAP_FETCH_INTERNALDATE | WD_IMAP_FETCH_RFC822_SIZE)
#define ITEMS_ALL (ITEMS_FAST | WD_IMAP_FETCH_ENVELOPE)
#define ITEMS_FULL (ITEMS_ALL | WD_IMAP_FETCH_BODY)

struct body_name {
	const char *name;
	enum wd_imap_fetch_body_kind kind;
	bool peek;
	const char *response; /* prefix of the response name */
};

static const struct body_name body_names[] = {
	{ "BODY", WD_IMAP_FETCH_SECTION, false, "BODY" },
	{ "BODY.PEEK", WD_IMAP_FETCH_SECTION, true, "BODY" },
	{ "BINARY", WD_IMAP_FETCH_BINARY, false, "BINARY" },
	{ "BINARY.PEEK", WD_IMAP_FETCH_BINARY, true, "BINARY" },
	{ "BINARY.SIZE", WD_IMAP_FETCH_BINARY_SIZE, true, "BINARY.SIZE" },
};

/* RFC822.x items are BODY sections with their own response names. */
struct rfc822_item {
	const char *name;
	const char *section;
	bool peek;
};

static const struct rfc822_item rfc822_items[] = {
	{ "RFC822", "", false },
	{ "RFC822.HEADER", "HEADER", true },
	{ "RFC822.TEXT", "TEXT", false },
};

/* "<offset.length>" at s[0..len) exactly. */
static int parse_partial(const char *s, size_t len, uint64_t *offset_r, uint64_t *length_r)
{
	const char *dot;

	if (len < 5 || s[0] != '<' || s[len - 1] != '>')
		return WD_ERROR;
	dot = memchr(s, '.', len);
	if (dot == NULL)
		return WD_ERROR;
	size_t off_len = (size_t)(dot - s) - 1, len_len = len - 2 - off_len - 1;
	if (off_len == 0 || len_len == 0 ||
	    wd_str_to_uint64(s + 1, off_len, offset_r) < 0 ||
	    wd_str_to_uint64(dot + 1, len_len, length_r) < 0 || *length_r == 0 ||
	    dot[1] == '0')
		return WD_ERROR;
	return WD_OK;
}

/* Index of the ']' closing the '[' at s[open], or 0. */
static size_t closing_bracket(const char *s, size_t len, size_t open)
{
	bool quoted = false;

	for (size_t i = open + 1; i < len; i++) {
		if (quoted && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == ']')
			return i;
	}
	return 0;
}

static int parse_body_item(struct wd_arena *arena, const char *s, size_t len,
			   struct wd_imap_fetch_body *body, const char **error_r)
{
	const char *bracket = memchr(s, '[', len);
	const struct body_name *bn = NULL;

	if (bracket == NULL)
		goto invalid;
	size_t open = (size_t)(bracket - s);
	for (size_t i = 0; i < WD_N_ELEMENTS(body_names); i++) {
		if (strlen(body_names[i].name) == open && wd_mem_eq_nocase(s, body_names[i].name, open))
			bn = &body_names[i];
	}
	size_t close = closing_bracket(s, len, open);
	if (bn == NULL || close == 0)
		goto invalid;
	body->kind = bn->kind;
	body->peek = bn->peek;
	body->section = wd_arena_strndup(arena, s + open + 1, close - open - 1);
	if (body->section == NULL)
		goto oom;
	if (wd_mime_section_spec_parse(arena, body->section, close - open - 1, &body->spec,
				       error_r) < 0)
		return WD_ERROR;
	if (bn->kind != WD_IMAP_FETCH_SECTION && body->spec.type != WD_MIME_SECTION_BODY) {
		*error_r = "BINARY takes only a part number";
		return WD_ERROR;
	}
	if (close + 1 < len) {
		if (bn->kind == WD_IMAP_FETCH_BINARY_SIZE ||
		    parse_partial(s + close + 1, len - close - 1, &body->offset, &body->length) < 0) {
			*error_r = "Invalid partial range";
			return WD_ERROR;
		}
		body->partial = true;
	}
	if (body->partial)
		body->response_name = wd_arena_printf(arena, "%s[%s]<%llu>", bn->response,
						      body->section,
						      (unsigned long long)body->offset);
	else
		body->response_name = wd_arena_printf(arena, "%s[%s]", bn->response, body->section);
	if (body->response_name == NULL)
		goto oom;
	return WD_OK;
invalid:
	*error_r = "Invalid FETCH attribute";
	return WD_ERROR;
oom:
	*error_r = "Out of memory";
	return WD_ERROR;
}

static int parse_item(struct wd_arena *arena, const struct wd_imap_arg *arg,
		      struct wd_imap_fetch_args *fetch, const char **error_r)
{
	const char *s;

	if (!wd_imap_arg_get_atom(arg, &s)) {
		*error_r = "Invalid FETCH attribute";
		return WD_ERROR;
	}
	for (size_t i = 0; i < WD_N_ELEMENTS(simple_items); i++) {
		if (wd_str_eq_nocase(s, simple_items[i].name)) {
			fetch->items |= simple_items[i].items;
			return WD_OK;
		}
	}
	if (fetch->body_count == WD_IMAP_FETCH_MAX_BODIES) {
		*error_r = "Too many FETCH body attributes";
		return WD_ERROR;
	}
	struct wd_imap_fetch_body *body = &fetch->bodies[fetch->body_count];
	memset(body, 0, sizeof(*body));
	for (size_t i = 0; i < WD_N_ELEMENTS(rfc822_items); i++) {
		if (wd_str_eq_nocase(s, rfc822_items[i].name)) {
			body->kind = WD_IMAP_FETCH_RFC822;
			body->peek = rfc822_items[i].peek;
			body->section = rfc822_items[i].section;
			body->response_name = rfc822_items[i].name;
			if (wd_mime_section_spec_parse(arena, body->section, strlen(body->section),
						       &body->spec, error_r) < 0)
				return WD_ERROR;
			break;
		}
	}
	if (body->response_name == NULL && parse_body_item(arena, s, arg->len, body, error_r) < 0)
		return WD_ERROR;
	fetch->body_count++;
	if (!body->peek)
		fetch->sets_seen = true;
	return WD_OK;
}

static int parse_modifiers(const struct wd_imap_arg *arg, bool uid,
			   struct wd_imap_fetch_args *fetch, const char **error_r)
{
	const struct wd_imap_arg *list;
	size_t count;
	const char *s;

	if (!wd_imap_arg_get_list(arg, &list, &count) || count == 0) {
		*error_r = "Invalid FETCH modifiers";
		return WD_ERROR;
	}
	for (size_t i = 0; i < count; i++) {
		if (wd_imap_arg_atom_equals(&list[i], "CHANGEDSINCE") && !fetch->changedsince_set) {
			if (i + 1 == count || !wd_imap_arg_get_atom(&list[i + 1], &s) ||
			    wd_str_to_uint64(s, list[i + 1].len, &fetch->changedsince) < 0 ||
			    fetch->changedsince > INT64_MAX) {
				*error_r = "Invalid CHANGEDSINCE value";
				return WD_ERROR;
			}
			fetch->changedsince_set = true;
			fetch->items |= WD_IMAP_FETCH_MODSEQ;
			i++;
		} else if (wd_imap_arg_atom_equals(&list[i], "VANISHED") && !fetch->vanished) {
			fetch->vanished = true;
		} else {
			*error_r = "Unknown or repeated FETCH modifier";
			return WD_ERROR;
		}
	}
	if (fetch->vanished && (!uid || !fetch->changedsince_set)) {
		*error_r = "VANISHED needs UID FETCH with CHANGEDSINCE";
		return WD_ERROR;
	}
	return WD_OK;
}

int wd_imap_fetch_args_parse(struct wd_arena *arena, const struct wd_imap_arg *args, size_t count,
			     bool uid, struct wd_imap_fetch_args *fetch, const char **error_r)
{
	const struct wd_imap_arg *items = args;
	size_t item_count = 1;

	memset(fetch, 0, sizeof(*fetch));
	if (count < 1 || count > 2) {
		*error_r = "FETCH expects attributes and optional modifiers";
		return WD_ERROR;
	}
	if (args[0].type == WD_IMAP_ARG_LIST) {
		items = args[0].list;
		item_count = args[0].count;
		if (item_count == 0) {
			*error_r = "Empty FETCH attribute list";
			return WD_ERROR;
		}
	} else if (wd_imap_arg_atom_equals(&args[0], "ALL")) {
		fetch->items = ITEMS_ALL;
		item_count = 0;
	} else if (wd_imap_arg_atom_equals(&args[0], "FAST")) {
		fetch->items = ITEMS_FAST;
		item_count = 0;
	} else if (wd_imap_arg_atom_equals(&args[0], "FULL")) {
		fetch->items = ITEMS_FULL;
		item_count = 0;
	}
	if (item_count > 0) {
		size_t n = item_count < WD_IMAP_FETCH_MAX_BODIES ? item_count :
								   WD_IMAP_FETCH_MAX_BODIES;
		fetch->bodies = wd_arena_alloc(arena, n * sizeof(*fetch->bodies));
		if (fetch->bodies == NULL) {
			*error_r = "Out of memory";
			return WD_ERROR;
		}
	}
	for (size_t i = 0; i < item_count; i++) {
		if (parse_item(arena, &items[i], fetch, error_r) < 0)
			return WD_ERROR;
	}
	if (count == 2 && parse_modifiers(&args[1], uid, fetch, error_r) < 0)
		return WD_ERROR;
	if (uid)
		fetch->items |= WD_IMAP_FETCH_UID;
	return WD_OK;
}
