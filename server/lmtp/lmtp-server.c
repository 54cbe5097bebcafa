/* The LMTP service of one loop (lmtp-server.h): settings, the delivery
 * pipeline, the listener, the session list and shutdown. */
#include "lmtp-server.h"

#include "lmtp-session.h"
#include "wd-config.h"
#include "wd-conn.h"
#include "wd-deliver.h"
#include "wd-listener.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-str.h"
#include "wd-tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MB 4096

static bool host_is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	       strncmp(host, "127.", 4) == 0;
}

/* lmtp.name: a string, or WildDuck's `false` for "the host name". */
static int read_name(const struct wd_config *config, char *name, size_t size,
		     const char **error_r)
{
	const struct wd_config_value *value = wd_config_lookup(config, "lmtp.name");
	const char *text = NULL;
	if (value != NULL && wd_config_value_type(value) != WD_CONFIG_BOOLEAN &&
	    wd_config_get_string(config, "lmtp.name", NULL, &text, error_r) < 0)
		return WD_ERROR;
	if (text != NULL && *text != '\0') {
		for (const char *p = text; *p != '\0'; p++) {
			if ((unsigned char)*p <= ' ') {
				*error_r = "lmtp.name: a host name without spaces or control characters";
				return WD_ERROR;
			}
		}
		wd_strlcpy(name, text, size);
		return WD_OK;
	}
	if (gethostname(name, size) < 0 || name[0] == '\0')
		wd_strlcpy(name, "localhost", size);
	name[size - 1] = '\0';
	return WD_OK;
}

int wd_lmtp_settings_read(const struct wd_config *config, struct wd_lmtp_settings *set_r,
			  const char **error_r)
{
	int64_t port, max_mb, max_rcpt, max_errors, timeout, data_timeout;
	bool disable_starttls;
	memset(set_r, 0, sizeof(*set_r));
	if (wd_config_get_bool(config, "lmtp.enabled", false, &set_r->enabled, error_r) < 0 ||
	    wd_config_get_string(config, "lmtp.host", "127.0.0.1", &set_r->host, error_r) < 0 ||
	    wd_config_get_int(config, "lmtp.port", 2424, &port, error_r) < 0 ||
	    wd_config_get_bool(config, "lmtp.secure", false, &set_r->secure, error_r) < 0 ||
	    wd_config_get_bool(config, "lmtp.proxy", false, &set_r->proxy, error_r) < 0 ||
	    wd_config_get_int(config, "lmtp.maxMB", 25, &max_mb, error_r) < 0 ||
	    wd_config_get_int(config, "lmtp.maxRecipients", 400, &max_rcpt, error_r) < 0 ||
	    wd_config_get_int(config, "lmtp.maxErrors", 20, &max_errors, error_r) < 0 ||
	    wd_config_get_int(config, "lmtp.timeout", 300, &timeout, error_r) < 0 ||
	    wd_config_get_int(config, "lmtp.dataTimeout", 300, &data_timeout, error_r) < 0 ||
	    wd_config_get_string(config, "lmtp.banner", "Welcome to WildDuck Mail Server",
				 &set_r->banner, error_r) < 0)
		return WD_ERROR;
	if (wd_config_get_bool(config, "lmtp.disableSTARTTLS", host_is_loopback(set_r->host),
			       &disable_starttls, error_r) < 0 ||
	    read_name(config, set_r->name, sizeof(set_r->name), error_r) < 0)
		return WD_ERROR;
	if (port < 0 || port > 65535) {
		*error_r = "lmtp.port: out of range";
		return WD_ERROR;
	}
	if (max_mb < 1 || max_mb > MAX_MB) {
		*error_r = "lmtp.maxMB: expected 1..4096";
		return WD_ERROR;
	}
	if (max_rcpt < 1 || max_rcpt > 100000 || max_errors < 1 || max_errors > 1000) {
		*error_r = "lmtp.maxRecipients 1..100000, lmtp.maxErrors 1..1000";
		return WD_ERROR;
	}
	if (timeout < 1 || timeout > 86400 || data_timeout < 1 || data_timeout > 86400) {
		*error_r = "lmtp.timeout / lmtp.dataTimeout: 1..86400 seconds";
		return WD_ERROR;
	}
	set_r->port = (unsigned)port;
	set_r->starttls = !disable_starttls && !set_r->secure;
	set_r->max_message = (uint64_t)max_mb * 1024 * 1024;
	set_r->max_recipients = (unsigned)max_rcpt;
	set_r->max_errors = (unsigned)max_errors;
	set_r->timeout_ms = (unsigned)timeout * 1000;
	set_r->data_timeout_ms = (unsigned)data_timeout * 1000;
	return WD_OK;
}

struct wd_lmtp_server *wd_lmtp_server_create(const struct wd_server_deps *deps,
					     const struct wd_lmtp_settings *set,
					     struct wd_deliver *deliver, char **error_r)
{
	struct wd_lmtp_server *server = calloc(1, sizeof(*server));
	if (server == NULL) {
		wd_deliver_destroy(&deliver);
		*error_r = strdup("out of memory");
		return NULL;
	}
	server->deps = *deps;
	server->set = *set;
	server->deliver = deliver;
	/* the pipeline's limit wins where it is smaller (SIZE, 552) */
	uint64_t deliver_max = deliver != NULL ? wd_deliver_max_size(deliver) : 0;
	if (deliver_max > 0 && deliver_max < server->set.max_message)
		server->set.max_message = deliver_max;
	if (set->secure || set->starttls) {
		server->tls = wd_tls_context_from_config(deps->config, "lmtp", error_r);
		if (server->tls == NULL) {
			wd_lmtp_server_destroy(&server);
			return NULL;
		}
	}
	struct wd_listener_settings lset = {
		.host = set->host,
		.port = set->port,
		.tls = set->secure ? server->tls : NULL,
		.proxy = set->proxy,
	};
	wd_conn_limits_default(&lset.limits);
	server->listener = wd_listener_create(deps->loop, &lset, wd__lmtp_session_accept, server,
					      error_r);
	if (server->listener == NULL) {
		wd_lmtp_server_destroy(&server);
		return NULL;
	}
	return server;
}

unsigned wd_lmtp_server_port(const struct wd_lmtp_server *server)
{
	return server->listener != NULL ? wd_listener_port(server->listener) : 0;
}

void wd_lmtp_server_shutdown(struct wd_lmtp_server *server)
{
	server->shutting_down = true;
	if (server->listener != NULL)
		wd_listener_close(&server->listener);
	struct wd_lmtp_session *session = server->sessions;
	while (session != NULL) {
		struct wd_lmtp_session *next = session->next;
		/* a running check or delivery answers first (cmd_finish then
		   says 421); everything else is told now */
		if (session->current == NULL || !session->current->job_pending)
			wd_lmtp_session_close(session, 421, "4.3.2", "Service shutting down");
		session = next;
	}
}

unsigned wd_lmtp_server_session_count(const struct wd_lmtp_server *server)
{
	return server->session_count;
}

void wd_lmtp_server_destroy(struct wd_lmtp_server **_server)
{
	struct wd_lmtp_server *server = *_server;
	*_server = NULL;
	if (server == NULL)
		return;
	if (server->listener != NULL)
		wd_listener_close(&server->listener);
	if (server->tls != NULL)
		wd_tls_context_unref(&server->tls);
	wd_deliver_destroy(&server->deliver);
	free(server);
}

void wd_lmtp_server_describe(const struct wd_lmtp_server *server, char *buf, size_t size)
{
	snprintf(buf, size, "lmtp listening on %s:%u (%s%s, max %llu bytes, name %s)",
		 server->set.host, wd_lmtp_server_port(server),
		 server->set.secure ? "implicit TLS" : server->set.starttls ? "STARTTLS" : "plain",
		 server->set.proxy ? ", PROXY protocol" : "",
		 (unsigned long long)server->set.max_message, server->set.name);
}
