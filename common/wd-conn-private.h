#ifndef WD_CONN_PRIVATE_H
#define WD_CONN_PRIVATE_H

/* Transport layers of a connection (STYLE.md example 3: a vtable per thing
 * that has more than one implementation). Layers are stacked bottom-up
 * (index 0 is next to the socket): TLS, then DEFLATE.
 *
 * decode: bytes from below go in (the layer keeps what it cannot use yet);
 *   decoded bytes are appended to `up` while up->len < up_limit; bytes that
 *   must travel back down (TLS handshake records, alerts) are appended to
 *   `down`. *pending_r tells whether decoded output remains inside the layer
 *   (call again with no input once `up` has room). Returns WD_OK or WD_ERROR.
 *   A TLS close_notify from the peer is reported as WD_OK with *eof_r set.
 * encode: bytes from above are encoded and appended to `down`; `flush` ends a
 *   batch (DEFLATE: Z_SYNC_FLUSH). */

#include "wd-buffer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct wd_conn_layer;

struct wd_conn_layer_vfuncs {
	const char *name;
	int (*decode)(struct wd_conn_layer *layer, const uint8_t *in, size_t in_len,
		      struct wd_buffer *up, size_t up_limit, struct wd_buffer *down,
		      bool *pending_r, bool *eof_r, const char **error_r);
	int (*encode)(struct wd_conn_layer *layer, const uint8_t *in, size_t in_len, bool flush,
		      struct wd_buffer *down, const char **error_r);
	/* Bytes of our own buffers the layer holds (library state not counted). */
	size_t (*buffer_memory)(const struct wd_conn_layer *layer);
	void (*destroy)(struct wd_conn_layer *layer);
};

struct wd_conn_layer {
	const struct wd_conn_layer_vfuncs *v;
};

/* Connection creation, for the listener. The new connection has accepted
   from `server`; with `tls` it starts with a TLS layer; with expect_proxy it
   first reads a PROXY header (wd-proxy-protocol.h) and calls `ready` once the
   header is in (or closes the connection when it is bad or does not arrive in
   proxy_timeout_ms); without, `ready` is called at once. Reading starts
   immediately. */
struct wd_conn;
struct wd_tls_context;
struct wd_conn_limits;
typedef void wd__conn_ready_fn(struct wd_conn *conn, void *context);
struct wd_conn *wd__conn_accept(uv_stream_t *server, const struct wd_conn_limits *limits,
				struct wd_tls_context *tls, bool expect_proxy,
				unsigned proxy_timeout_ms, wd__conn_ready_fn *ready,
				void *ready_context, const char **error_r);

/* Called once when the connection is gone, before the engine's on_close (the
   listener's per-address count). */
typedef void wd__conn_release_fn(struct wd_conn *conn, void *context);
void wd__conn_set_release(struct wd_conn *conn, wd__conn_release_fn *fn, void *context);

struct ssl_ctx_st;
struct wd_conn_layer *wd__conn_tls_layer_create(struct ssl_ctx_st *ssl_ctx, const char **error_r);
const char *wd__conn_tls_layer_version(const struct wd_conn_layer *layer);
const char *wd__conn_tls_layer_cipher(const struct wd_conn_layer *layer);
struct wd_conn_layer *wd__conn_deflate_layer_create(int window_bits, int mem_level,
						     const char **error_r);

#endif
