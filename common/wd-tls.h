#ifndef WD_TLS_H
#define WD_TLS_H

/* TLS server contexts (OpenSSL 3) for implicit-TLS listeners and STARTTLS.
 *
 * Certificate and key come from WildDuck's keys `tls.cert` / `tls.key`
 * (PEM files; the certificate file may hold the chain), overridable per
 * service as `<service>.tls.cert` / `<service>.tls.key` (e.g. imap.tls.cert).
 * The minimum protocol version is TLS 1.2 unless `tls.minVersion` (or
 * `<service>.tls.minVersion`) says "TLSv1.3". Contexts are reference-counted
 * by OpenSSL and shared by every connection of a service. */

struct wd_config;
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

/* The OpenSSL SSL_CTX (for the connection layer). */
struct ssl_ctx_st *wd_tls_context_ssl_ctx(struct wd_tls_context *ctx);

#endif
