/* Worker pool and completion queues.
 *
 * Design: one mutex + condition variable protects the FIFO of queued jobs.
 * A worker pops a job, runs it without any lock, then appends it to the
 * completion queue of the loop that submitted it and wakes that loop with
 * uv_async_send() (which coalesces wake-ups; the async callback drains the
 * whole completion list). Completion queues have their own mutex so workers
 * of one pool can serve many loops. Cancelled jobs take the same completion
 * path with status WD_WORK_CANCELLED, so `done` always runs exactly once, on
 * the loop thread. */
#include "wd-worker-pool.h"
#include "wd-log.h"
#include "wd-result.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct wd_completion_queue {
	uv_async_t async;
	pthread_mutex_t lock;
	struct wd_work *head, *tail;
};

struct wd_worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct wd_work *head, *tail;
	size_t queued;
	size_t queue_limit;
	bool stopping;
	bool draining;
	unsigned thread_count;
	pthread_t *threads;
};

static void completion_push(struct wd_completion_queue *queue, struct wd_work *work)
{
	work->next = NULL;
	pthread_mutex_lock(&queue->lock);
	if (queue->tail == NULL)
		queue->head = work;
	else
		queue->tail->next = work;
	queue->tail = work;
	pthread_mutex_unlock(&queue->lock);
	uv_async_send(&queue->async);
}

static void completion_deliver(struct wd_completion_queue *queue)
{
	pthread_mutex_lock(&queue->lock);
	struct wd_work *work = queue->head;
	queue->head = queue->tail = NULL;
	pthread_mutex_unlock(&queue->lock);
	while (work != NULL) {
		struct wd_work *next = work->next;
		work->next = NULL;
		work->queue = NULL;
		work->done(work, work->status);
		work = next;
	}
}

static void completion_async_cb(uv_async_t *async)
{
	completion_deliver(async->data);
}

struct wd_completion_queue *wd_completion_queue_create(uv_loop_t *loop, const char **error_r)
{
	struct wd_completion_queue *queue = calloc(1, sizeof(*queue));
	if (queue == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	pthread_mutex_init(&queue->lock, NULL);
	if (uv_async_init(loop, &queue->async, completion_async_cb) < 0) {
		pthread_mutex_destroy(&queue->lock);
		free(queue);
		*error_r = "uv_async_init failed";
		return NULL;
	}
	queue->async.data = queue;
	return queue;
}

static void completion_close_cb(uv_handle_t *handle)
{
	struct wd_completion_queue *queue = handle->data;
	pthread_mutex_destroy(&queue->lock);
	free(queue);
}

void wd_completion_queue_destroy(struct wd_completion_queue **_queue)
{
	struct wd_completion_queue *queue = *_queue;
	if (queue == NULL)
		return;
	*_queue = NULL;
	completion_deliver(queue);
	uv_close((uv_handle_t *)&queue->async, completion_close_cb);
}

static void *worker_main(void *arg)
{
	struct wd_worker_pool *pool = arg;
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (pool->head == NULL || (pool->stopping && !pool->draining))
			break;
		struct wd_work *work = pool->head;
		pool->head = work->next;
		if (pool->head == NULL)
			pool->tail = NULL;
		pool->queued--;
		pthread_mutex_unlock(&pool->lock);

		work->work(work);
		work->status = WD_OK;
		completion_push(work->queue, work);

		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct wd_worker_pool *wd_worker_pool_create(unsigned threads, size_t queue_limit,
					     const char **error_r)
{
	if (threads == 0 || threads > 1024) {
		*error_r = "worker thread count must be between 1 and 1024";
		return NULL;
	}
	struct wd_worker_pool *pool = calloc(1, sizeof(*pool));
	pthread_t *ids = calloc(threads, sizeof(*ids));
	if (pool == NULL || ids == NULL) {
		free(pool);
		free(ids);
		*error_r = "out of memory";
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->queue_limit = queue_limit == 0 ? 1 : queue_limit;
	pool->threads = ids;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&ids[i], NULL, worker_main, pool) != 0) {
			*error_r = "pthread_create failed";
			wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_CANCEL);
			return NULL;
		}
		pool->thread_count++;
	}
	return pool;
}

void wd_worker_pool_destroy(struct wd_worker_pool **_pool, enum wd_worker_shutdown mode)
{
	struct wd_worker_pool *pool = *_pool;
	if (pool == NULL)
		return;
	*_pool = NULL;

	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pool->draining = mode == WD_WORKER_SHUTDOWN_DRAIN;
	struct wd_work *cancelled = NULL;
	if (!pool->draining) {
		cancelled = pool->head;
		pool->head = pool->tail = NULL;
		pool->queued = 0;
	}
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);

	while (cancelled != NULL) {
		struct wd_work *next = cancelled->next;
		cancelled->status = WD_WORK_CANCELLED;
		completion_push(cancelled->queue, cancelled);
		cancelled = next;
	}
	for (unsigned i = 0; i < pool->thread_count; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
}

int wd_worker_pool_submit(struct wd_worker_pool *pool, struct wd_completion_queue *queue,
			  struct wd_work *work, const char **error_r)
{
	wd_assert(work->work != NULL && work->done != NULL && queue != NULL);
	work->queue = queue;
	work->next = NULL;
	work->status = WD_OK;
	pthread_mutex_lock(&pool->lock);
	if (pool->stopping) {
		pthread_mutex_unlock(&pool->lock);
		*error_r = "worker pool is shutting down";
		return WD_ERROR;
	}
	if (pool->queued >= pool->queue_limit) {
		pthread_mutex_unlock(&pool->lock);
		*error_r = "worker queue is full";
		return WD_ERROR;
	}
	if (pool->tail == NULL)
		pool->head = work;
	else
		pool->tail->next = work;
	pool->tail = work;
	pool->queued++;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	return WD_OK;
}

size_t wd_worker_pool_queued(struct wd_worker_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	size_t n = pool->queued;
	pthread_mutex_unlock(&pool->lock);
	return n;
}
