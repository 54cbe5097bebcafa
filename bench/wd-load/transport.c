/* transport.c — a client connection for wd-load: TCP on the shared libuv
 * loop, optional implicit TLS, an operation timeout, a bounded input buffer.
 *
 * Design:
 *   - TLS runs over memory BIOs (network bytes -> rbio -> SSL -> plaintext,
 *     SSL_write -> wbio -> uv_write), so the socket stays non-blocking and the
 *     protocol code only ever sees plaintext. Certificates are not verified:
 *     this is a benchmark against a server we started ourselves.
 *   - One process-wide SSL_CTX; one 64 KiB read buffer shared by all reads
 *     (everything runs on the loop thread), so an idle connection holds no
 *     read buffer. Plaintext input goes to a wd_buffer capped at 4 MiB: the
 *     protocol readers consume as they parse, so only a stalled consumer hits
 *     the cap, and that closes the connection instead of growing.
 *   - Each write is one heap block (uv_write_t + bytes) freed in its
 *     callback: memory per connection is bounded by what the mode writes
 *     (at most one message in flight).
 *   - Closing is asynchronous: wl_conn_close() stops all callbacks but
 *     on_close, which runs from libuv's close callback, after which the
 *     object is freed. The owner may therefore call close from inside its
 *     own callbacks and keep using its own state until on_close.
 *   - A source address (127.0.0.x) is bound with IP_BIND_ADDRESS_NO_PORT so
 *     that the kernel picks the port at connect time per (src, dst) pair: more
 *     than one range of ephemeral ports for many connections to one server. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "wd-load.h"

#define INPUT_LIMIT (4u << 20)

struct wl_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect_req;
	bool tcp_inited;
	bool closing;
	bool up;                 /* on_connect delivered */
	int handles_open;
	SSL *ssl;
	BIO *rbio, *wbio;
	struct wd_buffer in;
	const struct wl_conn_callbacks *cb;
	void *ctx;
	char reason[96];
};

struct write_req {
	uv_write_t req;
	size_t len;
	char data[];
};

static SSL_CTX *client_ctx;
static size_t open_count;
static char read_buf[65536];

static struct {
	char host[256];
	struct sockaddr_storage addr;
	bool valid;
} addr_cache[4];

size_t wl_conn_open_count(void)
{
	return open_count;
}

static int resolve(const char *host, int port, struct sockaddr_storage *out)
{
	for (size_t i = 0; i < 4; i++) {
		if (addr_cache[i].valid && strcmp(addr_cache[i].host, host) == 0) {
			*out = addr_cache[i].addr;
			goto set_port;
		}
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	for (size_t i = 0; i < 4; i++) {
		if (!addr_cache[i].valid && strlen(host) < sizeof(addr_cache[i].host)) {
			strcpy(addr_cache[i].host, host);
			addr_cache[i].addr = *out;
			addr_cache[i].valid = true;
			break;
		}
	}
set_port:
	if (out->ss_family == AF_INET)
		((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	struct wl_conn *c = h->data;
	if (--c->handles_open > 0)
		return;
	open_count--;
	if (c->cb->on_close != NULL)
		c->cb->on_close(c, c->ctx, c->reason);
	if (c->ssl != NULL)
		SSL_free(c->ssl); /* frees both BIOs */
	wd_buffer_release(&c->in);
	free(c);
}

void wl_conn_close(struct wl_conn *c, const char *reason)
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	snprintf(c->reason, sizeof(c->reason), "%s", reason != NULL ? reason : "closed");
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	if (c->tcp_inited)
		uv_close((uv_handle_t *)&c->tcp, handle_closed);
}

static void write_done(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct wl_conn *c = req->data;
	free(w);
	if (status < 0 && status != UV_ECANCELED)
		wl_conn_close(c, uv_strerror(status));
}

static int raw_write(struct wl_conn *c, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	struct write_req *w = malloc(sizeof(*w) + len);
	if (w == NULL) {
		wl_conn_close(c, "out of memory");
		return -1;
	}
	memcpy(w->data, data, len);
	w->len = len;
	w->req.data = c;
	uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
	int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_done);
	if (r < 0) {
		free(w);
		wl_conn_close(c, uv_strerror(r));
		return -1;
	}
	return 0;
}

/* move what TLS produced for the network to the socket */
static int flush_wbio(struct wl_conn *c)
{
	size_t pending = BIO_ctrl_pending(c->wbio);
	if (pending == 0)
		return 0;
	struct write_req *w = malloc(sizeof(*w) + pending);
	if (w == NULL) {
		wl_conn_close(c, "out of memory");
		return -1;
	}
	int n = BIO_read(c->wbio, w->data, (int)pending);
	if (n <= 0) {
		free(w);
		return 0;
	}
	w->len = (size_t)n;
	w->req.data = c;
	uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
	int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_done);
	if (r < 0) {
		free(w);
		wl_conn_close(c, uv_strerror(r));
		return -1;
	}
	return 0;
}

static void deliver_connect(struct wl_conn *c)
{
	c->up = true;
	if (c->cb->on_connect != NULL)
		c->cb->on_connect(c, c->ctx);
}

/* drive the TLS state machine after network input arrived */
static void tls_pump(struct wl_conn *c)
{
	if (!SSL_is_init_finished(c->ssl)) {
		int r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int err = SSL_get_error(c->ssl, r);
			flush_wbio(c);
			if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
				wl_conn_close(c, "TLS handshake failed");
			return;
		}
		flush_wbio(c);
		deliver_connect(c);
		if (c->closing)
			return;
	}
	for (;;) {
		uint8_t *p = wd_buffer_reserve(&c->in, 16384);
		if (p == NULL) {
			wl_conn_close(c, "input buffer overflow");
			return;
		}
		int n = SSL_read(c->ssl, p, 16384);
		if (n > 0) {
			wd_buffer_commit(&c->in, (size_t)n);
			continue;
		}
		int err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			break;
		if (err == SSL_ERROR_ZERO_RETURN) {
			wl_conn_close(c, "peer closed");
		} else {
			wl_conn_close(c, "TLS error");
		}
		break;
	}
	flush_wbio(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct wl_conn *c = s->data;
	if (c->closing)
		return;
	if (nread < 0) {
		wl_conn_close(c, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	if (c->ssl != NULL) {
		BIO_write(c->rbio, buf->base, (int)nread);
		tls_pump(c);
	} else if (wd_buffer_append(&c->in, buf->base, (size_t)nread) < 0) {
		wl_conn_close(c, "input buffer overflow");
	}
	if (!c->closing && c->up && c->in.len > 0 && c->cb->on_input != NULL)
		c->cb->on_input(c, c->ctx);
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct wl_conn *c = req->data;
	if (c->closing)
		return;
	if (status < 0) {
		wl_conn_close(c, uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	int r = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	if (r < 0) {
		wl_conn_close(c, uv_strerror(r));
		return;
	}
	if (c->ssl == NULL) {
		deliver_connect(c);
		return;
	}
	SSL_set_connect_state(c->ssl);
	tls_pump(c);
}

static void timer_cb(uv_timer_t *t)
{
	wl_conn_close(t->data, "timeout");
}

static SSL_CTX *get_ctx(void)
{
	if (client_ctx == NULL) {
		client_ctx = SSL_CTX_new(TLS_client_method());
		if (client_ctx != NULL) {
			SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
			SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
			/* idle mode holds up to 50,000 sessions: no 2 x 16 KiB
			   record buffers per idle one */
			SSL_CTX_set_mode(client_ctx, SSL_MODE_RELEASE_BUFFERS);
		}
	}
	return client_ctx;
}

struct wl_conn *wl_conn_open(const char *host, int port, bool tls,
			     const struct sockaddr *source,
			     const struct wl_conn_callbacks *cb, void *ctx)
{
	struct wl_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cb = cb;
	c->ctx = ctx;
	c->in.limit = INPUT_LIMIT;
	uv_timer_init(wl_loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 1;
	open_count++;

	struct sockaddr_storage addr;
	if (resolve(host, port, &addr) < 0) {
		wl_conn_close(c, "cannot resolve host");
		return c;
	}
	int r = uv_tcp_init_ex(wl_loop, &c->tcp, addr.ss_family);
	if (r < 0) {
		wl_conn_close(c, uv_strerror(r));
		return c;
	}
	c->tcp_inited = true;
	c->handles_open = 2;
	c->tcp.data = c;
	if (source != NULL) {
		uv_os_fd_t fd;
		int one = 1;
		if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		r = uv_tcp_bind(&c->tcp, source, 0);
		if (r < 0) {
			wl_conn_close(c, uv_strerror(r));
			return c;
		}
	}
	if (tls) {
		SSL_CTX *sctx = get_ctx();
		c->ssl = sctx != NULL ? SSL_new(sctx) : NULL;
		if (c->ssl == NULL) {
			wl_conn_close(c, "TLS setup failed");
			return c;
		}
		c->rbio = BIO_new(BIO_s_mem());
		c->wbio = BIO_new(BIO_s_mem());
		SSL_set_bio(c->ssl, c->rbio, c->wbio);
	}
	c->connect_req.data = c;
	r = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&addr, connect_cb);
	if (r < 0)
		wl_conn_close(c, uv_strerror(r));
	return c;
}

const uint8_t *wl_conn_input(struct wl_conn *c, size_t *len_r)
{
	*len_r = c->in.len;
	return wd_buffer_bytes(&c->in);
}

void wl_conn_consume(struct wl_conn *c, size_t n)
{
	wd_buffer_consume(&c->in, n);
	if (c->in.len == 0)
		wd_buffer_release(&c->in);
}

int wl_conn_write(struct wl_conn *c, const void *data, size_t len)
{
	if (c->closing || !c->up)
		return -1;
	if (c->ssl == NULL)
		return raw_write(c, data, len);
	const uint8_t *p = data;
	while (len > 0) {
		int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
		int n = SSL_write(c->ssl, p, chunk);
		if (n <= 0) {
			wl_conn_close(c, "TLS write failed");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return flush_wbio(c);
}

int wl_conn_printf(struct wl_conn *c, const char *fmt, ...)
{
	char small[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return wl_conn_write(c, small, (size_t)n);
	char *big = malloc((size_t)n + 1);
	if (big == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int r = wl_conn_write(c, big, (size_t)n);
	free(big);
	return r;
}

void wl_conn_timeout(struct wl_conn *c, double seconds)
{
	if (c->closing)
		return;
	if (seconds <= 0) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(&c->timer, timer_cb, (uint64_t)(seconds * 1000.0), 0);
}

void wl_transport_cleanup(void)
{
	if (client_ctx != NULL)
		SSL_CTX_free(client_ctx);
	client_ctx = NULL;
}

int wl_conn_take_line(struct wl_conn *c, char *buf, size_t size)
{
	const uint8_t *data = wd_buffer_bytes(&c->in);
	const uint8_t *lf = memchr(data, '\n', c->in.len);
	if (lf == NULL)
		return c->in.len > 65536 ? -1 : 0;
	size_t n = (size_t)(lf - data);
	size_t take = n + 1;
	if (n > 0 && data[n - 1] == '\r')
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(buf, data, n);
	buf[n] = '\0';
	wl_conn_consume(c, take);
	return 1;
}
