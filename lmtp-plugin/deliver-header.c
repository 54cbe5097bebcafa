/* Header facts for delivery, read from the parsedHeader object the store
 * builds (wd-message-summary.h): keys are lower-case header names; a header
 * seen once is a string, a repeated one an array of strings in header order
 * (WildDuck's parse-mime-tree.js); address headers are arrays of
 * {address, name} and {name, group: [...]}. Reading the parsed object keeps
 * delivery on the one parse of the message. */
#include "deliver-private.h"
#include "wd-buffer.h"
#include "wd-store-search.h"

#include <stdlib.h>
#include <string.h>

static bool is_space(const char *p, size_t *len_r)
{
	unsigned char c = (unsigned char)p[0];
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f') {
		*len_r = 1;
		return true;
	}
	if (c == 0xc2 && (unsigned char)p[1] == 0xa0) { /* U+00A0, which JavaScript's \s matches */
		*len_r = 2;
		return true;
	}
	return false;
}

/* White space runs become one space; `trim` also drops them at both ends. */
static char *collapse(const char *text, bool trim)
{
	size_t len = strlen(text);
	char *out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	size_t n = 0, skip;
	bool space = false;
	for (const char *p = text; *p != '\0';) {
		if (is_space(p, &skip)) {
			space = true;
			p += skip;
			continue;
		}
		if (space && (n > 0 || !trim))
			out[n++] = ' ';
		space = false;
		out[n++] = *p++;
	}
	if (space && !trim)
		out[n++] = ' ';
	out[n] = '\0';
	return out;
}

char *wd__deliver_fold(const char *text)
{
	char *lower = wd_search_fold(text);
	if (lower == NULL)
		return NULL;
	char *out = collapse(lower, false);
	free(lower);
	return out;
}

static bool find(const bson_t *parsed, const char *key, bson_iter_t *iter)
{
	return parsed != NULL && bson_iter_init_find(iter, parsed, key);
}

char *wd__deliver_header_first(const bson_t *parsed, const char *key)
{
	bson_iter_t iter, child;
	if (!find(parsed, key, &iter))
		return NULL;
	if (BSON_ITER_HOLDS_UTF8(&iter))
		return collapse(bson_iter_utf8(&iter, NULL), true);
	if (BSON_ITER_HOLDS_ARRAY(&iter) && bson_iter_recurse(&iter, &child) &&
	    bson_iter_next(&child) && BSON_ITER_HOLDS_UTF8(&child))
		return collapse(bson_iter_utf8(&child, NULL), true);
	return NULL;
}

unsigned wd__deliver_header_count(const bson_t *parsed, const char *key)
{
	bson_iter_t iter, child;
	if (!find(parsed, key, &iter))
		return 0;
	if (!BSON_ITER_HOLDS_ARRAY(&iter))
		return 1;
	unsigned n = 0;
	if (bson_iter_recurse(&iter, &child))
		while (bson_iter_next(&child))
			n++;
	return n;
}

void wd__deliver_header_each(const bson_t *parsed, const char *key, unsigned max,
			     bool (*cb)(void *context, const char *value), void *context)
{
	bson_iter_t iter, child;
	if (!find(parsed, key, &iter) || max == 0)
		return;
	if (BSON_ITER_HOLDS_UTF8(&iter)) {
		cb(context, bson_iter_utf8(&iter, NULL));
		return;
	}
	if (!BSON_ITER_HOLDS_ARRAY(&iter) || !bson_iter_recurse(&iter, &child))
		return;
	unsigned n = 0;
	while (n < max && bson_iter_next(&child)) {
		if (!BSON_ITER_HOLDS_UTF8(&child))
			continue;
		n++;
		if (!cb(context, bson_iter_utf8(&child, NULL)))
			return;
	}
}

/* Depth-first over addresses and group members; false once cb said stop. */
static bool walk_addresses(bson_iter_t *list, unsigned depth,
			   bool (*cb)(void *context, const char *address, const char *name),
			   void *context)
{
	while (bson_iter_next(list)) {
		bson_iter_t entry, field;
		if (!BSON_ITER_HOLDS_DOCUMENT(list) || !bson_iter_recurse(list, &entry))
			continue;
		const char *address = NULL, *name = NULL;
		bool group = false;
		bson_iter_t members;
		while (bson_iter_next(&entry)) {
			const char *k = bson_iter_key(&entry);
			if (strcmp(k, "address") == 0 && BSON_ITER_HOLDS_UTF8(&entry))
				address = bson_iter_utf8(&entry, NULL);
			else if (strcmp(k, "name") == 0 && BSON_ITER_HOLDS_UTF8(&entry))
				name = bson_iter_utf8(&entry, NULL);
			else if (strcmp(k, "group") == 0 && BSON_ITER_HOLDS_ARRAY(&entry)) {
				field = entry;
				group = bson_iter_recurse(&field, &members);
			}
		}
		if (group) {
			if (depth < 8 && !walk_addresses(&members, depth + 1, cb, context))
				return false;
		} else if (address != NULL && address[0] != '\0') {
			if (!cb(context, address, name != NULL ? name : ""))
				return false;
		}
	}
	return true;
}

void wd__deliver_header_addresses(const bson_t *parsed, const char *key,
				  bool (*cb)(void *context, const char *address, const char *name),
				  void *context)
{
	bson_iter_t iter, list;
	if (!find(parsed, key, &iter) || !BSON_ITER_HOLDS_ARRAY(&iter) ||
	    !bson_iter_recurse(&iter, &list))
		return;
	walk_addresses(&list, 0, cb, context);
}
