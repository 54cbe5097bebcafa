/* The IMAP service of one loop (imap-server.h): settings, listener, the
 * session list and shutdown. */
#include "imap-server.h"

#include "imap-lease.h"
#include "imap-session.h"
#include "wd-config.h"
#include "wd-conn.h"
#include "wd-listener.h"
#include "wd-notify.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_COUNT_BUCKETS 1024
#define MIN_IDLE_TIMEOUT_S 1800

int wd_imap_settings_read(const struct wd_config *config, struct wd_imap_settings *set_r,
			  const char **error_r)
{
	int64_t port, max_mb, max_conn, max_per_ip, write_s, window, mem, unauth, idle, poll_s,
		full_s;
	memset(set_r, 0, sizeof(*set_r));
	if (wd_config_get_string(config, "imap.host", "0.0.0.0", &set_r->host, error_r) < 0 ||
	    wd_config_get_int(config, "imap.port", 9993, &port, error_r) < 0 ||
	    wd_config_get_bool(config, "imap.secure", true, &set_r->secure, error_r) < 0 ||
	    wd_config_get_bool(config, "imap.starttls", true, &set_r->starttls, error_r) < 0 ||
	    wd_config_get_bool(config, "imap.proxy", false, &set_r->proxy, error_r) < 0 ||
	    wd_tls_plaintext_auth_read(config, "imap.insecureAuth", WD_PLAINTEXT_AUTH_NEVER,
				       &set_r->insecure_auth, error_r) < 0 ||
	    wd_config_get_int(config, "imap.maxMB", 25, &max_mb, error_r) < 0 ||
	    wd_config_get_int(config, "imap.maxConnections", 15, &max_conn, error_r) < 0 ||
	    wd_config_get_int(config, "imap.maxConnectionsPerIp", 500, &max_per_ip, error_r) < 0 ||
	    wd_config_get_int(config, "imap.writeTimeout", 300, &write_s, error_r) < 0 ||
	    wd_config_get_bool(config, "imap.enableCompression", false, &set_r->compression,
			       error_r) < 0 ||
	    wd_config_get_int(config, "imap.compression.windowBits", 15, &window, error_r) < 0 ||
	    wd_config_get_int(config, "imap.compression.memLevel", 8, &mem, error_r) < 0 ||
	    wd_config_get_int(config, "imap.unauthenticatedTimeout", 60, &unauth, error_r) < 0 ||
	    wd_config_get_int(config, "imap.idleTimeout", MIN_IDLE_TIMEOUT_S, &idle, error_r) < 0 ||
	    wd_config_get_bool(config, "imap.literalPlus", true, &set_r->literal_plus, error_r) < 0 ||
	    wd_config_get_string(config, "imap.name", "WildDuck-C", &set_r->greeting, error_r) < 0 ||
	    wd_config_get_int(config, "imap.syncPollSeconds", 30, &poll_s, error_r) < 0 ||
	    wd_config_get_int(config, "imap.fullSyncSeconds", 3600, &full_s, error_r) < 0)
		return WD_ERROR;
	if (poll_s < 1 || poll_s > 3600 || full_s < 1 || full_s > 86400) {
		*error_r = "imap.syncPollSeconds 1..3600, imap.fullSyncSeconds 1..86400";
		return WD_ERROR;
	}
	set_r->sync_poll_ms = (unsigned)poll_s * 1000;
	set_r->full_sync_ms = (unsigned)full_s * 1000;
	if (port < 0 || port > 65535) {
		*error_r = "imap.port: out of range";
		return WD_ERROR;
	}
	if (max_mb < 1 || max_mb > 4096) {
		*error_r = "imap.maxMB: expected 1..4096";
		return WD_ERROR;
	}
	if (window < 9 || window > 15 || mem < 1 || mem > 9) {
		*error_r = "imap.compression: windowBits 9..15, memLevel 1..9";
		return WD_ERROR;
	}
	if (unauth < 1 || unauth > 3600 || idle < 1) {
		*error_r = "imap.unauthenticatedTimeout / imap.idleTimeout: out of range";
		return WD_ERROR;
	}
	if (max_per_ip < 0 || max_per_ip > 1000000 || write_s < 0 || write_s > 86400) {
		*error_r = "imap.maxConnectionsPerIp 0..1000000, imap.writeTimeout 0..86400";
		return WD_ERROR;
	}
	set_r->max_connections_per_ip = (unsigned)max_per_ip;
	set_r->write_timeout_ms = (unsigned)write_s * 1000;
	set_r->port = (unsigned)port;
	set_r->max_message = (uint64_t)max_mb * 1024 * 1024;
	set_r->max_connections = max_conn < 0 ? 0 : (unsigned)max_conn;
	set_r->deflate_window_bits = (int)window;
	set_r->deflate_mem_level = (int)mem;
	set_r->unauth_timeout_ms = (unsigned)unauth * 1000;
	/* RFC 3501 §5.4: at least 30 minutes; IDLE clients re-issue every 29. */
	set_r->idle_timeout_ms = (unsigned)(idle < MIN_IDLE_TIMEOUT_S ? MIN_IDLE_TIMEOUT_S : idle) * 1000;
	return WD_OK;
}

/* wd_events: wake the IDLE of the user's sessions, end them on LOGOUT. */
static void on_notify(struct wd_imap_server *server, const struct wd_notify_event *event)
{
	struct wd_imap_session *session = server->sessions;
	while (session != NULL) {
		struct wd_imap_session *next = session->next;
		if (session->has_user && bson_oid_equal(&session->user, &event->user)) {
			if (event->kind == WD_NOTIFY_CHANGED)
				wd_imap_idle_wake(session);
			else if (event->kind == WD_NOTIFY_LOGOUT)
				wd_imap_session_bye(session, event->reason[0] != '\0' ?
								     event->reason :
								     "Logged out");
		}
		session = next;
	}
}

static void notify_start(struct wd_imap_server *server)
{
	const char *url = NULL, *error = NULL;
	char *create_error = NULL;
	if (wd_config_get_string(server->deps.config, "dbs.redis", NULL, &url, &error) < 0 ||
	    url == NULL)
		return;
	server->notify = wd_notify_create(server->deps.loop, url, on_notify, server,
					  &create_error);
	if (server->notify == NULL) {
		wd_warning("imap", "wd_events subscriber not started: %s",
			   create_error != NULL ? create_error : "?");
		free(create_error);
	}
}

struct wd_imap_server *wd_imap_server_create(const struct wd_server_deps *deps,
					     const struct wd_imap_settings *set, char **error_r)
{
	struct wd_imap_server *server = calloc(1, sizeof(*server));
	if (server == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	server->deps = *deps;
	server->set = *set;
	if (wd_listener_ip_limit_share(set->ip_limit, set->max_connections_per_ip,
				       "* BYE [UNAVAILABLE] Too many connections from your address\r\n",
				       &server->set.ip_limit) < 0) {
		free(server);
		*error_r = strdup("out of memory");
		return NULL;
	}
	wd_imap_sync_policy_default(&server->sync_policy);
	server->sync_policy.poll_ms = set->sync_poll_ms;
	server->sync_policy.full_ms = set->full_sync_ms;
	server->user_count_buckets = USER_COUNT_BUCKETS;
	server->user_counts = calloc(USER_COUNT_BUCKETS, sizeof(*server->user_counts));
	if (server->user_counts == NULL) {
		wd_listener_ip_limit_unref(&server->set.ip_limit);
		free(server);
		*error_r = strdup("out of memory");
		return NULL;
	}
	if (set->secure || set->starttls) {
		server->tls = wd_tls_context_from_config(deps->config, "imap", error_r);
		if (server->tls == NULL) {
			wd_imap_server_destroy(&server);
			return NULL;
		}
	}
	struct wd_listener_settings lset = {
		.host = set->host,
		.port = set->port,
		.tls = set->secure ? server->tls : NULL,
		.proxy = set->proxy,
		.ip_limit = server->set.ip_limit,
	};
	wd_conn_limits_default(&lset.limits);
	lset.limits.write_timeout_ms = set->write_timeout_ms;
	/* the parser needs a whole line (64 KiB) plus one read in the buffer */
	lset.limits.input_max = 64 * 1024 + 64 * 1024;
	server->listener = wd_listener_create(deps->loop, &lset, wd__imap_session_accept, server,
					      error_r);
	if (server->listener == NULL) {
		wd_imap_server_destroy(&server);
		return NULL;
	}
	if (wd_imap_lease_start(server) < 0) {
		*error_r = strdup("connection leases: no random instance id");
		wd_imap_server_destroy(&server);
		return NULL;
	}
	notify_start(server);
	return server;
}

unsigned wd_imap_server_port(const struct wd_imap_server *server)
{
	return server->listener != NULL ? wd_listener_port(server->listener) : 0;
}

void wd_imap_server_shutdown(struct wd_imap_server *server)
{
	server->shutting_down = true;
	wd_imap_lease_stop(server);
	wd_notify_destroy(&server->notify);
	if (server->listener != NULL)
		wd_listener_close(&server->listener);
	struct wd_imap_session *session = server->sessions;
	while (session != NULL) {
		struct wd_imap_session *next = session->next;
		wd_imap_session_bye(session, "Server shutting down");
		session = next;
	}
}

unsigned wd_imap_server_session_count(const struct wd_imap_server *server)
{
	return server->session_count;
}

void wd_imap_server_destroy(struct wd_imap_server **_server)
{
	struct wd_imap_server *server = *_server;
	*_server = NULL;
	if (server == NULL)
		return;
	wd_imap_lease_stop(server);
	wd_notify_destroy(&server->notify);
	if (server->listener != NULL)
		wd_listener_close(&server->listener);
	if (server->tls != NULL)
		wd_tls_context_unref(&server->tls);
	for (size_t i = 0; i < server->user_count_buckets; i++) {
		while (server->user_counts[i] != NULL) {
			struct wd__imap_user_count *uc = server->user_counts[i];
			server->user_counts[i] = uc->next;
			free(uc);
		}
	}
	free(server->user_counts);
	wd_listener_ip_limit_unref(&server->set.ip_limit);
	free(server);
}

/* ---- the IMAP service of wd-server (wd-service.h) ---- */

static int service_create(const struct wd_server_deps *deps, void **instance_r, char **error_r)
{
	struct wd_imap_settings set;
	const char *error = NULL;
	*instance_r = NULL;
	if (wd_imap_settings_read(deps->config, &set, &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	if (deps->first != NULL) {
		/* the other loops listen on the first one's port and share its count */
		const struct wd_imap_server *first = deps->first;
		set.port = wd_imap_server_port(deps->first);
		set.ip_limit = first->set.ip_limit;
	}
	struct wd_imap_server *server = wd_imap_server_create(deps, &set, error_r);
	if (server == NULL)
		return WD_ERROR;
	*instance_r = server;
	return WD_OK;
}

static void service_describe(void *instance, char *buf, size_t size)
{
	struct wd_imap_server *server = instance;
	snprintf(buf, size, "imap listening on %s:%u (%s%s)", server->set.host,
		 wd_imap_server_port(server),
		 server->set.secure ? "implicit TLS" : server->set.starttls ? "STARTTLS" : "plain",
		 server->set.proxy ? ", PROXY protocol" : "");
}

static void service_shutdown(void *instance)
{
	wd_imap_server_shutdown(instance);
}

static unsigned service_session_count(void *instance)
{
	return wd_imap_server_session_count(instance);
}

static void service_destroy(void **instance)
{
	struct wd_imap_server *server = *instance;
	*instance = NULL;
	wd_imap_server_destroy(&server);
}

const struct wd_service wd_imap_service = {
	.name = "imap",
	.create = service_create,
	.describe = service_describe,
	.shutdown = service_shutdown,
	.session_count = service_session_count,
	.destroy = service_destroy,
};
