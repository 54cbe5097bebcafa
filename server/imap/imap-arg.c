/* Typed accessors for parsed IMAP arguments (declared in imap-parser.h).
 * They encode the RFC 3501 string classes once, so command code does not
 * look at arg->type: an astring may be an atom, a quoted string or a
 * literal held in the tree; a streamed literal is never a string. */
#include "imap-parser.h"

#include "wd-str.h"

#include <string.h>

bool wd_imap_arg_atom_equals(const struct wd_imap_arg *arg, const char *word)
{
	return arg->type == WD_IMAP_ARG_ATOM && wd_str_eq_nocase(arg->str, word);
}

bool wd_imap_arg_get_atom(const struct wd_imap_arg *arg, const char **str_r)
{
	if (arg->type != WD_IMAP_ARG_ATOM)
		return false;
	*str_r = arg->str;
	return true;
}

bool wd_imap_arg_get_string(const struct wd_imap_arg *arg, const char **str_r, size_t *len_r)
{
	if (arg->type == WD_IMAP_ARG_STRING ||
	    (arg->type == WD_IMAP_ARG_LITERAL && !arg->streamed && !arg->literal8 &&
	     memchr(arg->str, 0, arg->len) == NULL)) {
		*str_r = arg->str;
		if (len_r != NULL)
			*len_r = arg->len;
		return true;
	}
	return false;
}

bool wd_imap_arg_get_astring(const struct wd_imap_arg *arg, const char **str_r, size_t *len_r)
{
	if (arg->type == WD_IMAP_ARG_ATOM || arg->type == WD_IMAP_ARG_NIL) {
		*str_r = arg->str;
		if (len_r != NULL)
			*len_r = arg->len;
		return true;
	}
	return wd_imap_arg_get_string(arg, str_r, len_r);
}

bool wd_imap_arg_get_nstring(const struct wd_imap_arg *arg, const char **str_r, size_t *len_r)
{
	if (arg->type == WD_IMAP_ARG_NIL) {
		*str_r = NULL;
		if (len_r != NULL)
			*len_r = 0;
		return true;
	}
	return wd_imap_arg_get_string(arg, str_r, len_r);
}

bool wd_imap_arg_get_list(const struct wd_imap_arg *arg, const struct wd_imap_arg **list_r,
			  size_t *count_r)
{
	if (arg->type != WD_IMAP_ARG_LIST)
		return false;
	*list_r = arg->list;
	*count_r = arg->count;
	return true;
}
