#ifndef WD_LMTP_SESSION_H
#define WD_LMTP_SESSION_H

/* One LMTP connection: the engine between the connection layer
 * (wd-conn.h) and the command handlers (lmtp-commands.h).
 *
 *   conn --on_input--> parser (lmtp-parser.h) --line--> command --> reply
 *                              \--message bytes--> DATA's spool
 *
 * Commands run one at a time. The parser reads the next command only when
 * the previous one is done, so pipelined commands simply wait in the
 * connection's input buffer, whose limit then stops reading from the
 * socket: pipelining in order and backpressure without a queue. Replies
 * of pipelined commands are flushed together, once no complete input is
 * left or a job is running with nothing else to do (RFC 2920 §3.1).
 *
 * A transaction (MAIL, RCPTs, DATA) lives in session->txn; every accepted
 * recipient holds the wd_deliver_rcpt that DATA hands to the delivery.
 *
 * Limits: command line 512 bytes, message lmtp.maxMB (the rest of a
 * message past it is read and dropped, up to 4x the limit), message lines
 * 1 MiB, lmtp.maxRecipients accepted recipients per transaction,
 * lmtp.maxErrors protocol errors per session, lmtp.timeout of inactivity,
 * lmtp.dataTimeout for one message; a running job is not inactivity.
 *
 * Lifetime: the session holds a reference on its connection; a command
 * with a pending job holds a reference on the session. When the connection
 * closes the session is marked closed and freed when the last reference
 * goes, never inside one of its own callbacks. A delivery that was running
 * finishes (the messages are stored) and is logged. */

#include "lmtp-commands.h"
#include "lmtp-server.h"

#include <stdbool.h>
#include <stdint.h>

struct wd_conn;
struct wd_listener;
struct wd_tls_context;
struct wd_spool;
struct wd_deliver_rcpt;
struct wd_deliver_reply;

struct wd_lmtp_server {
	struct wd_server_deps deps;
	struct wd_lmtp_settings set;
	struct wd_deliver *deliver;
	struct wd_tls_context *tls;
	struct wd_listener *listener;
	struct wd_lmtp_session *sessions; /* doubly linked */
	unsigned session_count;
	bool shutting_down;
};

/* An accepted recipient. */
struct wd_lmtp_txn_rcpt {
	struct wd_deliver_rcpt *rcpt;
	char *address;
};

/* MAIL ... DATA. */
struct wd_lmtp_txn {
	char id[25];                  /* ObjectId hex: logs and the delivery's meta */
	struct wd_lmtp_mail mail;     /* reverse-path and parameters */
	struct wd_lmtp_txn_rcpt *rcpts;
	size_t rcpt_count, rcpt_cap;
	unsigned refused;             /* RCPTs refused (for the log) */
	struct wd_spool *spool;       /* DATA's message */
	bool spool_failed;
};

struct wd_lmtp_session {
	struct wd_lmtp_server *server;
	struct wd_lmtp_session *prev, *next;
	struct wd_conn *conn;
	struct wd_lmtp_parser *parser;
	int refcount;
	char id[32];                  /* session id for logs */
	char peer_ip[64];             /* copied: jobs may not read the connection */

	char *lhlo;                   /* LHLO's domain; NULL before LHLO */
	struct wd_lmtp_txn *txn;      /* NULL outside a transaction */
	unsigned errors;              /* protocol errors (500/501/502/503/555) */
	unsigned transactions;

	struct wd_lmtp_cmd *current;  /* the command running */
	bool reading_data;            /* the current DATA reads the message */
	uint64_t data_deadline;       /* loop time (ms) DATA must end by; 0 = none */
	bool waiting_output;
	bool running;                 /* inside the run loop (no re-entry) */
	bool closed;                  /* the connection is closed or closing */
	bool close_after;             /* close once the current command is done */
	bool delivering;              /* DATA's delivery job runs: it owns the transaction */
};

/* Create a session for an accepted connection (the listener's callback). */
void wd__lmtp_session_accept(struct wd_conn *conn, void *context);
/* Say `code status text` and close (shutdown, timeouts, too many errors). */
void wd_lmtp_session_close(struct wd_lmtp_session *session, unsigned code, const char *status,
			   const char *text);

void wd_lmtp_session_ref(struct wd_lmtp_session *session);
void wd_lmtp_session_unref(struct wd_lmtp_session **session);

/* ---- replies (RFC 5321 §4.2, enhanced codes RFC 2034 after LHLO) ---- */

/* The last (or only) line of a reply: "<code> <status> <text>". Control
   characters in the text become spaces. Protocol errors (500, 501, 502,
   503, 555) are counted against lmtp.maxErrors. */
void wd_lmtp_reply(struct wd_lmtp_session *session, unsigned code, const char *status,
		   const char *text);
void wd_lmtp_replyf(struct wd_lmtp_session *session, unsigned code, const char *status,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A line of a multi-line reply: "<code>-<text>" (no status code). */
void wd_lmtp_reply_line(struct wd_lmtp_session *session, unsigned code, const char *text);
/* A refusal from the command grammar. */
void wd_lmtp_reply_error(struct wd_lmtp_session *session, const struct wd_lmtp_error *error);
/* A reply of the delivery pipeline, as it is; one that is not a reply
   (no code, a code outside 200..599) becomes 451 4.3.0. */
void wd_lmtp_reply_deliver(struct wd_lmtp_session *session, const struct wd_deliver_reply *reply);

/* ---- the transaction ---- */

/* MAIL: a new transaction (the previous one must be over). NULL when out of
   memory. */
struct wd_lmtp_txn *wd_lmtp_txn_begin(struct wd_lmtp_session *session,
				      const struct wd_lmtp_mail *mail);
/* RCPT accepted: the recipient object moves into the transaction. */
int wd_lmtp_txn_add_rcpt(struct wd_lmtp_txn *txn, struct wd_deliver_rcpt *rcpt,
			 const char *address);
/* RSET, LHLO, STARTTLS, QUIT or a lost connection: the transaction is
   dropped; one log line when it had recipients. `reason` for that line. */
void wd_lmtp_txn_abort(struct wd_lmtp_session *session, const char *reason);
/* After DATA: frees the transaction (its recipients and spool). */
void wd_lmtp_txn_free(struct wd_lmtp_txn **txn);

#endif
