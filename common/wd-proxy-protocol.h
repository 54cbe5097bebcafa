#ifndef WD_PROXY_PROTOCOL_H
#define WD_PROXY_PROTOCOL_H

/* PROXY protocol header parser (HAProxy's spec, versions 1 and 2), sans-I/O.
 *
 * A listener with `proxy = true` expects every connection to start with a
 * PROXY header. The parser looks at the bytes received so far and answers:
 *   WD_OK     a complete header; *consumed_r bytes belong to it and the rest
 *             is the client's first data; *info_r says who the client is;
 *   WD_AGAIN  the bytes so far are a valid prefix, feed more;
 *   WD_ERROR  not a valid PROXY header (*error_r says why); close the
 *             connection.
 * It never reads past `len` and keeps no state: call it again with all the
 * bytes received so far. Limits: v1 header ≤ 107 bytes (spec), v2 header
 * ≤ WD_PROXY_V2_MAX_LEN bytes. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WD_PROXY_V1_MAX_LEN 107
#define WD_PROXY_V2_MAX_LEN (16 + 1024)

struct wd_proxy_info {
	int version;          /* 1 or 2 */
	/* true when the header carries addresses (TCP4/TCP6 in v1; PROXY command
	   with AF_INET/AF_INET6 in v2). False for v1 UNKNOWN and v2 LOCAL or
	   unsupported families: keep the socket's own addresses then. */
	int has_addresses;
	struct sockaddr_storage source;
	struct sockaddr_storage destination;
};

int wd_proxy_parse(const uint8_t *data, size_t len, struct wd_proxy_info *info_r,
		   size_t *consumed_r, const char **error_r);

#endif
