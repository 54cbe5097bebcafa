/* stats.c — latency and outcome statistics of wd-load.
 *
 * Design:
 *   - One wl_stat per operation name, kept in insertion order (the order the
 *     modes report in). Latencies go to a log-linear histogram of fixed size:
 *     exact below 64 µs, then 32 sub-buckets per power of two (about 3 %
 *     resolution) up to 2^41 µs; percentiles are read from it, the maximum
 *     and the mean are exact. Memory does not grow with the run length.
 *   - Failures are counted apart from latencies: IMAP NO / BAD, timeouts,
 *     other errors (connection lost...). Failed operations are not timed.
 *   - Reply codes (LMTP "250", "451 4.x.x"...) are counted by string in a
 *     small fixed table; codes past its size are counted as "other".
 *   - Operations marked `setup` (login, select...) are shown but left out
 *     of the TOTAL row; rows with nothing to show are skipped.
 *   - Output is a plain text table on stdout and, for scripts, JSON written
 *     by hand (names are ASCII identifiers chosen by the modes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wd-load.h"

#define MAX_OPS 32
#define MAX_CODES 32

struct wl_stats {
	struct wl_stat *ops[MAX_OPS];
	size_t n_ops;
	struct {
		char code[32];
		uint64_t count;
	} codes[MAX_CODES];
	size_t n_codes;
	uint64_t other_codes;
	struct wl_stat overflow;
	bool hide_total;
};

void wl_stats_hide_total(struct wl_stats *s)
{
	s->hide_total = true;
}

struct wl_stats *wl_stats_new(void)
{
	return calloc(1, sizeof(struct wl_stats));
}

void wl_stats_free(struct wl_stats *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_ops; i++)
		free(s->ops[i]);
	free(s);
}

size_t wl_stats_count(struct wl_stats *s)
{
	return s->n_ops;
}

struct wl_stat *wl_stats_at(struct wl_stats *s, size_t i)
{
	return i < s->n_ops ? s->ops[i] : NULL;
}

struct wl_stat *wl_stats_op(struct wl_stats *s, const char *name)
{
	for (size_t i = 0; i < s->n_ops; i++)
		if (strcmp(s->ops[i]->name, name) == 0)
			return s->ops[i];
	if (s->n_ops == MAX_OPS)
		return &s->overflow;
	struct wl_stat *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return &s->overflow;
	snprintf(st->name, sizeof(st->name), "%s", name);
	s->ops[s->n_ops++] = st;
	return st;
}

static size_t bucket_of(uint64_t us)
{
	if (us < 64)
		return (size_t)us;
	int msb = 63 - __builtin_clzll(us);
	if (msb > 41)
		return WL_HIST_BUCKETS - 1;
	int shift = msb - 5;
	size_t idx = 64 + (size_t)(msb - 6) * 32 + (size_t)((us >> shift) - 32);
	return idx < WL_HIST_BUCKETS ? idx : WL_HIST_BUCKETS - 1;
}

/* middle of a bucket, in µs */
static double bucket_value(size_t idx)
{
	if (idx < 64)
		return (double)idx;
	int msb = 6 + (int)((idx - 64) / 32);
	uint64_t sub = (idx - 64) % 32 + 32;
	int shift = msb - 5;
	double lo = (double)(sub << shift);
	return lo + (double)(1ull << shift) / 2.0;
}

void wl_stat_record(struct wl_stat *st, uint64_t us)
{
	st->count++;
	st->sum_us += (double)us;
	if (us > st->max_us)
		st->max_us = us;
	st->hist[bucket_of(us)]++;
}

double wl_stat_percentile(const struct wl_stat *st, double p)
{
	if (st->count == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(p / 100.0 * (double)st->count);
	if (want == 0)
		want = 1;
	uint64_t seen = 0;
	for (size_t i = 0; i < WL_HIST_BUCKETS; i++) {
		seen += st->hist[i];
		if (seen >= want) {
			double v = bucket_value(i);
			if (v > (double)st->max_us)
				v = (double)st->max_us;
			return v / 1000.0;
		}
	}
	return (double)st->max_us / 1000.0;
}

void wl_stats_code(struct wl_stats *s, const char *code)
{
	for (size_t i = 0; i < s->n_codes; i++) {
		if (strcmp(s->codes[i].code, code) == 0) {
			s->codes[i].count++;
			return;
		}
	}
	if (s->n_codes == MAX_CODES) {
		s->other_codes++;
		return;
	}
	char *dst = s->codes[s->n_codes].code;
	snprintf(dst, sizeof(s->codes[0].code), "%s", code);
	for (; *dst != '\0'; dst++) /* JSON-safe */
		if (*dst == '"' || *dst == '\\' || (unsigned char)*dst < 0x20 ||
		    (unsigned char)*dst > 0x7e)
			*dst = '_';
	s->codes[s->n_codes++].count = 1;
}

static void totals(struct wl_stats *s, struct wl_stat *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "TOTAL");
	for (size_t i = 0; i < s->n_ops; i++) {
		const struct wl_stat *st = s->ops[i];
		if (st->setup)
			continue;
		t->count += st->count;
		t->no += st->no;
		t->bad += st->bad;
		t->timeouts += st->timeouts;
		t->errors += st->errors;
		t->bytes += st->bytes;
		t->sum_us += st->sum_us;
		if (st->max_us > t->max_us)
			t->max_us = st->max_us;
		for (size_t b = 0; b < WL_HIST_BUCKETS; b++)
			t->hist[b] += st->hist[b];
	}
}

static void print_row(const struct wl_stat *st, double seconds)
{
	printf("%-16s %9llu %10.1f %8.2f %8.2f %8.2f %9.2f %6llu %6llu %6llu %6llu\n",
	       st->name, (unsigned long long)st->count,
	       seconds > 0 ? (double)st->count / seconds : 0.0,
	       wl_stat_percentile(st, 50), wl_stat_percentile(st, 90),
	       wl_stat_percentile(st, 99), (double)st->max_us / 1000.0,
	       (unsigned long long)st->no, (unsigned long long)st->bad,
	       (unsigned long long)st->timeouts, (unsigned long long)st->errors);
}

void wl_stats_print(struct wl_stats *s, const char *title, double seconds)
{
	printf("\n== %s (%.1f s measured) ==\n", title, seconds);
	printf("%-16s %9s %10s %8s %8s %8s %9s %6s %6s %6s %6s\n", "operation", "count",
	       "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "NO", "BAD", "tmout", "err");
	size_t shown = 0;
	for (size_t i = 0; i < s->n_ops; i++) {
		const struct wl_stat *st = s->ops[i];
		if (st->count + st->no + st->bad + st->timeouts + st->errors == 0)
			continue;
		print_row(st, seconds);
		shown += !st->setup;
	}
	if (shown > 1 && !s->hide_total) {
		struct wl_stat *t = malloc(sizeof(*t));
		if (t != NULL) {
			totals(s, t);
			print_row(t, seconds);
			free(t);
		}
	}
	if (s->n_codes > 0) {
		printf("reply codes:");
		for (size_t i = 0; i < s->n_codes; i++)
			printf("  %s x%llu", s->codes[i].code, (unsigned long long)s->codes[i].count);
		if (s->other_codes > 0)
			printf("  other x%llu", (unsigned long long)s->other_codes);
		printf("\n");
	}
	fflush(stdout);
}

static void json_stat(FILE *f, const struct wl_stat *st, double seconds)
{
	fprintf(f, "{\"count\":%llu,\"ops_per_s\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
		   "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,\"no\":%llu,\"bad\":%llu,"
		   "\"timeouts\":%llu,\"errors\":%llu,\"bytes\":%llu}",
		(unsigned long long)st->count,
		seconds > 0 ? (double)st->count / seconds : 0.0, wl_stat_percentile(st, 50),
		wl_stat_percentile(st, 90), wl_stat_percentile(st, 99),
		(double)st->max_us / 1000.0,
		st->count > 0 ? st->sum_us / (double)st->count / 1000.0 : 0.0,
		(unsigned long long)st->no, (unsigned long long)st->bad,
		(unsigned long long)st->timeouts, (unsigned long long)st->errors,
		(unsigned long long)st->bytes);
}

void wl_stats_json(struct wl_stats *s, FILE *f, const char *title, double seconds,
		   const char *extra_json)
{
	fprintf(f, "{\"title\":\"%s\",\"seconds\":%.3f,\"ops\":{", title, seconds);
	for (size_t i = 0; i < s->n_ops; i++) {
		fprintf(f, "%s\"%s\":", i > 0 ? "," : "", s->ops[i]->name);
		json_stat(f, s->ops[i], seconds);
	}
	fprintf(f, "},\"total\":");
	struct wl_stat *t = malloc(sizeof(*t));
	if (t != NULL) {
		totals(s, t);
		json_stat(f, t, seconds);
		free(t);
	} else {
		fprintf(f, "null");
	}
	fprintf(f, ",\"codes\":{");
	for (size_t i = 0; i < s->n_codes; i++)
		fprintf(f, "%s\"%s\":%llu", i > 0 ? "," : "", s->codes[i].code,
			(unsigned long long)s->codes[i].count);
	fprintf(f, "}");
	if (extra_json != NULL && extra_json[0] != '\0')
		fprintf(f, ",%s", extra_json);
	fprintf(f, "}");
}

int wl_json_write(struct wl_stats *s, const char *title, double seconds, const char *extra_json)
{
	if (wl_opt.json == NULL)
		return 0;
	FILE *f = fopen(wl_opt.json, "w");
	if (f == NULL) {
		fprintf(stderr, "wd-load: cannot write %s\n", wl_opt.json);
		return -1;
	}
	wl_stats_json(s, f, title, seconds, extra_json);
	fprintf(f, "\n");
	return fclose(f) == 0 ? 0 : -1;
}
