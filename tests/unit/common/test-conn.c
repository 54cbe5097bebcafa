/* Unit tests of the connection layer through real sockets on loopback.
 *
 * The server side is a tiny line engine on a libuv loop in the test's main
 * thread; the client side runs in a second thread with blocking sockets,
 * OpenSSL and zlib, so each layer is checked against an independent peer.
 * The client never calls cmocka (not thread-safe): it records what it saw and
 * the main thread asserts after joining it.
 *
 * Engine commands (one per line): "ECHO text" → "text"; "STARTTLS" → "OK"
 * then TLS; "COMPRESS" → "OK" then DEFLATE; "BIG n" → n bytes of a pattern
 * written under backpressure; "PEER" → peer ip; "MEM" → bytes held in the
 * connection's buffers; "QUIT" → "BYE" and close. Lines longer than 8 KiB
 * close the connection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test-tls-cert.h"
#include "wd-config.h"
#include "wd-conn.h"
#include "wd-listener.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_LINE 8192

/* ------------------------------------------------------------------ server */

struct server {
	uv_loop_t loop;
	uv_async_t stop;
	struct wd_listener *listener;
	struct wd_tls_context *tls;
	unsigned port;
	int accepted;
	int closed;
	int commands;
	int drains;
	bool saw_injected;
	char last_close_reason[160];
	size_t peak_buffer_memory;
	char tls_version[32];
	int starttls_refused;
};

struct session {
	struct server *server;
	struct wd_conn *conn;
	size_t big_left;
	uint64_t big_offset;
};

static void big_continue(struct session *s)
{
	char chunk[4096];
	while (s->big_left > 0 && !wd_conn_output_full(s->conn)) {
		size_t n = s->big_left < sizeof(chunk) ? s->big_left : sizeof(chunk);
		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)('a' + (s->big_offset + i) % 26);
		if (wd_conn_write(s->conn, chunk, n) < 0)
			return;
		s->big_left -= n;
		s->big_offset += n;
	}
	wd_conn_flush(s->conn);
	if (s->big_left == 0)
		wd_conn_resume_input(s->conn);
}

static void on_drain(struct wd_conn *conn, void *context)
{
	struct session *s = context;
	(void)conn;
	s->server->drains++;
	if (s->big_left > 0)
		big_continue(s);
}

static void run_command(struct session *s, const char *line)
{
	struct server *server = s->server;
	struct wd_conn *conn = s->conn;
	const char *error;
	char reply[128];
	server->commands++;
	if (strncmp(line, "ECHO ", 5) == 0) {
		wd_conn_write_str(conn, line + 5);
		wd_conn_write_str(conn, "\r\n");
	} else if (strcmp(line, "INJECTED") == 0) {
		server->saw_injected = true;
		wd_conn_write_str(conn, "INJECTED-RAN\r\n");
	} else if (strcmp(line, "STARTTLS") == 0) {
		wd_conn_write_str(conn, "OK begin TLS\r\n");
		if (wd_conn_start_tls(conn, server->tls, &error) < 0) {
			server->starttls_refused++;
			wd_conn_close(conn, error);
		}
	} else if (strcmp(line, "COMPRESS") == 0) {
		wd_conn_write_str(conn, "OK deflate\r\n");
		if (wd_conn_start_deflate(conn, 12, 5, &error) < 0)
			wd_conn_close(conn, error);
	} else if (strncmp(line, "BIG ", 4) == 0) {
		s->big_left = strtoul(line + 4, NULL, 10);
		s->big_offset = 0;
		wd_conn_pause_input(conn);
		big_continue(s);
	} else if (strcmp(line, "PEER") == 0) {
		const struct sockaddr_storage *peer = wd_conn_peer(conn);
		unsigned port = ntohs(peer->ss_family == AF_INET6 ?
				      ((const struct sockaddr_in6 *)peer)->sin6_port :
				      ((const struct sockaddr_in *)peer)->sin_port);
		snprintf(reply, sizeof(reply), "%s %u\r\n", wd_conn_peer_ip(conn), port);
		wd_conn_write_str(conn, reply);
	} else if (strcmp(line, "MEM") == 0) {
		snprintf(reply, sizeof(reply), "%zu\r\n", wd_conn_buffer_memory(conn));
		wd_conn_write_str(conn, reply);
	} else if (strcmp(line, "TLSINFO") == 0) {
		const char *version = wd_conn_tls_version(conn);
		snprintf(reply, sizeof(reply), "%s\r\n", version != NULL ? version : "none");
		wd_conn_write_str(conn, reply);
	} else if (strcmp(line, "QUIT") == 0) {
		wd_conn_write_str(conn, "BYE\r\n");
		wd_conn_close(conn, "quit");
	} else {
		wd_conn_write_str(conn, "BAD\r\n");
	}
}

static void on_input(struct wd_conn *conn, void *context)
{
	struct session *s = context;
	size_t mem = wd_conn_buffer_memory(conn);
	if (mem > s->server->peak_buffer_memory)
		s->server->peak_buffer_memory = mem;
	for (;;) {
		if (s->big_left > 0 || wd_conn_is_closed(conn))
			return;
		size_t len;
		const uint8_t *data = wd_conn_input(conn, &len);
		const uint8_t *lf = memchr(data, '\n', len);
		if (lf == NULL) {
			if (len > MAX_LINE)
				wd_conn_close(conn, "line too long");
			break;
		}
		size_t line_len = (size_t)(lf - data);
		if (line_len > MAX_LINE) {
			wd_conn_close(conn, "line too long");
			return;
		}
		char line[MAX_LINE + 1];
		memcpy(line, data, line_len);
		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		line[line_len] = '\0';
		wd_conn_consume(conn, (size_t)(lf - data) + 1);
		run_command(s, line);
	}
	wd_conn_flush(conn);
}

static void on_close(struct wd_conn *conn, void *context, const char *reason)
{
	struct session *s = context;
	s->server->closed++;
	snprintf(s->server->last_close_reason, sizeof(s->server->last_close_reason), "%s", reason);
	wd_conn_unref(&conn);
	free(s);
}

static void on_accept(struct wd_conn *conn, void *context)
{
	struct server *server = context;
	struct session *s = calloc(1, sizeof(*s));
	s->server = server;
	s->conn = conn;
	server->accepted++;
	wd_conn_ref(conn);
	static const struct wd_conn_callbacks callbacks = {
		.on_input = on_input,
		.on_drain = on_drain,
		.on_close = on_close,
	};
	wd_conn_set_callbacks(conn, &callbacks, s);
	wd_conn_write_str(conn, "* HELLO\r\n");
	wd_conn_flush(conn);
}

static void stop_cb(uv_async_t *async)
{
	struct server *server = async->data;
	wd_listener_close(&server->listener);
	uv_close((uv_handle_t *)&server->stop, NULL);
}

static char cert_path[PATH_MAX], key_path[PATH_MAX];

static void server_init(struct server *server, bool implicit_tls, bool proxy)
{
	memset(server, 0, sizeof(*server));
	uv_loop_init(&server->loop);
	uv_async_init(&server->loop, &server->stop, stop_cb);
	server->stop.data = server;
	struct wd_tls_settings tls_set = { .cert_file = cert_path, .key_file = key_path };
	char *error = NULL;
	server->tls = wd_tls_context_create(&tls_set, &error);
	if (server->tls == NULL)
		fail_msg("TLS context: %s", error);
	struct wd_listener_settings set = {
		.host = "127.0.0.1",
		.port = 0,
		.tls = implicit_tls ? server->tls : NULL,
		.proxy = proxy,
		.proxy_timeout_ms = 2000,
	};
	wd_conn_limits_default(&set.limits);
	server->listener = wd_listener_create(&server->loop, &set, on_accept, server, &error);
	if (server->listener == NULL)
		fail_msg("listener: %s", error);
	server->port = wd_listener_port(server->listener);
}

/* Runs the loop until the client thread is done and every connection closed. */
static void server_run(struct server *server, void *(*client_fn)(void *), void *client)
{
	pthread_t thread;
	pthread_create(&thread, NULL, client_fn, client);
	uv_run(&server->loop, UV_RUN_DEFAULT);
	pthread_join(thread, NULL);
	wd_tls_context_unref(&server->tls);
	assert_int_equal(uv_loop_close(&server->loop), 0);
	assert_int_equal(server->accepted, server->closed);
}

/* ------------------------------------------------------------------ client */

struct client {
	struct server *server;
	int fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	bool deflate;
	z_stream zin, zout;
	uint8_t raw[65536]; /* bytes received, decoded (plaintext) */
	size_t raw_len;
	uint8_t zbuf[16384]; /* compressed bytes received, not inflated yet */
	size_t zlen;
	char failure[256];
	char lines[64][256];
	int line_count;
	unsigned chunking; /* 0 = whole writes, 1 = 1 byte, 2 = random */
	bool write_errors_expected;
	uint32_t rng;
	void *arg;
};

static void client_fail(struct client *c, const char *fmt, ...)
{
	if (c->failure[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->failure, sizeof(c->failure), fmt, ap);
	va_end(ap);
}

static int client_connect(struct client *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(c->server->port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		client_fail(c, "connect: %s", strerror(errno));
		return -1;
	}
	c->rng = 12345;
	return 0;
}

static int client_start_tls(struct client *c)
{
	c->ssl_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(c->ssl_ctx, cert_path, NULL) != 1) {
		client_fail(c, "load CA");
		return -1;
	}
	c->ssl = SSL_new(c->ssl_ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	SSL_set1_host(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1) {
		char err[200];
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		client_fail(c, "SSL_connect: %s", err);
		return -1;
	}
	return 0;
}

static int transport_write(struct client *c, const uint8_t *data, size_t len)
{
	while (len > 0) {
		size_t n = len;
		if (c->chunking == 1)
			n = 1;
		else if (c->chunking == 2) {
			c->rng = c->rng * 1103515245 + 12345;
			n = 1 + (c->rng >> 16) % 97;
			if (n > len)
				n = len;
		}
		ssize_t w = c->ssl != NULL ? SSL_write(c->ssl, data, (int)n) :
					     send(c->fd, data, n, MSG_NOSIGNAL);
		if (w <= 0) {
			if (!c->write_errors_expected)
				client_fail(c, "write failed");
			return -1;
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

static int client_send(struct client *c, const char *text)
{
	if (!c->deflate)
		return transport_write(c, (const uint8_t *)text, strlen(text));
	uint8_t out[65536];
	c->zout.next_in = (Bytef *)text;
	c->zout.avail_in = (uInt)strlen(text);
	do {
		c->zout.next_out = out;
		c->zout.avail_out = sizeof(out);
		deflate(&c->zout, Z_SYNC_FLUSH);
		if (transport_write(c, out, sizeof(out) - c->zout.avail_out) < 0)
			return -1;
	} while (c->zout.avail_out == 0);
	return 0;
}

/* Reads more decoded bytes into c->raw; 0 on EOF, -1 on error. Compressed
   input that does not fit into c->raw yet waits in c->zbuf. */
static int client_read_more(struct client *c)
{
	if (c->deflate && c->zlen > 0) {
		c->zin.next_in = c->zbuf;
		c->zin.avail_in = (uInt)c->zlen;
		c->zin.next_out = c->raw + c->raw_len;
		c->zin.avail_out = (uInt)(sizeof(c->raw) - c->raw_len);
		int zr = inflate(&c->zin, Z_SYNC_FLUSH);
		size_t produced = sizeof(c->raw) - c->raw_len - c->zin.avail_out;
		c->raw_len += produced;
		memmove(c->zbuf, c->zin.next_in, c->zin.avail_in);
		c->zlen = c->zin.avail_in;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return -1;
		if (produced > 0)
			return 1;
	}
	uint8_t *buf = c->deflate ? c->zbuf + c->zlen : c->raw + c->raw_len;
	size_t room = c->deflate ? sizeof(c->zbuf) - c->zlen : sizeof(c->raw) - c->raw_len;
	if (room == 0)
		return -1;
	ssize_t n = c->ssl != NULL ? SSL_read(c->ssl, buf, (int)room) : read(c->fd, buf, room);
	if (n <= 0)
		return n == 0 || c->ssl != NULL ? 0 : -1;
	if (!c->deflate) {
		c->raw_len += (size_t)n;
		return 1;
	}
	c->zlen += (size_t)n;
	return client_read_more(c);
}

/* Next line without CRLF into `line`; false on EOF/error. */
static bool client_line(struct client *c, char *line, size_t size)
{
	for (;;) {
		uint8_t *lf = memchr(c->raw, '\n', c->raw_len);
		if (lf != NULL) {
			size_t len = (size_t)(lf - c->raw);
			size_t copy = len < size - 1 ? len : size - 1;
			memcpy(line, c->raw, copy);
			if (copy > 0 && line[copy - 1] == '\r')
				copy--;
			line[copy] = '\0';
			memmove(c->raw, lf + 1, c->raw_len - len - 1);
			c->raw_len -= len + 1;
			return true;
		}
		if (client_read_more(c) <= 0)
			return false;
	}
}

static void client_expect(struct client *c, const char *expected)
{
	char line[MAX_LINE];
	if (!client_line(c, line, sizeof(line)))
		client_fail(c, "expected \"%s\", got end of stream", expected);
	else if (strcmp(line, expected) != 0)
		client_fail(c, "expected \"%s\", got \"%s\"", expected, line);
}

static bool client_sees_eof(struct client *c)
{
	char line[256];
	while (client_line(c, line, sizeof(line))) {
		if (c->line_count < 64)
			snprintf(c->lines[c->line_count++], 256, "%s", line);
	}
	return true;
}

/* Reads n bytes of the BIG pattern ('a' + offset % 26) from the stream. */
static void client_expect_pattern(struct client *c, size_t total)
{
	size_t got = 0;
	while (got < total && c->failure[0] == '\0') {
		if (c->raw_len == 0 && client_read_more(c) <= 0) {
			client_fail(c, "eof after %zu of %zu pattern bytes", got, total);
			break;
		}
		size_t n = c->raw_len < total - got ? c->raw_len : total - got;
		for (size_t i = 0; i < n; i++) {
			if (c->raw[i] != (uint8_t)('a' + (got + i) % 26)) {
				client_fail(c, "pattern byte %zu differs", got + i);
				break;
			}
		}
		memmove(c->raw, c->raw + n, c->raw_len - n);
		c->raw_len -= n;
		got += n;
	}
}

/* The server may close as soon as it has decoded QUIT, before the last bytes
   of a chunked or compressed write arrived: a failing write is fine then. */
static void client_quit(struct client *c)
{
	c->write_errors_expected = true;
	client_send(c, "QUIT\r\n");
	client_expect(c, "BYE");
}

static void client_start_deflate(struct client *c)
{
	deflateInit2(&c->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	inflateInit2(&c->zin, -15);
	c->deflate = true;
}

static void client_finish(struct client *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->ssl_ctx != NULL)
		SSL_CTX_free(c->ssl_ctx);
	if (c->deflate) {
		deflateEnd(&c->zout);
		inflateEnd(&c->zin);
	}
	close(c->fd);
	uv_async_send(&c->server->stop);
}

static void assert_client_ok(struct client *c)
{
	if (c->failure[0] != '\0')
		fail_msg("client: %s", c->failure);
}

/* ------------------------------------------------------------------ tests */

static void *client_plain(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0) {
		client_expect(c, "* HELLO");
		/* pipelined commands in one write, with hostile chunking */
		client_send(c, "ECHO one\r\nECHO two\r\nECHO three\r\n");
		client_expect(c, "one");
		client_expect(c, "two");
		client_expect(c, "three");
		client_send(c, "MEM\r\n");
		client_expect(c, "0");
		client_quit(c);
		client_sees_eof(c);
	}
	client_finish(c);
	return NULL;
}

static void test_plain_pipelined_chunked(void **state)
{
	(void)state;
	for (unsigned chunking = 0; chunking < 3; chunking++) {
		struct server server;
		server_init(&server, false, false);
		struct client client = { .server = &server, .chunking = chunking };
		server_run(&server, client_plain, &client);
		assert_client_ok(&client);
		assert_int_equal(server.commands, 5);
		assert_string_equal(server.last_close_reason, "quit");
	}
}

static void *client_implicit_tls(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0 && client_start_tls(c) == 0) {
		/* the greeting was written before the handshake finished */
		client_expect(c, "* HELLO");
		client_send(c, "ECHO secret\r\nTLSINFO\r\n");
		client_expect(c, "secret");
		char line[256];
		if (client_line(c, line, sizeof(line)))
			snprintf(c->lines[c->line_count++], 256, "%s", line);
		client_send(c, "MEM\r\n");
		client_expect(c, "0");
		client_quit(c);
	}
	client_finish(c);
	return NULL;
}

static void test_implicit_tls(void **state)
{
	(void)state;
	for (unsigned chunking = 0; chunking < 3; chunking++) {
		struct server server;
		server_init(&server, true, false);
		struct client client = { .server = &server, .chunking = chunking };
		server_run(&server, client_implicit_tls, &client);
		assert_client_ok(&client);
		assert_int_equal(client.line_count, 1);
		assert_true(strcmp(client.lines[0], "TLSv1.3") == 0 ||
			    strcmp(client.lines[0], "TLSv1.2") == 0);
	}
}

static void *client_garbage_tls(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0) {
		client_send(c, "this is not a TLS ClientHello\r\n");
		client_sees_eof(c);
	}
	client_finish(c);
	return NULL;
}

static void test_tls_handshake_failure(void **state)
{
	(void)state;
	struct server server;
	server_init(&server, true, false);
	struct client client = { .server = &server };
	server_run(&server, client_garbage_tls, &client);
	assert_client_ok(&client);
	assert_int_equal(server.commands, 0);
	assert_non_null(strstr(server.last_close_reason, "TLS"));
}

static void *client_old_tls(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0) {
		c->ssl_ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_security_level(c->ssl_ctx, 0);
		SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(c->ssl_ctx, TLS1_1_VERSION);
		c->ssl = SSL_new(c->ssl_ctx);
		SSL_set_fd(c->ssl, c->fd);
		if (SSL_connect(c->ssl) == 1)
			client_fail(c, "a TLS 1.1 handshake succeeded");
	}
	client_finish(c);
	return NULL;
}

static void test_tls_below_1_2_refused(void **state)
{
	(void)state;
	struct server server;
	server_init(&server, true, false);
	struct client client = { .server = &server };
	server_run(&server, client_old_tls, &client);
	assert_client_ok(&client);
	assert_int_equal(server.commands, 0);
	assert_non_null(strstr(server.last_close_reason, "TLS handshake failed"));
}

static void test_tls_context_from_config(void **state)
{
	(void)state;
	char text[3 * PATH_MAX];
	snprintf(text, sizeof(text),
		 "[tls]\ncert = \"%s\"\nkey = \"%s\"\n"
		 "[imap.tls]\ncert = \"/nonexistent/imap.crt\"\n"
		 "[pop3.tls]\nminVersion = \"TLSv1.0\"\n"
		 "[api.tls]\nminVersion = \"TLSv1.3\"\n", cert_path, key_path);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("tls.toml", text, strlen(text), &error);
	assert_non_null(config);
	/* lmtp has no tls table of its own: the global keys apply */
	struct wd_tls_context *ctx = wd_tls_context_from_config(config, "lmtp", &error);
	assert_non_null(ctx);
	wd_tls_context_unref(&ctx);
	ctx = wd_tls_context_from_config(config, "api", &error);
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(wd_tls_context_ssl_ctx(ctx)), TLS1_3_VERSION);
	wd_tls_context_unref(&ctx);
	/* imap.tls.cert overrides tls.cert */
	assert_null(wd_tls_context_from_config(config, "imap", &error));
	assert_non_null(strstr(error, "/nonexistent/imap.crt"));
	free(error);
	/* below TLS 1.2 cannot be configured */
	assert_null(wd_tls_context_from_config(config, "pop3", &error));
	assert_non_null(strstr(error, "TLSv1.0"));
	free(error);
	wd_config_free(&config);
}

static void *client_starttls(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0) {
		client_expect(c, "* HELLO");
		client_send(c, "STARTTLS\r\n");
		client_expect(c, "OK begin TLS");
		if (c->raw_len != 0)
			client_fail(c, "bytes after the STARTTLS reply");
		if (client_start_tls(c) == 0) {
			client_send(c, "ECHO over tls\r\nTLSINFO\r\n");
			client_expect(c, "over tls");
			char line[256];
			if (client_line(c, line, sizeof(line)))
				snprintf(c->lines[c->line_count++], 256, "%s", line);
			/* a second STARTTLS is refused and closes */
			client_send(c, "STARTTLS\r\n");
			client_expect(c, "OK begin TLS");
			client_sees_eof(c);
		}
	}
	client_finish(c);
	return NULL;
}

static void test_starttls(void **state)
{
	(void)state;
	struct server server;
	server_init(&server, false, false);
	struct client client = { .server = &server };
	server_run(&server, client_starttls, &client);
	assert_client_ok(&client);
	assert_int_equal(client.line_count, 1);
	assert_true(strncmp(client.lines[0], "TLSv1.", 6) == 0);
	assert_int_equal(server.starttls_refused, 1);
	assert_string_equal(server.last_close_reason, "TLS is already active");
}

static void *client_starttls_injection(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0) {
		client_expect(c, "* HELLO");
		/* one segment: STARTTLS plus a plaintext command that an attacker
		   in the middle appended; it must never run, not even after TLS */
		client_send(c, "STARTTLS\r\nINJECTED\r\n");
		client_expect(c, "OK begin TLS");
		client_sees_eof(c);
	}
	client_finish(c);
	return NULL;
}

static void test_starttls_injection_rejected(void **state)
{
	(void)state;
	struct server server;
	server_init(&server, false, false);
	struct client client = { .server = &server };
	server_run(&server, client_starttls_injection, &client);
	assert_client_ok(&client);
	assert_false(server.saw_injected);
	assert_int_equal(client.line_count, 0);
	assert_int_equal(server.starttls_refused, 1);
	assert_string_equal(server.last_close_reason, "plaintext data was pipelined after STARTTLS");
}

static void *client_deflate(void *arg)
{
	struct client *c = arg;
	bool tls = c->arg != NULL;
	if (client_connect(c) == 0) {
		client_expect(c, "* HELLO");
		if (tls) {
			client_send(c, "STARTTLS\r\n");
			client_expect(c, "OK begin TLS");
			client_start_tls(c);
		}
		client_send(c, "COMPRESS\r\n");
		client_expect(c, "OK deflate");
		client_start_deflate(c);
		/* a long random-ish payload echoed back through both directions */
		char line[4200] = "ECHO ";
		uint32_t r = 7;
		for (int i = 5; i < 4100; i++) {
			r = r * 1103515245 + 12345;
			line[i] = (char)('!' + (r >> 16) % 90);
		}
		line[4100] = '\0';
		char request[4300];
		snprintf(request, sizeof(request), "%s\r\nECHO short\r\n", line);
		client_send(c, request);
		client_expect(c, line + 5);
		client_expect(c, "short");
		client_send(c, "BIG 300000\r\n");
		client_expect_pattern(c, 300000);
		client_quit(c);
	}
	client_finish(c);
	return NULL;
}

static void test_deflate_round_trip(void **state)
{
	(void)state;
	for (int tls = 0; tls < 2; tls++) {
		for (unsigned chunking = 0; chunking < 3; chunking++) {
			struct server server;
			server_init(&server, false, false);
			struct client client = { .server = &server, .chunking = chunking,
						 .arg = tls ? &server : NULL };
			server_run(&server, client_deflate, &client);
			if (client.failure[0] != '\0')
				fail_msg("tls=%d chunking=%u: %s (server closed: %s)", tls, chunking,
					 client.failure, server.last_close_reason);
			assert_string_equal(server.last_close_reason, "quit");
		}
	}
}

static void *client_deflate_bomb(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0) {
		client_expect(c, "* HELLO");
		client_send(c, "COMPRESS\r\n");
		client_expect(c, "OK deflate");
		client_start_deflate(c);
		/* 64 MiB of 'A' without a newline compresses to about 64 KiB */
		static char block[1 << 20];
		memset(block, 'A', sizeof(block));
		uint8_t out[65536];
		for (int i = 0; i < 64 && c->failure[0] == '\0'; i++) {
			c->zout.next_in = (Bytef *)block;
			c->zout.avail_in = sizeof(block);
			do {
				c->zout.next_out = out;
				c->zout.avail_out = sizeof(out);
				deflate(&c->zout, Z_NO_FLUSH);
				size_t n = sizeof(out) - c->zout.avail_out;
				if (n > 0 && send(c->fd, out, n, MSG_NOSIGNAL) < 0)
					i = 64; /* the server closed: expected */
			} while (c->zout.avail_out == 0 && i < 64);
		}
		client_sees_eof(c);
	}
	client_finish(c);
	return NULL;
}

static void test_deflate_bomb_bounded(void **state)
{
	(void)state;
	struct server server;
	server_init(&server, false, false);
	struct client client = { .server = &server };
	server_run(&server, client_deflate_bomb, &client);
	assert_client_ok(&client);
	assert_string_equal(server.last_close_reason, "line too long");
	/* input is held at most up to the input limit (64 KiB) plus one read */
	assert_true(server.peak_buffer_memory < 512 * 1024);
}

static void *client_slow_reader(void *arg)
{
	struct client *c = arg;
	if (client_connect(c) == 0) {
		client_expect(c, "* HELLO");
		client_send(c, "BIG 8000000\r\nECHO after\r\n");
		usleep(300000); /* let the server hit its high watermark */
		client_expect_pattern(c, 8000000);
		client_expect(c, "after");
		client_quit(c);
	}
	client_finish(c);
	return NULL;
}

static void test_output_watermarks(void **state)
{
	(void)state;
	struct server server;
	server_init(&server, false, false);
	struct client client = { .server = &server };
	server_run(&server, client_slow_reader, &client);
	assert_client_ok(&client);
	/* the writer parked above the high watermark and was resumed */
	assert_true(server.drains > 0);
	assert_int_equal(server.commands, 3);
}

struct proxy_case {
	const char *header;
	size_t header_len;
};

static void *client_proxy(void *arg)
{
	struct client *c = arg;
	const struct proxy_case *pc = c->arg;
	if (client_connect(c) == 0) {
		transport_write(c, (const uint8_t *)pc->header, pc->header_len);
		client_send(c, "PEER\r\nQUIT\r\n");
		char line[256];
		while (c->line_count < 64 && client_line(c, line, sizeof(line)))
			snprintf(c->lines[c->line_count++], 256, "%s", line);
	}
	client_finish(c);
	return NULL;
}

/* expect_peer NULL: the header is bad and the engine must never see the
   connection; else the PEER reply must start with expect_peer. */
static void run_proxy_case(const char *header, size_t header_len, const char *expect_peer)
{
	struct proxy_case pc = { header, header_len };
	for (unsigned chunking = 0; chunking < 3; chunking++) {
		struct server server;
		server_init(&server, false, true);
		struct client client = { .server = &server, .arg = &pc, .chunking = chunking,
					 .write_errors_expected = expect_peer == NULL };
		server_run(&server, client_proxy, &client);
		assert_client_ok(&client);
		if (expect_peer == NULL) {
			assert_int_equal(client.line_count, 0);
			assert_int_equal(server.accepted, 0);
			assert_int_equal(server.commands, 0);
			continue;
		}
		if (client.line_count != 3)
			fail_msg("%s: %d lines: %s / %s", header, client.line_count,
				 client.lines[0], client.lines[1]);
		assert_string_equal(client.lines[0], "* HELLO");
		assert_true(strncmp(client.lines[1], expect_peer, strlen(expect_peer)) == 0);
		assert_string_equal(client.lines[2], "BYE");
	}
}

#define PROXY_CASE(text, peer) run_proxy_case(text, sizeof(text) - 1, peer)

static void test_proxy_protocol(void **state)
{
	(void)state;
	PROXY_CASE("PROXY TCP4 192.0.2.7 198.51.100.1 4711 993\r\n", "192.0.2.7 4711");
	PROXY_CASE("PROXY TCP6 2001:db8::5 2001:db8::1 5000 993\r\n", "2001:db8::5 5000");
	PROXY_CASE("PROXY UNKNOWN\r\n", "127.0.0.1 ");
	/* v2: signature, version 2 + PROXY, TCP over IPv4, 12 bytes of addresses */
	PROXY_CASE("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"
		   "\xc0\x00\x02\x09\xc6\x33\x64\x01\x12\x67\x03\xe1",
		   "192.0.2.9 4711");
	/* v2 LOCAL (health checks): the socket's own address stays */
	PROXY_CASE("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", "127.0.0.1 ");
	/* invalid headers: closed before the engine sees anything */
	PROXY_CASE("PROXY TCP4 999.0.2.7 198.51.100.1 4711 993\r\n", NULL);
	PROXY_CASE("PROXY TCP4 192.0.2.7 198.51.100.1 4711 65536\r\n", NULL);
	PROXY_CASE("a001 LOGIN user pass\r\n", NULL);
	PROXY_CASE("\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c", NULL);
}

int main(void)
{
	char dir[] = "/tmp/wd-test-conn-XXXXXX";
	if (mkdtemp(dir) == NULL || test_make_self_signed_cert(dir, cert_path, key_path) != 0) {
		fprintf(stderr, "cannot create a test certificate\n");
		return 1;
	}
	wd_log_init("test-conn", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_pipelined_chunked),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_tls_handshake_failure),
		cmocka_unit_test(test_tls_below_1_2_refused),
		cmocka_unit_test(test_tls_context_from_config),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_starttls_injection_rejected),
		cmocka_unit_test(test_deflate_round_trip),
		cmocka_unit_test(test_deflate_bomb_bounded),
		cmocka_unit_test(test_output_watermarks),
		cmocka_unit_test(test_proxy_protocol),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(cert_path);
	unlink(key_path);
	rmdir(dir);
	return failed;
}
