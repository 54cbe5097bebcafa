#ifndef WD_LISTENER_H
#define WD_LISTENER_H

/* A TCP listener on a libuv loop that creates wd_conn objects.
 *
 * The socket is made by hand with SO_REUSEADDR and SO_REUSEPORT, so one
 * listener per loop thread can bind the same address and the kernel spreads
 * connections across them (DESIGN.md §4). Options per listener: implicit TLS,
 * and the PROXY protocol (v1 or v2 header expected first on every
 * connection; the header's addresses replace the socket's). */

#include "wd-conn.h"

#include <stdbool.h>
#include <uv.h>

struct wd_listener;
struct wd_tls_context;
struct wd_listener_ip_limit;

struct wd_listener_settings {
	const char *host;         /* numeric address or name; "0.0.0.0", "::", "127.0.0.1" */
	unsigned port;            /* 0 = any free port (see wd_listener_port) */
	int backlog;              /* 0 = 511 */
	struct wd_tls_context *tls; /* implicit TLS when set (borrowed, must outlive the listener) */
	bool proxy;               /* expect a PROXY protocol header */
	unsigned proxy_timeout_ms; /* 0 = 10 s */
	struct wd_conn_limits limits;
	/* Connections per peer address (after the PROXY header), shared by the
	   listeners of one service on every loop; NULL = no limit. */
	struct wd_listener_ip_limit *ip_limit;
};

/* The per-address connection limit of a service (imap.maxConnectionsPerIp
   and the like): a count of open connections per peer address, locked, so
   the listeners of all loops share it; loopback peers (127/8, ::1) are not
   counted, as a webmail on the same host speaks for many users. A
   connection over `max` gets `refusal` (the protocol's line, CRLF
   included) and is closed before the engine sees it. Reference counted: listeners and counted connections each
   hold one. */
struct wd_listener_ip_limit *wd_listener_ip_limit_create(unsigned max, const char *refusal);
void wd_listener_ip_limit_ref(struct wd_listener_ip_limit *limit);
/* For a service instance: a reference to `shared` (the first loop's) when
   set, else a new limit when max > 0, else NULL. WD_ERROR: out of memory. */
int wd_listener_ip_limit_share(struct wd_listener_ip_limit *shared, unsigned max,
			       const char *refusal, struct wd_listener_ip_limit **limit_r);
void wd_listener_ip_limit_unref(struct wd_listener_ip_limit **limit);
/* Open connections counted for `ip` ("ip" text as wd_conn_peer_ip gives it). */
unsigned wd_listener_ip_limit_count(struct wd_listener_ip_limit *limit, const char *ip);

/* Called for every new connection once it is ready (after the PROXY header
   when one is expected). The callback sets the connection's callbacks; it
   may also close it. The listener does not keep the connection. */
typedef void wd_listener_accept_fn(struct wd_conn *conn, void *context);

struct wd_listener *wd_listener_create(uv_loop_t *loop, const struct wd_listener_settings *set,
				       wd_listener_accept_fn *accept, void *context,
				       char **error_r);
unsigned wd_listener_port(const struct wd_listener *listener);
/* Stop accepting; memory is released from the close callback (run the loop). */
void wd_listener_close(struct wd_listener **listener);

#endif
