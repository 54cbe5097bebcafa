/* The POP3 service of one loop (pop3-server.h): settings, listeners, the
 * session list and shutdown. */
#include "pop3-server.h"

#include "pop3-session.h"
#include "wd-config.h"
#include "wd-conn.h"
#include "wd-listener.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 1939 §3: an autologout timer MUST be at least 10 minutes. */
#define MIN_IDLE_TIMEOUT_S 600
#define MAX_AUTH_DELAY_MS 10000

int wd_pop3_settings_read(const struct wd_config *config, struct wd_pop3_settings *set_r,
			  const char **error_r)
{
	int64_t port, plain_port, max_messages, idle, delay, max_download_mb, max_per_ip, write_s;
	bool use_proxy, ignore_starttls, disable_version;
	memset(set_r, 0, sizeof(*set_r));
	if (wd_config_get_bool(config, "pop3.enabled", true, &set_r->enabled, error_r) < 0 ||
	    wd_config_get_string(config, "pop3.host", "0.0.0.0", &set_r->host, error_r) < 0 ||
	    wd_config_get_int(config, "pop3.port", 9995, &port, error_r) < 0 ||
	    wd_config_get_bool(config, "pop3.secure", true, &set_r->secure, error_r) < 0 ||
	    wd_config_get_int(config, "pop3.plainPort", 0, &plain_port, error_r) < 0 ||
	    wd_config_get_bool(config, "pop3.disableSTARTTLS", false, &set_r->disable_starttls,
			       error_r) < 0 ||
	    wd_config_get_bool(config, "pop3.proxy", false, &set_r->proxy, error_r) < 0 ||
	    wd_config_get_bool(config, "pop3.useProxy", false, &use_proxy, error_r) < 0 ||
	    wd_tls_plaintext_auth_read(config, "pop3.insecureAuth", WD_PLAINTEXT_AUTH_NEVER,
				       &set_r->insecure_auth, error_r) < 0 ||
	    wd_config_get_bool(config, "pop3.ignoreSTARTTLS", false, &ignore_starttls,
			       error_r) < 0 ||
	    wd_config_get_int(config, "pop3.maxMessages", WD_POP3_DEFAULT_MAX_MESSAGES,
			      &max_messages, error_r) < 0 ||
	    wd_config_get_int(config, "pop3.maxDownloadMB", 10240, &max_download_mb,
			      error_r) < 0 ||
	    wd_config_get_int(config, "pop3.idleTimeout", MIN_IDLE_TIMEOUT_S, &idle, error_r) < 0 ||
	    wd_config_get_int(config, "pop3.authFailureDelay", 1000, &delay, error_r) < 0 ||
	    wd_config_get_int(config, "pop3.maxConnectionsPerIp", 100, &max_per_ip, error_r) < 0 ||
	    wd_config_get_int(config, "pop3.writeTimeout", 300, &write_s, error_r) < 0 ||
	    wd_config_get_string(config, "pop3.name", "WildDuck-C POP3", &set_r->name,
				 error_r) < 0 ||
	    wd_config_get_string(config, "pop3.version", "WildDuck-C", &set_r->version,
				 error_r) < 0 ||
	    wd_config_get_bool(config, "pop3.disableVersionString", false, &disable_version,
			       error_r) < 0)
		return WD_ERROR;
	if (port < 0 || port > 65535 || plain_port < 0 || plain_port > 65535) {
		*error_r = "pop3.port / pop3.plainPort: out of range";
		return WD_ERROR;
	}
	if (max_messages < 1 || max_messages > WD_POP3_MAILDROP_MAX) {
		*error_r = "pop3.maxMessages: expected 1..100000";
		return WD_ERROR;
	}
	if (max_download_mb < 0 || max_download_mb > (INT64_MAX >> 20)) {
		*error_r = "pop3.maxDownloadMB: out of range";
		return WD_ERROR;
	}
	set_r->max_download = max_download_mb << 20;
	if (idle < 1 || idle > 86400 || delay < 0 || delay > MAX_AUTH_DELAY_MS) {
		*error_r = "pop3.idleTimeout 1..86400 s, pop3.authFailureDelay 0..10000 ms";
		return WD_ERROR;
	}
	if (max_per_ip < 0 || max_per_ip > 1000000 || write_s < 0 || write_s > 86400) {
		*error_r = "pop3.maxConnectionsPerIp 0..1000000, pop3.writeTimeout 0..86400";
		return WD_ERROR;
	}
	set_r->max_connections_per_ip = (unsigned)max_per_ip;
	set_r->write_timeout_ms = (unsigned)write_s * 1000;
	set_r->port = (unsigned)port;
	set_r->plain_port = (unsigned)plain_port;
	set_r->proxy = set_r->proxy || use_proxy;
	if (ignore_starttls)
		set_r->insecure_auth = WD_PLAINTEXT_AUTH_ANY;
	set_r->max_messages = (unsigned)max_messages;
	set_r->idle_timeout_ms =
		(unsigned)(idle < MIN_IDLE_TIMEOUT_S ? MIN_IDLE_TIMEOUT_S : idle) * 1000;
	set_r->auth_delay_ms = (unsigned)delay;
	set_r->version_string = !disable_version;
	return WD_OK;
}

static struct wd_listener *listen_on(struct wd_pop3_server *server, unsigned port, bool tls,
				     char **error_r)
{
	struct wd_listener_settings lset = {
		.host = server->set.host,
		.port = port,
		.tls = tls ? server->tls : NULL,
		.proxy = server->set.proxy,
		.ip_limit = server->set.ip_limit,
	};
	wd_conn_limits_default(&lset.limits);
	lset.limits.write_timeout_ms = server->set.write_timeout_ms;
	return wd_listener_create(server->deps.loop, &lset, wd__pop3_session_accept, server,
				  error_r);
}

struct wd_pop3_server *wd_pop3_server_create(const struct wd_server_deps *deps,
					     const struct wd_pop3_settings *set, char **error_r)
{
	struct wd_pop3_server *server = calloc(1, sizeof(*server));
	if (server == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	server->deps = *deps;
	server->set = *set;
	if (wd_listener_ip_limit_share(set->ip_limit, set->max_connections_per_ip,
				       "-ERR [SYS/TEMP] Too many connections from your address\r\n",
				       &server->set.ip_limit) < 0) {
		free(server);
		*error_r = strdup("out of memory");
		return NULL;
	}
	bool plain = !set->secure || set->plain_port != 0;
	if (set->secure || (plain && !set->disable_starttls)) {
		server->tls = wd_tls_context_from_config(deps->config, "pop3", error_r);
		if (server->tls == NULL) {
			wd_pop3_server_destroy(&server);
			return NULL;
		}
	}
	server->listener = listen_on(server, set->port, set->secure, error_r);
	if (server->listener != NULL && set->plain_port != 0) {
		server->plain_listener = listen_on(server, set->plain_port, false, error_r);
		if (server->plain_listener != NULL && deps->first == NULL)
			wd_info("server", "pop3plain listening on %s:%u (%s%s)", set->host,
				wd_listener_port(server->plain_listener),
				set->disable_starttls ? "plain" : "STLS",
				set->proxy ? ", PROXY protocol" : "");
	}
	if (server->listener == NULL || (set->plain_port != 0 && server->plain_listener == NULL)) {
		wd_pop3_server_destroy(&server);
		return NULL;
	}
	return server;
}

unsigned wd_pop3_server_port(const struct wd_pop3_server *server)
{
	return server->listener != NULL ? wd_listener_port(server->listener) : 0;
}

unsigned wd_pop3_server_plain_port(const struct wd_pop3_server *server)
{
	return server->plain_listener != NULL ? wd_listener_port(server->plain_listener) : 0;
}

void wd_pop3_server_shutdown(struct wd_pop3_server *server)
{
	server->shutting_down = true;
	if (server->listener != NULL)
		wd_listener_close(&server->listener);
	if (server->plain_listener != NULL)
		wd_listener_close(&server->plain_listener);
	struct wd_pop3_session *session = server->sessions;
	while (session != NULL) {
		struct wd_pop3_session *next = session->next;
		/* a QUIT being applied finishes first (its answer closes) */
		if (session->state != WD_POP3_STATE_UPDATE)
			wd_pop3_session_abort(session, "[SYS/TEMP] Server shutting down");
		session = next;
	}
}

unsigned wd_pop3_server_session_count(const struct wd_pop3_server *server)
{
	return server->session_count;
}

void wd_pop3_server_destroy(struct wd_pop3_server **_server)
{
	struct wd_pop3_server *server = *_server;
	*_server = NULL;
	if (server == NULL)
		return;
	if (server->listener != NULL)
		wd_listener_close(&server->listener);
	if (server->plain_listener != NULL)
		wd_listener_close(&server->plain_listener);
	if (server->tls != NULL)
		wd_tls_context_unref(&server->tls);
	wd_listener_ip_limit_unref(&server->set.ip_limit);
	free(server);
}

/* ---- the POP3 service of wd-server (wd-service.h) ---- */

static int service_create(const struct wd_server_deps *deps, void **instance_r, char **error_r)
{
	struct wd_pop3_settings set;
	const char *error = NULL;
	*instance_r = NULL;
	if (wd_pop3_settings_read(deps->config, &set, &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	if (!set.enabled)
		return WD_OK;
	if (deps->first != NULL) {
		/* another loop's instance: share its ports (SO_REUSEPORT) */
		set.port = wd_pop3_server_port(deps->first);
		set.plain_port = wd_pop3_server_plain_port(deps->first);
		set.ip_limit = ((const struct wd_pop3_server *)deps->first)->set.ip_limit;
	}
	struct wd_pop3_server *server = wd_pop3_server_create(deps, &set, error_r);
	if (server == NULL)
		return WD_ERROR;
	*instance_r = server;
	return WD_OK;
}

static void service_describe(void *instance, char *buf, size_t size)
{
	struct wd_pop3_server *server = instance;
	const struct wd_pop3_settings *set = &server->set;
	snprintf(buf, size, "pop3 listening on %s:%u (%s%s)", set->host,
		 wd_pop3_server_port(server),
		 set->secure ? "implicit TLS" : set->disable_starttls ? "plain" : "STLS",
		 set->proxy ? ", PROXY protocol" : "");
}

static void service_shutdown(void *instance)
{
	wd_pop3_server_shutdown(instance);
}

static unsigned service_session_count(void *instance)
{
	return wd_pop3_server_session_count(instance);
}

static void service_destroy(void **instance)
{
	struct wd_pop3_server *server = *instance;
	*instance = NULL;
	wd_pop3_server_destroy(&server);
}

const struct wd_service wd_pop3_service = {
	.name = "pop3",
	.create = service_create,
	.describe = service_describe,
	.shutdown = service_shutdown,
	.session_count = service_session_count,
	.destroy = service_destroy,
};
