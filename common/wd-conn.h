#ifndef WD_CONN_H
#define WD_CONN_H

/* The connection layer shared by wd-server (IMAP, POP3, LMTP) and anything
 * else that speaks a line protocol over TCP (DESIGN.md §4).
 *
 * A wd_conn is one accepted TCP connection on a libuv loop with a stack of
 * transport layers between the socket and the protocol engine:
 *
 *     socket  <->  [TLS]  <->  [DEFLATE]  <->  protocol engine
 *
 * TLS is present from the start on implicit-TLS listeners or added in place by
 * wd_conn_start_tls() (STARTTLS); DEFLATE is added by wd_conn_start_deflate()
 * (IMAP COMPRESS, RFC 4978). The engine sees plaintext only.
 *
 * Input: the engine is told through on_input that plaintext is buffered; it
 * looks at wd_conn_input() and consumes what it parsed with wd_conn_consume().
 * Bytes it leaves stay buffered. Reading from the socket stops while the
 * buffered input is at the input limit, while output is above its high
 * watermark, or while the engine paused input; it resumes by itself. When the
 * buffer is empty its memory is released: an idle connection holds no read
 * buffer (reads land in one shared per-thread buffer).
 *
 * Output: wd_conn_write() queues plaintext; wd_conn_flush() ends a batch: the
 * batch goes through the layers (DEFLATE with Z_SYNC_FLUSH) and to the socket.
 * wd_conn_output_full() is true above the high watermark: the engine should
 * park the command (WAIT_OUTPUT) until on_drain says it fell below the low
 * watermark. Output past the hard limit closes the connection, and so does
 * output that stays above the high watermark for write_timeout_ms (a peer
 * that does not read).
 *
 * Lifetime: callbacks run on the loop thread only. wd_conn_close() stops
 * reading, lets queued output drain (bounded by a timeout) and closes;
 * on_close is called once, and the object is freed when the last reference is
 * dropped (wd_conn_ref/unref) after that, never inside a callback of its own. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct wd_conn;
struct wd_tls_context;

struct wd_conn_callbacks {
	/* Plaintext input is buffered (may be called again with nothing new). */
	void (*on_input)(struct wd_conn *conn, void *context);
	/* Output fell below the low watermark after having been above the high one. */
	void (*on_drain)(struct wd_conn *conn, void *context);
	/* The connection is closed; `reason` says why ("peer closed", an error...).
	   Called exactly once; the engine drops its reference here. */
	void (*on_close)(struct wd_conn *conn, void *context, const char *reason);
};

struct wd_conn_limits {
	size_t input_max;       /* buffered plaintext input; reading stops there (64 KiB) */
	size_t output_high;     /* wd_conn_output_full() above this (64 KiB) */
	size_t output_low;      /* on_drain below this (16 KiB) */
	size_t output_max;      /* hard cap; past it the connection is closed (16 MiB) */
	unsigned close_timeout_ms; /* how long close waits for queued output (5 s) */
	/* output above output_high must fall below output_low within this, or
	   the peer is not reading and the connection is closed (300 s; 0 = never) */
	unsigned write_timeout_ms;
};

void wd_conn_limits_default(struct wd_conn_limits *limits);

/* Connections are created by a wd_listener (wd-listener.h), which hands them
   to its accept callback; the callback sets the engine's callbacks. Input
   that arrived before is dispatched after the accept callback returns (or,
   when callbacks are set later, at wd_conn_resume_input()). */
void wd_conn_set_callbacks(struct wd_conn *conn, const struct wd_conn_callbacks *callbacks,
			   void *context);
void wd_conn_ref(struct wd_conn *conn);
void wd_conn_unref(struct wd_conn **conn);

/* Input. */
const uint8_t *wd_conn_input(struct wd_conn *conn, size_t *len_r);
void wd_conn_consume(struct wd_conn *conn, size_t n);
void wd_conn_pause_input(struct wd_conn *conn);
void wd_conn_resume_input(struct wd_conn *conn);

/* Output. wd_conn_write fails only when the connection is closing or the hard
   output cap was hit (the connection is then being closed). */
int wd_conn_write(struct wd_conn *conn, const void *data, size_t len);
int wd_conn_write_str(struct wd_conn *conn, const char *str);
int wd_conn_flush(struct wd_conn *conn);
bool wd_conn_output_full(const struct wd_conn *conn);
/* Plaintext bytes written but not yet handed to the kernel. */
size_t wd_conn_output_queued(const struct wd_conn *conn);

/* STARTTLS: call after the engine has queued its "go ahead" reply; that reply
   is sent in plaintext, everything after it through TLS. Fails (and changes
   nothing) when plaintext input is still buffered after the STARTTLS command:
   such bytes were sent before the handshake and must never be read as if they
   came through TLS (the STARTTLS command-injection class of bug), or when TLS
   or DEFLATE is already on. */
int wd_conn_start_tls(struct wd_conn *conn, struct wd_tls_context *tls, const char **error_r);
/* COMPRESS=DEFLATE: raw deflate both ways (RFC 4978). window_bits 9..15 and
   mem_level 1..9 size our compressor; the decompressor accepts any window. The
   engine's OK reply must be queued before this call (it is sent uncompressed). */
int wd_conn_start_deflate(struct wd_conn *conn, int window_bits, int mem_level, const char **error_r);

/* Close after queued output is sent (or the close timeout passes). */
void wd_conn_close(struct wd_conn *conn, const char *reason);

/* One timer per connection, created on first use; 0 ms disarms it. */
typedef void wd_conn_timeout_fn(struct wd_conn *conn, void *context);
int wd_conn_set_timeout(struct wd_conn *conn, unsigned ms, wd_conn_timeout_fn *fn);

/* Introspection. */
bool wd_conn_is_tls(const struct wd_conn *conn);
bool wd_conn_is_compressed(const struct wd_conn *conn);
bool wd_conn_is_closed(const struct wd_conn *conn);
/* TLS version and cipher once the handshake is done, else NULL. */
const char *wd_conn_tls_version(const struct wd_conn *conn);
const char *wd_conn_tls_cipher(const struct wd_conn *conn);
/* Peer and local address, as given by the PROXY header when one was used. */
const struct sockaddr_storage *wd_conn_peer(const struct wd_conn *conn);
const struct sockaddr_storage *wd_conn_local(const struct wd_conn *conn);
/* "ip" or "[ipv6]" text of the peer (port not included). */
const char *wd_conn_peer_ip(const struct wd_conn *conn);
/* Bytes held in buffers owned by this connection (not counting TLS/zlib state). */
size_t wd_conn_buffer_memory(const struct wd_conn *conn);

#endif
