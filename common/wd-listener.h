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

struct wd_listener_settings {
	const char *host;         /* numeric address or name; "0.0.0.0", "::", "127.0.0.1" */
	unsigned port;            /* 0 = any free port (see wd_listener_port) */
	int backlog;              /* 0 = 511 */
	struct wd_tls_context *tls; /* implicit TLS when set (borrowed, must outlive the listener) */
	bool proxy;               /* expect a PROXY protocol header */
	unsigned proxy_timeout_ms; /* 0 = 10 s */
	struct wd_conn_limits limits;
};

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
