#ifndef WD_SERVICE_H
#define WD_SERVICE_H

/* A service of wd-server: IMAP, POP3, LMTP, the outbound sender. The
 * server knows none of them by name; it walks wd_services[] (services.c),
 * creates each one on every event loop (loop-set.h: one loop per core, each
 * in its own thread), and at shutdown asks each to stop and waits until
 * none has sessions left.
 *
 * Every service of one event loop gets the same dependencies: the loop, the
 * configuration, the store and auth handles (thread-safe, used from worker
 * jobs), the worker pool and the loop's completion queue. An instance is
 * only ever touched from its loop's thread. A service keeps whatever else
 * it needs (listeners, TLS contexts, sessions, threads) in its own instance.
 *
 * Listeners of the same service on several loops share their port
 * (SO_REUSEPORT; the kernel spreads connections): the first loop's instance
 * is created first and is passed as `first` to the others, which take its
 * port (what matters when the configured port is 0, "any"). A service with
 * `once` set (the outbound sender) runs on the first loop only. */

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct wd_config;
struct wd_store;
struct wd_auth;
struct wd_worker_pool;
struct wd_completion_queue;

struct wd_server_deps {
	uv_loop_t *loop;
	const struct wd_config *config;
	struct wd_store *store;
	struct wd_auth *auth;
	struct wd_worker_pool *pool;
	struct wd_completion_queue *queue;
	/* this service's instance on the first loop (NULL on the first loop,
	   or when the service is disabled there): take its ports */
	void *first;
};

struct wd_service {
	const char *name;
	bool once;  /* one instance per process, on the first loop */
	/* Reads the service's settings and starts it. A service the
	   configuration disables (e.g. lmtp.enabled = false) sets *instance_r
	   to NULL and returns WD_OK. WD_ERROR with a malloc'd *error_r. */
	int (*create)(const struct wd_server_deps *deps, void **instance_r, char **error_r);
	/* One line for the log: where it listens and how. */
	void (*describe)(void *instance, char *buf, size_t size);
	/* Stop accepting, end sessions politely; pending jobs finish. */
	void (*shutdown)(void *instance);
	/* Sessions (or other work) still open; main waits for 0 after shutdown. */
	unsigned (*session_count)(void *instance);
	void (*destroy)(void **instance);
};

/* NULL-terminated, in start order (services.c). */
extern const struct wd_service *const wd_services[];

#endif
