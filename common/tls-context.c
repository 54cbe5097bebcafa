/* TLS server context: loads certificate chain and key, pins the minimum
 * version, and sets SSL_MODE_RELEASE_BUFFERS so that idle TLS sessions give
 * their 16 KiB+ record buffers back (STYLE.md "Memory per connection").
 * Session tickets stay on (OpenSSL default) so clients can resume. */
#include "wd-tls.h"
#include "wd-config.h"
#include "wd-result.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wd_tls_context {
	SSL_CTX *ssl_ctx;
};

static char *ssl_error_message(const char *what, const char *path)
{
	char reason[256] = "unknown error";
	unsigned long code = ERR_peek_last_error();
	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	char *msg = NULL;
	if (asprintf(&msg, "%s %s: %s", what, path, reason) < 0)
		msg = NULL;
	return msg;
}

struct wd_tls_context *wd_tls_context_create(const struct wd_tls_settings *set, char **error_r)
{
	*error_r = NULL;
	if (set->cert_file == NULL || set->key_file == NULL) {
		*error_r = strdup("TLS needs both a certificate (tls.cert) and a key (tls.key)");
		return NULL;
	}
	int min_version = TLS1_2_VERSION;
	if (set->min_version != NULL && strcmp(set->min_version, "TLSv1.2") != 0) {
		if (strcmp(set->min_version, "TLSv1.3") != 0) {
			if (asprintf(error_r, "tls.minVersion: unsupported value \"%s\" "
				     "(use TLSv1.2 or TLSv1.3)", set->min_version) < 0)
				*error_r = NULL;
			return NULL;
		}
		min_version = TLS1_3_VERSION;
	}

	ERR_clear_error();
	SSL_CTX *ssl_ctx = SSL_CTX_new(TLS_server_method());
	if (ssl_ctx == NULL) {
		*error_r = ssl_error_message("cannot create TLS context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ssl_ctx, min_version);
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (set->ciphers != NULL && SSL_CTX_set_cipher_list(ssl_ctx, set->ciphers) != 1) {
		*error_r = ssl_error_message("invalid cipher list", set->ciphers);
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ssl_ctx, set->cert_file) != 1) {
		*error_r = ssl_error_message("cannot load certificate", set->cert_file);
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ssl_ctx, set->key_file, SSL_FILETYPE_PEM) != 1) {
		*error_r = ssl_error_message("cannot load private key", set->key_file);
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ssl_ctx) != 1) {
		*error_r = ssl_error_message("private key does not match certificate", set->key_file);
		SSL_CTX_free(ssl_ctx);
		return NULL;
	}
	struct wd_tls_context *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		SSL_CTX_free(ssl_ctx);
		*error_r = strdup("out of memory");
		return NULL;
	}
	ctx->ssl_ctx = ssl_ctx;
	return ctx;
}

/* <service>.tls.<key> when set, else tls.<key>. */
static int tls_setting(const struct wd_config *config, const char *service, const char *key,
		       const char **value_r, char **error_r)
{
	char path[128];
	const char *error;
	snprintf(path, sizeof(path), "%s.tls.%s", service, key);
	if (wd_config_lookup(config, path) == NULL)
		snprintf(path, sizeof(path), "tls.%s", key);
	if (wd_config_get_string(config, path, NULL, value_r, &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	return WD_OK;
}

struct wd_tls_context *wd_tls_context_from_config(const struct wd_config *config,
						  const char *service, char **error_r)
{
	struct wd_tls_settings set = { 0 };
	*error_r = NULL;
	if (tls_setting(config, service, "cert", &set.cert_file, error_r) < 0 ||
	    tls_setting(config, service, "key", &set.key_file, error_r) < 0 ||
	    tls_setting(config, service, "minVersion", &set.min_version, error_r) < 0 ||
	    tls_setting(config, service, "ciphers", &set.ciphers, error_r) < 0)
		return NULL;
	return wd_tls_context_create(&set, error_r);
}

void wd_tls_context_unref(struct wd_tls_context **_ctx)
{
	struct wd_tls_context *ctx = *_ctx;
	if (ctx == NULL)
		return;
	*_ctx = NULL;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

struct ssl_ctx_st *wd_tls_context_ssl_ctx(struct wd_tls_context *ctx)
{
	return ctx->ssl_ctx;
}
