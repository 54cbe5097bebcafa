/* Sequence sets: parse, resolve "*", normalise, query.
 *
 * Parsing is two passes over a short string: count the commas to size one
 * arena array (refusing more than max_ranges before allocating), then read
 * the ranges. Normalisation sorts in place with qsort and merges; queries
 * binary-search the merged ranges, so a normalised set of any shape costs
 * O(log n) per lookup and O(1) per iteration step. */
#include "imap-seqset.h"

#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

static int parse_number(const char *s, size_t len, size_t *pos, uint32_t *n_r)
{
	size_t i = *pos;
	uint64_t n = 0;

	if (i < len && s[i] == '*') {
		*n_r = WD_IMAP_SEQ_STAR;
		*pos = i + 1;
		return WD_OK;
	}
	if (i >= len || s[i] < '1' || s[i] > '9')
		return WD_ERROR;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		n = n * 10 + (uint64_t)(s[i] - '0');
		if (n > UINT32_MAX)
			return WD_ERROR;
	}
	*n_r = (uint32_t)n;
	*pos = i;
	return WD_OK;
}

bool wd_imap_seqset_looks_like(const char *str, size_t len)
{
	if (len == 1 && str[0] == '$')
		return true;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = str[i];
		if (!((c >= '0' && c <= '9') || c == ':' || c == ',' || c == '*'))
			return false;
	}
	return true;
}

int wd_imap_seqset_parse(struct wd_arena *arena, const char *str, size_t len,
			 unsigned flags, size_t max_ranges,
			 struct wd_imap_seqset *set_r, const char **error_r)
{
	size_t count = 1, i = 0, n = 0;

	memset(set_r, 0, sizeof(*set_r));
	if (max_ranges == 0)
		max_ranges = WD_IMAP_SEQSET_MAX_RANGES_DEFAULT;
	if (len == 1 && str[0] == '$') {
		if ((flags & WD_IMAP_SEQSET_ALLOW_SAVED) == 0) {
			*error_r = "Saved search result ($) not allowed here";
			return WD_ERROR;
		}
		set_r->saved = true;
		return WD_OK;
	}
	for (size_t k = 0; k < len; k++) {
		if (str[k] == ',' && ++count > max_ranges) {
			*error_r = "Too many ranges in sequence set";
			return WD_ERROR;
		}
	}
	set_r->ranges = wd_arena_alloc(arena, count * sizeof(*set_r->ranges));
	if (set_r->ranges == NULL) {
		*error_r = "Out of memory";
		return WD_ERROR;
	}
	for (;;) {
		struct wd_imap_seq_range *r = &set_r->ranges[n++];
		if (parse_number(str, len, &i, &r->first) < 0)
			goto invalid;
		r->last = r->first;
		if (i < len && str[i] == ':') {
			i++;
			if (parse_number(str, len, &i, &r->last) < 0)
				goto invalid;
		}
		if (r->first == WD_IMAP_SEQ_STAR || r->last == WD_IMAP_SEQ_STAR)
			set_r->has_star = true;
		if (i == len)
			break;
		if (str[i] != ',')
			goto invalid;
		i++;
	}
	set_r->count = n;
	return WD_OK;
invalid:
	memset(set_r, 0, sizeof(*set_r));
	*error_r = "Invalid sequence set";
	return WD_ERROR;
}

static int range_cmp(const void *a, const void *b)
{
	const struct wd_imap_seq_range *x = a, *y = b;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->last < y->last ? -1 : (x->last > y->last);
}

void wd_imap_seqset_normalize(struct wd_imap_seqset *set)
{
	size_t out = 0;

	for (size_t i = 0; i < set->count; i++) {
		struct wd_imap_seq_range *r = &set->ranges[i];
		if (r->first > r->last) {
			uint32_t t = r->first;
			r->first = r->last;
			r->last = t;
		}
		if (r->first == 0)
			r->first = 1;
	}
	if (set->count > 1)
		qsort(set->ranges, set->count, sizeof(*set->ranges), range_cmp);
	for (size_t i = 0; i < set->count; i++) {
		struct wd_imap_seq_range r = set->ranges[i];
		if (r.last == 0)
			continue; /* "*" of an empty mailbox */
		if (out > 0 && (uint64_t)r.first <= (uint64_t)set->ranges[out - 1].last + 1) {
			if (r.last > set->ranges[out - 1].last)
				set->ranges[out - 1].last = r.last;
			continue;
		}
		set->ranges[out++] = r;
	}
	set->count = out;
}

void wd_imap_seqset_resolve(struct wd_imap_seqset *set, uint32_t star)
{
	for (size_t i = 0; i < set->count; i++) {
		if (set->ranges[i].first == WD_IMAP_SEQ_STAR)
			set->ranges[i].first = star;
		if (set->ranges[i].last == WD_IMAP_SEQ_STAR)
			set->ranges[i].last = star;
	}
	set->has_star = false;
	wd_imap_seqset_normalize(set);
}

bool wd_imap_seqset_contains(const struct wd_imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct wd_imap_seq_range *r = &set->ranges[mid];
		if (n < r->first)
			hi = mid;
		else if (n > r->last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t wd_imap_seqset_count(const struct wd_imap_seqset *set)
{
	uint64_t total = 0;
	for (size_t i = 0; i < set->count; i++)
		total += (uint64_t)set->ranges[i].last - set->ranges[i].first + 1;
	return total;
}

void wd_imap_seqset_iter_init(struct wd_imap_seqset_iter *iter, const struct wd_imap_seqset *set)
{
	iter->set = set;
	iter->range = 0;
	iter->next = set->count > 0 ? set->ranges[0].first : 0;
}

bool wd_imap_seqset_iter_next(struct wd_imap_seqset_iter *iter, uint32_t *n_r)
{
	const struct wd_imap_seqset *set = iter->set;

	while (iter->range < set->count) {
		if (iter->next <= set->ranges[iter->range].last) {
			*n_r = (uint32_t)iter->next++;
			return true;
		}
		if (++iter->range < set->count)
			iter->next = set->ranges[iter->range].first;
	}
	return false;
}
