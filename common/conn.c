/* Connection core: libuv TCP handle, the layer stack, input/output buffers,
 * watermarks, PROXY header phase and the close protocol. See wd-conn.h for
 * the contract and wd-conn-private.h for the layer vtable.
 *
 * Reads land in one per-thread 64 KiB buffer (loops are one per thread), are
 * decoded through the layers at once, and only the plaintext the engine has
 * not consumed yet is kept, in `in`, whose memory is released when it empties.
 *
 * Reading is on exactly when want_reading() says so; every state change calls
 * update_reading(). Input dispatch is a loop (dispatch_input) that never
 * re-enters itself: calls made from inside on_input that would dispatch again
 * set `redispatch` instead.
 *
 * Lifetime: the connection holds one reference on itself while open. Closing
 * closes the libuv handles; when the last handle's close callback runs,
 * on_close is called and the self reference dropped. Engines and async jobs
 * hold their own references. */
#include "wd-conn.h"
#include "wd-conn-private.h"
#include "wd-log.h"
#include "wd-proxy-protocol.h"
#include "wd-result.h"
#include "wd-tls.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUFFER_SIZE (64 * 1024)
/* Plaintext batches larger than this are encoded without waiting for flush. */
#define AUTO_ENCODE_SIZE (16 * 1024)
#define MAX_LAYERS 2

struct wd_conn {
	uv_tcp_t tcp;
	uv_timer_t *timer;
	uv_timer_t *write_timer; /* the drain deadline, made when output first backs up */
	uv_loop_t *loop;
	int refcount;
	unsigned handles_open;

	struct wd_conn_limits limits;
	struct wd_conn_callbacks cb;
	void *cb_context;
	wd_conn_timeout_fn *timeout_fn;

	struct wd_conn_layer *layers[MAX_LAYERS];
	unsigned layer_count;
	struct wd_conn_layer *tls_layer;

	struct wd_buffer in;        /* decoded input for the engine */
	struct wd_buffer out_plain; /* current output batch, not yet encoded */
	size_t out_in_flight;       /* encoded bytes handed to uv_write, not completed */
	uint64_t consumed_total;

	bool reading;
	bool paused_by_engine;
	bool output_above_high;
	bool layers_pending;
	bool dispatching;
	bool redispatch;
	bool closing;
	bool closed;
	bool encoded_unflushed; /* a batch went through the layers without a flush */

	/* PROXY header phase */
	bool expect_proxy;
	struct wd_buffer proxy_buf;
	wd__conn_ready_fn *ready;
	void *ready_context;

	/* called once when the connection is gone (the listener's per-address count) */
	wd__conn_release_fn *release;
	void *release_context;

	const char *close_reason;
	char reason_buf[160];
	struct sockaddr_storage peer, local;
	char peer_ip[INET6_ADDRSTRLEN + 2];
};

struct conn_write_req {
	uv_write_t req;
	struct wd_conn *conn;
	size_t len;
	char data[];
};

static void conn_close_now(struct wd_conn *conn);
static void dispatch_input(struct wd_conn *conn);

void wd_conn_limits_default(struct wd_conn_limits *limits)
{
	limits->input_max = 64 * 1024;
	limits->output_high = 64 * 1024;
	limits->output_low = 16 * 1024;
	limits->output_max = 16 * 1024 * 1024;
	limits->close_timeout_ms = 5000;
	limits->write_timeout_ms = 300000;
}

static void update_peer_ip(struct wd_conn *conn)
{
	const struct sockaddr_storage *ss = &conn->peer;
	conn->peer_ip[0] = '\0';
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, conn->peer_ip,
			  sizeof(conn->peer_ip));
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, conn->peer_ip,
			  sizeof(conn->peer_ip));
	}
}

/* ---- reading state ---- */

static bool want_reading(const struct wd_conn *conn)
{
	return !conn->closing && !conn->paused_by_engine && !conn->output_above_high &&
	       !conn->layers_pending && conn->in.len < conn->limits.input_max;
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	/* One buffer per loop thread: the data is decoded before the callback
	   returns, so connections never own a read buffer while waiting. */
	static _Thread_local char read_buffer[READ_BUFFER_SIZE];
	(void)handle;
	(void)suggested;
	buf->base = read_buffer;
	buf->len = sizeof(read_buffer);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void update_reading(struct wd_conn *conn)
{
	if (conn->closed)
		return;
	bool want = want_reading(conn);
	if (want && !conn->reading) {
		if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb) == 0)
			conn->reading = true;
	} else if (!want && conn->reading) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->reading = false;
	}
}

/* ---- output ---- */

/* The drain deadline: output that went above the high watermark must fall
   below the low one within limits.write_timeout_ms, or the peer is not
   reading and the connection is closed (no BYE: it would not be read). */
static void write_timeout_cb(uv_timer_t *timer)
{
	struct wd_conn *conn = timer->data;
	wd_conn_ref(conn);
	snprintf(conn->reason_buf, sizeof(conn->reason_buf),
		 "write timeout: the client read no output for %u s",
		 conn->limits.write_timeout_ms / 1000);
	conn->closing = true;
	conn->close_reason = conn->reason_buf;
	conn_close_now(conn);
	wd_conn_unref(&conn);
}

static void write_deadline_start(struct wd_conn *conn)
{
	if (conn->limits.write_timeout_ms == 0 || conn->closed)
		return;
	if (conn->write_timer == NULL) {
		conn->write_timer = malloc(sizeof(*conn->write_timer));
		if (conn->write_timer == NULL ||
		    uv_timer_init(conn->loop, conn->write_timer) < 0) {
			free(conn->write_timer);
			conn->write_timer = NULL;
			return;
		}
		conn->write_timer->data = conn;
		conn->handles_open++;
	}
	uv_timer_start(conn->write_timer, write_timeout_cb, conn->limits.write_timeout_ms, 0);
}

static void write_cb(uv_write_t *req, int status)
{
	struct conn_write_req *wreq = (struct conn_write_req *)req;
	struct wd_conn *conn = wreq->conn;
	conn->out_in_flight -= wreq->len;
	free(wreq);
	if (status < 0) {
		if (status != UV_ECANCELED && !conn->closing) {
			snprintf(conn->reason_buf, sizeof(conn->reason_buf), "write failed: %s",
				 uv_strerror(status));
			wd_conn_close(conn, conn->reason_buf);
		}
		conn_close_now(conn);
		wd_conn_unref(&conn);
		return;
	}
	if (conn->closing) {
		if (conn->out_in_flight == 0)
			conn_close_now(conn);
	} else if (conn->output_above_high &&
		   conn->out_in_flight + conn->out_plain.len <= conn->limits.output_low) {
		conn->output_above_high = false;
		if (conn->write_timer != NULL)
			uv_timer_stop(conn->write_timer);
		update_reading(conn);
		if (conn->cb.on_drain != NULL)
			conn->cb.on_drain(conn, conn->cb_context);
	}
	wd_conn_unref(&conn);
}

static void note_output_level(struct wd_conn *conn)
{
	if (!conn->output_above_high &&
	    conn->out_in_flight + conn->out_plain.len > conn->limits.output_high) {
		conn->output_above_high = true;
		write_deadline_start(conn);
		update_reading(conn);
	}
}

/* Hand encoded bytes to the socket: try a direct write first, queue the rest. */
static void send_wire(struct wd_conn *conn, const uint8_t *data, size_t len)
{
	if (conn->closed || len == 0)
		return;
	if (conn->out_in_flight == 0) {
		uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&conn->tcp, &buf, 1);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && n != UV_EAGAIN) {
			snprintf(conn->reason_buf, sizeof(conn->reason_buf), "write failed: %s",
				 uv_strerror(n));
			conn->closing = true;
			conn->close_reason = conn->reason_buf;
			conn_close_now(conn);
			return;
		}
		if (len == 0)
			return;
	}
	struct conn_write_req *wreq = malloc(sizeof(*wreq) + len);
	if (wreq == NULL) {
		conn->closing = true;
		conn->close_reason = "out of memory";
		conn_close_now(conn);
		return;
	}
	memcpy(wreq->data, data, len);
	wreq->conn = conn;
	wreq->len = len;
	uv_buf_t buf = uv_buf_init(wreq->data, (unsigned)len);
	wd_conn_ref(conn);
	if (uv_write(&wreq->req, (uv_stream_t *)&conn->tcp, &buf, 1, write_cb) < 0) {
		free(wreq);
		conn->closing = true;
		conn->close_reason = "write failed";
		conn_close_now(conn);
		wd_conn_unref(&conn);
		return;
	}
	conn->out_in_flight += len;
	note_output_level(conn);
}

/* Encode `data` through layers [0, top) (top-down) and send it. */
static int encode_down(struct wd_conn *conn, unsigned top, const uint8_t *data, size_t len,
		       bool flush)
{
	struct wd_buffer bufs[2] = { WD_BUFFER_INIT, WD_BUFFER_INIT };
	const char *error;
	for (unsigned i = top; i-- > 0;) {
		struct wd_buffer *down = &bufs[i % 2];
		wd_buffer_clear(down);
		if (conn->layers[i]->v->encode(conn->layers[i], data, len, flush, down, &error) < 0) {
			snprintf(conn->reason_buf, sizeof(conn->reason_buf), "%s: %s",
				 conn->layers[i]->v->name, error);
			wd_buffer_release(&bufs[0]);
			wd_buffer_release(&bufs[1]);
			conn->closing = true;
			conn->close_reason = conn->reason_buf;
			conn_close_now(conn);
			return WD_ERROR;
		}
		data = wd_buffer_bytes(down);
		len = down->len;
	}
	send_wire(conn, data, len);
	wd_buffer_release(&bufs[0]);
	wd_buffer_release(&bufs[1]);
	return WD_OK;
}

static int encode_batch(struct wd_conn *conn, bool flush)
{
	if (conn->out_plain.len == 0 && !(flush && conn->encoded_unflushed))
		return WD_OK;
	conn->encoded_unflushed = !flush && conn->layer_count > 0;
	int ret = encode_down(conn, conn->layer_count, wd_buffer_bytes(&conn->out_plain),
			      conn->out_plain.len, flush);
	wd_buffer_release(&conn->out_plain);
	return ret;
}

int wd_conn_write(struct wd_conn *conn, const void *data, size_t len)
{
	if (conn->closing)
		return WD_ERROR;
	if (conn->out_in_flight + conn->out_plain.len + len > conn->limits.output_max) {
		wd_conn_close(conn, "output buffer limit exceeded");
		return WD_ERROR;
	}
	if (wd_buffer_append(&conn->out_plain, data, len) < 0) {
		wd_conn_close(conn, "out of memory");
		return WD_ERROR;
	}
	if (conn->out_plain.len >= AUTO_ENCODE_SIZE && encode_batch(conn, false) < 0)
		return WD_ERROR;
	note_output_level(conn);
	return WD_OK;
}

int wd_conn_write_str(struct wd_conn *conn, const char *str)
{
	return wd_conn_write(conn, str, strlen(str));
}

int wd_conn_flush(struct wd_conn *conn)
{
	if (conn->closed)
		return WD_ERROR;
	return encode_batch(conn, true);
}

bool wd_conn_output_full(const struct wd_conn *conn)
{
	return conn->output_above_high;
}

size_t wd_conn_output_queued(const struct wd_conn *conn)
{
	return conn->out_in_flight + conn->out_plain.len;
}

/* ---- input ---- */

/* Run `data` through the layers bottom-up into conn->in. */
static int decode_up(struct wd_conn *conn, const uint8_t *data, size_t len, bool *eof_r)
{
	*eof_r = false;
	if (conn->layer_count == 0) {
		if (wd_buffer_append(&conn->in, data, len) < 0) {
			conn->close_reason = "out of memory";
			return WD_ERROR;
		}
		return WD_OK;
	}
	struct wd_buffer mid = WD_BUFFER_INIT;
	struct wd_buffer down = WD_BUFFER_INIT;
	bool any_pending = false;
	int ret = WD_OK;
	for (unsigned i = 0; i < conn->layer_count; i++) {
		bool last = i + 1 == conn->layer_count;
		struct wd_buffer next = WD_BUFFER_INIT;
		struct wd_buffer *up = last ? &conn->in : &next;
		size_t limit = last ? conn->limits.input_max : SIZE_MAX;
		bool pending = false, eof = false;
		const char *error = NULL;
		wd_buffer_clear(&down);
		ret = conn->layers[i]->v->decode(conn->layers[i], data, len, up, limit, &down,
						 &pending, &eof, &error);
		if (down.len > 0 && !conn->closed)
			encode_down(conn, i, wd_buffer_bytes(&down), down.len, true);
		wd_buffer_release(&mid);
		mid = next;
		if (ret < 0) {
			snprintf(conn->reason_buf, sizeof(conn->reason_buf), "%s: %s",
				 conn->layers[i]->v->name, error);
			conn->close_reason = conn->reason_buf;
			break;
		}
		any_pending |= pending;
		if (eof)
			*eof_r = true;
		data = wd_buffer_bytes(&mid);
		len = mid.len;
	}
	wd_buffer_release(&mid);
	wd_buffer_release(&down);
	conn->layers_pending = any_pending;
	return ret;
}

static void receive(struct wd_conn *conn, const uint8_t *data, size_t len)
{
	if (conn->expect_proxy) {
		struct wd_proxy_info info;
		size_t consumed;
		const char *error;
		if (wd_buffer_append(&conn->proxy_buf, data, len) < 0) {
			wd_conn_close(conn, "PROXY header too long");
			return;
		}
		int ret = wd_proxy_parse(wd_buffer_bytes(&conn->proxy_buf), conn->proxy_buf.len,
					 &info, &consumed, &error);
		if (ret == WD_AGAIN)
			return;
		if (ret < 0) {
			snprintf(conn->reason_buf, sizeof(conn->reason_buf), "bad PROXY header: %s",
				 error);
			wd_conn_close(conn, conn->reason_buf);
			return;
		}
		if (info.has_addresses) {
			conn->peer = info.source;
			conn->local = info.destination;
			update_peer_ip(conn);
		}
		conn->expect_proxy = false;
		wd_conn_set_timeout(conn, 0, NULL);
		wd_buffer_consume(&conn->proxy_buf, consumed);
		struct wd_buffer rest = conn->proxy_buf;
		conn->proxy_buf = (struct wd_buffer)WD_BUFFER_INIT;
		if (rest.len > 0)
			receive(conn, wd_buffer_bytes(&rest), rest.len);
		wd_buffer_release(&rest);
		if (conn->ready != NULL && !conn->closing)
			conn->ready(conn, conn->ready_context);
		return;
	}
	bool eof;
	if (decode_up(conn, data, len, &eof) < 0) {
		wd_conn_close(conn, conn->close_reason);
		return;
	}
	if (eof)
		wd_conn_close(conn, "peer closed TLS");
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct wd_conn *conn = stream->data;
	if (nread == 0)
		return;
	wd_conn_ref(conn);
	if (nread < 0) {
		if (nread == UV_EOF) {
			wd_conn_close(conn, "peer closed");
		} else {
			snprintf(conn->reason_buf, sizeof(conn->reason_buf), "read failed: %s",
				 uv_strerror((int)nread));
			wd_conn_close(conn, conn->reason_buf);
		}
	} else {
		receive(conn, (const uint8_t *)buf->base, (size_t)nread);
		dispatch_input(conn);
		update_reading(conn);
	}
	wd_conn_unref(&conn);
}

static void dispatch_input(struct wd_conn *conn)
{
	if (conn->dispatching) {
		conn->redispatch = true;
		return;
	}
	wd_conn_ref(conn);
	conn->dispatching = true;
	for (;;) {
		conn->redispatch = false;
		if (conn->layers_pending && conn->in.len < conn->limits.input_max &&
		    !conn->closing) {
			bool eof;
			if (decode_up(conn, NULL, 0, &eof) < 0 || eof) {
				wd_conn_close(conn, eof ? "peer closed TLS" : conn->close_reason);
				break;
			}
		}
		if (conn->closing || conn->paused_by_engine || conn->in.len == 0 ||
		    conn->cb.on_input == NULL || conn->expect_proxy)
			break;
		uint64_t consumed_before = conn->consumed_total;
		conn->cb.on_input(conn, conn->cb_context);
		bool progress = conn->consumed_total != consumed_before || conn->redispatch;
		if (!progress)
			break;
	}
	conn->dispatching = false;
	update_reading(conn);
	wd_conn_unref(&conn);
}

const uint8_t *wd_conn_input(struct wd_conn *conn, size_t *len_r)
{
	*len_r = conn->in.len;
	return wd_buffer_bytes(&conn->in);
}

void wd_conn_consume(struct wd_conn *conn, size_t n)
{
	wd_assert(n <= conn->in.len);
	wd_buffer_consume(&conn->in, n);
	conn->consumed_total += n;
	if (conn->in.len == 0)
		wd_buffer_release(&conn->in);
	if (!conn->dispatching)
		update_reading(conn);
}

void wd_conn_pause_input(struct wd_conn *conn)
{
	conn->paused_by_engine = true;
	update_reading(conn);
}

void wd_conn_resume_input(struct wd_conn *conn)
{
	conn->paused_by_engine = false;
	if (conn->closed)
		return;
	dispatch_input(conn);
}

/* ---- layers ---- */

static int push_layer(struct wd_conn *conn, struct wd_conn_layer *layer)
{
	wd_assert(conn->layer_count < MAX_LAYERS);
	conn->layers[conn->layer_count++] = layer;
	return WD_OK;
}

int wd_conn_start_tls(struct wd_conn *conn, struct wd_tls_context *tls, const char **error_r)
{
	if (conn->layer_count > 0) {
		*error_r = conn->tls_layer != NULL ? "TLS is already active" :
						     "TLS cannot start after compression";
		return WD_ERROR;
	}
	if (conn->in.len > 0) {
		*error_r = "plaintext data was pipelined after STARTTLS";
		return WD_ERROR;
	}
	/* The reply to STARTTLS must leave in plaintext, before the layer exists. */
	if (wd_conn_flush(conn) < 0) {
		*error_r = "connection closed";
		return WD_ERROR;
	}
	struct wd_conn_layer *layer =
		wd__conn_tls_layer_create(wd_tls_context_ssl_ctx(tls), error_r);
	if (layer == NULL)
		return WD_ERROR;
	conn->tls_layer = layer;
	return push_layer(conn, layer);
}

int wd_conn_start_deflate(struct wd_conn *conn, int window_bits, int mem_level,
			  const char **error_r)
{
	for (unsigned i = 0; i < conn->layer_count; i++) {
		if (conn->layers[i] != conn->tls_layer) {
			*error_r = "compression is already active";
			return WD_ERROR;
		}
	}
	if (wd_conn_flush(conn) < 0) {
		*error_r = "connection closed";
		return WD_ERROR;
	}
	struct wd_conn_layer *layer = wd__conn_deflate_layer_create(window_bits, mem_level, error_r);
	if (layer == NULL)
		return WD_ERROR;
	/* Input already buffered was sent before COMPRESS took effect: the client
	   must wait for our OK, so anything here is a protocol violation the
	   engine sees as garbage; it stays plaintext. */
	return push_layer(conn, layer);
}

/* ---- lifetime ---- */

static void conn_free(struct wd_conn *conn)
{
	for (unsigned i = 0; i < conn->layer_count; i++)
		conn->layers[i]->v->destroy(conn->layers[i]);
	wd_buffer_release(&conn->in);
	wd_buffer_release(&conn->out_plain);
	wd_buffer_release(&conn->proxy_buf);
	free(conn);
}

void wd_conn_ref(struct wd_conn *conn)
{
	conn->refcount++;
}

void wd_conn_unref(struct wd_conn **_conn)
{
	struct wd_conn *conn = *_conn;
	*_conn = NULL;
	wd_assert(conn->refcount > 0);
	if (--conn->refcount == 0) {
		wd_assert(conn->closed && conn->handles_open == 0);
		conn_free(conn);
	}
}

static void handle_close_cb(uv_handle_t *handle)
{
	struct wd_conn *conn = handle->data;
	if (handle != (uv_handle_t *)&conn->tcp)
		free(handle);
	if (--conn->handles_open > 0)
		return;
	if (conn->release != NULL)
		conn->release(conn, conn->release_context);
	if (conn->cb.on_close != NULL)
		conn->cb.on_close(conn, conn->cb_context, conn->close_reason);
	wd_conn_unref(&conn);
}

static void conn_close_now(struct wd_conn *conn)
{
	if (conn->closed)
		return;
	conn->closed = true;
	conn->reading = false;
	if (conn->timer != NULL) {
		uv_close((uv_handle_t *)conn->timer, handle_close_cb);
		conn->timer = NULL;
	}
	if (conn->write_timer != NULL) {
		uv_close((uv_handle_t *)conn->write_timer, handle_close_cb);
		conn->write_timer = NULL;
	}
	uv_close((uv_handle_t *)&conn->tcp, handle_close_cb);
}

static void close_timeout_cb(struct wd_conn *conn, void *context)
{
	(void)context;
	conn_close_now(conn);
}

void wd_conn_close(struct wd_conn *conn, const char *reason)
{
	if (conn->closing)
		return;
	conn->closing = true;
	conn->close_reason = reason != NULL ? reason : "closed";
	if (conn->reading) {
		uv_read_stop((uv_stream_t *)&conn->tcp);
		conn->reading = false;
	}
	if (!conn->closed)
		encode_batch(conn, true);
	if (conn->closed)
		return;
	if (conn->out_in_flight == 0) {
		conn_close_now(conn);
		return;
	}
	conn->timeout_fn = NULL;
	wd_conn_set_timeout(conn, conn->limits.close_timeout_ms, close_timeout_cb);
}

static void timer_cb(uv_timer_t *timer)
{
	struct wd_conn *conn = timer->data;
	wd_conn_timeout_fn *fn = conn->timeout_fn;
	if (fn == NULL)
		return;
	wd_conn_ref(conn);
	fn(conn, conn->cb_context);
	wd_conn_unref(&conn);
}

int wd_conn_set_timeout(struct wd_conn *conn, unsigned ms, wd_conn_timeout_fn *fn)
{
	if (conn->closed)
		return WD_ERROR;
	if (conn->closing && fn != close_timeout_cb)
		return WD_OK; /* the close timer has priority */
	if (ms == 0) {
		if (conn->timer != NULL)
			uv_timer_stop(conn->timer);
		conn->timeout_fn = NULL;
		return WD_OK;
	}
	if (conn->timer == NULL) {
		conn->timer = malloc(sizeof(*conn->timer));
		if (conn->timer == NULL || uv_timer_init(conn->loop, conn->timer) < 0) {
			free(conn->timer);
			conn->timer = NULL;
			return WD_ERROR;
		}
		conn->timer->data = conn;
		conn->handles_open++;
	}
	conn->timeout_fn = fn;
	uv_timer_start(conn->timer, timer_cb, ms, 0);
	return WD_OK;
}

static void proxy_timeout_cb(struct wd_conn *conn, void *context)
{
	(void)context;
	wd_conn_close(conn, "PROXY header timed out");
}

struct wd_conn *wd__conn_accept(uv_stream_t *server, const struct wd_conn_limits *limits,
				struct wd_tls_context *tls, bool expect_proxy,
				unsigned proxy_timeout_ms, wd__conn_ready_fn *ready,
				void *ready_context, const char **error_r)
{
	struct wd_conn *conn = calloc(1, sizeof(*conn));
	if (conn == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	conn->loop = server->loop;
	conn->refcount = 1;
	conn->limits = *limits;
	if (conn->limits.output_low > conn->limits.output_high)
		conn->limits.output_low = conn->limits.output_high;
	conn->proxy_buf.limit = WD_PROXY_V2_MAX_LEN;
	conn->ready = ready;
	conn->ready_context = ready_context;
	conn->expect_proxy = expect_proxy;
	uv_tcp_init(server->loop, &conn->tcp);
	conn->tcp.data = conn;
	conn->handles_open = 1;
	int ret = uv_accept(server, (uv_stream_t *)&conn->tcp);
	if (ret < 0) {
		*error_r = uv_strerror(ret);
		conn->closing = true;
		conn_close_now(conn);
		return NULL;
	}
	uv_tcp_nodelay(&conn->tcp, 1);
	int len = sizeof(conn->peer);
	uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer, &len);
	len = sizeof(conn->local);
	uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&conn->local, &len);
	update_peer_ip(conn);

	if (tls != NULL) {
		struct wd_conn_layer *layer =
			wd__conn_tls_layer_create(wd_tls_context_ssl_ctx(tls), error_r);
		if (layer == NULL) {
			conn->closing = true;
			conn_close_now(conn);
			return NULL;
		}
		conn->tls_layer = layer;
		push_layer(conn, layer);
	}
	wd_conn_ref(conn);
	if (expect_proxy)
		wd_conn_set_timeout(conn, proxy_timeout_ms, proxy_timeout_cb);
	update_reading(conn);
	if (!expect_proxy && ready != NULL)
		ready(conn, ready_context);
	struct wd_conn *result = conn;
	if (conn->closed) {
		*error_r = "closed by the engine";
		result = NULL;
	}
	/* drops the setup reference (and sets `conn` to NULL): the connection
	   lives on through its self reference */
	wd_conn_unref(&conn);
	return result;
}

void wd__conn_set_release(struct wd_conn *conn, wd__conn_release_fn *fn, void *context)
{
	conn->release = fn;
	conn->release_context = context;
}

void wd_conn_set_callbacks(struct wd_conn *conn, const struct wd_conn_callbacks *callbacks,
			   void *context)
{
	conn->cb = *callbacks;
	conn->cb_context = context;
}

/* ---- introspection ---- */

bool wd_conn_is_tls(const struct wd_conn *conn)
{
	return conn->tls_layer != NULL;
}

bool wd_conn_is_compressed(const struct wd_conn *conn)
{
	return conn->layer_count > (conn->tls_layer != NULL ? 1u : 0u);
}

bool wd_conn_is_closed(const struct wd_conn *conn)
{
	return conn->closing;
}

const char *wd_conn_tls_version(const struct wd_conn *conn)
{
	return conn->tls_layer == NULL ? NULL : wd__conn_tls_layer_version(conn->tls_layer);
}

const char *wd_conn_tls_cipher(const struct wd_conn *conn)
{
	return conn->tls_layer == NULL ? NULL : wd__conn_tls_layer_cipher(conn->tls_layer);
}

const struct sockaddr_storage *wd_conn_peer(const struct wd_conn *conn)
{
	return &conn->peer;
}

const struct sockaddr_storage *wd_conn_local(const struct wd_conn *conn)
{
	return &conn->local;
}

const char *wd_conn_peer_ip(const struct wd_conn *conn)
{
	return conn->peer_ip;
}

size_t wd_conn_buffer_memory(const struct wd_conn *conn)
{
	size_t total = conn->in.cap + conn->out_plain.cap + conn->proxy_buf.cap;
	for (unsigned i = 0; i < conn->layer_count; i++)
		total += conn->layers[i]->v->buffer_memory(conn->layers[i]);
	return total;
}
