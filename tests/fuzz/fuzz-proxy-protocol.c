/* Fuzz target for wd_proxy_parse() (common/proxy-protocol.c).
 *
 * Besides memory safety it checks the parser's contract, aborting on any
 * breach:
 *   - WD_OK: 15 ≤ consumed ≤ size, within the version's limit, the header
 *     starts with its signature (and a v1 one ends with CRLF), addresses are
 *     AF_INET or AF_INET6 and agree, and the header alone parses the same;
 *   - WD_AGAIN only below the limits: no valid prefix is longer than
 *     WD_PROXY_V2_MAX_LEN (v2) or WD_PROXY_V1_MAX_LEN (v1);
 *   - WD_ERROR comes with an error string;
 *   - statelessness: over the prefixes of the input the answers are
 *     WD_AGAIN… then either WD_ERROR… or WD_OK… with one consumed length.
 *     This is what lets a listener call it again with each new read, and
 *     what makes "AGAIN only on a valid prefix" testable: a prefix that
 *     fails can never be rescued by more bytes.
 * Each prefix is copied to the end of a heap block, so AddressSanitizer
 * catches a read past `len`. */
#include "wd-proxy-protocol.h"
#include "wd-result.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Beyond this many bytes every answer is final (v2's limit is the larger). */
#define DECIDED_AFTER WD_PROXY_V2_MAX_LEN

static const uint8_t v2_signature[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond))                                                            \
			abort();                                                        \
	} while (0)

static void check_result(const uint8_t *data, size_t size, int ret,
			 const struct wd_proxy_info *info, size_t consumed, const char *error)
{
	switch (ret) {
	case WD_OK:
		CHECK(consumed >= 15 && consumed <= size);
		if (info->version == 1) {
			CHECK(consumed <= WD_PROXY_V1_MAX_LEN);
			CHECK(memcmp(data, "PROXY ", 6) == 0);
			CHECK(data[consumed - 2] == '\r' && data[consumed - 1] == '\n');
		} else {
			CHECK(info->version == 2);
			CHECK(consumed >= 16 && consumed <= WD_PROXY_V2_MAX_LEN);
			CHECK(memcmp(data, v2_signature, sizeof(v2_signature)) == 0);
			CHECK(consumed == 16 + ((size_t)data[14] << 8 | data[15]));
		}
		if (info->has_addresses) {
			CHECK(info->has_addresses == 1);
			CHECK(info->source.ss_family == AF_INET ||
			      info->source.ss_family == AF_INET6);
			CHECK(info->destination.ss_family == info->source.ss_family);
		}
		break;
	case WD_AGAIN:
		CHECK(consumed == 0);
		CHECK(size < DECIDED_AFTER);
		if (size > 0 && data[0] == 'P')
			CHECK(size < WD_PROXY_V1_MAX_LEN);
		break;
	case WD_ERROR:
		CHECK(consumed == 0);
		CHECK(error != NULL && error[0] != '\0');
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wd_proxy_info info, again_info;
	size_t consumed = 0, again_consumed = 0;
	const char *error = NULL;
	int ret;

	ret = wd_proxy_parse(data, size, &info, &consumed, &error);
	check_result(data, size, ret, &info, consumed, error);
	if (ret == WD_OK) {
		/* The header alone is enough and gives the same answer. */
		CHECK(wd_proxy_parse(data, consumed, &again_info, &again_consumed, &error) ==
		      WD_OK);
		CHECK(again_consumed == consumed);
		CHECK(memcmp(&again_info, &info, sizeof(info)) == 0);
	}

	size_t limit = size < DECIDED_AFTER ? size : DECIDED_AFTER;
	uint8_t *block = malloc(limit == 0 ? 1 : limit);
	if (block == NULL)
		abort();
	int prev = WD_AGAIN;
	size_t prev_consumed = 0;
	for (size_t n = 0; n <= limit; n++) {
		uint8_t *copy = block + limit - n;
		struct wd_proxy_info p_info;
		size_t p_consumed = 0;
		const char *p_error = NULL;

		memcpy(copy, data, n);
		int p_ret = wd_proxy_parse(copy, n, &p_info, &p_consumed, &p_error);
		check_result(copy, n, p_ret, &p_info, p_consumed, p_error);
		if (prev != WD_AGAIN) {
			CHECK(p_ret == prev);
			if (p_ret == WD_OK)
				CHECK(p_consumed == prev_consumed);
		}
		prev = p_ret;
		prev_consumed = p_consumed;
	}
	free(block);
	/* The answer for the whole input is the one reached at the limit. */
	CHECK(prev == ret);
	if (ret == WD_OK)
		CHECK(prev_consumed == consumed);
	return 0;
}
