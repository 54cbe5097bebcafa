/* wd-server: the IMAP, POP3 and LMTP engines and the outbound sender over
 * libwdstore and libwdauth, each a service of wd_services[] (wd-service.h).
 *
 *   wd-server [--config FILE] [--section.key=value]...
 *
 * Configuration: FILE (default conf.d/default.toml when present), then
 * APPCONF_* environment variables, then --key=value arguments (wd-config.h).
 *
 * Threads: `workers.loops` libuv loops (default: one per core), each with
 * its own thread and its own instance of every service (loop-set.h);
 * blocking storage and authentication calls run on one shared worker pool
 * (workers.threads) and complete on the loop that asked.
 *
 * Shutdown on SIGINT/SIGTERM: stop accepting, BYE to every session, let
 * sessions end (at most SHUTDOWN_GRACE_MS), let pending jobs finish, then
 * release everything in reverse order. A second signal stops at once.
 *
 * SIGHUP re-reads the TLS certificate and key files of every service
 * (wd-tls.h): new TLS connections get the new certificate, sessions already
 * open keep theirs; files that fail to load are logged and the old
 * certificate stays. Other settings need a restart. */
#include "wd-auth.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-program.h"
#include "wd-result.h"
#include "wd-sd-notify.h"
#include "loop-set.h"
#include "wd-service.h"
#include "wd-store.h"
#include "wd-tls.h"
#include "wd-worker-pool.h"

#include <errno.h>
#include <mongoc/mongoc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define SHUTDOWN_GRACE_MS 10000
#define MAX_LOOPS 64

struct server_main {
	struct wd_loop_set *loops;
	uv_signal_t sigint, sigterm, sighup;
	bool stopping;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: wd-server [--config FILE] [--section.key=value]...\n"
		     "  --config FILE   TOML configuration (default conf.d/default.toml)\n"
		     "  --imap.port=N   any key of the configuration, e.g. --imap.secure=false\n"
		     "Environment: APPCONF_imap_port=N and so on.\n");
}

static void on_signal(uv_signal_t *handle, int signum)
{
	struct server_main *m = handle->data;
	if (m->stopping) {
		wd_warning("server", "second signal: stopping now");
		wd_loop_set_shutdown(m->loops, 0);
		return;
	}
	m->stopping = true;
	wd_info("server", "%s received: shutting down", strsignal(signum));
	wd_sd_notify("STOPPING=1");
	wd_loop_set_shutdown(m->loops, SHUTDOWN_GRACE_MS);
}

static void on_sighup(uv_signal_t *handle, int signum)
{
	(void)handle;
	(void)signum;
	wd_info("server", "SIGHUP received: reloading TLS certificates");
	unsigned failed = wd_tls_context_reload_all();
	if (failed > 0)
		wd_error("server", "TLS reload: %u contexts kept their old certificate", failed);
}

int main(int argc, char **argv)
{
	int exit_code;
	struct wd_config *config = wd_program_config("wd-server", argc, argv, usage, &exit_code);
	if (config == NULL)
		return exit_code;
	signal(SIGPIPE, SIG_IGN);
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);

	int status = 1;
	char *error = NULL;
	const char *cerror = NULL;
	struct wd_store *store = NULL;
	struct wd_auth *auth = NULL;
	struct wd_worker_pool *pool = NULL;
	struct server_main m = { 0 };
	int64_t threads, queue_limit, loops;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (wd_config_get_int(config, "workers.threads", 8, &threads, &cerror) < 0 ||
	    wd_config_get_int(config, "workers.queueLimit", 10000, &queue_limit, &cerror) < 0 ||
	    wd_config_get_int(config, "workers.loops", cores > 0 ? cores : 1, &loops, &cerror) < 0) {
		wd_error("server", "configuration: %s", cerror);
		goto out;
	}
	if (loops > MAX_LOOPS)
		loops = MAX_LOOPS;
	if (threads < 1 || threads > 256 || queue_limit < 1 || loops < 1) {
		wd_error("server", "configuration: workers.threads 1..256, workers.queueLimit >= 1, "
				   "workers.loops >= 1");
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
	if (pool == NULL) {
		wd_error("server", "worker pool: %s", cerror);
		goto out;
	}
	struct wd_server_deps shared = {
		.config = config, .store = store, .auth = auth, .pool = pool,
	};
	m.loops = wd_loop_set_create((unsigned)loops, &shared, &error);
	if (m.loops == NULL) {
		wd_error("server", "%s", error);
		goto out;
	}
	wd_info("server", "%lld event loops, %lld worker threads", (long long)loops,
		(long long)threads);

	uv_loop_t *main_loop = wd_loop_set_main_loop(m.loops);
	uv_signal_init(main_loop, &m.sigint);
	uv_signal_init(main_loop, &m.sigterm);
	m.sigint.data = m.sigterm.data = &m;
	uv_signal_start(&m.sigint, on_signal, SIGINT);
	uv_signal_start(&m.sigterm, on_signal, SIGTERM);
	uv_signal_init(main_loop, &m.sighup);
	uv_signal_start(&m.sighup, on_sighup, SIGHUP);
	/* the listeners are bound (wd_loop_set_create): clients can connect */
	if (wd_sd_notify("READY=1") < 0)
		wd_warning("server", "sd_notify READY: %s", strerror(errno));

	if (wd_loop_set_run(m.loops) == WD_OK)
		status = 0;

	/* jobs still running finish; their completions are delivered by
	   wd_loop_set_destroy */
	wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_loop_set_destroy(&m.loops);
	wd_info("server", "stopped");
out:
	free(error);
	if (pool != NULL)
		wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_CANCEL);
	wd_loop_set_destroy(&m.loops);
	wd_auth_destroy(&auth);
	wd_store_close(&store);
	wd_config_free(&config);
	mongoc_cleanup();
	return status;
}
