/* wd-server: the IMAP, POP3 and LMTP engines and the outbound sender over
 * libwdstore and libwdauth, each a service of wd_services[] (wd-service.h).
 *
 *   wd-server [--config FILE] [--section.key=value]...
 *
 * Configuration: FILE (default conf.d/default.toml when present), then
 * APPCONF_* environment variables, then --key=value arguments (wd-config.h).
 *
 * Threads: one libuv loop runs every connection; blocking storage and
 * authentication calls run on a worker pool (workers.threads) and complete
 * on the loop. Structured so that more loops, each with its own
 * wd_imap_server and completion queue on the same SO_REUSEPORT port, can be
 * added without changing the engine.
 *
 * Shutdown on SIGINT/SIGTERM: stop accepting, BYE to every session, let
 * pending jobs finish (at most SHUTDOWN_GRACE_MS), then release everything
 * in reverse order. */
#include "wd-auth.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-service.h"
#include "wd-store.h"
#include "wd-worker-pool.h"

#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define SHUTDOWN_GRACE_MS 10000
#define SHUTDOWN_POLL_MS 50

#define MAX_SERVICES 8

struct server_main {
	uv_loop_t *loop;
	void *instances[MAX_SERVICES]; /* parallel to wd_services[], NULL = disabled */
	uv_signal_t sigint, sigterm;
	uv_timer_t shutdown_timer;
	uint64_t shutdown_started;
	bool stopping;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: wd-server [--config FILE] [--section.key=value]...\n"
		     "  --config FILE   TOML configuration (default conf.d/default.toml)\n"
		     "  --imap.port=N   any key of the configuration, e.g. --imap.secure=false\n"
		     "Environment: APPCONF_imap_port=N and so on.\n");
}

static void close_handle(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

static unsigned session_count(const struct server_main *m)
{
	unsigned count = 0;
	for (size_t i = 0; wd_services[i] != NULL; i++) {
		if (m->instances[i] != NULL)
			count += wd_services[i]->session_count(m->instances[i]);
	}
	return count;
}

static void destroy_services(struct server_main *m)
{
	size_t n = 0;
	while (wd_services[n] != NULL)
		n++;
	while (n-- > 0) {
		if (m->instances[n] != NULL)
			wd_services[n]->destroy(&m->instances[n]);
	}
}

static void shutdown_poll(uv_timer_t *timer)
{
	struct server_main *m = timer->data;
	bool timed_out = uv_now(m->loop) - m->shutdown_started > SHUTDOWN_GRACE_MS;
	if (session_count(m) > 0 && !timed_out)
		return;
	if (timed_out)
		wd_warning("server", "%u sessions still open after %d ms; stopping anyway",
			   session_count(m), SHUTDOWN_GRACE_MS);
	uv_timer_stop(timer);
	uv_stop(m->loop);
}

static void on_signal(uv_signal_t *handle, int signum)
{
	struct server_main *m = handle->data;
	if (m->stopping) {
		wd_warning("server", "second signal: stopping now");
		uv_stop(m->loop);
		return;
	}
	m->stopping = true;
	wd_info("server", "%s received: shutting down (%u sessions)", strsignal(signum),
		session_count(m));
	for (size_t i = 0; wd_services[i] != NULL; i++) {
		if (m->instances[i] != NULL)
			wd_services[i]->shutdown(m->instances[i]);
	}
	m->shutdown_started = uv_now(m->loop);
	uv_timer_start(&m->shutdown_timer, shutdown_poll, SHUTDOWN_POLL_MS, SHUTDOWN_POLL_MS);
}

static int read_log_settings(const struct wd_config *config)
{
	const char *level_name, *target, *error;
	if (wd_config_get_string(config, "log.level", "info", &level_name, &error) < 0 ||
	    wd_config_get_string(config, "log.target", "stderr", &target, &error) < 0) {
		fprintf(stderr, "wd-server: %s\n", error);
		return -1;
	}
	int level = wd_log_level_parse(level_name);
	if (level < 0) {
		fprintf(stderr, "wd-server: log.level: unknown level \"%s\"\n", level_name);
		return -1;
	}
	wd_log_init("wd-server",
		    strcmp(target, "syslog") == 0 ? WD_LOG_SINK_SYSLOG : WD_LOG_SINK_STDERR,
		    (enum wd_log_level)level);
	return 0;
}

static struct wd_config *load_config(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	if (path == NULL && access("conf.d/default.toml", R_OK) == 0)
		path = "conf.d/default.toml";
	char *error = NULL;
	struct wd_config *config = path != NULL ? wd_config_load(path, &error) : wd_config_new();
	if (config != NULL && (wd_config_apply_env(config, NULL, &error) < 0 ||
			       wd_config_apply_args(config, argc, argv, &error) < 0))
		wd_config_free(&config);
	if (config == NULL) {
		fprintf(stderr, "wd-server: %s\n", error != NULL ? error : "cannot load configuration");
		free(error);
	}
	return config;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strncmp(argv[i], "--", 2) != 0 && (i == 1 || strcmp(argv[i - 1], "--config") != 0)) {
			fprintf(stderr, "wd-server: unexpected argument \"%s\"\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	struct wd_config *config = load_config(argc, argv);
	if (config == NULL || read_log_settings(config) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);

	int status = 1;
	char *error = NULL;
	const char *cerror = NULL;
	struct wd_store *store = NULL;
	struct wd_auth *auth = NULL;
	struct wd_worker_pool *pool = NULL;
	struct wd_completion_queue *queue = NULL;
	struct server_main m = { .loop = uv_default_loop() };
	int64_t threads, queue_limit;

	if (wd_config_get_int(config, "workers.threads", 8, &threads, &cerror) < 0 ||
	    wd_config_get_int(config, "workers.queueLimit", 10000, &queue_limit, &cerror) < 0) {
		wd_error("server", "configuration: %s", cerror);
		goto out;
	}
	if (threads < 1 || threads > 256 || queue_limit < 1) {
		wd_error("server", "configuration: workers.threads 1..256, workers.queueLimit >= 1");
		goto out;
	}
	store = wd_store_open(config, &error);
	if (store == NULL) {
		wd_error("server", "database: %s", error);
		goto out;
	}
	struct wd_store_index_report report = { 0 };
	if (wd_store_ensure_indexes(store, &report, &error) < 0) {
		wd_error("server", "database indexes: %s", error);
		goto out;
	}
	const struct wd_store_caps *caps = wd_store_caps(store);
	wd_info("server", "database: %s %s, %u indexes (%u refused by the server)",
		caps->ferretdb ? "FerretDB" : "MongoDB",
		caps->ferretdb ? caps->ferretdb_version : caps->version, report.created,
		report.rejected);
	auth = wd_auth_create(store, config, &error);
	if (auth == NULL) {
		wd_error("server", "auth: %s", error);
		goto out;
	}
	pool = wd_worker_pool_create((unsigned)threads, (size_t)queue_limit, &cerror);
	queue = pool != NULL ? wd_completion_queue_create(m.loop, &cerror) : NULL;
	if (queue == NULL) {
		wd_error("server", "worker pool: %s", cerror);
		goto out;
	}
	struct wd_server_deps deps = {
		.loop = m.loop, .config = config, .store = store, .auth = auth,
		.pool = pool, .queue = queue,
	};
	for (size_t i = 0; wd_services[i] != NULL; i++) {
		if (i >= MAX_SERVICES) {
			wd_error("server", "more than %d services", MAX_SERVICES);
			goto out;
		}
		if (wd_services[i]->create(&deps, &m.instances[i], &error) < 0) {
			wd_error("server", "%s: %s", wd_services[i]->name, error);
			goto out;
		}
		if (m.instances[i] == NULL) {
			wd_info("server", "%s: disabled", wd_services[i]->name);
			continue;
		}
		char line[256];
		wd_services[i]->describe(m.instances[i], line, sizeof(line));
		wd_info("server", "%s", line);
	}
	wd_info("server", "%lld worker threads", (long long)threads);

	uv_signal_init(m.loop, &m.sigint);
	uv_signal_init(m.loop, &m.sigterm);
	uv_timer_init(m.loop, &m.shutdown_timer);
	m.sigint.data = m.sigterm.data = m.shutdown_timer.data = &m;
	uv_signal_start(&m.sigint, on_signal, SIGINT);
	uv_signal_start(&m.sigterm, on_signal, SIGTERM);

	uv_run(m.loop, UV_RUN_DEFAULT);
	status = 0;

	/* jobs still running finish; their completions are delivered below */
	wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_completion_queue_destroy(&queue);
	uv_walk(m.loop, close_handle, NULL);
	uv_run(m.loop, UV_RUN_DEFAULT);
	destroy_services(&m);
	wd_info("server", "stopped");
out:
	free(error);
	destroy_services(&m);
	if (pool != NULL)
		wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_CANCEL);
	if (queue != NULL)
		wd_completion_queue_destroy(&queue);
	uv_loop_close(m.loop);
	wd_auth_destroy(&auth);
	wd_store_close(&store);
	wd_config_free(&config);
	mongoc_cleanup();
	return status;
}
