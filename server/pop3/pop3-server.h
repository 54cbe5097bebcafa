#ifndef WD_POP3_SERVER_H
#define WD_POP3_SERVER_H

/* The POP3 service of wd-server: settings read from WildDuck's `pop3.*`
 * keys (config/pop3.toml), the listeners and the sessions of one event loop.
 *
 * Two listeners: `pop3.port` (9995) with implicit TLS when `pop3.secure`
 * (true, as WildDuck) or plain with STLS otherwise, and optionally
 * `pop3.plainPort` (0 = none), a second, plain listener that offers STLS:
 * the usual pair of ports 995 and 110. Both bind `pop3.host`.
 *
 * One wd_pop3_server belongs to one libuv loop; everything the sessions
 * need from outside (store, auth, worker pool, the loop's completion queue)
 * is passed in, as for IMAP. With several loops (workers.loops) each has
 * its own server on the same ports: the first loop's instance picks them
 * (port 0 = any) and the others take them from it (wd-service.h). */

#include <stdbool.h>
#include <stdint.h>

#include "wd-service.h"
#include "wd-tls.h"

struct wd_config;
struct wd_pop3_server;

struct wd_listener_ip_limit;

struct wd_pop3_settings {
	bool enabled;               /* pop3.enabled (true) */
	const char *host;           /* pop3.host ("0.0.0.0") */
	unsigned port;              /* pop3.port (9995; 0 = any free port) */
	bool secure;                /* pop3.secure: implicit TLS on pop3.port (true) */
	/* pop3.plainPort: a plain listener with STLS besides pop3.port (0: none) */
	unsigned plain_port;
	/* pop3.disableSTARTTLS (WildDuck's key): no STLS on plain listeners */
	bool disable_starttls;
	/* pop3.proxy, or WildDuck's pop3.useProxy: PROXY protocol header first
	   (false) */
	bool proxy;
	/* pop3.insecureAuth: USER/PASS/AUTH without TLS (wd-tls.h: never by
	   default, "loopback" peers only, true/"any" every peer; WildDuck's
	   pop3.ignoreSTARTTLS = true means "any"); where refused CAPA does not
	   list USER and SASL, as WildDuck */
	enum wd_plaintext_auth insecure_auth;
	unsigned max_messages;      /* pop3.maxMessages (250) */
	/* pop3.maxDownloadMB in bytes (10240 MiB): the daily download limit
	   when neither users.pop3MaxDownload nor const:max:pop3:download says */
	int64_t max_download;
	unsigned idle_timeout_ms;   /* pop3.idleTimeout s (600, at least 600) */
	unsigned auth_delay_ms;     /* pop3.authFailureDelay ms (1000) */
	const char *name;           /* pop3.name: greeting ("WildDuck-C POP3") */
	const char *version;        /* pop3.version: IMPLEMENTATION text */
	bool version_string;        /* !pop3.disableVersionString: CAPA IMPLEMENTATION */
	/* pop3.maxConnectionsPerIp (100; 0 = no limit): open connections per
	   client address, all loops together; more get "-ERR [SYS/TEMP]" */
	unsigned max_connections_per_ip;
	struct wd_listener_ip_limit *ip_limit; /* its count, shared by the loops' servers */
	/* pop3.writeTimeout s (300): output the client does not read closes
	   the connection after this */
	unsigned write_timeout_ms;
};

/* Reads the settings; strings point into the config. WD_ERROR with a message
   (owned by the config or static) when a value is of the wrong type or out
   of range. */
int wd_pop3_settings_read(const struct wd_config *config, struct wd_pop3_settings *set_r,
			  const char **error_r);

/* Creates the server and its listener(s) (TLS context from pop3.tls.* /
   tls.* when any listener may use TLS). NULL with a malloc'd *error_r. */
struct wd_pop3_server *wd_pop3_server_create(const struct wd_server_deps *deps,
					     const struct wd_pop3_settings *set, char **error_r);
unsigned wd_pop3_server_port(const struct wd_pop3_server *server);
unsigned wd_pop3_server_plain_port(const struct wd_pop3_server *server);
/* Stop accepting and end every session (nothing is changed for them: a
   session ends without QUIT). Run the loop until the count is 0. */
void wd_pop3_server_shutdown(struct wd_pop3_server *server);
unsigned wd_pop3_server_session_count(const struct wd_pop3_server *server);
void wd_pop3_server_destroy(struct wd_pop3_server **server);

/* The server as a wd-server service (wd-service.h). */
extern const struct wd_service wd_pop3_service;

#endif
