/* TLS server contexts (wd-tls.h): certificate chain and key, the protocol
 * floor (TLS 1.2), a cipher list of forward-secret AEAD suites, and
 * SSL_MODE_RELEASE_BUFFERS so that idle TLS sessions give their 16 KiB+
 * record buffers back (STYLE.md "Memory per connection"). Session tickets
 * stay on (OpenSSL default) so clients can resume.
 *
 * Reload (SIGHUP). Every context is on a process-wide list with a copy of
 * its settings. wd_tls_context_reload_all() builds a new SSL_CTX for each
 * from the files and parks it in the context's `pending` slot (an atomic
 * exchange); the owner's thread, the only one that ever reads `ssl_ctx`,
 * takes it at its next wd_tls_context_ssl_ctx() call, i.e. when the next
 * connection starts TLS. Connections already in TLS keep the SSL_CTX they
 * were made with (SSL_new holds a reference), so they go on undisturbed.
 * A certificate that no longer loads leaves the context as it was.
 *
 * Plaintext authentication policy (<service>.insecureAuth) is here too:
 * it is the one place that decides when TLS is required. */
#include "wd-tls.h"
#include "wd-config.h"
#include "wd-conn.h"
#include "wd-log.h"
#include "wd-result.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* TLS 1.2 suites when tls.ciphers is not set: ECDHE or DHE key exchange
   with AES-GCM or ChaCha20-Poly1305 (Mozilla's "intermediate" list). No
   RSA key exchange, no CBC, no SHA-1 MACs, no RC4/3DES/export/NULL/anonymous
   suites. TLS 1.3 suites are OpenSSL's (all AEAD). */
#define DEFAULT_CIPHERS                                                                     \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                        \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                        \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                        \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

struct wd_tls_context {
	SSL_CTX *ssl_ctx;  /* read and replaced by the owner's thread only */
	SSL_CTX *pending;  /* a reloaded one, handed over atomically */
	/* copies of the settings, for reloads */
	char *cert_file, *key_file, *min_version, *ciphers;
	struct wd_tls_context *prev, *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wd_tls_context *registry;

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

/* A configured SSL_CTX, or NULL with a malloc'd *error_r. */
static SSL_CTX *build_ssl_ctx(const struct wd_tls_settings *set, char **error_r)
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
	SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					     SSL_OP_NO_COMPRESSION);
	/* DHE suites with OpenSSL's built-in groups sized to the key */
	SSL_CTX_set_dh_auto(ssl_ctx, 1);
	const char *ciphers = set->ciphers != NULL ? set->ciphers : DEFAULT_CIPHERS;
	if (SSL_CTX_set_cipher_list(ssl_ctx, ciphers) != 1) {
		*error_r = ssl_error_message("invalid cipher list", ciphers);
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
	return ssl_ctx;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void context_free(struct wd_tls_context *ctx)
{
	SSL_CTX_free(ctx->ssl_ctx);
	SSL_CTX_free(ctx->pending);
	free(ctx->cert_file);
	free(ctx->key_file);
	free(ctx->min_version);
	free(ctx->ciphers);
	free(ctx);
}

struct wd_tls_context *wd_tls_context_create(const struct wd_tls_settings *set, char **error_r)
{
	SSL_CTX *ssl_ctx = build_ssl_ctx(set, error_r);
	if (ssl_ctx == NULL)
		return NULL;
	struct wd_tls_context *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		SSL_CTX_free(ssl_ctx);
		*error_r = strdup("out of memory");
		return NULL;
	}
	ctx->ssl_ctx = ssl_ctx;
	ctx->cert_file = dup_or_null(set->cert_file);
	ctx->key_file = dup_or_null(set->key_file);
	ctx->min_version = dup_or_null(set->min_version);
	ctx->ciphers = dup_or_null(set->ciphers);
	if (ctx->cert_file == NULL || ctx->key_file == NULL ||
	    (set->min_version != NULL && ctx->min_version == NULL) ||
	    (set->ciphers != NULL && ctx->ciphers == NULL)) {
		context_free(ctx);
		*error_r = strdup("out of memory");
		return NULL;
	}
	pthread_mutex_lock(&registry_lock);
	ctx->next = registry;
	if (registry != NULL)
		registry->prev = ctx;
	registry = ctx;
	pthread_mutex_unlock(&registry_lock);
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
	pthread_mutex_lock(&registry_lock);
	if (ctx->prev != NULL)
		ctx->prev->next = ctx->next;
	else
		registry = ctx->next;
	if (ctx->next != NULL)
		ctx->next->prev = ctx->prev;
	pthread_mutex_unlock(&registry_lock);
	context_free(ctx);
}

struct ssl_ctx_st *wd_tls_context_ssl_ctx(struct wd_tls_context *ctx)
{
	SSL_CTX *fresh = __atomic_exchange_n(&ctx->pending, NULL, __ATOMIC_ACQ_REL);
	if (fresh != NULL) {
		/* sessions made with the old one hold their own references */
		SSL_CTX_free(ctx->ssl_ctx);
		ctx->ssl_ctx = fresh;
	}
	return ctx->ssl_ctx;
}

unsigned wd_tls_context_reload_all(void)
{
	unsigned contexts = 0, failed = 0;
	char *last_error = NULL;
	pthread_mutex_lock(&registry_lock);
	for (struct wd_tls_context *ctx = registry; ctx != NULL; ctx = ctx->next) {
		struct wd_tls_settings set = {
			.cert_file = ctx->cert_file, .key_file = ctx->key_file,
			.min_version = ctx->min_version, .ciphers = ctx->ciphers,
		};
		char *error = NULL;
		SSL_CTX *fresh = build_ssl_ctx(&set, &error);
		contexts++;
		if (fresh == NULL) {
			failed++;
			/* the same files serve many contexts: say it once */
			if (last_error == NULL || error == NULL || strcmp(last_error, error) != 0)
				wd_error("tls", "reload failed, keeping the current certificate: %s",
					 error != NULL ? error : "out of memory");
			free(last_error);
			last_error = error;
			continue;
		}
		SSL_CTX *old = __atomic_exchange_n(&ctx->pending, fresh, __ATOMIC_ACQ_REL);
		SSL_CTX_free(old); /* a reload nobody picked up yet */
	}
	pthread_mutex_unlock(&registry_lock);
	free(last_error);
	if (contexts > 0 && failed < contexts)
		wd_info("tls", "certificates reloaded (%u of %u TLS contexts)", contexts - failed,
			contexts);
	return failed;
}

/* ---- plaintext authentication policy ---- */

int wd_tls_plaintext_auth_read(const struct wd_config *config, const char *key,
			       enum wd_plaintext_auth def, enum wd_plaintext_auth *policy_r,
			       const char **error_r)
{
	*policy_r = def;
	const struct wd_config_value *value = wd_config_lookup(config, key);
	if (value == NULL)
		return WD_OK;
	bool flag;
	const char *text;
	if (wd_config_value_bool(value, &flag) == WD_OK) {
		*policy_r = flag ? WD_PLAINTEXT_AUTH_ANY : WD_PLAINTEXT_AUTH_NEVER;
		return WD_OK;
	}
	if (wd_config_value_string(value, &text) == WD_OK) {
		if (strcmp(text, "any") == 0) {
			*policy_r = WD_PLAINTEXT_AUTH_ANY;
			return WD_OK;
		}
		if (strcmp(text, "loopback") == 0) {
			*policy_r = WD_PLAINTEXT_AUTH_LOOPBACK;
			return WD_OK;
		}
	}
	*error_r = "insecureAuth: expected false, \"loopback\" (loopback peers only), true or "
		   "\"any\" (every peer)";
	return WD_ERROR;
}

static bool loopback_peer(const struct sockaddr_storage *peer)
{
	if (peer == NULL)
		return false;
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (peer->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return peer->ss_family == AF_UNIX;
}

bool wd_tls_plaintext_auth_allowed(enum wd_plaintext_auth policy, const struct wd_conn *conn)
{
	if (wd_conn_is_tls(conn))
		return true;
	switch (policy) {
	case WD_PLAINTEXT_AUTH_ANY: return true;
	case WD_PLAINTEXT_AUTH_LOOPBACK: return loopback_peer(wd_conn_peer(conn));
	default: return false;
	}
}
