#ifndef SMTP_CLIENT_H
#define SMTP_CLIENT_H

/* The sender's SMTP client, in three layers:
 *
 *   smtp-reply.c   sans-I/O parser of server replies (multi-line, bounded);
 *   smtp-data.c    sans-I/O DATA encoder (line ends to CRLF, dot-stuffing);
 *   smtp-client.c  one blocking connection to the relay: connect with a
 *                  timeout, implicit TLS or STARTTLS (OpenSSL), EHLO/HELO,
 *                  AUTH PLAIN, then transactions MAIL FROM / RCPT TO / DATA,
 *                  each step bounded by a timeout, an overall deadline and
 *                  a descriptor that aborts at once (stop).
 *
 * Used only by the sender thread (sender.c); private to libwdoutbound. */

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wd_buffer;

/* ---- replies (smtp-reply.c) ---- */

#define WD_SMTP_LINE_MAX 2048      /* one reply line (RFC 5321 says 512) */
#define WD_SMTP_REPLY_LINES_MAX 128
#define WD_SMTP_REPLY_TEXT_MAX 4096 /* text kept per reply; the rest is dropped */

struct wd_smtp_reply {
	unsigned code;
	unsigned lines;
	size_t text_len;
	char text[WD_SMTP_REPLY_TEXT_MAX]; /* the lines' texts joined by '\n', NUL-terminated */
};

struct wd_smtp_reply_parser {
	struct wd_smtp_reply reply;
	char line[WD_SMTP_LINE_MAX + 1];
	size_t line_len;
};

void wd_smtp_reply_parser_init(struct wd_smtp_reply_parser *parser);
/* Feed bytes; *consumed_r says how many were used. WD_OK: parser->reply
   holds a complete reply (until wd_smtp_reply_parser_init() starts the
   next one); WD_AGAIN: more bytes needed; WD_ERROR: not an SMTP reply (*error_r
   is static text). A line may end in CRLF or LF. */
int wd_smtp_reply_feed(struct wd_smtp_reply_parser *parser, const uint8_t *data, size_t len,
		       size_t *consumed_r, const char **error_r);

/* ---- DATA (smtp-data.c) ---- */

struct wd_smtp_data {
	bool line_start;
	bool pending_cr;
	bool eight_bit; /* some byte above 0x7f went through */
	uint64_t bytes;  /* bytes written to `out` */
};

void wd_smtp_data_init(struct wd_smtp_data *data);
/* Message bytes → DATA bytes appended to out: every CRLF, bare LF and bare
   CR becomes CRLF (no "\n.\n" can end the data early), and a '.' at the
   start of a line is doubled. */
int wd_smtp_data_encode(struct wd_smtp_data *data, const uint8_t *in, size_t len,
			struct wd_buffer *out);
/* The end: CRLF if the message did not end with a line end, then ".\r\n". */
int wd_smtp_data_finish(struct wd_smtp_data *data, struct wd_buffer *out);

/* ---- the connection (smtp-client.c) ---- */

struct wd_smtp_options {
	const char *host;
	unsigned port;
	bool secure;          /* implicit TLS */
	bool starttls;        /* STARTTLS required */
	const char *user;     /* AUTH PLAIN when not NULL */
	const char *pass;
	bool insecure_auth;   /* AUTH also without TLS */
	SSL_CTX *tls;         /* client context (verification set up by the caller) */
	bool verify;          /* check the certificate's name against host */
	const char *helo;     /* our name */
	int64_t connect_timeout_ms;
	int64_t timeout_ms;   /* each reply, each write */
	int64_t data_timeout_ms;
	int abort_fd;         /* readable = abort now (stop); -1 for none */
};

enum wd_smtp_status {
	WD_SMTP_OK,
	WD_SMTP_TEMPORARY,  /* 4xx, network trouble, timeouts, relay refusing us */
	WD_SMTP_PERMANENT,  /* 5xx to MAIL FROM, RCPT TO or the message */
	WD_SMTP_ABORTED,    /* abort_fd became readable */
};

struct wd_smtp_result {
	enum wd_smtp_status status;
	unsigned code;        /* the server's reply code, 0 when none */
	const char *stage;    /* "connect", "greeting", "EHLO", "STARTTLS", "AUTH",
				 "MAIL FROM", "RCPT TO", "DATA", "message" */
	char text[512];       /* one line: the reply ("451 4.3.0 ...") or what failed */
};

struct wd_smtp_client;

/* Where the message comes from: read up to len bytes; 0 at the end, -1 on
   error (with a static text in *error_r). */
typedef ssize_t wd_smtp_read_fn(void *context, uint8_t *buf, size_t len, const char **error_r);

struct wd_smtp_message {
	const char *from;       /* "" for <> */
	const char *to;
	uint64_t size;          /* announced with SIZE= */
	bool utf8_headers;      /* 8-bit header bytes: ask for SMTPUTF8 when offered */
	wd_smtp_read_fn *read;
	void *context;
};

/* Connects, greets, TLS and AUTH as configured. NULL with *result_r set
   (never WD_SMTP_PERMANENT: a relay refusing us is the relay's problem, so
   the message waits). deadline_ms: monotonic time after which everything
   fails (0: none). */
struct wd_smtp_client *wd_smtp_connect(const struct wd_smtp_options *options, int64_t deadline_ms,
				       struct wd_smtp_result *result_r);
/* One transaction. After it the client is usable for another one unless
   wd_smtp_usable() says otherwise. */
void wd_smtp_send(struct wd_smtp_client *client, const struct wd_smtp_message *message,
		  int64_t deadline_ms, struct wd_smtp_result *result_r);
bool wd_smtp_usable(const struct wd_smtp_client *client);
/* QUIT (briefly waited for) and close; NULL is fine. */
void wd_smtp_quit(struct wd_smtp_client **client);
/* Close without QUIT. */
void wd_smtp_close(struct wd_smtp_client **client);

#endif
