/* PROXY protocol parser (HAProxy proxy-protocol.txt, versions 1 and 2).
 *
 * Design. The parser is stateless: every call re-reads the whole buffer from
 * its first byte. Headers are tiny (≤ 107 bytes for v1, ≤ 1040 for v2) and
 * arrive once per connection, so re-parsing costs nothing worth a state
 * machine, and a stateless function cannot get out of step with the caller's
 * buffer.
 *
 * The one property that matters most is how early we say WD_ERROR. A listener
 * with `proxy = true` that is reached directly by a client (a misrouted
 * balancer, a scanner, a plain IMAP client) must not sit waiting for a header
 * that will never come. So WD_AGAIN means "the bytes so far are a prefix of
 * some valid header", checked exactly, byte by byte:
 *   - the first byte picks the version ('P' for v1, CR for v2) and the
 *     signature is then compared byte by byte, so "a001 LOGIN" or "GET /"
 *     fail on their first byte;
 *   - a v1 field that is cut short by the end of the data is checked with a
 *     prefix grammar (a partial IPv4/IPv6 literal, port or keyword), and only
 *     a complete field goes to inet_pton(); the prefix grammars follow glibc's
 *     inet_pton(), accepting exactly the prefixes of what it accepts;
 *   - each v1 grammar also says how many bytes the field needs at least, so
 *     a header that can no longer end within 107 bytes (a long UNKNOWN
 *     line, two 45-character IPv6 literals) fails as soon as that is so,
 *     not when the 108th byte arrives;
 *   - v2 version, command, family and length are checked as soon as their
 *     byte arrives, and the TLV chain is walked over whatever has arrived, so
 *     a TLV running past the announced length fails before the rest comes.
 * The fuzz target checks this as an invariant: over the prefixes of any
 * input the answers are WD_AGAIN… then either all WD_ERROR or all WD_OK with
 * the same length.
 *
 * v1 is strict: single spaces, CRLF (a bare LF is an error), upper-case
 * keywords, the address family must match TCP4/TCP6. Ports are 1-5 decimal
 * digits ≤ 65535; leading zeros are tolerated, as HAProxy does. "UNKNOWN" may
 * be followed by a space and anything up to the CRLF, which is ignored.
 *
 * v2: only the families of the spec are accepted with the PROXY command.
 * Addresses are reported for TCP over IPv4/IPv6; UDP and AF_UNIX headers are
 * accepted (their length and TLVs are checked) but carry no address we could
 * use, so has_addresses is 0. For LOCAL (health checks) and AF_UNSPEC the spec
 * tells the receiver to ignore the address block, and its layout is unknown,
 * so the payload is skipped unparsed. */
#include "wd-proxy-protocol.h"
#include "wd-result.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

static const char v1_signature[] = "PROXY ";
#define V1_SIGNATURE_LEN (sizeof(v1_signature) - 1)

static const uint8_t v2_signature[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};
#define V2_FIXED_LEN 16
#define V2_MAX_PAYLOAD (WD_PROXY_V2_MAX_LEN - V2_FIXED_LEN)
#define V2_TLV_HEADER_LEN 3

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1

/* Longest textual literals inet_pton() can accept, without the NUL. */
#define V1_IPV4_MAX 15
#define V1_IPV6_MAX 45
#define V1_PORT_MAX 5
#define V1_KEYWORD_MAX 7

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool is_xdigit(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The v1 prefix grammars below return how many bytes at least must still be
   appended to tok to make it a complete field, or -1 when no continuation
   can. That minimum is what lets the parser tell, before the 107th byte, that
   a header can no longer end in time. */

/* IPv4 literals as inet_pton() accepts them: four dot-separated decimal
   octets, each ≤ 255 and without a leading zero (glibc rejects "01" as
   possibly octal). */
static int ipv4_completion(const uint8_t *tok, size_t len)
{
	unsigned octets = 1, digits = 0, value = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = tok[i];
		if (c == '.') {
			if (digits == 0 || octets == 4)
				return -1;
			octets++;
			digits = 0;
			value = 0;
		} else if (is_digit(c)) {
			if (digits == 1 && value == 0)
				return -1;
			value = value * 10 + (unsigned)(c - '0');
			if (value > 255)
				return -1;
			digits++;
		} else {
			return -1;
		}
	}
	/* A digit for an empty octet, then ".0" per missing octet. */
	return (digits == 0 ? 1 : 0) + 2 * (int)(4 - octets);
}

/* IPv6 literals, following glibc's inet_pton6(): groups of 1-4 hex digits,
   one "::" at most, which must stand for at least one group (so at most 7
   explicit groups with it, exactly 8 without), a single leading colon only as
   part of "::", and an optional dotted IPv4 tail worth two groups. */
static int ipv6_completion(const uint8_t *tok, size_t len)
{
	unsigned groups = 0; /* groups closed by a ':' */
	unsigned digits = 0; /* hex digits in the open group */
	size_t group_start = 0;
	bool double_colon = false;
	bool after_colon = false, after_double_colon = false;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = tok[i];
		if (c == ':') {
			after_double_colon = false;
			if (digits > 0) {
				/* Another group must follow this colon. */
				groups++;
				digits = 0;
				if (groups > (double_colon ? 6u : 7u))
					return -1;
			} else if (after_colon) {
				if (double_colon)
					return -1;
				double_colon = true;
				after_double_colon = true;
			}
			/* else: a leading colon, which must become "::" */
			after_colon = true;
		} else if (c == '.') {
			/* The rest of the literal is an IPv4 tail, starting at
			   the open group and worth two groups. Nothing can
			   follow it, so without "::" exactly six groups must
			   precede it. */
			if (digits == 0 || (double_colon ? groups > 5 : groups != 6))
				return -1;
			return ipv4_completion(tok + group_start, len - group_start);
		} else if (is_xdigit(c)) {
			if (digits == 0) {
				if (after_colon && !double_colon && groups == 0)
					return -1; /* ":1" */
				if (groups + 1 > (double_colon ? 7u : 8u))
					return -1;
				group_start = i;
			}
			if (++digits > 4)
				return -1;
			after_colon = false;
			after_double_colon = false;
		} else {
			return -1;
		}
	}
	if (len == 0)
		return 2; /* "::" */
	if (digits > 0)
		return double_colon || groups == 7 ? 0 : 2; /* as is, or "::" */
	/* After "::" it is complete; after a single colon one byte does:
	   the second colon of "::", or one more group. */
	return after_double_colon ? 0 : 1;
}

static int port_completion(const uint8_t *tok, size_t len)
{
	unsigned value = 0;

	if (len > V1_PORT_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(tok[i]))
			return -1;
		value = value * 10 + (unsigned)(tok[i] - '0');
	}
	if (value > 65535)
		return -1;
	return len == 0 ? 1 : 0;
}

static int keyword_completion(const uint8_t *tok, size_t len)
{
	static const char *const keywords[] = { "TCP4", "TCP6", "UNKNOWN" };
	int best = -1;

	for (size_t i = 0; i < WD_N_ELEMENTS(keywords); i++) {
		size_t kw_len = strlen(keywords[i]);
		if (len <= kw_len && memcmp(tok, keywords[i], len) == 0 &&
		    (best < 0 || (int)(kw_len - len) < best))
			best = (int)(kw_len - len);
	}
	return best;
}

static bool keyword_eq(const uint8_t *tok, size_t len, const char *keyword)
{
	return len == strlen(keyword) && memcmp(tok, keyword, len) == 0;
}

/* Shortest fields, for the bytes a cut-off header still needs at least. */
#define V1_IPV4_MIN 7 /* "0.0.0.0" */
#define V1_IPV6_MIN 2 /* "::" */
#define V1_PORT_MIN 1

struct v1_parser {
	const uint8_t *data;
	size_t len; /* never more than WD_PROXY_V1_MAX_LEN */
	size_t pos;
	/* With WD_AGAIN: the fewest bytes that must still arrive. */
	size_t need;
	const char *error;
};

/* Reads the field at p->pos up to the next space or CR. Returns WD_OK with
   the terminator in *sep_r and p->pos past it; WD_AGAIN when the data ends
   inside a field that can still be completed, setting p->need from `rest`,
   the fewest bytes the header needs after this field's terminator; WD_ERROR
   otherwise. The terminator is not checked here because UNKNOWN accepts
   both. */
static int v1_field(struct v1_parser *p, size_t max_len,
		    int (*completion)(const uint8_t *, size_t), size_t rest,
		    const char *what, const uint8_t **tok_r, size_t *tok_len_r,
		    uint8_t *sep_r)
{
	size_t start = p->pos, end = start;
	int missing;

	while (end < p->len && p->data[end] != ' ' && p->data[end] != '\r' &&
	       end - start <= max_len)
		end++;
	*tok_r = p->data + start;
	*tok_len_r = end - start;
	if (*tok_len_r > max_len || (missing = completion(*tok_r, *tok_len_r)) < 0) {
		p->error = what;
		return WD_ERROR;
	}
	if (end == p->len) {
		p->need = (size_t)missing + 1 + rest;
		return WD_AGAIN;
	}
	*sep_r = p->data[end];
	p->pos = end + 1;
	return WD_OK;
}

static int v1_expect_sep(struct v1_parser *p, uint8_t sep, uint8_t want)
{
	if (sep == want)
		return WD_OK;
	p->error = want == ' ' ? "PROXY v1: expected a single space" :
				 "PROXY v1: expected CRLF";
	return WD_ERROR;
}

/* After a CR: the LF that ends the header. */
static int v1_finish(struct v1_parser *p, size_t *consumed_r)
{
	if (p->pos == p->len) {
		p->need = 1;
		return WD_AGAIN;
	}
	if (p->data[p->pos] != '\n') {
		p->error = "PROXY v1: CR not followed by LF";
		return WD_ERROR;
	}
	*consumed_r = p->pos + 1;
	return WD_OK;
}

static int v1_address(struct v1_parser *p, int family, size_t rest,
		      struct sockaddr_storage *ss)
{
	const char *what = family == AF_INET ? "PROXY v1: invalid IPv4 address" :
					       "PROXY v1: invalid IPv6 address";
	const uint8_t *tok;
	size_t tok_len;
	uint8_t sep;
	char text[V1_IPV6_MAX + 1];
	int ret;

	if (family == AF_INET) {
		ret = v1_field(p, V1_IPV4_MAX, ipv4_completion, rest, what, &tok,
			       &tok_len, &sep);
	} else {
		ret = v1_field(p, V1_IPV6_MAX, ipv6_completion, rest, what, &tok,
			       &tok_len, &sep);
	}
	if (ret != WD_OK)
		return ret;
	if (v1_expect_sep(p, sep, ' ') != WD_OK)
		return WD_ERROR;

	/* The prefix grammar let it through; inet_pton() has the last word
	   on a complete literal ("1.2.3" is a fine prefix, not an address). */
	memcpy(text, tok, tok_len);
	text[tok_len] = '\0';
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		ret = inet_pton(AF_INET, text, &sin->sin_addr);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		ret = inet_pton(AF_INET6, text, &sin6->sin6_addr);
	}
	if (ret != 1) {
		p->error = what;
		return WD_ERROR;
	}
	return WD_OK;
}

static int v1_port(struct v1_parser *p, uint8_t want_sep, size_t rest,
		   struct sockaddr_storage *ss)
{
	const uint8_t *tok;
	size_t tok_len;
	uint8_t sep;
	unsigned value = 0;
	int ret;

	ret = v1_field(p, V1_PORT_MAX, port_completion, rest, "PROXY v1: invalid port",
		       &tok, &tok_len, &sep);
	if (ret != WD_OK)
		return ret;
	if (tok_len == 0) {
		p->error = "PROXY v1: invalid port";
		return WD_ERROR;
	}
	if (v1_expect_sep(p, sep, want_sep) != WD_OK)
		return WD_ERROR;

	for (size_t i = 0; i < tok_len; i++)
		value = value * 10 + (unsigned)(tok[i] - '0');
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)value);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)value);
	return WD_OK;
}

static int v1_parse_window(struct v1_parser *p, struct wd_proxy_info *info,
			   size_t *consumed_r)
{
	const uint8_t *tok;
	size_t tok_len, addr_min;
	uint8_t sep;
	int family, ret;

	for (; p->pos < V1_SIGNATURE_LEN; p->pos++) {
		if (p->pos == p->len) {
			/* A lower bound; the limit is far away here. */
			p->need = V1_SIGNATURE_LEN - p->pos;
			return WD_AGAIN;
		}
		if (p->data[p->pos] != (uint8_t)v1_signature[p->pos]) {
			p->error = "not a PROXY protocol header";
			return WD_ERROR;
		}
	}

	/* rest = 1 for the LF after "UNKNOWN\r": again a lower bound, as a
	   keyword ends by the 14th byte. */
	ret = v1_field(p, V1_KEYWORD_MAX, keyword_completion, 1,
		       "PROXY v1: unknown protocol", &tok, &tok_len, &sep);
	if (ret != WD_OK)
		return ret;
	if (keyword_eq(tok, tok_len, "UNKNOWN")) {
		/* Anything may follow a space, up to the CRLF, and is
		   ignored; a lone CR or LF inside it is still malformed. */
		if (sep == ' ') {
			while (p->pos < p->len && p->data[p->pos] != '\r') {
				if (p->data[p->pos] == '\n') {
					p->error = "PROXY v1: LF without CR";
					return WD_ERROR;
				}
				p->pos++;
			}
			if (p->pos == p->len) {
				p->need = 2;
				return WD_AGAIN;
			}
			p->pos++;
		}
		return v1_finish(p, consumed_r);
	}
	if (keyword_eq(tok, tok_len, "TCP4")) {
		family = AF_INET;
		addr_min = V1_IPV4_MIN;
	} else if (keyword_eq(tok, tok_len, "TCP6")) {
		family = AF_INET6;
		addr_min = V1_IPV6_MIN;
	} else {
		p->error = "PROXY v1: unknown protocol";
		return WD_ERROR;
	}
	if (v1_expect_sep(p, sep, ' ') != WD_OK)
		return WD_ERROR;

	/* Each `rest` counts the shortest fields after this one with their
	   single spaces, then CR LF. */
	if ((ret = v1_address(p, family, addr_min + 1 + V1_PORT_MIN + 1 + V1_PORT_MIN + 2,
			      &info->source)) != WD_OK ||
	    (ret = v1_address(p, family, V1_PORT_MIN + 1 + V1_PORT_MIN + 2,
			      &info->destination)) != WD_OK ||
	    (ret = v1_port(p, ' ', V1_PORT_MIN + 2, &info->source)) != WD_OK ||
	    (ret = v1_port(p, '\r', 1, &info->destination)) != WD_OK)
		return ret;
	if ((ret = v1_finish(p, consumed_r)) != WD_OK)
		return ret;
	info->has_addresses = 1;
	return WD_OK;
}

static int v1_parse(const uint8_t *data, size_t len, struct wd_proxy_info *info,
		    size_t *consumed_r, const char **error_r)
{
	/* Nothing past the 107th byte can belong to a header. */
	struct v1_parser p = {
		.data = data,
		.len = len < WD_PROXY_V1_MAX_LEN ? len : WD_PROXY_V1_MAX_LEN,
	};
	int ret;

	info->version = 1;
	ret = v1_parse_window(&p, info, consumed_r);
	/* A valid prefix that cannot end within 107 bytes is no prefix of a
	   valid header. This also covers "no CRLF in the first 107 bytes". */
	if (ret == WD_AGAIN && p.len + p.need > WD_PROXY_V1_MAX_LEN) {
		p.error = "PROXY v1: header longer than 107 bytes";
		ret = WD_ERROR;
	}
	if (ret == WD_ERROR)
		*error_r = p.error;
	return ret;
}

/* Address block size for a v2 family/transport byte, or -1 when the spec
   does not define that byte. */
static int v2_address_len(uint8_t family)
{
	switch (family) {
	case 0x00: /* UNSPEC */
		return 0;
	case 0x11: /* TCP over IPv4 */
	case 0x12: /* UDP over IPv4 */
		return 12;
	case 0x21: /* TCP over IPv6 */
	case 0x22: /* UDP over IPv6 */
		return 36;
	case 0x31: /* AF_UNIX stream */
	case 0x32: /* AF_UNIX datagram */
		return 216;
	default:
		return -1;
	}
}

static void v2_fill_addresses(const uint8_t *block, uint8_t family,
			      struct wd_proxy_info *info)
{
	/* Ports are copied as they are: both the wire and sin_port use
	   network byte order. */
	if (family == 0x11) {
		struct sockaddr_in *src = (struct sockaddr_in *)&info->source;
		struct sockaddr_in *dst = (struct sockaddr_in *)&info->destination;
		src->sin_family = AF_INET;
		dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, block, 4);
		memcpy(&dst->sin_addr, block + 4, 4);
		memcpy(&src->sin_port, block + 8, 2);
		memcpy(&dst->sin_port, block + 10, 2);
	} else {
		struct sockaddr_in6 *src = (struct sockaddr_in6 *)&info->source;
		struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&info->destination;
		src->sin6_family = AF_INET6;
		dst->sin6_family = AF_INET6;
		memcpy(&src->sin6_addr, block, 16);
		memcpy(&dst->sin6_addr, block + 16, 16);
		memcpy(&src->sin6_port, block + 32, 2);
		memcpy(&dst->sin6_port, block + 34, 2);
	}
	info->has_addresses = 1;
}

static int v2_parse(const uint8_t *data, size_t len, struct wd_proxy_info *info,
		    size_t *consumed_r, const char **error_r)
{
	uint8_t command, family = 0;
	size_t payload_len, total, pos;
	int address_len = 0;

	for (size_t i = 0; i < sizeof(v2_signature); i++) {
		if (i == len)
			return WD_AGAIN;
		if (data[i] != v2_signature[i]) {
			*error_r = "not a PROXY protocol header";
			return WD_ERROR;
		}
	}

	if (len < 13)
		return WD_AGAIN;
	if ((data[12] >> 4) != 2) {
		*error_r = "PROXY v2: unsupported version";
		return WD_ERROR;
	}
	command = data[12] & 0x0f;
	if (command != V2_CMD_LOCAL && command != V2_CMD_PROXY) {
		*error_r = "PROXY v2: unknown command";
		return WD_ERROR;
	}

	if (len < 14)
		return WD_AGAIN;
	/* LOCAL connections come from the proxy itself; the spec says to
	   ignore the family byte and whatever block follows. */
	if (command == V2_CMD_PROXY) {
		family = data[13];
		address_len = v2_address_len(family);
		if (address_len < 0) {
			*error_r = "PROXY v2: unknown address family or transport";
			return WD_ERROR;
		}
	}

	if (len < 15)
		return WD_AGAIN;
	/* The high byte alone can already show the length is too big. */
	if ((size_t)data[14] << 8 > V2_MAX_PAYLOAD) {
		*error_r = "PROXY v2: header too long";
		return WD_ERROR;
	}
	if (len < V2_FIXED_LEN)
		return WD_AGAIN;
	payload_len = (size_t)data[14] << 8 | data[15];
	if (payload_len > V2_MAX_PAYLOAD) {
		*error_r = "PROXY v2: header too long";
		return WD_ERROR;
	}
	if (payload_len < (size_t)address_len) {
		*error_r = "PROXY v2: header too short for its address family";
		return WD_ERROR;
	}
	total = V2_FIXED_LEN + payload_len;

	if (command == V2_CMD_PROXY && family != 0x00) {
		/* Walk the TLVs over what has arrived so far, so that one
		   running past the announced length fails at once. Their
		   contents (ALPN, SSL, unique id, …) are not used yet. */
		pos = V2_FIXED_LEN + (size_t)address_len;
		while (pos < total) {
			if (total - pos < V2_TLV_HEADER_LEN) {
				*error_r = "PROXY v2: truncated TLV";
				return WD_ERROR;
			}
			if (len < pos + V2_TLV_HEADER_LEN)
				return WD_AGAIN;
			size_t tlv_len = (size_t)data[pos + 1] << 8 | data[pos + 2];
			if (tlv_len > total - pos - V2_TLV_HEADER_LEN) {
				*error_r = "PROXY v2: TLV longer than the header";
				return WD_ERROR;
			}
			pos += V2_TLV_HEADER_LEN + tlv_len;
		}
	}
	if (len < total)
		return WD_AGAIN;

	info->version = 2;
	if (family == 0x11 || family == 0x21)
		v2_fill_addresses(data + V2_FIXED_LEN, family, info);
	*consumed_r = total;
	return WD_OK;
}

int wd_proxy_parse(const uint8_t *data, size_t len, struct wd_proxy_info *info_r,
		   size_t *consumed_r, const char **error_r)
{
	struct wd_proxy_info info;
	size_t consumed = 0;
	int ret;

	memset(&info, 0, sizeof(info));
	if (len == 0)
		ret = WD_AGAIN;
	else if (data[0] == (uint8_t)v1_signature[0])
		ret = v1_parse(data, len, &info, &consumed, error_r);
	else if (data[0] == v2_signature[0])
		ret = v2_parse(data, len, &info, &consumed, error_r);
	else {
		*error_r = "not a PROXY protocol header";
		ret = WD_ERROR;
	}

	/* Outputs are only written on success, so a caller never sees the
	   half-filled addresses of a header that later turned out bad. */
	*consumed_r = 0;
	if (ret == WD_OK) {
		*info_r = info;
		*consumed_r = consumed;
	}
	return ret;
}
