/* Unit tests for the PROXY protocol parser (common/proxy-protocol.c).
 *
 * The parser is stateless and is called again with everything received so
 * far, so "hostile chunking" here means calling it on every prefix of an
 * input: a valid header must give WD_AGAIN for each strict prefix, and
 * garbage must give WD_ERROR at the first byte that rules it out. Every call
 * goes through an exact-size heap copy so that AddressSanitizer catches a
 * read past `len`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-proxy-protocol.h"
#include "wd-result.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct parsed {
	int ret;
	struct wd_proxy_info info;
	size_t consumed;
	const char *error;
};

static struct parsed parse(const void *data, size_t len)
{
	struct parsed p;
	uint8_t *copy = malloc(len == 0 ? 1 : len);

	assert_non_null(copy);
	memcpy(copy, data, len);
	memset(&p, 0, sizeof(p));
	p.consumed = 12345;
	p.ret = wd_proxy_parse(copy, len, &p.info, &p.consumed, &p.error);
	free(copy);
	if (p.ret == WD_ERROR)
		assert_non_null(p.error);
	if (p.ret != WD_OK)
		assert_int_equal(p.consumed, 0);
	return p;
}

static struct parsed parse_str(const char *str)
{
	return parse(str, strlen(str));
}

/* Every strict prefix of data (including the empty one) is a valid prefix. */
static void assert_prefixes_again(const void *data, size_t len)
{
	for (size_t n = 0; n < len; n++) {
		struct parsed p = parse(data, n);
		if (p.ret != WD_AGAIN)
			fail_msg("prefix of %zu/%zu bytes gave %d (%s)", n, len, p.ret,
				 p.error != NULL ? p.error : "");
	}
}

/* The length of the shortest prefix that gives WD_ERROR; fails the test if a
   prefix gives WD_OK or if even the whole input does not fail. */
static size_t first_error_at(const void *data, size_t len)
{
	for (size_t n = 1; n <= len; n++) {
		struct parsed p = parse(data, n);
		assert_int_not_equal(p.ret, WD_OK);
		if (p.ret == WD_ERROR) {
			/* Once wrong, always wrong. */
			for (size_t m = n + 1; m <= len; m++)
				assert_int_equal(parse(data, m).ret, WD_ERROR);
			return n;
		}
	}
	fail_msg("no prefix of %zu bytes gave WD_ERROR", len);
	return 0;
}

static void assert_addr(const struct sockaddr_storage *ss, int family,
			const char *addr, uint16_t port)
{
	char text[INET6_ADDRSTRLEN];

	assert_int_equal(ss->ss_family, family);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
		assert_int_equal(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
		assert_int_equal(ntohs(sin6->sin6_port), port);
	}
	assert_string_equal(text, addr);
}

/* Builds a v2 header: signature, ver_cmd, family, length, then payload. */
static size_t v2_build(uint8_t *buf, uint8_t ver_cmd, uint8_t family,
		       const void *payload, size_t payload_len)
{
	static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	memcpy(buf, sig, sizeof(sig));
	buf[12] = ver_cmd;
	buf[13] = family;
	buf[14] = (uint8_t)(payload_len >> 8);
	buf[15] = (uint8_t)payload_len;
	if (payload_len > 0)
		memcpy(buf + 16, payload, payload_len);
	return 16 + payload_len;
}

/* 192.0.2.1:56324 -> 198.51.100.2:143 */
static const uint8_t v2_ipv4_block[12] = {
	192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 0x8f,
};

/* ---- v1 ---- */

static void test_v1_tcp4(void **state)
{
	(void)state;
	const char *hdr = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n";
	struct parsed p = parse_str(hdr);

	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, strlen(hdr));
	assert_int_equal(p.info.version, 1);
	assert_true(p.info.has_addresses);
	assert_addr(&p.info.source, AF_INET, "192.0.2.1", 56324);
	assert_addr(&p.info.destination, AF_INET, "198.51.100.2", 143);

	p = parse_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
	assert_int_equal(p.ret, WD_OK);
	assert_addr(&p.info.source, AF_INET, "0.0.0.0", 0);
	assert_addr(&p.info.destination, AF_INET, "255.255.255.255", 65535);
}

static void test_v1_tcp6(void **state)
{
	(void)state;
	const char *hdr = "PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:2 65535 993\r\n";
	struct parsed p = parse_str(hdr);

	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, strlen(hdr));
	assert_int_equal(p.info.version, 1);
	assert_true(p.info.has_addresses);
	assert_addr(&p.info.source, AF_INET6, "2001:db8::1", 65535);
	assert_addr(&p.info.destination, AF_INET6, "2001:db8::2", 993);

	/* IPv4-mapped, "::" and the longest literals. */
	p = parse_str("PROXY TCP6 ::ffff:192.0.2.1 :: 1 2\r\n");
	assert_int_equal(p.ret, WD_OK);
	assert_addr(&p.info.source, AF_INET6, "::ffff:192.0.2.1", 1);
	assert_addr(&p.info.destination, AF_INET6, "::", 2);
	/* The spec's worst case, 104 bytes. */
	hdr = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	p = parse_str(hdr);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 104);
	assert_addr(&p.info.destination, AF_INET6,
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	/* Longer literals are valid addresses, but the header would pass
	   107 bytes. That is known at "…65535 655", when even the shortest
	   ending ("\r\n") would make 108. */
	hdr = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
	      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	assert_int_equal(first_error_at(hdr, strlen(hdr)), 106);
	/* Two 45-byte literals leave too little room even for " 0 0\r\n":
	   it fails with the last byte of the second one (byte 102). */
	hdr = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
	      "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 0 0\r\n";
	assert_int_equal(strlen(hdr), 108);
	assert_int_equal(first_error_at(hdr, strlen(hdr)), 102);
	/* One byte shorter is fine. */
	hdr = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
	      "fff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 0 0\r\n";
	assert_prefixes_again(hdr, strlen(hdr));
	p = parse_str(hdr);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 107);
}

static void test_v1_unknown(void **state)
{
	(void)state;
	struct parsed p = parse_str("PROXY UNKNOWN\r\n");

	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 15);
	assert_int_equal(p.info.version, 1);
	assert_false(p.info.has_addresses);

	/* The spec lets UNKNOWN carry anything up to the CRLF. */
	const char *hdr = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
	p = parse_str(hdr);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, strlen(hdr));
	assert_false(p.info.has_addresses);
}

static void test_v1_trailing_data(void **state)
{
	(void)state;
	static const char *const headers[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN x y z\r\n",
	};
	/* Client data right after the header, even data that looks like
	   another header, is not the parser's business. */
	static const char *const tails[] = {
		"a001 LOGIN x y\r\n",
		"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n",
		"\r\n\r\n\0\r\nQUIT\n",
	};
	char buf[256];

	for (size_t i = 0; i < WD_N_ELEMENTS(headers); i++) {
		for (size_t j = 0; j < WD_N_ELEMENTS(tails); j++) {
			size_t hlen = strlen(headers[i]);
			size_t tlen = j == 2 ? 12 : strlen(tails[j]);
			memcpy(buf, headers[i], hlen);
			memcpy(buf + hlen, tails[j], tlen);
			struct parsed p = parse(buf, hlen + tlen);
			assert_int_equal(p.ret, WD_OK);
			assert_int_equal(p.consumed, hlen);
			/* A single byte more is enough too. */
			p = parse(buf, hlen + 1);
			assert_int_equal(p.ret, WD_OK);
			assert_int_equal(p.consumed, hlen);
		}
	}
}

static void test_v1_prefixes(void **state)
{
	(void)state;
	static const char *const headers[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 143\r\n",
		"PROXY TCP4 0.0.0.0 10.200.30.4 0 65535\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
		"PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:7:8 443 5\r\n",
		"PROXY TCP6 1:2:3:4:5:6:7:: ::1.2.3.4 443 5\r\n",
		"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
		"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
		"::ffff:255.255.255.255 65535 65535\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN whatever\r\n",
	};

	for (size_t i = 0; i < WD_N_ELEMENTS(headers); i++) {
		size_t len = strlen(headers[i]);
		assert_prefixes_again(headers[i], len);
		assert_int_equal(parse(headers[i], len).ret, WD_OK);
	}
}

static void test_v1_length_limit(void **state)
{
	(void)state;
	char buf[200];

	/* Exactly 107 bytes with the CRLF is the largest legal header. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	memcpy(buf + 105, "\r\n", 2);
	assert_prefixes_again(buf, 107);
	struct parsed p = parse(buf, 107);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 107);

	/* One byte longer: once 106 bytes without a CR have arrived, the
	   CRLF can no longer fit, so it fails there without waiting. */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	memcpy(buf + 106, "\r\n", 2);
	assert_int_equal(first_error_at(buf, 108), 106);
	assert_int_equal(first_error_at(buf, sizeof(buf)), 106);
	/* A CR as the 106th byte still leaves room for the LF. */
	memcpy(buf + 105, "\rx", 2);
	assert_int_equal(parse(buf, 106).ret, WD_AGAIN);
	assert_int_equal(first_error_at(buf, 107), 107);
}

static void test_v1_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		/* bad addresses */
		"PROXY TCP4 256.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1. 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.02.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 host.example 1 2\r\n",
		"PROXY TCP6 2001:db8:::1 ::1 1 2\r\n",
		"PROXY TCP6 2001::db8::1 ::1 1 2\r\n",
		"PROXY TCP6 :1 ::1 1 2\r\n",
		"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
		"PROXY TCP6 12345::1 ::1 1 2\r\n",
		"PROXY TCP6 ::1%eth0 ::1 1 2\r\n",
		/* family mismatch */
		"PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 ::1 1 2\r\n",
		"PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP6 ::1 198.51.100.2 1 2\r\n",
		/* ports */
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 99999\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 000001 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 0x10 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 \r\n",
		/* spacing and fields */
		"PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2  1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1  2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2\r\n",
		"PROXY TCP4\r\n",
		"PROXY \r\n",
		"PROXY\tTCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		" PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		/* keywords */
		"proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY UNKNOWNX\r\n",
		"PROXY unknown\r\n",
		/* line endings */
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rx",
		"PROXY UNKNOWN\n",
		"PROXY UNKNOWN x\ny\r\n",
		"PROXY UNKNOWN x\rx\r\n",
	};

	for (size_t i = 0; i < WD_N_ELEMENTS(bad); i++) {
		struct parsed p = parse_str(bad[i]);
		if (p.ret != WD_ERROR)
			fail_msg("accepted #%zu \"%s\": %d", i, bad[i], p.ret);
		(void)first_error_at(bad[i], strlen(bad[i]));
	}

	/* No CRLF at all within 107 bytes of a TCP header. */
	char buf[160];
	memset(buf, '1', sizeof(buf));
	memcpy(buf, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", 30);
	assert_int_equal(parse(buf, sizeof(buf)).ret, WD_ERROR);
}

static void test_v1_fails_early(void **state)
{
	(void)state;
	static const struct {
		const char *input;
		size_t error_at; /* length of the shortest failing prefix */
	} cases[] = {
		{ "PROXY TCP4 256.1.1.1 ", 14 },
		{ "PROXY TCP4 1.2.3.4x", 19 },
		{ "PROXY TCP4 1.2.3.4.", 19 },
		{ "PROXY TCP4 01.2.3.4", 13 },
		{ "PROXY TCP4 1..2.3", 14 },
		{ "PROXY TCP6 ::.1", 14 },
		{ "PROXY TCP6 1.2.3.4", 13 },
		{ "PROXY TCP6 1:2:3:4:5:1.2.3.4", 23 },
		{ "PROXY TCP6 1::2:3:4:5:6:1.2.3.4", 26 },
		{ "PROXY TCP4 ::1 ", 12 },
		{ "PROXY TCP6 :1", 13 },
		{ "PROXY TCP6 1::2::", 17 },
		{ "PROXY TCP6 1:2:3:4:5:6:7:8:", 27 },
		{ "PROXY TCP6 1:2:3:4:5:6:7::8", 27 },
		{ "PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4", 27 },
		{ "PROXY TCP6 ::1.2.3.4:", 21 },
		{ "PROXY TCP6 12345", 16 },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 65536", 32 },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31 },
		{ "PROXY TCP4 1.2.3.4\r", 19 },
		{ "PROXY TCP5", 10 },
		{ "PROXY UNKNOWN\n", 14 },
		{ "PROXY UNKNOWN\r\r", 15 },
		{ "PROXY  ", 7 },
		{ "PROXX", 5 },
		{ "PROX ", 5 },
		{ "proxy", 1 },
	};

	for (size_t i = 0; i < WD_N_ELEMENTS(cases); i++) {
		size_t at = first_error_at(cases[i].input, strlen(cases[i].input));
		if (at != cases[i].error_at)
			fail_msg("\"%s\" failed at %zu, expected %zu", cases[i].input, at,
				 cases[i].error_at);
	}
}

/* ---- v2 ---- */

static void test_v2_ipv4(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t len = v2_build(buf, 0x21, 0x11, v2_ipv4_block, sizeof(v2_ipv4_block));
	struct parsed p = parse(buf, len);

	assert_int_equal(len, 28);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 28);
	assert_int_equal(p.info.version, 2);
	assert_true(p.info.has_addresses);
	assert_addr(&p.info.source, AF_INET, "192.0.2.1", 56324);
	assert_addr(&p.info.destination, AF_INET, "198.51.100.2", 143);

	/* Client data after the header is left alone. */
	memcpy(buf + len, "a001 NOOP\r\n", 11);
	p = parse(buf, len + 11);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 28);
}

static void test_v2_ipv6(void **state)
{
	(void)state;
	uint8_t block[36], buf[64];

	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", block), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", block + 16), 1);
	block[32] = 0xff;
	block[33] = 0xff;
	block[34] = 0x03;
	block[35] = 0xe1;
	size_t len = v2_build(buf, 0x21, 0x21, block, sizeof(block));
	struct parsed p = parse(buf, len);

	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 52);
	assert_int_equal(p.info.version, 2);
	assert_true(p.info.has_addresses);
	assert_addr(&p.info.source, AF_INET6, "2001:db8::1", 65535);
	assert_addr(&p.info.destination, AF_INET6, "2001:db8::2", 993);
}

static void test_v2_local(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t len = v2_build(buf, 0x20, 0x00, NULL, 0);
	struct parsed p = parse(buf, len);

	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 16);
	assert_int_equal(p.info.version, 2);
	assert_false(p.info.has_addresses);

	/* LOCAL ignores the family and whatever block follows, even one
	   that would not parse as TLVs. */
	len = v2_build(buf, 0x20, 0x11, v2_ipv4_block, sizeof(v2_ipv4_block));
	p = parse(buf, len);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 28);
	assert_false(p.info.has_addresses);
	len = v2_build(buf, 0x20, 0xff, "\x01\xff\xff", 3);
	p = parse(buf, len);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 19);
	assert_false(p.info.has_addresses);
}

static void test_v2_tlvs(void **state)
{
	(void)state;
	uint8_t payload[64], buf[128];
	size_t n = 0;

	memcpy(payload, v2_ipv4_block, sizeof(v2_ipv4_block));
	n += sizeof(v2_ipv4_block);
	/* PP2_TYPE_ALPN "imap", an empty PP2_TYPE_NOOP, PP2_TYPE_AUTHORITY */
	memcpy(payload + n, "\x01\x00\x04imap", 7);
	n += 7;
	memcpy(payload + n, "\x04\x00\x00", 3);
	n += 3;
	memcpy(payload + n, "\x02\x00\x0b" "example.com", 14);
	n += 14;
	size_t len = v2_build(buf, 0x21, 0x11, payload, n);
	struct parsed p = parse(buf, len);

	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, 16 + n);
	assert_true(p.info.has_addresses);
	assert_addr(&p.info.source, AF_INET, "192.0.2.1", 56324);
	assert_prefixes_again(buf, len);
}

static void test_v2_other_families(void **state)
{
	(void)state;
	static const struct {
		uint8_t family;
		size_t address_len;
	} cases[] = {
		{ 0x00, 0 }, { 0x12, 12 }, { 0x22, 36 }, { 0x31, 216 }, { 0x32, 216 },
	};
	uint8_t payload[300], buf[400];

	memset(payload, 0x41, sizeof(payload));
	for (size_t i = 0; i < WD_N_ELEMENTS(cases); i++) {
		size_t len = v2_build(buf, 0x21, cases[i].family, payload,
				      cases[i].address_len);
		struct parsed p = parse(buf, len);
		assert_int_equal(p.ret, WD_OK);
		assert_int_equal(p.consumed, len);
		assert_int_equal(p.info.version, 2);
		assert_false(p.info.has_addresses);
		assert_prefixes_again(buf, len);
	}
	/* AF_UNSPEC has no defined block: its payload is skipped unparsed. */
	size_t len = v2_build(buf, 0x21, 0x00, "\x01\xff\xff", 3);
	assert_int_equal(parse(buf, len).ret, WD_OK);
}

static void test_v2_max_length(void **state)
{
	(void)state;
	uint8_t payload[WD_PROXY_V2_MAX_LEN], buf[WD_PROXY_V2_MAX_LEN + 16];
	size_t tlv_len = WD_PROXY_V2_MAX_LEN - 16 - 12 - 3;

	/* The largest header: addresses and one TLV filling the rest. */
	memcpy(payload, v2_ipv4_block, 12);
	payload[12] = 0xe0;
	payload[13] = (uint8_t)(tlv_len >> 8);
	payload[14] = (uint8_t)tlv_len;
	memset(payload + 15, 0, tlv_len);
	size_t len = v2_build(buf, 0x21, 0x11, payload, WD_PROXY_V2_MAX_LEN - 16);
	assert_int_equal(len, WD_PROXY_V2_MAX_LEN);
	struct parsed p = parse(buf, len);
	assert_int_equal(p.ret, WD_OK);
	assert_int_equal(p.consumed, WD_PROXY_V2_MAX_LEN);
	assert_prefixes_again(buf, len);
}

static void test_v2_prefixes(void **state)
{
	(void)state;
	uint8_t block[36], buf[64];
	size_t len;

	len = v2_build(buf, 0x21, 0x11, v2_ipv4_block, sizeof(v2_ipv4_block));
	assert_prefixes_again(buf, len);
	memset(block, 0x20, sizeof(block));
	len = v2_build(buf, 0x21, 0x21, block, sizeof(block));
	assert_prefixes_again(buf, len);
	len = v2_build(buf, 0x20, 0x00, NULL, 0);
	assert_prefixes_again(buf, len);
	len = v2_build(buf, 0x20, 0x11, v2_ipv4_block, sizeof(v2_ipv4_block));
	assert_prefixes_again(buf, len);
}

static void test_v2_invalid(void **state)
{
	(void)state;
	uint8_t buf[1200], payload[1100];
	size_t len;

	memset(payload, 0, sizeof(payload));
	memcpy(payload, v2_ipv4_block, sizeof(v2_ipv4_block));

	/* Version: only 2. Each fails as soon as byte 13 arrives. */
	static const uint8_t bad_ver_cmd[] = { 0x11, 0x31, 0x01, 0xf1, 0x22, 0x2f, 0x23 };
	for (size_t i = 0; i < sizeof(bad_ver_cmd); i++) {
		len = v2_build(buf, bad_ver_cmd[i], 0x11, payload, 12);
		assert_int_equal(first_error_at(buf, len), 13);
	}

	/* Families outside the spec, with the PROXY command. */
	static const uint8_t bad_family[] = { 0x01, 0x10, 0x13, 0x20, 0x23, 0x33, 0x41, 0xff };
	for (size_t i = 0; i < sizeof(bad_family); i++) {
		len = v2_build(buf, 0x21, bad_family[i], payload, 36);
		assert_int_equal(first_error_at(buf, len), 14);
	}

	/* Lengths too short for the family's addresses. */
	len = v2_build(buf, 0x21, 0x11, payload, 11);
	assert_int_equal(first_error_at(buf, len), 16);
	len = v2_build(buf, 0x21, 0x12, payload, 0);
	assert_int_equal(first_error_at(buf, len), 16);
	len = v2_build(buf, 0x21, 0x21, payload, 35);
	assert_int_equal(first_error_at(buf, len), 16);
	len = v2_build(buf, 0x21, 0x31, payload, 215);
	assert_int_equal(first_error_at(buf, len), 16);

	/* Oversize: 1025 is seen with the low byte, 0x0500 with the high. */
	len = v2_build(buf, 0x21, 0x11, payload, WD_PROXY_V2_MAX_LEN - 16 + 1);
	assert_int_equal(first_error_at(buf, len), 16);
	len = v2_build(buf, 0x21, 0x11, payload, 16);
	buf[14] = 0x05;
	assert_int_equal(first_error_at(buf, len), 15);
	buf[14] = 0xff;
	buf[15] = 0xff;
	assert_int_equal(first_error_at(buf, len), 15);
	len = v2_build(buf, 0x20, 0x00, payload, 16);
	buf[14] = 0x04;
	buf[15] = 0x01;
	assert_int_equal(first_error_at(buf, len), 16);

	/* A TLV running past the header fails once its length arrives. */
	memcpy(payload + 12, "\x01\x00\x0aimap", 7);
	len = v2_build(buf, 0x21, 0x11, payload, 12 + 7);
	assert_int_equal(first_error_at(buf, len), 16 + 12 + 3);
	/* A second TLV overrunning by one byte. */
	memcpy(payload + 12, "\x04\x00\x00\x01\x00\x05imap", 10);
	len = v2_build(buf, 0x21, 0x11, payload, 12 + 10);
	assert_int_equal(first_error_at(buf, len), 16 + 12 + 6);
	/* Trailing bytes too short for a TLV header: known from the length
	   field alone, once the previous TLV has been walked. */
	memcpy(payload + 12, "\x04\x00\x00\x04\x00", 5);
	len = v2_build(buf, 0x21, 0x11, payload, 12 + 5);
	assert_int_equal(first_error_at(buf, len), 16 + 12 + 3);
	len = v2_build(buf, 0x21, 0x11, payload, 12 + 1);
	assert_int_equal(first_error_at(buf, len), 16);

	/* A broken signature byte. */
	len = v2_build(buf, 0x21, 0x11, v2_ipv4_block, 12);
	buf[7] = 'q';
	assert_int_equal(first_error_at(buf, len), 8);
	len = v2_build(buf, 0x21, 0x11, v2_ipv4_block, 12);
	buf[4] = ' ';
	assert_int_equal(first_error_at(buf, len), 5);
}

/* ---- neither ---- */

static void test_not_proxy(void **state)
{
	(void)state;
	/* What a client talking straight to the port sends first. None can
	   start a PROXY header, so each fails on its first byte: the
	   listener must not wait for more. */
	static const char *const inputs[] = {
		"a001 LOGIN x y\r\n",
		"GET / HTTP/1.1\r\n",
		"EHLO example.com\r\n",
		"USER bob\r\n",
		"\x16\x03\x01\x02\x00\x01",
		"\0\0\0\0\0",
		"  PROXY",
	};

	for (size_t i = 0; i < WD_N_ELEMENTS(inputs); i++) {
		size_t len = strlen(inputs[i]);
		if (len == 0)
			len = 5;
		for (size_t n = 1; n <= 5 && n <= len; n++) {
			struct parsed p = parse(inputs[i], n);
			assert_int_equal(p.ret, WD_ERROR);
		}
		assert_int_equal(parse(inputs[i], len).ret, WD_ERROR);
	}

	/* Inputs that share a first byte with a signature fail on the first
	   byte that differs. */
	assert_int_equal(first_error_at("POST / HTTP/1.1\r\n", 17), 2);
	assert_int_equal(first_error_at("PASS secret\r\n", 13), 2);
	assert_int_equal(first_error_at("\r\na001 NOOP\r\n", 13), 3);
	assert_int_equal(first_error_at("\r\n\r\n\r\n", 6), 5);

	/* Nothing yet: nothing to decide. */
	assert_int_equal(parse("", 0).ret, WD_AGAIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_trailing_data),
		cmocka_unit_test(test_v1_prefixes),
		cmocka_unit_test(test_v1_length_limit),
		cmocka_unit_test(test_v1_invalid),
		cmocka_unit_test(test_v1_fails_early),
		cmocka_unit_test(test_v2_ipv4),
		cmocka_unit_test(test_v2_ipv6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_other_families),
		cmocka_unit_test(test_v2_max_length),
		cmocka_unit_test(test_v2_prefixes),
		cmocka_unit_test(test_v2_invalid),
		cmocka_unit_test(test_not_proxy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
