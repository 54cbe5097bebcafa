/* wd-server's event loops and their services (loop-set.h).
 *
 * Shutdown crosses threads only through one atomic request counter and one
 * uv_async per loop: the loop's own thread then stops its services and
 * polls until they have no sessions left (or the grace time ran out), and
 * stops. Everything else of a loop is touched by its thread only, except
 * before the threads start and after they were joined.
 *
 * Heap trim: every `workers.heapTrimSeconds` (default 30, 0 = never) the
 * main loop calls malloc_trim(0). A TLS handshake allocates and frees some
 * 30 KiB of OpenSSL buffers per connection; glibc keeps those pages, so a
 * server that accepted thousands of idle TLS sessions held about 9.5 KiB
 * per session of freed memory (bench/imap-idle-memory.py, measured by
 * hand). Trimming gives it back; what is in use is not touched. */
#include "loop-set.h"

#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-worker-pool.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERVICES 8
#define SHUTDOWN_POLL_MS 50
#define HEAP_TRIM_DEFAULT_S 30

struct server_loop {
	struct wd_loop_set *set;
	unsigned index;
	uv_loop_t loop;
	bool loop_ready;
	uv_thread_t thread;
	bool thread_started;
	struct wd_completion_queue *queue;
	void *instances[MAX_SERVICES]; /* parallel to wd_services[]; NULL = not here */
	uv_async_t wake;
	uv_timer_t shutdown_timer;
	uv_timer_t heap_trim_timer; /* main loop only */
	bool handles_ready;
	bool stopping;
	uint64_t shutdown_started;
};

struct wd_loop_set {
	struct wd_server_deps shared;
	unsigned count;
	atomic_int shutdown_requests; /* 1: stop politely, 2: stop now */
	atomic_uint grace_ms;
	struct server_loop loops[];
};

static unsigned loop_sessions(const struct server_loop *l)
{
	unsigned count = 0;
	for (size_t i = 0; wd_services[i] != NULL; i++) {
		if (l->instances[i] != NULL)
			count += wd_services[i]->session_count(l->instances[i]);
	}
	return count;
}

static void shutdown_poll(uv_timer_t *timer)
{
	struct server_loop *l = timer->data;
	bool timed_out = uv_now(&l->loop) - l->shutdown_started > atomic_load(&l->set->grace_ms);
	unsigned sessions = loop_sessions(l);
	if (sessions > 0 && !timed_out)
		return;
	if (sessions > 0)
		wd_warning("server", "loop %u: %u sessions still open after the grace time; stopping anyway",
			   l->index, sessions);
	uv_timer_stop(timer);
	uv_stop(&l->loop);
}

static void wake_cb(uv_async_t *async)
{
	struct server_loop *l = async->data;
	int request = atomic_load(&l->set->shutdown_requests);
	if (request >= 2) {
		uv_stop(&l->loop);
		return;
	}
	if (request < 1 || l->stopping)
		return;
	l->stopping = true;
	for (size_t i = 0; wd_services[i] != NULL; i++) {
		if (l->instances[i] != NULL)
			wd_services[i]->shutdown(l->instances[i]);
	}
	l->shutdown_started = uv_now(&l->loop);
	uv_timer_start(&l->shutdown_timer, shutdown_poll, 0, SHUTDOWN_POLL_MS);
}

static int loop_init(struct wd_loop_set *set, struct server_loop *l, unsigned index,
		     char **error_r)
{
	const char *error;
	l->set = set;
	l->index = index;
	if (uv_loop_init(&l->loop) < 0) {
		*error_r = strdup("cannot create an event loop");
		return WD_ERROR;
	}
	l->loop_ready = true;
	l->queue = wd_completion_queue_create(&l->loop, &error);
	if (l->queue == NULL) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	uv_async_init(&l->loop, &l->wake, wake_cb);
	uv_timer_init(&l->loop, &l->shutdown_timer);
	uv_timer_init(&l->loop, &l->heap_trim_timer);
	uv_unref((uv_handle_t *)&l->heap_trim_timer); /* never keeps the loop running */
	l->wake.data = l->shutdown_timer.data = l->heap_trim_timer.data = l;
	l->handles_ready = true;
	return WD_OK;
}

static int services_create(struct wd_loop_set *set, struct server_loop *l, char **error_r)
{
	struct wd_server_deps deps = set->shared;
	deps.loop = &l->loop;
	deps.queue = l->queue;
	for (size_t i = 0; wd_services[i] != NULL; i++) {
		const struct wd_service *service = wd_services[i];
		if (l->index > 0 && (service->once || set->loops[0].instances[i] == NULL))
			continue;
		deps.first = l->index > 0 ? set->loops[0].instances[i] : NULL;
		char *error = NULL;
		if (service->create(&deps, &l->instances[i], &error) < 0) {
			if (asprintf(error_r, "%s: %s", service->name, error != NULL ? error : "?") < 0)
				*error_r = NULL;
			free(error);
			return WD_ERROR;
		}
		if (l->index > 0)
			continue;
		if (l->instances[i] == NULL) {
			wd_info("server", "%s: disabled", service->name);
			continue;
		}
		char line[256];
		service->describe(l->instances[i], line, sizeof(line));
		wd_info("server", "%s", line);
	}
	return WD_OK;
}

static void heap_trim(uv_timer_t *timer)
{
	(void)timer;
	malloc_trim(0);
}

/* Starts the main loop's heap trim timer (workers.heapTrimSeconds). */
static int heap_trim_start(struct wd_loop_set *set, char **error_r)
{
	int64_t seconds;
	const char *error;
	if (wd_config_get_int(set->shared.config, "workers.heapTrimSeconds", HEAP_TRIM_DEFAULT_S,
			      &seconds, &error) < 0 || seconds < 0 || seconds > 86400) {
		if (asprintf(error_r, "workers.heapTrimSeconds: %s",
			     seconds < 0 || seconds > 86400 ? "0..86400" : error) < 0)
			*error_r = NULL;
		return WD_ERROR;
	}
	if (seconds > 0)
		uv_timer_start(&set->loops[0].heap_trim_timer, heap_trim, (uint64_t)seconds * 1000,
			       (uint64_t)seconds * 1000);
	return WD_OK;
}

struct wd_loop_set *wd_loop_set_create(unsigned count, const struct wd_server_deps *shared,
				       char **error_r)
{
	size_t services = 0;
	while (wd_services[services] != NULL)
		services++;
	if (services > MAX_SERVICES || count < 1) {
		*error_r = strdup(count < 1 ? "no event loop" : "too many services");
		return NULL;
	}
	struct wd_loop_set *set = calloc(1, sizeof(*set) + count * sizeof(set->loops[0]));
	if (set == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	set->shared = *shared;
	set->count = count;
	atomic_init(&set->shutdown_requests, 0);
	atomic_init(&set->grace_ms, 10000);
	for (unsigned i = 0; i < count; i++) {
		if (loop_init(set, &set->loops[i], i, error_r) < 0 ||
		    services_create(set, &set->loops[i], error_r) < 0) {
			wd_loop_set_destroy(&set);
			return NULL;
		}
	}
	if (heap_trim_start(set, error_r) < 0) {
		wd_loop_set_destroy(&set);
		return NULL;
	}
	return set;
}

uv_loop_t *wd_loop_set_main_loop(struct wd_loop_set *set)
{
	return &set->loops[0].loop;
}

unsigned wd_loop_set_count(const struct wd_loop_set *set)
{
	return set->count;
}

static void loop_thread(void *arg)
{
	struct server_loop *l = arg;
	uv_run(&l->loop, UV_RUN_DEFAULT);
}

int wd_loop_set_run(struct wd_loop_set *set)
{
	int ret = WD_OK;
	for (unsigned i = 1; i < set->count; i++) {
		struct server_loop *l = &set->loops[i];
		if (uv_thread_create(&l->thread, loop_thread, l) != 0) {
			wd_error("server", "cannot start the thread of loop %u", i);
			wd_loop_set_shutdown(set, 0);
			wd_loop_set_shutdown(set, 0);
			ret = WD_ERROR;
			break;
		}
		l->thread_started = true;
	}
	uv_run(&set->loops[0].loop, UV_RUN_DEFAULT);
	for (unsigned i = 1; i < set->count; i++) {
		if (set->loops[i].thread_started) {
			uv_thread_join(&set->loops[i].thread);
			set->loops[i].thread_started = false;
		}
	}
	return ret;
}

void wd_loop_set_shutdown(struct wd_loop_set *set, unsigned grace_ms)
{
	atomic_store(&set->grace_ms, grace_ms);
	atomic_fetch_add(&set->shutdown_requests, 1);
	for (unsigned i = 0; i < set->count; i++) {
		if (set->loops[i].handles_ready)
			uv_async_send(&set->loops[i].wake);
	}
}

static void close_handle(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

void wd_loop_set_destroy(struct wd_loop_set **_set)
{
	struct wd_loop_set *set = *_set;
	*_set = NULL;
	if (set == NULL)
		return;
	/* every thread has been joined: from here on one thread does all */
	for (unsigned i = 0; i < set->count; i++) {
		struct server_loop *l = &set->loops[i];
		if (l->queue != NULL)
			wd_completion_queue_destroy(&l->queue); /* delivers what is pending */
	}
	for (unsigned i = 0; i < set->count; i++) {
		struct server_loop *l = &set->loops[i];
		if (!l->loop_ready)
			continue;
		/* each service closes its own handles (with their close callbacks)
		   first; then whatever is left. The other order made a service
		   close a handle a second time (a failed start: abort in uv_close). */
		size_t n = 0;
		while (wd_services[n] != NULL)
			n++;
		while (n-- > 0) {
			if (l->instances[n] != NULL)
				wd_services[n]->destroy(&l->instances[n]);
		}
		uv_walk(&l->loop, close_handle, NULL);
		uv_run(&l->loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&l->loop) != 0)
			wd_warning("server", "loop %u: handles left open at exit", i);
	}
	free(set);
}
