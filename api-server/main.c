/* wd-api: WildDuck's HTTP API over libwdstore, libwdauth and libwddeliver.
 *
 * Start-up: configuration and logging (wd-program.h), the store and its
 * indexes, auth, the delivery pipeline and outbound queue (submit and
 * forward), the EventSource hub, then the libmicrohttpd daemon. The main
 * thread then waits for SIGINT/SIGTERM (blocked in every thread, taken with
 * sigwait) and stops in reverse order: no new connections, streams ended,
 * requests in progress finished by MHD_stop_daemon. SIGHUP re-reads the
 * HTTPS certificate and key files (http-daemon.c: new connections get
 * them, open ones keep their TLS session; files that fail keep the old).
 *
 * Settings (conf.d/default.toml [api], docs/api.md): host, port, threads,
 * maxConnections, maxConnectionsPerIp, connectionTimeout, maxHeaderBytes,
 * maxJsonBytes, maxUploadBytes, secure (TLS with tls.cert/tls.key),
 * cors.origin, rateLimit.requests/window, accessToken, accessControl.*,
 * allowOpenAccess. */
#include "access.h"
#include "api.h"
#include "http-daemon.h"
#include "rate.h"
#include "updates.h"

#include "wd-auth.h"
#include "wd-config.h"
#include "wd-deliver.h"
#include "wd-log.h"
#include "wd-outbound.h"
#include "wd-program.h"
#include "wd-sd-notify.h"
#include "wd-store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out, "usage: wd-api [--config FILE] [--section.key=value]...\n"
		     "  WildDuck-compatible HTTP API; settings in [api] (docs/api.md)\n");
}

static char *read_file(const char *path, char **error_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		if (asprintf(error_r, "cannot read %s", path) < 0)
			*error_r = NULL;
		return NULL;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, mem);
	fclose(f);
	fclose(mem);
	return text;
}

/* SIGHUP: the HTTPS certificate and key files again (their configured
   paths); new connections get them, a pair that fails keeps the old. */
static void reload_tls(const struct wd_config *config)
{
	const char *cert = NULL, *key = NULL, *error = NULL;
	char *ferror = NULL, *cert_text = NULL, *key_text = NULL;
	if (wd_config_get_string(config, "tls.cert", NULL, &cert, &error) < 0 ||
	    wd_config_get_string(config, "tls.key", NULL, &key, &error) < 0 || cert == NULL ||
	    key == NULL) {
		wd_error("api", "TLS reload: tls.cert and tls.key needed");
		return;
	}
	cert_text = read_file(cert, &ferror);
	if (cert_text != NULL)
		key_text = read_file(key, &ferror);
	if (key_text != NULL && api_daemon_reload_tls(cert_text, key_text, &ferror) == 0)
		wd_info("api", "certificates reloaded");
	else
		wd_error("api", "TLS reload failed, keeping the current certificate: %s",
			 ferror != NULL ? ferror : "out of memory");
	free(ferror);
	if (key_text != NULL)
		explicit_bzero(key_text, strlen(key_text));
	free(key_text);
	free(cert_text);
}

static bool is_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

struct api_settings {
	struct api_daemon_settings daemon;
	const char *redis_url;
	bool secure, allow_open;
	char *tls_cert_text, *tls_key_text;
};

static int read_settings(const struct wd_config *config, struct api_context *ctx,
			 struct api_settings *s)
{
	const char *error = NULL, *host, *token, *secret, *cors;
	int64_t port, threads, max_conn, per_ip, timeout, header, json_max, upload, rate, window,
		ttl, lifetime;
	bool access_control;
	if (wd_config_get_string(config, "api.host", "127.0.0.1", &host, &error) < 0 ||
	    wd_config_get_int(config, "api.port", 8080, &port, &error) < 0 ||
	    wd_config_get_int(config, "api.threads", 8, &threads, &error) < 0 ||
	    wd_config_get_int(config, "api.maxConnections", 2048, &max_conn, &error) < 0 ||
	    wd_config_get_int(config, "api.maxConnectionsPerIp", 0, &per_ip, &error) < 0 ||
	    wd_config_get_int(config, "api.connectionTimeout", 120, &timeout, &error) < 0 ||
	    wd_config_get_int(config, "api.maxHeaderBytes", 64 * 1024, &header, &error) < 0 ||
	    wd_config_get_int(config, "api.maxJsonBytes", 1024 * 1024, &json_max, &error) < 0 ||
	    wd_config_get_int(config, "api.maxUploadBytes", 64 * 1024 * 1024, &upload, &error) < 0 ||
	    wd_config_get_int(config, "api.rateLimit.requests", 0, &rate, &error) < 0 ||
	    wd_config_get_int(config, "api.rateLimit.window", 60, &window, &error) < 0 ||
	    wd_config_get_string(config, "api.accessToken", NULL, &token, &error) < 0 ||
	    wd_config_get_bool(config, "api.accessControl.enabled", false, &access_control,
			       &error) < 0 ||
	    wd_config_get_string(config, "api.accessControl.secret", "a secret cat", &secret,
				 &error) < 0 ||
	    wd_config_get_int(config, "api.accessControl.tokenTTL", 14 * 24 * 3600, &ttl,
			      &error) < 0 ||
	    wd_config_get_int(config, "api.accessControl.tokenLifetime", 180 * 24 * 3600,
			      &lifetime, &error) < 0 ||
	    wd_config_get_string(config, "api.cors.origin", NULL, &cors, &error) < 0 ||
	    wd_config_get_bool(config, "api.secure", false, &s->secure, &error) < 0 ||
	    wd_config_get_bool(config, "api.allowOpenAccess", false, &s->allow_open, &error) < 0 ||
	    wd_config_get_string(config, "dbs.redis", "redis://127.0.0.1:6379/3", &s->redis_url,
				 &error) < 0) {
		wd_error("api", "configuration: %s", error);
		return -1;
	}
	if (port < 0 || port > 65535 || threads < 1 || threads > 1024 || max_conn < 1 ||
	    per_ip < 0 || timeout < 0 || header < 4096 || json_max < 1024 || upload < 1024 ||
	    rate < 0 || window < 1 || ttl < 1 || lifetime < 1) {
		wd_error("api", "configuration: api.port 0..65535, api.threads 1..1024, "
				"api.maxHeaderBytes >= 4096, api.maxJsonBytes and api.maxUploadBytes "
				">= 1024, api.rateLimit.window >= 1, token times >= 1");
		return -1;
	}
	s->daemon = (struct api_daemon_settings){
		.host = host, .port = (uint16_t)port, .threads = (unsigned)threads,
		.max_connections = (unsigned)max_conn, .max_connections_per_ip = (unsigned)per_ip,
		.connection_timeout = (unsigned)timeout, .max_header_bytes = (uint64_t)header,
	};
	ctx->access_token = token != NULL && token[0] != '\0' ? strdup(token) : NULL;
	ctx->access_control = access_control;
	ctx->token_secret = strdup(secret);
	ctx->token_ttl = ttl;
	ctx->token_lifetime = lifetime;
	ctx->max_json_bytes = (uint64_t)json_max;
	ctx->max_upload_bytes = (uint64_t)upload;
	ctx->cors_origin = cors != NULL && cors[0] != '\0' ? strdup(cors) : NULL;
	ctx->rate_limit = (unsigned)rate;
	ctx->rate_window = (unsigned)window;
	if (ctx->access_token == NULL && !access_control) {
		if (!is_loopback(host) && !s->allow_open) {
			wd_error("api", "api.host %s is not loopback, and neither api.accessToken nor "
					"api.accessControl.enabled is set: anyone could manage every "
					"account. Set a token, or api.allowOpenAccess = true to insist",
				 host);
			return -1;
		}
		wd_warning("api", "no api.accessToken and api.accessControl.enabled = false: every "
				  "request without a token is root (as WildDuck)");
	}
	if (s->secure) {
		const char *cert, *key;
		char *ferror = NULL;
		if (wd_config_get_string(config, "tls.cert", NULL, &cert, &error) < 0 ||
		    wd_config_get_string(config, "tls.key", NULL, &key, &error) < 0 || cert == NULL ||
		    key == NULL) {
			wd_error("api", "api.secure needs tls.cert and tls.key%s%s",
				 error != NULL ? ": " : "", error != NULL ? error : "");
			return -1;
		}
		s->tls_cert_text = read_file(cert, &ferror);
		if (s->tls_cert_text != NULL)
			s->tls_key_text = read_file(key, &ferror);
		if (s->tls_key_text == NULL) {
			wd_error("api", "%s", ferror != NULL ? ferror : "cannot read TLS files");
			free(ferror);
			return -1;
		}
		s->daemon.tls_cert = s->tls_cert_text;
		s->daemon.tls_key = s->tls_key_text;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int exit_code;
	struct wd_config *config = wd_program_config("wd-api", argc, argv, usage, &exit_code);
	if (config == NULL)
		return exit_code;
	/* signals are taken by sigwait() below; every thread inherits the mask */
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);

	int status = 1;
	char *error = NULL;
	struct api_context ctx = { .config = config };
	struct api_settings settings = { 0 };
	struct api_daemon *daemon = NULL;

	if (read_settings(config, &ctx, &settings) < 0)
		goto out;
	ctx.store = wd_store_open(config, &error);
	if (ctx.store == NULL) {
		wd_error("api", "database: %s", error);
		goto out;
	}
	struct wd_store_index_report report = { 0 };
	if (wd_store_ensure_indexes(ctx.store, &report, &error) < 0) {
		wd_error("api", "database indexes: %s", error);
		goto out;
	}
	ctx.auth = wd_auth_create(ctx.store, config, &error);
	if (ctx.auth == NULL) {
		wd_error("api", "auth: %s", error);
		goto out;
	}
	ctx.outbound = wd_outbound_create(ctx.store, config, &error);
	if (ctx.outbound == NULL) {
		wd_error("api", "outbound queue: %s", error);
		goto out;
	}
	ctx.deliver = wd_deliver_create(ctx.store, ctx.auth, config, &error);
	if (ctx.deliver == NULL) {
		wd_error("api", "delivery: %s", error);
		goto out;
	}
	wd_deliver_set_outbound(ctx.deliver, ctx.outbound);
	ctx.rate = api_rate_create(ctx.rate_limit, ctx.rate_window);
	ctx.updates = api_updates_create(&ctx, settings.redis_url, &error);
	if (ctx.rate == NULL || ctx.updates == NULL) {
		wd_error("api", "%s", error != NULL ? error : "out of memory");
		goto out;
	}
	daemon = api_daemon_start(&ctx, &settings.daemon, &error);
	if (daemon == NULL) {
		wd_error("api", "%s", error != NULL ? error : "cannot start the HTTP daemon");
		goto out;
	}
	size_t route_count;
	api_routes_all(&route_count);
	wd_info("api", "api listening on %s:%u (%s, %zu routes, %u threads)",
		settings.daemon.host, api_daemon_port(daemon), settings.secure ? "https" : "http",
		route_count, settings.daemon.threads);
	if (wd_sd_notify("READY=1") < 0)
		wd_warning("api", "sd_notify READY: %s", strerror(errno));

	int signum = 0;
	while (sigwait(&signals, &signum) == 0 && signum == SIGHUP) {
		if (settings.secure)
			reload_tls(config);
		else
			wd_info("api", "SIGHUP received: nothing to reload (api.secure is off)");
	}
	wd_info("api", "%s received: shutting down", strsignal(signum));
	wd_sd_notify("STOPPING=1");
	api_daemon_quiesce(daemon);
	api_updates_shutdown(ctx.updates);
	api_daemon_stop(&daemon);
	status = 0;
	wd_info("api", "stopped");
out:
	free(error);
	api_daemon_stop(&daemon);
	api_updates_destroy(&ctx.updates);
	api_rate_destroy(&ctx.rate);
	wd_deliver_destroy(&ctx.deliver);
	wd_outbound_destroy(&ctx.outbound);
	wd_auth_destroy(&ctx.auth);
	wd_store_close(&ctx.store);
	free(ctx.access_token);
	free(ctx.token_secret);
	free(ctx.cors_origin);
	free(settings.tls_cert_text);
	free(settings.tls_key_text);
	wd_config_free(&config);
	mongoc_cleanup();
	return status;
}
