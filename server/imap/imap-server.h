#ifndef WD_IMAP_SERVER_H
#define WD_IMAP_SERVER_H

/* The IMAP service of wd-server: settings read from WildDuck's `imap.*`
 * keys, the listener(s), and the sessions of one event loop.
 *
 * One wd_imap_server belongs to one libuv loop. Everything the sessions
 * need from outside (store, auth, worker pool, the loop's completion queue)
 * is passed in explicitly, so more loops can each get their own server on
 * the same port later (listeners use SO_REUSEPORT). The per-user connection
 * limit (imap.maxConnections) holds across instances (imap-lease.h). */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "wd-service.h"
#include "wd-tls.h"

struct wd_config;
struct wd_store;
struct wd_auth;
struct wd_worker_pool;
struct wd_completion_queue;
struct wd_imap_server;
struct wd_listener_ip_limit;

struct wd_imap_settings {
	const char *host;           /* imap.host ("0.0.0.0") */
	unsigned port;              /* imap.port (9993; 0 = any, see wd_imap_server_port) */
	bool secure;                /* imap.secure: implicit TLS (true) */
	bool starttls;              /* imap.starttls: offer STARTTLS when not secure (true) */
	bool proxy;                 /* imap.proxy: PROXY protocol header first (false) */
	/* imap.insecureAuth: LOGIN/AUTHENTICATE without TLS (wd-tls.h: never by
	   default, "loopback" peers only, true/"any" every peer); where refused the
	   capability list says LOGINDISABLED */
	enum wd_plaintext_auth insecure_auth;
	uint64_t max_message;       /* imap.maxMB in bytes: APPENDLIMIT (25 MiB) */
	unsigned max_connections;   /* imap.maxConnections per user (15) */
	/* imap.maxConnectionsPerIp (500; 0 = no limit): open connections per
	   client address, all loops together; more get "* BYE" at connect */
	unsigned max_connections_per_ip;
	struct wd_listener_ip_limit *ip_limit; /* its count, shared by the loops' servers */
	/* imap.writeTimeout s (300): output the client does not read closes
	   the connection after this (wd-conn.h, write_timeout_ms) */
	unsigned write_timeout_ms;
	bool compression;           /* imap.enableCompression (false) */
	int deflate_window_bits;    /* imap.compression.windowBits (15) */
	int deflate_mem_level;      /* imap.compression.memLevel (8) */
	unsigned unauth_timeout_ms; /* imap.unauthenticatedTimeout s (60) */
	unsigned idle_timeout_ms;   /* imap.idleTimeout s (1800, at least 1800) */
	bool literal_plus;          /* imap.literalPlus: LITERAL+ instead of LITERAL- (true) */
	const char *greeting;       /* imap.name ("WildDuck-C") */
	/* imap.syncPollSeconds (30): how often an IDLE session reads changes
	   without a wd_events notification (all it has while Redis is down) */
	unsigned sync_poll_ms;
	/* imap.fullSyncSeconds (3600): a selected mailbox is re-read whole at
	   least this often, besides after a journal gap or a Redis outage */
	unsigned full_sync_ms;
	/* imap.quotaFromUser: GETQUOTA reads the user (always true for now) */
};

/* Reads the settings; strings point into the config. WD_ERROR with a message
   (owned by the config or static) when a value has the wrong type. */
int wd_imap_settings_read(const struct wd_config *config, struct wd_imap_settings *set_r,
			  const char **error_r);

/* Creates the server and its listener (TLS context from imap.tls.* / tls.*
   when secure or starttls). NULL with a malloc'd *error_r. */
struct wd_imap_server *wd_imap_server_create(const struct wd_server_deps *deps,
					     const struct wd_imap_settings *set, char **error_r);
unsigned wd_imap_server_port(const struct wd_imap_server *server);
/* Stop accepting, say BYE to every session and close them; pending jobs
   finish normally. Run the loop until wd_imap_server_session_count() is 0. */
void wd_imap_server_shutdown(struct wd_imap_server *server);
unsigned wd_imap_server_session_count(const struct wd_imap_server *server);
void wd_imap_server_destroy(struct wd_imap_server **server);

/* The server as a wd-server service (wd-service.h). */
extern const struct wd_service wd_imap_service;

#endif
