#ifndef API_HTTP_DAEMON_H
#define API_HTTP_DAEMON_H

/* The libmicrohttpd daemon of wd-api (http-daemon.c). */

#include "api.h"

#include <stdint.h>

struct api_daemon_settings {
	const char *host;            /* an IP address */
	uint16_t port;               /* 0: any free port (api_daemon_port() says which) */
	unsigned threads;            /* libmicrohttpd's thread pool */
	unsigned max_connections;
	unsigned max_connections_per_ip; /* 0: no limit */
	unsigned connection_timeout; /* seconds of inactivity */
	uint64_t max_header_bytes;   /* request line + headers (per-connection memory) */
	const char *tls_cert;        /* PEM text: HTTPS; NULL: plain HTTP */
	const char *tls_key;
};

struct api_daemon;

struct api_daemon *api_daemon_start(struct api_context *ctx, const struct api_daemon_settings *set,
				    char **error_r);
uint16_t api_daemon_port(const struct api_daemon *daemon);
/* Stop accepting; requests in progress go on. */
void api_daemon_quiesce(struct api_daemon *daemon);
void api_daemon_stop(struct api_daemon **daemon);
/* New HTTPS certificate and key (PEM text) for connections from now on
   (SIGHUP); -1 with a malloc'd *error_r, and the old ones stay, when they
   do not load or do not belong together. */
int api_daemon_reload_tls(const char *cert_pem, const char *key_pem, char **error_r);

#endif
