/* One blocking SMTP connection to the relay (smtp-client.h), for the
 * sender thread.
 *
 * Every wait is a poll() on the socket and on abort_fd with a timeout: the
 * step's own (connect, each reply, each write, the reply after the final
 * dot) and the caller's overall deadline, whichever comes first. So a dead
 * or silent relay costs at most one timeout, and stop (abort_fd) ends any
 * wait at once. The socket is non-blocking; TLS runs over it with
 * SSL_ERROR_WANT_READ/WRITE turned into the same waits.
 *
 * Input is bounded: replies go through the sans-I/O parser (line and line
 * count limits) from a 64 KiB buffer. Nothing the server sends is echoed
 * into a command. Addresses reach MAIL FROM / RCPT TO only when they hold
 * no control characters, spaces or angle brackets (checked again here:
 * queue entries may come from other writers).
 *
 * Classification: anything that fails before MAIL FROM (connect, greeting,
 * EHLO, STARTTLS, AUTH) is temporary, since it says nothing about the
 * message; 4xx replies are temporary and 5xx permanent for MAIL FROM,
 * RCPT TO, DATA and the message; timeouts and broken connections are
 * temporary. */
#include "smtp-client.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-str.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOG "outbound"
#define IN_LIMIT (64 * 1024)
#define CHUNK (64 * 1024)
#define QUIT_TIMEOUT_MS 2000

struct wd_smtp_client {
	const struct wd_smtp_options *opt;
	int fd;
	SSL *ssl;
	bool broken;     /* state unknown: never reuse */
	struct wd_buffer in;
	struct wd_smtp_reply_parser parser;
	int64_t deadline_ms;
	/* EHLO capabilities */
	bool esmtp, cap_starttls, cap_8bitmime, cap_smtputf8, cap_size, cap_auth_plain;
	uint64_t size_limit;
};

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_result(struct wd_smtp_result *r, enum wd_smtp_status status, unsigned code,
		       const char *stage, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_result(struct wd_smtp_result *r, enum wd_smtp_status status, unsigned code,
		       const char *stage, const char *fmt, ...)
{
	r->status = status;
	r->code = code;
	r->stage = stage;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* The reply as one log-friendly line: "451 text text" */
static void reply_result(struct wd_smtp_result *r, enum wd_smtp_status status, const char *stage,
			 const struct wd_smtp_reply *reply)
{
	set_result(r, status, reply->code, stage, "%u %s", reply->code, reply->text);
	for (char *p = r->text; *p != '\0'; p++) {
		if (*p == '\n')
			*p = ' ';
	}
}

static void fail(struct wd_smtp_client *c, struct wd_smtp_result *r, const char *stage,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(struct wd_smtp_client *c, struct wd_smtp_result *r, const char *stage,
		 const char *fmt, ...)
{
	c->broken = true;
	r->status = WD_SMTP_TEMPORARY;
	r->code = 0;
	r->stage = stage;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

static const char *tls_error_text(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_get_error();
	if (e == 0)
		return "TLS failure";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* ---- waiting ---- */

static bool aborted(const struct wd_smtp_client *c)
{
	if (c->opt->abort_fd < 0)
		return false;
	struct pollfd p = { .fd = c->opt->abort_fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

/* Wait for `events` on the socket until `until` (monotonic ms) or the
   overall deadline. WD_OK, or WD_ERROR with the result set. */
static int wait_io(struct wd_smtp_client *c, short events, int64_t until, const char *stage,
		   struct wd_smtp_result *r)
{
	if (c->deadline_ms > 0 && c->deadline_ms < until)
		until = c->deadline_ms;
	for (;;) {
		int64_t left = until - monotonic_ms();
		if (left <= 0) {
			fail(c, r, stage, "timed out");
			return WD_ERROR;
		}
		struct pollfd p[2] = { { .fd = c->fd, .events = events },
				       { .fd = c->opt->abort_fd, .events = POLLIN } };
		int n = poll(p, c->opt->abort_fd >= 0 ? 2 : 1, left > 1000000 ? 1000000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(c, r, stage, "poll: %s", strerror(errno));
			return WD_ERROR;
		}
		if (c->opt->abort_fd >= 0 && (p[1].revents & POLLIN)) {
			fail(c, r, stage, "aborted (stopping)");
			r->status = WD_SMTP_ABORTED;
			return WD_ERROR;
		}
		if (p[0].revents != 0)
			return WD_OK; /* ready, or an error the next call reports */
	}
}

/* ---- bytes ---- */

static ssize_t io_read(struct wd_smtp_client *c, uint8_t *buf, size_t len, int64_t until,
		       const char *stage, struct wd_smtp_result *r)
{
	for (;;) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			int n = SSL_read(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
			if (n > 0)
				return n;
			int err = SSL_get_error(c->ssl, n);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				if (wait_io(c, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until, stage,
					    r) < 0)
					return -1;
				continue;
			}
			if (err == SSL_ERROR_ZERO_RETURN)
				fail(c, r, stage, "connection closed by the relay");
			else
				fail(c, r, stage, "TLS read: %s", tls_error_text());
			return -1;
		}
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n > 0)
			return n;
		if (n == 0) {
			fail(c, r, stage, "connection closed by the relay");
			return -1;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (wait_io(c, POLLIN, until, stage, r) < 0)
				return -1;
			continue;
		}
		fail(c, r, stage, "read: %s", strerror(errno));
		return -1;
	}
}

static int write_all(struct wd_smtp_client *c, const uint8_t *data, size_t len, const char *stage,
		     struct wd_smtp_result *r)
{
	size_t done = 0;
	int64_t until = monotonic_ms() + c->opt->timeout_ms;
	while (done < len) {
		size_t want = len - done;
		if (c->ssl != NULL) {
			ERR_clear_error();
			int n = SSL_write(c->ssl, data + done, (int)(want > INT32_MAX ? INT32_MAX : want));
			if (n > 0) {
				done += (size_t)n;
				until = monotonic_ms() + c->opt->timeout_ms;
				continue;
			}
			int err = SSL_get_error(c->ssl, n);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				if (wait_io(c, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until, stage,
					    r) < 0)
					return WD_ERROR;
				continue;
			}
			fail(c, r, stage, "TLS write: %s", tls_error_text());
			return WD_ERROR;
		}
		ssize_t n = send(c->fd, data + done, want, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			until = monotonic_ms() + c->opt->timeout_ms;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (wait_io(c, POLLOUT, until, stage, r) < 0)
				return WD_ERROR;
			continue;
		}
		fail(c, r, stage, "write: %s", n < 0 ? strerror(errno) : "nothing written");
		return WD_ERROR;
	}
	return WD_OK;
}

static int command(struct wd_smtp_client *c, const char *stage, struct wd_smtp_result *r,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int command(struct wd_smtp_client *c, const char *stage, struct wd_smtp_result *r,
		   const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		fail(c, r, stage, "command too long");
		return WD_ERROR;
	}
	if (strncmp(line, "AUTH ", 5) == 0)
		wd_debug(LOG, "C: AUTH PLAIN ****");
	else
		wd_debug(LOG, "C: %s", line);
	memcpy(line + n, "\r\n", 2);
	return write_all(c, (const uint8_t *)line, (size_t)n + 2, stage, r);
}

/* The next reply, within timeout_ms. */
static int read_reply(struct wd_smtp_client *c, int64_t timeout_ms, const char *stage,
		      struct wd_smtp_result *r)
{
	int64_t until = monotonic_ms() + timeout_ms;
	wd_smtp_reply_parser_init(&c->parser);
	for (;;) {
		if (c->in.len > 0) {
			size_t used;
			const char *error;
			int ret = wd_smtp_reply_feed(&c->parser, wd_buffer_bytes(&c->in), c->in.len,
						     &used, &error);
			wd_buffer_consume(&c->in, used);
			if (ret == WD_OK) {
				wd_debug(LOG, "S: %u %s", c->parser.reply.code, c->parser.reply.text);
				return WD_OK;
			}
			if (ret == WD_ERROR) {
				fail(c, r, stage, "bad reply from the relay: %s", error);
				return WD_ERROR;
			}
		}
		uint8_t *room = wd_buffer_reserve(&c->in, 4096);
		if (room == NULL) {
			fail(c, r, stage, "reply too large");
			return WD_ERROR;
		}
		ssize_t n = io_read(c, room, wd_buffer_tail_room(&c->in), until, stage, r);
		if (n < 0)
			return WD_ERROR;
		wd_buffer_commit(&c->in, (size_t)n);
	}
}

/* ---- connection set-up ---- */

static int tcp_connect(struct wd_smtp_client *c, struct wd_smtp_result *r)
{
	const struct wd_smtp_options *o = c->opt;
	char port[8];
	snprintf(port, sizeof(port), "%u", o->port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *list = NULL;
	int gai = getaddrinfo(o->host, port, &hints, &list);
	if (gai != 0) {
		fail(c, r, "connect", "%s: %s", o->host, gai_strerror(gai));
		return WD_ERROR;
	}
	char last[256] = "no address";
	for (struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(last, sizeof(last), "socket: %s", strerror(errno));
			continue;
		}
		c->fd = fd;
		int err = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			err = errno;
			if (err == EINPROGRESS) {
				struct wd_smtp_result wr;
				if (wait_io(c, POLLOUT, monotonic_ms() + o->connect_timeout_ms, "connect",
					    &wr) < 0) {
					if (wr.status == WD_SMTP_ABORTED) {
						*r = wr;
						freeaddrinfo(list);
						return WD_ERROR;
					}
					err = ETIMEDOUT;
				} else {
					socklen_t len = sizeof(err);
					if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
						err = errno;
				}
			}
		}
		if (err == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			freeaddrinfo(list);
			c->broken = false;
			return WD_OK;
		}
		snprintf(last, sizeof(last), "%s", strerror(err));
		close(fd);
		c->fd = -1;
	}
	freeaddrinfo(list);
	fail(c, r, "connect", "%s:%u: %s", o->host, o->port, last);
	return WD_ERROR;
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int tls_start(struct wd_smtp_client *c, struct wd_smtp_result *r)
{
	const struct wd_smtp_options *o = c->opt;
	if (o->tls == NULL) {
		fail(c, r, "STARTTLS", "no TLS context");
		return WD_ERROR;
	}
	c->ssl = SSL_new(o->tls);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		fail(c, r, "STARTTLS", "TLS: %s", tls_error_text());
		return WD_ERROR;
	}
	bool ip = is_ip_literal(o->host);
	if (!ip)
		SSL_set_tlsext_host_name(c->ssl, o->host);
	if (o->verify) {
		if (ip)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), o->host);
		else
			SSL_set1_host(c->ssl, o->host);
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	}
	int64_t until = monotonic_ms() + o->timeout_ms;
	for (;;) {
		ERR_clear_error();
		int n = SSL_connect(c->ssl);
		if (n == 1)
			return WD_OK;
		int err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			if (wait_io(c, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, until, "TLS", r) < 0)
				return WD_ERROR;
			continue;
		}
		long verify = SSL_get_verify_result(c->ssl);
		if (verify != X509_V_OK)
			fail(c, r, "TLS", "certificate of %s: %s", o->host,
			     X509_verify_cert_error_string(verify));
		else
			fail(c, r, "TLS", "handshake with %s: %s", o->host, tls_error_text());
		return WD_ERROR;
	}
}

static void parse_capabilities(struct wd_smtp_client *c, const struct wd_smtp_reply *reply)
{
	c->esmtp = true;
	c->cap_starttls = c->cap_8bitmime = c->cap_smtputf8 = c->cap_size = c->cap_auth_plain = false;
	c->size_limit = 0;
	const char *line = reply->text;
	bool first = true;
	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		if (!first) {
			char kw[256];
			snprintf(kw, sizeof(kw), "%.*s", (int)(len < sizeof(kw) ? len : sizeof(kw) - 1),
				 line);
			for (char *p = kw; *p != '\0'; p++)
				*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
			if (strcmp(kw, "STARTTLS") == 0)
				c->cap_starttls = true;
			else if (strcmp(kw, "8BITMIME") == 0)
				c->cap_8bitmime = true;
			else if (strcmp(kw, "SMTPUTF8") == 0)
				c->cap_smtputf8 = true;
			else if (strcmp(kw, "SIZE") == 0 || strncmp(kw, "SIZE ", 5) == 0) {
				c->cap_size = true;
				c->size_limit = kw[4] == ' ' ? strtoull(kw + 5, NULL, 10) : 0;
			} else if (strncmp(kw, "AUTH ", 5) == 0 || strncmp(kw, "AUTH=", 5) == 0) {
				char *save = NULL;
				for (char *tok = strtok_r(kw + 5, " ", &save); tok != NULL;
				     tok = strtok_r(NULL, " ", &save)) {
					if (strcmp(tok, "PLAIN") == 0)
						c->cap_auth_plain = true;
				}
			}
		}
		first = false;
		line = end != NULL ? end + 1 : NULL;
	}
}

static int hello(struct wd_smtp_client *c, struct wd_smtp_result *r)
{
	const struct wd_smtp_options *o = c->opt;
	if (command(c, "EHLO", r, "EHLO %s", o->helo) < 0 ||
	    read_reply(c, o->timeout_ms, "EHLO", r) < 0)
		return WD_ERROR;
	if (c->parser.reply.code == 250) {
		parse_capabilities(c, &c->parser.reply);
		return WD_OK;
	}
	if (c->parser.reply.code / 100 != 5) {
		reply_result(r, WD_SMTP_TEMPORARY, "EHLO", &c->parser.reply);
		c->broken = true;
		return WD_ERROR;
	}
	/* no ESMTP: HELO, no extensions */
	if (command(c, "HELO", r, "HELO %s", o->helo) < 0 ||
	    read_reply(c, o->timeout_ms, "HELO", r) < 0)
		return WD_ERROR;
	if (c->parser.reply.code != 250) {
		reply_result(r, WD_SMTP_TEMPORARY, "HELO", &c->parser.reply);
		c->broken = true;
		return WD_ERROR;
	}
	c->esmtp = false;
	c->cap_starttls = c->cap_8bitmime = c->cap_smtputf8 = c->cap_size = c->cap_auth_plain = false;
	return WD_OK;
}

static int auth_plain(struct wd_smtp_client *c, struct wd_smtp_result *r)
{
	const struct wd_smtp_options *o = c->opt;
	if (c->ssl == NULL && !o->insecure_auth) {
		fail(c, r, "AUTH", "refusing to send the password without TLS "
				   "(sender.relay.insecureAuth)");
		return WD_ERROR;
	}
	if (!c->cap_auth_plain) {
		fail(c, r, "AUTH", "the relay does not offer AUTH PLAIN");
		return WD_ERROR;
	}
	size_t ulen = strlen(o->user), plen = strlen(o->pass != NULL ? o->pass : "");
	uint8_t *plain = malloc(ulen + plen + 2);
	struct wd_buffer b64 = WD_BUFFER_INIT;
	if (plain == NULL) {
		fail(c, r, "AUTH", "out of memory");
		return WD_ERROR;
	}
	plain[0] = '\0';
	memcpy(plain + 1, o->user, ulen);
	plain[1 + ulen] = '\0';
	memcpy(plain + 2 + ulen, o->pass != NULL ? o->pass : "", plen);
	int ret = wd_base64_encode(plain, ulen + plen + 2, 0, &b64);
	OPENSSL_cleanse(plain, ulen + plen + 2);
	free(plain);
	if (ret == 0 && wd_buffer_append(&b64, "", 1) == 0)
		ret = command(c, "AUTH", r, "AUTH PLAIN %s", (const char *)wd_buffer_bytes(&b64));
	else
		fail(c, r, "AUTH", "out of memory");
	if (b64.data != NULL)
		OPENSSL_cleanse(b64.data, b64.cap);
	wd_buffer_release(&b64);
	if (ret < 0 || read_reply(c, o->timeout_ms, "AUTH", r) < 0)
		return WD_ERROR;
	if (c->parser.reply.code != 235) {
		reply_result(r, WD_SMTP_TEMPORARY, "AUTH", &c->parser.reply);
		c->broken = true;
		return WD_ERROR;
	}
	return WD_OK;
}

static int set_up(struct wd_smtp_client *c, struct wd_smtp_result *r)
{
	const struct wd_smtp_options *o = c->opt;
	if (tcp_connect(c, r) < 0)
		return WD_ERROR;
	if (o->secure && tls_start(c, r) < 0)
		return WD_ERROR;
	if (read_reply(c, o->timeout_ms, "greeting", r) < 0)
		return WD_ERROR;
	if (c->parser.reply.code != 220) {
		reply_result(r, WD_SMTP_TEMPORARY, "greeting", &c->parser.reply);
		c->broken = true;
		return WD_ERROR;
	}
	if (hello(c, r) < 0)
		return WD_ERROR;
	if (o->starttls) {
		if (!c->cap_starttls) {
			fail(c, r, "STARTTLS", "the relay does not offer STARTTLS");
			return WD_ERROR;
		}
		if (command(c, "STARTTLS", r, "STARTTLS") < 0 ||
		    read_reply(c, o->timeout_ms, "STARTTLS", r) < 0)
			return WD_ERROR;
		if (c->parser.reply.code != 220) {
			reply_result(r, WD_SMTP_TEMPORARY, "STARTTLS", &c->parser.reply);
			c->broken = true;
			return WD_ERROR;
		}
		if (c->in.len > 0) {
			/* bytes sent before the handshake must not count as protected */
			fail(c, r, "STARTTLS", "the relay sent data after its 220");
			return WD_ERROR;
		}
		if (tls_start(c, r) < 0 || hello(c, r) < 0)
			return WD_ERROR;
	}
	if (o->user != NULL && o->user[0] != '\0' && auth_plain(c, r) < 0)
		return WD_ERROR;
	return WD_OK;
}

struct wd_smtp_client *wd_smtp_connect(const struct wd_smtp_options *options, int64_t deadline_ms,
				       struct wd_smtp_result *result_r)
{
	struct wd_smtp_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		set_result(result_r, WD_SMTP_TEMPORARY, 0, "connect", "out of memory");
		return NULL;
	}
	c->opt = options;
	c->fd = -1;
	c->in.limit = IN_LIMIT;
	c->deadline_ms = deadline_ms;
	set_result(result_r, WD_SMTP_OK, 0, "connect", "connected");
	if (set_up(c, result_r) < 0) {
		wd_smtp_close(&c);
		return NULL;
	}
	set_result(result_r, WD_SMTP_OK, 0, "connect", "connected");
	return c;
}

bool wd_smtp_usable(const struct wd_smtp_client *c)
{
	return c != NULL && !c->broken;
}

static bool has_8bit(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return true;
	}
	return false;
}

static bool command_safe(const char *address)
{
	for (const unsigned char *p = (const unsigned char *)address; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	}
	return strlen(address) <= 512;
}

/* A reply to MAIL FROM, RCPT TO or DATA that is not the expected one:
   4xx temporary, 5xx permanent, anything else a protocol error. Then RSET,
   so that the connection can carry the next message. */
static void refused(struct wd_smtp_client *c, const char *stage, struct wd_smtp_result *r)
{
	const struct wd_smtp_reply *reply = &c->parser.reply;
	unsigned cls = reply->code / 100;
	reply_result(r, cls == 5 ? WD_SMTP_PERMANENT : WD_SMTP_TEMPORARY, stage, reply);
	if (cls != 4 && cls != 5) {
		c->broken = true;
		return;
	}
	struct wd_smtp_result ignored;
	if (command(c, "RSET", &ignored, "RSET") < 0 ||
	    read_reply(c, c->opt->timeout_ms, "RSET", &ignored) < 0 || c->parser.reply.code != 250)
		c->broken = true;
}

static int stream_message(struct wd_smtp_client *c, const struct wd_smtp_message *m,
			  struct wd_smtp_result *r)
{
	struct wd_smtp_data data;
	wd_smtp_data_init(&data);
	struct wd_buffer out = WD_BUFFER_INIT;
	uint8_t *chunk = malloc(CHUNK);
	int ret = WD_ERROR;
	if (chunk == NULL) {
		fail(c, r, "message", "out of memory");
		goto out;
	}
	for (;;) {
		if (aborted(c)) {
			fail(c, r, "message", "aborted (stopping)");
			r->status = WD_SMTP_ABORTED;
			goto out;
		}
		const char *error = "read failed";
		ssize_t n = m->read(m->context, chunk, CHUNK, &error);
		if (n < 0) {
			/* the DATA cannot be ended cleanly: drop the connection */
			fail(c, r, "message", "reading the queued message: %s", error);
			goto out;
		}
		if (n == 0)
			break;
		if (wd_smtp_data_encode(&data, chunk, (size_t)n, &out) < 0) {
			fail(c, r, "message", "out of memory");
			goto out;
		}
		if (write_all(c, wd_buffer_bytes(&out), out.len, "message", r) < 0)
			goto out;
		wd_buffer_clear(&out);
	}
	if (wd_smtp_data_finish(&data, &out) < 0) {
		fail(c, r, "message", "out of memory");
		goto out;
	}
	ret = write_all(c, wd_buffer_bytes(&out), out.len, "message", r);
out:
	free(chunk);
	wd_buffer_release(&out);
	return ret;
}

void wd_smtp_send(struct wd_smtp_client *c, const struct wd_smtp_message *m, int64_t deadline_ms,
		  struct wd_smtp_result *r)
{
	const struct wd_smtp_options *o = c->opt;
	c->deadline_ms = deadline_ms;
	set_result(r, WD_SMTP_OK, 0, "MAIL FROM", "not sent");
	if (!command_safe(m->from) || !command_safe(m->to) || m->to[0] == '\0') {
		set_result(r, WD_SMTP_PERMANENT, 0, "MAIL FROM",
			   "address unusable in an SMTP command");
		return;
	}
	bool utf8_envelope = has_8bit(m->from) || has_8bit(m->to);
	if (utf8_envelope && !c->cap_smtputf8) {
		set_result(r, WD_SMTP_PERMANENT, 0, "MAIL FROM",
			   "the relay does not offer SMTPUTF8, needed for a non-ASCII address");
		return;
	}
	if (c->cap_size && c->size_limit > 0 && m->size > c->size_limit) {
		set_result(r, WD_SMTP_PERMANENT, 0, "MAIL FROM",
			   "message of %llu bytes over the relay's SIZE %llu",
			   (unsigned long long)m->size, (unsigned long long)c->size_limit);
		return;
	}
	char params[128] = "";
	size_t pl = 0;
	if (c->cap_size)
		pl += (size_t)snprintf(params + pl, sizeof(params) - pl, " SIZE=%llu",
				       (unsigned long long)m->size);
	if (c->cap_8bitmime)
		pl += (size_t)snprintf(params + pl, sizeof(params) - pl, " BODY=8BITMIME");
	if (c->cap_smtputf8 && (utf8_envelope || m->utf8_headers))
		snprintf(params + pl, sizeof(params) - pl, " SMTPUTF8");

	if (command(c, "MAIL FROM", r, "MAIL FROM:<%s>%s", m->from, params) < 0 ||
	    read_reply(c, o->timeout_ms, "MAIL FROM", r) < 0)
		return;
	if (c->parser.reply.code != 250) {
		refused(c, "MAIL FROM", r);
		return;
	}
	if (command(c, "RCPT TO", r, "RCPT TO:<%s>", m->to) < 0 ||
	    read_reply(c, o->timeout_ms, "RCPT TO", r) < 0)
		return;
	if (c->parser.reply.code != 250 && c->parser.reply.code != 251) {
		refused(c, "RCPT TO", r);
		return;
	}
	if (command(c, "DATA", r, "DATA") < 0 || read_reply(c, o->timeout_ms, "DATA", r) < 0)
		return;
	if (c->parser.reply.code != 354) {
		refused(c, "DATA", r);
		return;
	}
	if (stream_message(c, m, r) < 0 || read_reply(c, o->data_timeout_ms, "message", r) < 0)
		return;
	unsigned code = c->parser.reply.code;
	if (code == 250) {
		reply_result(r, WD_SMTP_OK, "message", &c->parser.reply);
		return;
	}
	/* the transaction is over either way; no RSET needed */
	reply_result(r, code / 100 == 5 ? WD_SMTP_PERMANENT : WD_SMTP_TEMPORARY, "message",
		     &c->parser.reply);
	if (code / 100 != 4 && code / 100 != 5)
		c->broken = true;
}

void wd_smtp_close(struct wd_smtp_client **_c)
{
	struct wd_smtp_client *c = *_c;
	*_c = NULL;
	if (c == NULL)
		return;
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	wd_buffer_release(&c->in);
	free(c);
}

void wd_smtp_quit(struct wd_smtp_client **_c)
{
	struct wd_smtp_client *c = *_c;
	if (c != NULL && !c->broken && !aborted(c)) {
		struct wd_smtp_result ignored;
		c->deadline_ms = monotonic_ms() + QUIT_TIMEOUT_MS;
		if (command(c, "QUIT", &ignored, "QUIT") == 0)
			(void)read_reply(c, QUIT_TIMEOUT_MS, "QUIT", &ignored);
		if (c->ssl != NULL && !c->broken)
			SSL_shutdown(c->ssl);
	}
	wd_smtp_close(_c);
}
