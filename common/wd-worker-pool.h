#ifndef WD_WORKER_POOL_H
#define WD_WORKER_POOL_H

/* A fixed pool of worker threads for blocking work (libmongoc calls), with
 * results delivered back to the event loop that asked (DESIGN.md §4, STYLE.md
 * example 10).
 *
 * The caller owns each `struct wd_work` (no allocation per job): it fills in
 * the work and done functions and submits it together with the completion
 * queue of its loop. `work` runs on a worker thread and must not touch loop
 * objects; `done` runs later on the loop thread that owns the completion
 * queue, with status WD_OK, or WD_WORK_CANCELLED when the pool was shut down
 * before the job started. Completions arrive in the order the jobs finished.
 *
 * The job queue is bounded: submit fails with WD_ERROR when it is full, so the
 * caller can answer "server busy" rather than queue without limit. */

#include <stddef.h>
#include <uv.h>

#define WD_WORK_CANCELLED 2

struct wd_worker_pool;
struct wd_completion_queue;
struct wd_work;

typedef void wd_work_fn(struct wd_work *work);
typedef void wd_work_done_fn(struct wd_work *work, int status);

struct wd_work {
	wd_work_fn *work;
	wd_work_done_fn *done;
	void *context;
	/* private to the pool */
	struct wd_completion_queue *queue;
	struct wd_work *next;
	int status;
};

enum wd_worker_shutdown {
	WD_WORKER_SHUTDOWN_DRAIN,  /* run every queued job, then stop */
	WD_WORKER_SHUTDOWN_CANCEL, /* finish running jobs; queued ones complete as cancelled */
};

struct wd_worker_pool *wd_worker_pool_create(unsigned threads, size_t queue_limit,
					     const char **error_r);
/* Stops the pool as `mode` says and joins its threads. Completions of the last
   jobs are still delivered by their loops (run them, or destroy the completion
   queue, which delivers what is pending). */
void wd_worker_pool_destroy(struct wd_worker_pool **pool, enum wd_worker_shutdown mode);

/* Thread-safe. WD_OK, or WD_ERROR (*error_r) when the queue is full or the
   pool is shutting down; the job is then not owned by the pool. */
int wd_worker_pool_submit(struct wd_worker_pool *pool, struct wd_completion_queue *queue,
			  struct wd_work *work, const char **error_r);
size_t wd_worker_pool_queued(struct wd_worker_pool *pool);

/* One per loop thread. */
struct wd_completion_queue *wd_completion_queue_create(uv_loop_t *loop, const char **error_r);
/* Delivers every pending completion now, then closes the async handle (the
   memory is freed from its close callback: run the loop once more). */
void wd_completion_queue_destroy(struct wd_completion_queue **queue);

#endif
