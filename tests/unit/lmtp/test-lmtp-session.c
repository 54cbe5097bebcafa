/* Engine tests: the LMTP service (server/lmtp) on a real loopback socket,
 * in-process, with a fake delivery pipeline (fake-deliver.h).
 *
 * The server's loop runs in a thread of its own with a real worker pool;
 * the test is the client, with blocking sockets. What is checked: the
 * greeting and LHLO, per-recipient replies in RCPT order, pipelining in
 * one write and in 1-byte writes, dot-unstuffing into the delivered bytes,
 * sequence and syntax errors, limits (size declared and actual,
 * recipients, errors, command line), both timeouts, a dropped connection
 * in the middle of DATA (nothing delivered) and during a delivery (the
 * delivery finishes), shutdown, and no recipient object leaked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake-deliver.h"
#include "lmtp-server.h"
#include "wd-config.h"
#include "wd-deliver.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-worker-pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the server in its thread ---- */

struct fixture {
	uv_loop_t loop;
	uv_async_t stop;
	uv_timer_t poll;
	pthread_t thread;
	struct wd_config *config;
	struct wd_worker_pool *pool;
	struct wd_completion_queue *queue;
	struct wd_lmtp_server *server;
	unsigned port;
};

static void poll_cb(uv_timer_t *timer)
{
	struct fixture *f = timer->data;
	if (wd_lmtp_server_session_count(f->server) == 0) {
		uv_timer_stop(timer);
		uv_stop(&f->loop);
	}
}

static void stop_cb(uv_async_t *async)
{
	struct fixture *f = async->data;
	wd_lmtp_server_shutdown(f->server);
	uv_timer_start(&f->poll, poll_cb, 10, 10);
}

static void close_handle(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

static void *loop_thread(void *arg)
{
	struct fixture *f = arg;
	uv_run(&f->loop, UV_RUN_DEFAULT);
	wd_worker_pool_destroy(&f->pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_completion_queue_destroy(&f->queue);
	uv_walk(&f->loop, close_handle, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	wd_lmtp_server_destroy(&f->server);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* overrides: "key=value" strings, NULL-terminated */
static struct fixture *start(const char *const *overrides)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->config = wd_config_new();
	char *error = NULL;
	assert_int_equal(wd_config_set(f->config, "lmtp.enabled", "true", "test", &error), 0);
	assert_int_equal(wd_config_set(f->config, "lmtp.name", "\"mx.test\"", "test", &error), 0);
	for (size_t i = 0; overrides != NULL && overrides[i] != NULL; i++) {
		char key[128];
		const char *eq = strchr(overrides[i], '=');
		snprintf(key, sizeof(key), "%.*s", (int)(eq - overrides[i]), overrides[i]);
		if (wd_config_set(f->config, key, eq + 1, "test", &error) < 0)
			fail_msg("config %s: %s", overrides[i], error);
	}
	struct wd_lmtp_settings set;
	const char *cerror;
	if (wd_lmtp_settings_read(f->config, &set, &cerror) < 0)
		fail_msg("settings: %s", cerror);
	set.port = 0;
	f->pool = wd_worker_pool_create(2, 100, &cerror);
	f->queue = wd_completion_queue_create(&f->loop, &cerror);
	assert_non_null(f->pool);
	assert_non_null(f->queue);
	struct wd_server_deps deps = {
		.loop = &f->loop, .config = f->config, .pool = f->pool, .queue = f->queue,
	};
	struct wd_deliver *deliver = wd_deliver_create(NULL, NULL, f->config, &error);
	f->server = wd_lmtp_server_create(&deps, &set, deliver, &error);
	if (f->server == NULL)
		fail_msg("server: %s", error);
	f->port = wd_lmtp_server_port(f->server);
	uv_async_init(&f->loop, &f->stop, stop_cb);
	uv_timer_init(&f->loop, &f->poll);
	f->stop.data = f->poll.data = f;
	pthread_create(&f->thread, NULL, loop_thread, f);
	return f;
}

static void stop(struct fixture *f)
{
	uv_async_send(&f->stop);
	pthread_join(f->thread, NULL);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	wd_config_free(&f->config);
	free(f);
	assert_int_equal(fake_deliver_rcpts_alive(), 0);
	fake_deliver_reset();
}

/* ---- the client ---- */

struct client {
	int fd;
	char buf[65536];
	size_t len;
	char last[1024];
};

static struct client *client_connect(struct fixture *f)
{
	struct client *c = calloc(1, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)f->port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return c;
}

static void client_close(struct client **c)
{
	close((*c)->fd);
	free(*c);
	*c = NULL;
}

static void send_bytes(struct client *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void send_str(struct client *c, const char *s)
{
	send_bytes(c, s, strlen(s));
}

static void send_one_byte_at_a_time(struct client *c, const char *s)
{
	for (size_t i = 0; s[i] != '\0'; i++) {
		send_bytes(c, s + i, 1);
		if (i % 7 == 0)
			usleep(200);
	}
}

/* One reply line without CRLF into c->last; false at EOF or timeout. */
static bool read_line(struct client *c)
{
	for (;;) {
		char *lf = memchr(c->buf, '\n', c->len);
		if (lf != NULL) {
			size_t n = (size_t)(lf - c->buf) + 1;
			size_t copy = n - 1;
			if (copy > 0 && c->buf[copy - 1] == '\r')
				copy--;
			if (copy >= sizeof(c->last))
				copy = sizeof(c->last) - 1;
			memcpy(c->last, c->buf, copy);
			c->last[copy] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return true;
		}
		if (c->len == sizeof(c->buf))
			return false;
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0)
			return false;
		c->len += (size_t)n;
	}
}

static void expect(struct client *c, const char *prefix)
{
	if (!read_line(c))
		fail_msg("expected \"%s\", got EOF/timeout", prefix);
	if (strncmp(c->last, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s\", got \"%s\"", prefix, c->last);
}

/* A whole (multi-line) reply; returns its lines joined by '|'. */
static void expect_reply(struct client *c, char *joined, size_t size)
{
	joined[0] = '\0';
	for (;;) {
		if (!read_line(c))
			fail_msg("reply ended early: \"%s\"", joined);
		strncat(joined, c->last, size - strlen(joined) - 2);
		if (strlen(c->last) < 4 || c->last[3] != '-')
			return;
		strncat(joined, "|", size - strlen(joined) - 1);
	}
}

static bool sees_eof(struct client *c, int ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	while (poll(&p, 1, ms) > 0) {
		char tmp[4096];
		ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			return true;
	}
	return false;
}

static void wait_deliveries(size_t n)
{
	for (int i = 0; i < 300 && fake_deliver_count() < n; i++)
		usleep(10 * 1000);
}

static struct client *greeted(struct fixture *f)
{
	struct client *c = client_connect(f);
	expect(c, "220 mx.test LMTP ");
	send_str(c, "LHLO client.test\r\n");
	char reply[1024];
	expect_reply(c, reply, sizeof(reply));
	return c;
}

/* ---- tests ---- */

static void test_greeting_and_lhlo(void **state)
{
	struct fixture *f = start(NULL);
	struct client *c = client_connect(f);
	expect(c, "220 mx.test LMTP Welcome to WildDuck Mail Server");
	/* before LHLO: no enhanced codes (RFC 2034) */
	send_str(c, "MAIL FROM:<a@b.test>\r\n");
	expect(c, "503 Send LHLO first");
	send_str(c, "EHLO client.test\r\n");
	expect(c, "500 This is LMTP");
	send_str(c, "LHLO\r\n");
	expect(c, "501 Syntax: LHLO");
	send_str(c, "LHLO client.test\r\n");
	char reply[1024];
	expect_reply(c, reply, sizeof(reply));
	assert_string_equal(reply, "250-mx.test|250-PIPELINING|250-SIZE 26214400|250-8BITMIME|"
				   "250-SMTPUTF8|250 ENHANCEDSTATUSCODES");
	send_str(c, "NOOP\r\n");
	expect(c, "250 2.0.0 OK");
	send_str(c, "VRFY bob\r\n");
	expect(c, "252 2.0.0 ");
	send_str(c, "HELP\r\n");
	expect_reply(c, reply, sizeof(reply));
	assert_non_null(strstr(reply, "214 2.0.0 End of HELP"));
	send_str(c, "EXPN list\r\n");
	expect(c, "502 5.5.1 ");
	send_str(c, "STARTTLS\r\n");
	expect(c, "502 5.5.1 STARTTLS not available");
	send_str(c, "FOO\r\n");
	expect(c, "500 5.5.1 Command unrecognized");
	send_str(c, "QUIT\r\n");
	expect(c, "221 2.0.0 mx.test closing connection");
	assert_true(sees_eof(c, 2000));
	client_close(&c);
	stop(f);
}

static const char message[] = "From: a@b.test\r\n"
			      "Subject: dots\r\n"
			      "\r\n"
			      "..leading dot\r\n"
			      "...two\r\n"
			      "..\r\n"
			      "end\r\n";
static const char message_unstuffed[] = "From: a@b.test\r\n"
					"Subject: dots\r\n"
					"\r\n"
					".leading dot\r\n"
					"..two\r\n"
					".\r\n"
					"end\r\n";

static void check_delivery(size_t i, const char *rcpt, const char *raw)
{
	struct fake_delivery d;
	assert_int_equal(fake_deliver_get(i, &d), WD_OK);
	assert_string_equal(d.rcpt, rcpt);
	assert_string_equal(d.mail_from, "sender@b.test");
	assert_string_equal(d.helo, "client.test");
	assert_int_equal(strlen(d.transaction_id), 24);
	assert_int_equal(d.len, strlen(raw));
	assert_memory_equal(d.raw, raw, d.len);
	free(d.raw);
}

static void test_transaction_mixed_recipients(void **state)
{
	struct fixture *f = start(NULL);
	struct client *c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test> SIZE=100 BODY=8BITMIME\r\n");
	expect(c, "250 2.1.0 ");
	send_str(c, "RCPT TO:<one@b.test>\r\n");
	expect(c, "250 2.1.5 ");
	send_str(c, "RCPT TO:<unknown@b.test>\r\n");
	expect(c, "550 5.1.1 Unknown recipient");
	send_str(c, "RCPT TO:<quota@b.test>\r\n");
	expect(c, "250 2.1.5 ");
	send_str(c, "RCPT TO:<full@b.test>\r\n");
	expect(c, "452 4.2.2 Mailbox full");
	send_str(c, "RCPT TO:<two@b.test>\r\n");
	expect(c, "250 2.1.5 ");
	send_str(c, "DATA\r\n");
	expect(c, "354 ");
	send_str(c, message);
	send_str(c, ".\r\n");
	/* one reply per accepted recipient, in RCPT order */
	expect(c, "250 2.0.0 Saved for one@b.test");
	expect(c, "552 5.2.2 Mailbox over quota");
	expect(c, "250 2.0.0 Saved for two@b.test");
	assert_int_equal(fake_deliver_count(), 2);
	check_delivery(0, "one@b.test", message_unstuffed);
	check_delivery(1, "two@b.test", message_unstuffed);
	/* the transaction is over: a new one may start, DATA needs MAIL */
	send_str(c, "DATA\r\n");
	expect(c, "503 5.5.1 Send MAIL first");
	send_str(c, "MAIL FROM:<>\r\n");
	expect(c, "250 2.1.0 ");
	send_str(c, "QUIT\r\n");
	expect(c, "221 ");
	client_close(&c);
	stop(f);
}

static void pipelined(struct fixture *f, bool one_byte)
{
	struct client *c = greeted(f);
	const char *batch = "MAIL FROM:<sender@b.test>\r\n"
			    "RCPT TO:<one@b.test>\r\n"
			    "RCPT TO:<unknown@b.test>\r\n"
			    "RCPT TO:<slowrcpt@b.test>\r\n"
			    "NOOP\r\n"
			    "DATA\r\n";
	if (one_byte)
		send_one_byte_at_a_time(c, batch);
	else
		send_str(c, batch);
	expect(c, "250 2.1.0 ");
	expect(c, "250 2.1.5 ");
	expect(c, "550 5.1.1 ");
	expect(c, "250 2.1.5 ");
	expect(c, "250 2.0.0 OK");
	expect(c, "354 ");
	char body[600];
	snprintf(body, sizeof(body), "%s.\r\nRSET\r\nMAIL FROM:<x@b.test>\r\nRCPT TO:<unknown2@b.test>\r\n"
		 "DATA\r\nQUIT\r\n", message);
	if (one_byte)
		send_one_byte_at_a_time(c, body);
	else
		send_str(c, body);
	expect(c, "250 2.0.0 Saved for one@b.test");
	expect(c, "250 2.0.0 Saved for slowrcpt@b.test");
	expect(c, "250 2.0.0 OK");
	expect(c, "250 2.1.0 ");
	expect(c, "550 5.1.1 ");
	expect(c, "503 5.5.1 No valid recipients");
	expect(c, "221 ");
	assert_true(sees_eof(c, 2000));
	check_delivery(0, "one@b.test", message_unstuffed);
	check_delivery(1, "slowrcpt@b.test", message_unstuffed);
	client_close(&c);
}

static void test_pipelining_one_write(void **state)
{
	struct fixture *f = start(NULL);
	pipelined(f, false);
	stop(f);
}

static void test_pipelining_one_byte_writes(void **state)
{
	struct fixture *f = start(NULL);
	pipelined(f, true);
	stop(f);
}

static void test_sequence_and_syntax(void **state)
{
	struct fixture *f = start(NULL);
	struct client *c = greeted(f);
	send_str(c, "RCPT TO:<one@b.test>\r\n");
	expect(c, "503 5.5.1 Send MAIL first");
	send_str(c, "DATA\r\n");
	expect(c, "503 5.5.1 Send MAIL first");
	send_str(c, "MAIL FROM:<sender@b.test>\r\n");
	expect(c, "250 ");
	send_str(c, "MAIL FROM:<sender@b.test>\r\n");
	expect(c, "503 5.5.1 Nested MAIL command");
	send_str(c, "DATA\r\n");
	expect(c, "503 5.5.1 No valid recipients");
	send_str(c, "RCPT TO:bob@b.test\r\n");
	expect(c, "501 5.5.4 ");
	send_str(c, "RCPT TO:<bob>\r\n");
	expect(c, "501 5.1.3 ");
	send_str(c, "RCPT TO:<b\xc3\xb6@b.test>\r\n");
	expect(c, "553 5.6.7 ");
	send_str(c, "RCPT TO:<bob@b.test> NOTIFY=NEVER\r\n");
	expect(c, "555 5.5.4 ");
	send_str(c, "RCPT TO:<bob@b.test>\r\n");
	expect(c, "250 2.1.5 ");
	send_str(c, "DATA now\r\n");
	expect(c, "501 5.5.4 ");
	send_str(c, "RSET now\r\n");
	expect(c, "501 5.5.4 ");
	send_str(c, "RSET\r\n");
	expect(c, "250 2.0.0 ");
	send_str(c, "DATA\r\n");
	expect(c, "503 5.5.1 Send MAIL first");
	send_str(c, "MAIL FROM:<sender@b.test> RET=HDRS\r\n");
	expect(c, "555 5.5.4 ");
	send_str(c, "MAIL FROM:<j\xc3\xb6rg@b.test> SMTPUTF8\r\n");
	expect(c, "250 2.1.0 ");
	send_str(c, "RCPT TO:<b\xc3\xb6@b.test>\r\n");
	expect(c, "250 2.1.5 ");
	/* LHLO again ends the transaction */
	send_str(c, "LHLO again.test\r\n");
	char reply[1024];
	expect_reply(c, reply, sizeof(reply));
	send_str(c, "DATA\r\n");
	expect(c, "503 5.5.1 Send MAIL first");
	/* hostile lines */
	send_bytes(c, "NO\0OP\r\n", 7);
	expect(c, "500 5.5.2 ");
	char longline[2000];
	memset(longline, 'A', sizeof(longline));
	memcpy(longline, "NOOP ", 5);
	memcpy(longline + sizeof(longline) - 2, "\r\n", 2);
	send_bytes(c, longline, sizeof(longline));
	expect(c, "500 5.5.2 Line too long");
	send_str(c, "NOOP\r\n");
	expect(c, "250 2.0.0 OK");
	send_str(c, "\r\n");
	expect(c, "500 5.5.2 ");
	client_close(&c);
	stop(f);
}

static void test_size_limits(void **state)
{
	const char *const overrides[] = { "lmtp.maxMB=1", NULL };
	struct fixture *f = start(overrides);
	struct client *c = greeted(f);
	/* declared too big: refused at MAIL */
	send_str(c, "MAIL FROM:<sender@b.test> SIZE=1048577\r\n");
	expect(c, "552 5.3.4 ");
	send_str(c, "MAIL FROM:<sender@b.test> SIZE=1048576\r\n");
	expect(c, "250 2.1.0 ");
	send_str(c, "RCPT TO:<one@b.test>\r\nRCPT TO:<two@b.test>\r\nDATA\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "354 ");
	/* 2 MiB of lines: read to the end, refused for each recipient */
	char line[1002];
	memset(line, 'x', 1000);
	memcpy(line + 1000, "\r\n", 2);
	for (int i = 0; i < 2100; i++)
		send_bytes(c, line, sizeof(line));
	send_str(c, ".\r\n");
	expect(c, "552 5.3.4 Message too big");
	expect(c, "552 5.3.4 Message too big");
	send_str(c, "NOOP\r\n");
	expect(c, "250 2.0.0 OK");
	assert_int_equal(fake_deliver_count(), 0);
	/* exactly 1 MiB is delivered */
	send_str(c, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<one@b.test>\r\nDATA\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "354 ");
	size_t total = 1024 * 1024;
	char *big = malloc(total);
	for (size_t i = 0; i < total; i += 1024) {
		memset(big + i, 'y', 1022);
		memcpy(big + i + 1022, "\r\n", 2);
	}
	send_bytes(c, big, total);
	send_str(c, ".\r\n");
	expect(c, "250 2.0.0 ");
	struct fake_delivery d;
	assert_int_equal(fake_deliver_get(0, &d), WD_OK);
	assert_int_equal(d.len, total);
	assert_memory_equal(d.raw, big, total);
	free(d.raw);
	free(big);
	client_close(&c);
	stop(f);
}

static void test_discard_limit_closes(void **state)
{
	const char *const overrides[] = { "lmtp.maxMB=1", NULL };
	struct fixture *f = start(overrides);
	struct client *c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<one@b.test>\r\nDATA\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "354 ");
	/* past 1 MiB + 4 MiB the server stops reading: 552, then the end */
	char chunk[65536];
	memset(chunk, 'z', sizeof(chunk));
	for (size_t i = 998; i + 2 <= sizeof(chunk); i += 1000)
		memcpy(chunk + i, "\r\n", 2);
	bool closed = false;
	for (int i = 0; i < 200 && !closed; i++) {
		ssize_t n = send(c->fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
		closed = n < 0;
	}
	expect(c, "552 5.3.4 ");
	assert_true(sees_eof(c, 5000));
	client_close(&c);
	assert_int_equal(fake_deliver_count(), 0);
	stop(f);
}

static void test_recipient_limit(void **state)
{
	const char *const overrides[] = { "lmtp.maxRecipients=3", NULL };
	struct fixture *f = start(overrides);
	struct client *c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test>\r\n");
	expect(c, "250 ");
	for (int i = 0; i < 3; i++) {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "RCPT TO:<r%d@b.test>\r\n", i);
		send_str(c, cmd);
		expect(c, "250 2.1.5 ");
	}
	send_str(c, "RCPT TO:<r3@b.test>\r\n");
	expect(c, "452 4.5.3 Too many recipients");
	send_str(c, "DATA\r\n");
	expect(c, "354 ");
	send_str(c, "Subject: x\r\n\r\nx\r\n.\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "250 ");
	send_str(c, "NOOP\r\n");
	expect(c, "250 2.0.0 OK");
	client_close(&c);
	stop(f);
}

static void test_error_limit(void **state)
{
	const char *const overrides[] = { "lmtp.maxErrors=3", NULL };
	struct fixture *f = start(overrides);
	struct client *c = greeted(f);
	send_str(c, "BAD1\r\nBAD2\r\nBAD3\r\nBAD4\r\nNOOP\r\n");
	expect(c, "500 ");
	expect(c, "500 ");
	expect(c, "500 ");
	expect(c, "500 ");
	expect(c, "421 4.7.0 mx.test Too many errors");
	assert_true(sees_eof(c, 2000));
	client_close(&c);
	stop(f);
}

static void test_timeouts(void **state)
{
	const char *const overrides[] = { "lmtp.timeout=1", "lmtp.dataTimeout=2", NULL };
	struct fixture *f = start(overrides);
	struct client *c = greeted(f);
	expect(c, "421 4.4.2 mx.test Idle timeout");
	assert_true(sees_eof(c, 2000));
	client_close(&c);
	/* a message trickling in is not idle, but must end in dataTimeout */
	c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<one@b.test>\r\nDATA\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "354 ");
	for (int i = 0; i < 6; i++) {
		/* the server may have closed already */
		if (send(c->fd, "more text\r\n", 11, MSG_NOSIGNAL) < 0)
			break;
		usleep(500 * 1000);
	}
	expect(c, "421 4.4.2 mx.test Timeout reading the message");
	client_close(&c);
	assert_int_equal(fake_deliver_count(), 0);
	/* a slow delivery is not idleness */
	c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<slow1@b.test>\r\n"
		    "RCPT TO:<slow2@b.test>\r\nRCPT TO:<slow3@b.test>\r\nDATA\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "354 ");
	send_str(c, "Subject: slow\r\n\r\n.\r\n");
	expect(c, "250 2.0.0 Saved for slow1");
	expect(c, "250 2.0.0 Saved for slow2");
	expect(c, "250 2.0.0 Saved for slow3");
	client_close(&c);
	stop(f);
}

static void test_disconnects(void **state)
{
	struct fixture *f = start(NULL);
	/* unterminated DATA, then the client goes: nothing is delivered */
	struct client *c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<one@b.test>\r\nDATA\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "354 ");
	send_str(c, "Subject: cut\r\n\r\nno end\r\n.\n");
	client_close(&c);
	/* the client goes while the delivery runs: it still completes */
	c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<slow@b.test>\r\nDATA\r\n");
	expect(c, "250 ");
	expect(c, "250 ");
	expect(c, "354 ");
	send_str(c, "Subject: gone\r\n\r\n.\r\n");
	usleep(100 * 1000);
	client_close(&c);
	wait_deliveries(1);
	assert_int_equal(fake_deliver_count(), 1);
	struct fake_delivery d;
	assert_int_equal(fake_deliver_get(0, &d), WD_OK);
	assert_string_equal(d.rcpt, "slow@b.test");
	free(d.raw);
	/* the client goes while a recipient is checked */
	c = greeted(f);
	send_str(c, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<slowrcpt@b.test>\r\n");
	expect(c, "250 ");
	client_close(&c);
	usleep(500 * 1000);
	stop(f);
}

static void test_shutdown(void **state)
{
	struct fixture *f = start(NULL);
	struct client *idle = greeted(f);
	struct client *busy = greeted(f);
	send_str(busy, "MAIL FROM:<sender@b.test>\r\nRCPT TO:<slow@b.test>\r\nDATA\r\n");
	expect(busy, "250 ");
	expect(busy, "250 ");
	expect(busy, "354 ");
	send_str(busy, "Subject: late\r\n\r\n.\r\n");
	usleep(100 * 1000);
	uv_async_send(&f->stop);
	expect(idle, "421 4.3.2 mx.test Service shutting down");
	/* the delivery running answers first */
	expect(busy, "250 2.0.0 Saved for slow@b.test");
	expect(busy, "421 4.3.2 ");
	pthread_join(f->thread, NULL);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	wd_config_free(&f->config);
	free(f);
	client_close(&idle);
	client_close(&busy);
	assert_int_equal(fake_deliver_rcpts_alive(), 0);
	fake_deliver_reset();
}

int main(void)
{
	wd_log_init("test-lmtp-session", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_and_lhlo),
		cmocka_unit_test(test_transaction_mixed_recipients),
		cmocka_unit_test(test_pipelining_one_write),
		cmocka_unit_test(test_pipelining_one_byte_writes),
		cmocka_unit_test(test_sequence_and_syntax),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_discard_limit_closes),
		cmocka_unit_test(test_recipient_limit),
		cmocka_unit_test(test_error_limit),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_disconnects),
		cmocka_unit_test(test_shutdown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
