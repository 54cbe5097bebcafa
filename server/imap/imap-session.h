#ifndef WD_IMAP_SESSION_H
#define WD_IMAP_SESSION_H

/* One IMAP connection: the engine that sits between the connection layer
 * (wd-conn.h) and the command handlers (imap-commands.h).
 *
 *   conn --on_input--> parser (libwdimap) --COMMAND--> queue --> run loop
 *        <--write------ writer <---------------- handler steps
 *
 * Input is parsed ahead into a small queue (at most WD_IMAP_MAX_QUEUED
 * commands, in order; parse errors are queued as pseudo commands so their
 * BAD goes out in order too). Commands run one at a time, in order (RFC
 * 3501 §5.5 allows overlap; strict order is always correct). Parsing stops
 * after a BARRIER command until it finished, and while the queue is full;
 * bytes not parsed stay in the connection's input buffer, whose limit then
 * stops reading from the socket: backpressure without growing buffers.
 *
 * Output goes to the connection; above its high watermark the running
 * command parks in WAIT_OUTPUT, no further command starts and input is not
 * parsed until on_drain.
 *
 * Timeouts: 60 s (imap.unauthenticatedTimeout) before login, 30 min
 * (imap.idleTimeout, never less) after; each command line re-arms them.
 *
 * Lifetime: the session holds a reference on its connection; commands with
 * pending jobs hold references on the session. When the connection closes
 * the session is marked closed, queued commands are dropped, and it is freed
 * when the last reference goes, never inside one of its own callbacks. */

#include "imap-commands.h"
#include "imap-server.h"
#include "imap-parser.h"
#include "imap-sync.h"
#include "wd-buffer.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#define WD_IMAP_MAX_QUEUED 8

struct wd_conn;
struct wd_tls_context;
struct wd_listener;
struct wd_imap_view;
struct wd_notify;
struct wd__imap_idle;

/* Per-user connection count (imap.maxConnections), chained in buckets. */
struct wd__imap_user_count {
	struct wd__imap_user_count *next;
	bson_oid_t user;
	unsigned count;
};

/* The server's state; the handlers read settings and dependencies here. */
struct wd_imap_server {
	struct wd_server_deps deps;
	struct wd_imap_settings set;
	struct wd_tls_context *tls;
	struct wd_listener *listener;
	struct wd_imap_session *sessions; /* doubly linked */
	unsigned session_count;
	bool shutting_down;
	/* per-user connection counts (imap.maxConnections) */
	struct wd__imap_user_count **user_counts;
	size_t user_count_buckets;
	/* wd_events subscriber (server/notify), NULL without Redis settings */
	struct wd_notify *notify;
	/* per-user connection leases across instances (imap-lease.h) */
	char instance_id[17];
	uv_timer_t lease_timer;
	bool lease_timer_started;
	/* when selected mailboxes re-read the whole mailbox (imap-sync.h) */
	struct wd_imap_sync_policy sync_policy;
};

/* The selected mailbox (SELECTED state). */
struct wd_imap_selected {
	bson_oid_t mailbox;
	char *path;              /* UTF-8, as stored */
	bool read_only;          /* EXAMINE */
	struct wd_imap_view *view;
	uint32_t uid_validity;
	uint32_t uid_next;
	uint64_t highest_modseq;
	/* what the change sync (imap-sync.h) keeps; owned by it */
	void *sync;
	/* SEARCHRES (RFC 5182): the saved result "$" as UIDs (malloc'd) */
	struct wd_imap_seq_range *saved;
	size_t saved_count;
};

struct wd_imap_session {
	struct wd_imap_server *server;
	struct wd_imap_session *prev, *next;
	struct wd_conn *conn;
	struct wd_imap_parser *parser;
	struct wd_imap_parser_limits limits;
	int refcount;
	char id[32];             /* session id: logs, journal `ignore` */

	enum wd_imap_state state;
	bool has_user;
	bson_oid_t user;
	char *username;

	/* ENABLE (RFC 5161) */
	bool condstore;          /* also set by a CONDSTORE-using command */
	bool qresync;
	bool utf8_accept;

	struct wd_imap_selected *selected;

	/* commands */
	struct wd_imap_cmd *queue_head, *queue_tail;
	unsigned queued;
	struct wd_imap_cmd *current;
	bool waiting_output;
	bool barrier;            /* a BARRIER command is queued or running */
	bool reading_line;       /* the current command asked for a raw line */
	bool running;            /* inside the run loop (no re-entry) */
	bool closed;             /* the connection is closed or closing */
	bool close_after;        /* close once the current output is sent */
	bool counted;            /* holds a per-process connection slot */
	bool leased;             /* holds a connection lease (imap-lease.h) */

	struct wd_buffer out;    /* response being built (reused) */

	/* APPEND literals streamed while the command is parsed (wd-spool.h):
	   the one arriving, and those complete for the command being read;
	   handed to the command when it is complete */
	struct wd_spool *spool_current;
	struct wd_spool **spools;
	size_t spool_count;
	bool spool_failed;

	/* IDLE in progress (cmd-idle.c) */
	struct wd__imap_idle *idle;
};

/* A wd_events notification named this session's user (cmd-idle.c): an
   IDLE reads the journal now. */
void wd_imap_idle_wake(struct wd_imap_session *session);

/* Create a session for an accepted connection (the listener's callback). */
void wd__imap_session_accept(struct wd_conn *conn, void *context);
/* BYE and close (server shutdown, timeouts). */
void wd_imap_session_bye(struct wd_imap_session *session, const char *text);

void wd_imap_session_ref(struct wd_imap_session *session);
void wd_imap_session_unref(struct wd_imap_session **session);

/* ---- output ---- */

/* session->out is a scratch buffer for building responses; send sends its
   contents to the connection and empties it. */
int wd_imap_session_send(struct wd_imap_session *session);
/* Untagged line "* <text>\r\n" (printf). */
int wd_imap_session_untagged(struct wd_imap_session *session, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Tagged (or untagged with tag NULL) status line, sanitised. */
int wd_imap_session_status(struct wd_imap_session *session, const char *tag, const char *status,
			   const char *code, const char *text);
/* The command's tagged response and DONE. */
enum wd_imap_cmd_result wd_imap_cmd_reply(struct wd_imap_cmd *cmd, const char *status,
					  const char *code, const char *text);
enum wd_imap_cmd_result wd_imap_cmd_replyf(struct wd_imap_cmd *cmd, const char *status,
					   const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
bool wd_imap_session_output_full(const struct wd_imap_session *session);

/* ---- state ---- */

/* Apply a successful login: state AUTH, user, and the connection limit:
   `leased` when the login job got a lease (imap-lease.h), otherwise the
   session is counted in this process against `limit` (0 = none; NO with
   [LIMIT] when over it: returns WD_ERROR and nothing changed). */
int wd_imap_session_login(struct wd_imap_session *session, const bson_oid_t *user,
			  const char *username, unsigned limit, bool leased);
/* Frees a selected-mailbox state (cmd-select.c). */
void wd__imap_selected_free(struct wd_imap_selected *selected);
/* Leave the selected state (CLOSE, UNSELECT, a new SELECT). */
void wd_imap_session_unselect(struct wd_imap_session *session);
/* Parser limits after a change of state (UTF8=ACCEPT). */
void wd_imap_session_update_limits(struct wd_imap_session *session);
/* Whether logins may happen on this connection now (TLS or insecureAuth). */
bool wd_imap_session_auth_allowed(const struct wd_imap_session *session);
/* Whether a capability of the post-login list is implemented (ENABLE). */
bool wd_imap_capability_enabled(const char *name);
/* Write the capability list (without "* CAPABILITY " and CRLF) to session->out. */
int wd_imap_session_capabilities(struct wd_imap_session *session);

#endif
