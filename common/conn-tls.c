/* TLS transport layer (server side) over OpenSSL 3.
 *
 * OpenSSL talks to a custom BIO that reads ciphertext straight from the bytes
 * being decoded (no copy while whole records are available) and writes
 * ciphertext into the `down` buffer of the current call. Only a partial
 * record left over at the end of a read is copied, into `cipher_in`, and that
 * buffer is released as soon as it is empty; with SSL_MODE_RELEASE_BUFFERS on
 * the context an idle TLS connection keeps no record buffers.
 *
 * Plaintext written before the handshake has finished (an IMAPS greeting) is
 * held in `plain_pending` and sent when the handshake completes. */
#include "wd-conn-private.h"
#include "wd-result.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct tls_layer {
	struct wd_conn_layer layer;
	SSL *ssl;
	BIO *bio;
	struct wd_buffer cipher_in;     /* leftover ciphertext (partial record) */
	const uint8_t *feed;            /* ciphertext of the current decode call */
	size_t feed_len;
	struct wd_buffer *down;         /* ciphertext output of the current call */
	struct wd_buffer plain_pending; /* plaintext written before the handshake */
	bool handshake_done;
	char error[256];
};

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *bio, char *out, int size)
{
	struct tls_layer *tls = BIO_get_data(bio);
	BIO_clear_retry_flags(bio);
	size_t want = (size_t)size, n = 0;
	if (tls->cipher_in.len > 0) {
		n = tls->cipher_in.len < want ? tls->cipher_in.len : want;
		memcpy(out, wd_buffer_bytes(&tls->cipher_in), n);
		wd_buffer_consume(&tls->cipher_in, n);
	}
	if (n < want && tls->feed_len > 0) {
		size_t m = tls->feed_len < want - n ? tls->feed_len : want - n;
		memcpy(out + n, tls->feed, m);
		tls->feed += m;
		tls->feed_len -= m;
		n += m;
	}
	if (n == 0) {
		BIO_set_retry_read(bio);
		return -1;
	}
	return (int)n;
}

static int bio_write(BIO *bio, const char *data, int size)
{
	struct tls_layer *tls = BIO_get_data(bio);
	BIO_clear_retry_flags(bio);
	if (tls->down == NULL || wd_buffer_append(tls->down, data, (size_t)size) < 0)
		return -1;
	return size;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	(void)bio;
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int bio_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static void bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wd-conn");
	if (m == NULL)
		return;
	BIO_meth_set_read(m, bio_read);
	BIO_meth_set_write(m, bio_write);
	BIO_meth_set_ctrl(m, bio_ctrl);
	BIO_meth_set_create(m, bio_create);
	bio_method = m;
}

static const char *tls_error(struct tls_layer *tls, int ssl_error, const char *what)
{
	unsigned long code = ERR_get_error();
	if (code != 0) {
		char reason[200];
		ERR_error_string_n(code, reason, sizeof(reason));
		snprintf(tls->error, sizeof(tls->error), "%s failed: %s", what, reason);
	} else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
		snprintf(tls->error, sizeof(tls->error), "%s failed: unexpected end of stream", what);
	} else {
		snprintf(tls->error, sizeof(tls->error), "%s failed (SSL error %d)", what, ssl_error);
	}
	ERR_clear_error();
	return tls->error;
}

static int tls_write_plain(struct tls_layer *tls, const uint8_t *data, size_t len,
			   const char **error_r)
{
	while (len > 0) {
		int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
		ERR_clear_error();
		int n = SSL_write(tls->ssl, data, chunk);
		if (n <= 0) {
			*error_r = tls_error(tls, SSL_get_error(tls->ssl, n), "TLS write");
			return WD_ERROR;
		}
		data += n;
		len -= (size_t)n;
	}
	return WD_OK;
}

static void keep_leftover(struct tls_layer *tls)
{
	if (tls->feed_len > 0)
		wd_buffer_append(&tls->cipher_in, tls->feed, tls->feed_len);
	tls->feed = NULL;
	tls->feed_len = 0;
	if (tls->cipher_in.len == 0)
		wd_buffer_release(&tls->cipher_in);
}

static int tls_decode(struct wd_conn_layer *layer, const uint8_t *in, size_t in_len,
		      struct wd_buffer *up, size_t up_limit, struct wd_buffer *down,
		      bool *pending_r, bool *eof_r, const char **error_r)
{
	struct tls_layer *tls = (struct tls_layer *)layer;
	int ret = WD_OK;
	tls->feed = in;
	tls->feed_len = in_len;
	tls->down = down;
	*pending_r = false;
	*eof_r = false;

	if (!tls->handshake_done) {
		ERR_clear_error();
		int r = SSL_do_handshake(tls->ssl);
		if (r != 1) {
			int err = SSL_get_error(tls->ssl, r);
			if (err != SSL_ERROR_WANT_READ) {
				*error_r = tls_error(tls, err, "TLS handshake");
				ret = WD_ERROR;
			}
			goto out;
		}
		tls->handshake_done = true;
		if (tls->plain_pending.len > 0) {
			ret = tls_write_plain(tls, wd_buffer_bytes(&tls->plain_pending),
					      tls->plain_pending.len, error_r);
			wd_buffer_release(&tls->plain_pending);
			if (ret < 0)
				goto out;
		}
	}
	while (up->len < up_limit) {
		size_t room = up_limit - up->len;
		if (room > 16384)
			room = 16384;
		uint8_t *dst = wd_buffer_reserve(up, room);
		if (dst == NULL) {
			*error_r = "out of memory";
			ret = WD_ERROR;
			goto out;
		}
		ERR_clear_error();
		int n = SSL_read(tls->ssl, dst, (int)room);
		if (n > 0) {
			wd_buffer_commit(up, (size_t)n);
			continue;
		}
		int err = SSL_get_error(tls->ssl, n);
		if (err == SSL_ERROR_WANT_READ)
			break;
		if (err == SSL_ERROR_ZERO_RETURN) {
			*eof_r = true;
			break;
		}
		*error_r = tls_error(tls, err, "TLS read");
		ret = WD_ERROR;
		goto out;
	}
	if (up->len >= up_limit)
		*pending_r = SSL_pending(tls->ssl) > 0 || tls->feed_len > 0 || tls->cipher_in.len > 0;
out:
	keep_leftover(tls);
	tls->down = NULL;
	return ret;
}

static int tls_encode(struct wd_conn_layer *layer, const uint8_t *in, size_t in_len, bool flush,
		      struct wd_buffer *down, const char **error_r)
{
	struct tls_layer *tls = (struct tls_layer *)layer;
	(void)flush;
	if (in_len == 0)
		return WD_OK;
	if (!tls->handshake_done) {
		if (wd_buffer_append(&tls->plain_pending, in, in_len) < 0) {
			*error_r = "out of memory";
			return WD_ERROR;
		}
		return WD_OK;
	}
	tls->down = down;
	int ret = tls_write_plain(tls, in, in_len, error_r);
	tls->down = NULL;
	return ret;
}

static size_t tls_buffer_memory(const struct wd_conn_layer *layer)
{
	const struct tls_layer *tls = (const struct tls_layer *)layer;
	return tls->cipher_in.cap + tls->plain_pending.cap;
}

static void tls_destroy(struct wd_conn_layer *layer)
{
	struct tls_layer *tls = (struct tls_layer *)layer;
	SSL_free(tls->ssl); /* frees the BIO too */
	wd_buffer_release(&tls->cipher_in);
	wd_buffer_release(&tls->plain_pending);
	free(tls);
}

static const struct wd_conn_layer_vfuncs tls_vfuncs = {
	.name = "TLS",
	.decode = tls_decode,
	.encode = tls_encode,
	.buffer_memory = tls_buffer_memory,
	.destroy = tls_destroy,
};

struct wd_conn_layer *wd__conn_tls_layer_create(struct ssl_ctx_st *ssl_ctx, const char **error_r)
{
	pthread_once(&bio_method_once, bio_method_init);
	if (bio_method == NULL) {
		*error_r = "cannot create the TLS BIO method";
		return NULL;
	}
	struct tls_layer *tls = calloc(1, sizeof(*tls));
	if (tls == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	tls->layer.v = &tls_vfuncs;
	ERR_clear_error();
	tls->ssl = SSL_new(ssl_ctx);
	tls->bio = BIO_new(bio_method);
	if (tls->ssl == NULL || tls->bio == NULL) {
		SSL_free(tls->ssl);
		BIO_free(tls->bio);
		free(tls);
		ERR_clear_error();
		*error_r = "cannot create a TLS session";
		return NULL;
	}
	BIO_set_data(tls->bio, tls);
	SSL_set_bio(tls->ssl, tls->bio, tls->bio);
	SSL_set_accept_state(tls->ssl);
	return &tls->layer;
}

const char *wd__conn_tls_layer_version(const struct wd_conn_layer *layer)
{
	const struct tls_layer *tls = (const struct tls_layer *)layer;
	return tls->handshake_done ? SSL_get_version(tls->ssl) : NULL;
}

const char *wd__conn_tls_layer_cipher(const struct wd_conn_layer *layer)
{
	const struct tls_layer *tls = (const struct tls_layer *)layer;
	return tls->handshake_done ? SSL_get_cipher_name(tls->ssl) : NULL;
}
