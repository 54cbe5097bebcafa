/* Fuzz target for the IMAP command parser (server/imap/imap-parser.h).
 *
 * Besides memory safety it checks the parser's streaming contract: the
 * event log (commands with their argument trees, literal events,
 * continuations, streamed literal bytes, errors with their recovery) is the
 * same whether the input arrives whole, one byte at a time, or in chunks of
 * pseudo-random sizes seeded from the input. The first byte picks limits
 * and capabilities (tiny limits reach every error path on short inputs),
 * the second whether literals are streamed or kept in the tree. */
#include "../unit/imap/imap-parse-log.h" /* shared chunking driver */
#include "imap-parser.h"
#include "wd-buffer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *log_with(const uint8_t *data, size_t size, imap_split_fn *split, void *context,
		      const struct imap_parse_log_options *options)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	size_t len;

	imap_parse_log(data, size, split, context, options, &out);
	wd_buffer_append(&out, "", 1);
	return (char *)wd_buffer_steal(&out, &len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wd_imap_parser_limits limits;
	struct imap_parse_log_options options = { .limits = &limits, .line_after = "IDLE" };
	struct imap_split_random rng = { 2166136261u, 17 };

	if (size < 2 || size > 8192)
		return 0;
	wd_imap_parser_limits_default(&limits);
	if (data[0] & 1) {
		limits.max_line = 64;
		limits.max_literal = 32;
		limits.max_tree_literals = 40;
		limits.max_discard = 48;
		limits.max_args = 12;
		limits.max_depth = 3;
	}
	limits.literal_plus = (data[0] & 2) != 0;
	limits.literal_minus = (data[0] & 4) != 0;
	limits.binary = (data[0] & 8) != 0;
	limits.utf8_accept = (data[0] & 16) != 0;
	options.stream_min = data[1] & 1 ? (data[1] >> 1) : UINT64_MAX;
	data += 2;
	size -= 2;
	for (size_t i = 0; i < size; i++)
		rng.state = (rng.state ^ data[i]) * 16777619u;
	rng.state |= 1;

	char *whole = log_with(data, size, imap_split_whole, NULL, &options);
	char *one = log_with(data, size, imap_split_one, NULL, &options);
	char *random = log_with(data, size, imap_split_random, &rng, &options);
	if (strcmp(whole, one) != 0 || strcmp(whole, random) != 0) {
		fprintf(stderr, "event logs differ\n--- whole\n%s--- one byte\n%s--- random\n%s",
			whole, one, random);
		abort();
	}
	free(whole);
	free(one);
	free(random);
	return 0;
}
