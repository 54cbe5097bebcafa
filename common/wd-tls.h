#ifndef WD_TLS_H
#define WD_TLS_H

/* TLS server contexts (OpenSSL 3) for implicit-TLS listeners and STARTTLS.
 *
 * Certificate and key come from WildDuck's keys `tls.cert` / `tls.key`
 * (PEM files; the certificate file may hold the chain), overridable per
 * service as `<service>.tls.cert` / `<service>.tls.key` (e.g. imap.tls.cert).
 * The minimum protocol version is TLS 1.2 unless `tls.minVersion` (or
 * `<service>.tls.minVersion`) says "TLSv1.3". Without `tls.ciphers` the
 * TLS 1.2 suites are forward-secret AEAD ones only (ECDHE/DHE with AES-GCM
 * or ChaCha20-Poly1305; tls-context.c lists them). A context is shared by
 * every connection of one service instance and belongs to that instance's
 * thread (wd_tls_context_ssl_ctx is called there only).
 *
 * Reload: wd_tls_context_reload_all() (any thread, e.g. on SIGHUP) re-reads
 * the certificate and key files of every context; connections that start
 * TLS afterwards get the new ones, established sessions keep theirs. A file
 * that does not load (missing, bad PEM, key not matching) is logged and the
 * context keeps its current certificate. */

#include <stdbool.h>

struct wd_config;
struct wd_conn;
struct wd_tls_context;

struct wd_tls_settings {
	const char *cert_file;
	const char *key_file;
	const char *min_version; /* "TLSv1.2" (default) or "TLSv1.3" */
	const char *ciphers;     /* TLS 1.2 cipher list; NULL = OpenSSL's default */
};

struct wd_tls_context *wd_tls_context_create(const struct wd_tls_settings *set, char **error_r);
/* Reads the settings of `service` (e.g. "imap") from the config as above. */
struct wd_tls_context *wd_tls_context_from_config(const struct wd_config *config,
						  const char *service, char **error_r);
void wd_tls_context_unref(struct wd_tls_context **ctx);

/* The OpenSSL SSL_CTX for a new TLS connection (connection layer, the
   owner's thread); takes up a reloaded one first. */
struct ssl_ctx_st *wd_tls_context_ssl_ctx(struct wd_tls_context *ctx);

/* Reloads every context's certificate and key (see above). Returns how
   many contexts kept their old certificate because the files failed. */
unsigned wd_tls_context_reload_all(void);

/* When LOGIN / AUTHENTICATE / USER+PASS may run without TLS:
 * `<service>.insecureAuth` = false (never; the default), "loopback" (only
 * for peers on a loopback address, 127.0.0.0/8 or ::1, as the PROXY header
 * gives them when one is used: a local webmail or proxy), true or "any"
 * (every peer, as WildDuck's ignoreSTARTTLS; for a TLS-terminating proxy
 * in front). */
enum wd_plaintext_auth {
	WD_PLAINTEXT_AUTH_NEVER,
	WD_PLAINTEXT_AUTH_LOOPBACK,
	WD_PLAINTEXT_AUTH_ANY,
};
/* Reads `key`; `def` when it is not set. WD_ERROR with a static *error_r
   for other values. */
int wd_tls_plaintext_auth_read(const struct wd_config *config, const char *key,
			       enum wd_plaintext_auth def, enum wd_plaintext_auth *policy_r,
			       const char **error_r);
/* Whether a login may run on `conn` now: TLS, or the policy allows it. */
bool wd_tls_plaintext_auth_allowed(enum wd_plaintext_auth policy, const struct wd_conn *conn);

#endif
