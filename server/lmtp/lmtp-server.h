#ifndef WD_LMTP_SERVER_H
#define WD_LMTP_SERVER_H

/* The LMTP service of wd-server (RFC 2033): settings read from WildDuck's
 * `lmtp.*` keys, the listener, the delivery pipeline (libwddeliver, one
 * wd_deliver shared by every session of the service) and the sessions of
 * one event loop.
 *
 * Like IMAP, one wd_lmtp_server belongs to one libuv loop and gets every
 * outside dependency explicitly (wd-service.h), so more loops can each get
 * their own server on the same port. LMTP is off unless lmtp.enabled is
 * true, and listens on loopback unless lmtp.host says otherwise: it takes
 * mail from a trusted MTA (Postfix, Exim, Haraka) without authentication. */

#include <stdbool.h>
#include <stdint.h>

#include "wd-service.h"

struct wd_lmtp_server;
struct wd_deliver;

struct wd_lmtp_settings {
	bool enabled;              /* lmtp.enabled (false, as WildDuck) */
	const char *host;          /* lmtp.host ("127.0.0.1") */
	unsigned port;             /* lmtp.port (2424; 0 = any, see wd_lmtp_server_port) */
	bool secure;               /* lmtp.secure: implicit TLS (false) */
	/* !lmtp.disableSTARTTLS: offer STARTTLS. WildDuck disables it by
	   default; here the default is "off on loopback, on elsewhere" */
	bool starttls;
	bool proxy;                /* lmtp.proxy: PROXY protocol header first (false) */
	uint64_t max_message;      /* lmtp.maxMB in bytes (25 MiB): SIZE, 552 past it */
	unsigned max_recipients;   /* lmtp.maxRecipients per transaction (400, WildDuck's MAX_RCPT_TO) */
	unsigned max_errors;       /* lmtp.maxErrors: protocol errors before 421 (20) */
	unsigned timeout_ms;       /* lmtp.timeout s: inactivity (300, RFC 5321 §4.5.3.2.7) */
	unsigned data_timeout_ms;  /* lmtp.dataTimeout s: one whole message (300) */
	char name[256];            /* lmtp.name (false/unset: the host name), in 220 and LHLO */
	const char *banner;        /* lmtp.banner ("Welcome to WildDuck Mail Server") */
};

/* Reads the settings. WD_ERROR with a message (owned by the config or
   static) when a value has the wrong type or is out of range. */
int wd_lmtp_settings_read(const struct wd_config *config, struct wd_lmtp_settings *set_r,
			  const char **error_r);

/* Creates the server and its listener (TLS context from lmtp.tls.* / tls.*
   when secure or starttls). `deliver` is the delivery pipeline the server
   takes over (destroyed with it, also on failure). NULL with a malloc'd
   *error_r. */
struct wd_lmtp_server *wd_lmtp_server_create(const struct wd_server_deps *deps,
					     const struct wd_lmtp_settings *set,
					     struct wd_deliver *deliver, char **error_r);
unsigned wd_lmtp_server_port(const struct wd_lmtp_server *server);
/* "lmtp listening on HOST:PORT (...)" for the startup log. */
void wd_lmtp_server_describe(const struct wd_lmtp_server *server, char *buf, size_t size);
/* Stop accepting; idle sessions get 421 and are closed, a session in the
   middle of a transaction (a check or a delivery running, a message being
   read) finishes it first. Run the loop until the count is 0. */
void wd_lmtp_server_shutdown(struct wd_lmtp_server *server);
unsigned wd_lmtp_server_session_count(const struct wd_lmtp_server *server);
void wd_lmtp_server_destroy(struct wd_lmtp_server **server);

/* The server as a wd-server service (wd-service.h, lmtp-service.c): with
   the real pipeline and its outbound queue. */
extern const struct wd_service wd_lmtp_service;

#endif
