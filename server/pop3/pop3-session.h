#ifndef WD_POP3_SESSION_H
#define WD_POP3_SESSION_H

/* One POP3 connection: the engine between the connection layer
 * (wd-conn.h) and the command handlers (pop3-commands.h), built like the
 * IMAP engine (imap-session.h).
 *
 *   conn --on_input--> parser --COMMAND--> queue --> run loop
 *        <--write------ handler steps (one at a time, in order)
 *
 * PIPELINING (RFC 2449 §6.6): input is parsed ahead into a small queue (at
 * most WD_POP3_MAX_QUEUED commands; parse errors are queued as pseudo
 * commands so their -ERR goes out in order). Parsing stops after a BARRIER
 * command (STLS, AUTH, QUIT) until it ran, and while the queue is full;
 * bytes not parsed stay in the connection's input buffer, whose limit then
 * stops reading from the socket. Output above the connection's high
 * watermark parks the running command (WAIT_OUTPUT) and stops parsing until
 * on_drain.
 *
 * States (RFC 1939): AUTHORIZATION until a login succeeded and the maildrop
 * was listed, then TRANSACTION; QUIT there enters UPDATE, applies the
 * changes (\Seen for retrieved messages, deleted ones to Trash) and closes.
 * A session that ends any other way changes nothing.
 *
 * Logins: a failed one is answered after pop3.authFailureDelay ms, and the
 * connection is closed after WD_POP3_MAX_AUTH_FAILURES of them; a client
 * that sends WD_POP3_MAX_BAD_COMMANDS bad commands in a row is dropped.
 *
 * Timeout: pop3.idleTimeout (600 s, never less: RFC 1939 §3) of inactivity
 * in any state; a command waiting for storage is not inactivity, and a
 * response the client is still reading re-arms it each time its output
 * drains.
 *
 * Lifetime: the session holds a reference on its connection; commands with
 * pending jobs hold references on the session. When the connection closes
 * the session is marked closed, queued commands are dropped, and it is
 * freed when the last reference goes, never inside one of its own
 * callbacks. */

#include "pop3-commands.h"
#include "pop3-server.h"
#include "wd-buffer.h"
#include "wd-store-pop3.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#define WD_POP3_MAX_QUEUED 16
#define WD_POP3_MAX_AUTH_FAILURES 3
#define WD_POP3_MAX_BAD_COMMANDS 10

struct wd_conn;
struct wd_tls_context;
struct wd_listener;

/* The server's state; handlers read settings and dependencies here. */
struct wd_pop3_server {
	struct wd_server_deps deps;
	struct wd_pop3_settings set;
	struct wd_tls_context *tls;
	struct wd_listener *listener;       /* pop3.port */
	struct wd_listener *plain_listener; /* pop3.plainPort, NULL when 0 */
	struct wd_pop3_session *sessions;   /* doubly linked */
	unsigned session_count;
	bool shutting_down;
};

/* Per-message session marks, parallel to maildrop.messages. */
enum wd_pop3_mark {
	WD_POP3_MARK_DELETED = 1 << 0,   /* DELE (undone by RSET) */
	WD_POP3_MARK_RETRIEVED = 1 << 1, /* RETR sent it whole */
};

struct wd_pop3_session {
	struct wd_pop3_server *server;
	struct wd_pop3_session *prev, *next;
	struct wd_conn *conn;
	struct wd_pop3_parser *parser;
	int refcount;
	char id[32];              /* session id: logs, journal `ignore` */

	enum wd_pop3_state state;
	bool has_user;
	bson_oid_t user;
	char *username;
	char *user_arg;           /* the USER name waiting for PASS */
	unsigned auth_failures;
	unsigned bad_commands;    /* in a row */

	/* TRANSACTION: the maildrop listed at login and what this session did */
	struct wd_pop3_maildrop maildrop;
	uint8_t *marks;           /* enum wd_pop3_mark bits per message */
	size_t live_count;        /* messages not deleted */
	uint64_t live_size;
	int64_t download_limit;   /* bytes per day (pdw:), 0 = none */

	/* commands */
	struct wd_pop3_cmd *queue_head, *queue_tail;
	unsigned queued;
	struct wd_pop3_cmd *current;
	bool waiting_output;
	bool barrier;             /* a BARRIER command is queued or running */
	bool reading_line;        /* the current command asked for a raw line */
	bool running;             /* inside the run loop (no re-entry) */
	bool closed;              /* the connection is closed or closing */
	bool close_after;         /* close once the current output is sent */
	bool delaying;            /* the connection timer runs a command delay */

	struct wd_buffer out;     /* response being built (reused) */
};

/* Create a session for an accepted connection (the listeners' callback). */
void wd__pop3_session_accept(struct wd_conn *conn, void *context);
/* -ERR text and close (server shutdown). */
void wd_pop3_session_abort(struct wd_pop3_session *session, const char *text);

void wd_pop3_session_ref(struct wd_pop3_session *session);
void wd_pop3_session_unref(struct wd_pop3_session **session);

/* session->out is a scratch buffer for building responses; send sends its
   contents to the connection and empties it. */
int wd_pop3_session_send(struct wd_pop3_session *session);
bool wd_pop3_session_output_full(const struct wd_pop3_session *session);
/* Whether USER/PASS/AUTH may be used on this connection now (TLS, or
   pop3.insecureAuth). */
bool wd_pop3_session_auth_allowed(const struct wd_pop3_session *session);
/* Whether STLS is offered now (a plain connection with a TLS context). */
bool wd_pop3_session_stls_allowed(const struct wd_pop3_session *session);
/* Enter TRANSACTION with a listed maildrop (taken over). */
int wd_pop3_session_login(struct wd_pop3_session *session, const bson_oid_t *user,
			  const char *username, struct wd_pop3_maildrop *maildrop);

#endif
