/* Unit tests: worker pool and completion queues on a real libuv loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-result.h"
#include "wd-worker-pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct job {
	struct wd_work work;
	int index;
	pthread_t ran_on;
	int status;
	bool done;
	int done_order;
	int *done_counter;
	pthread_t done_thread;
	unsigned sleep_us;
};

static atomic_int worked;

static void job_work(struct wd_work *work)
{
	struct job *job = work->context;
	job->ran_on = pthread_self();
	if (job->sleep_us > 0)
		usleep(job->sleep_us);
	atomic_fetch_add(&worked, 1);
}

static void job_done(struct wd_work *work, int status)
{
	struct job *job = work->context;
	job->status = status;
	job->done = true;
	job->done_thread = pthread_self();
	job->done_order = (*job->done_counter)++;
}

static void init_job(struct job *job, int index, int *counter)
{
	job->work.work = job_work;
	job->work.done = job_done;
	job->work.context = job;
	job->index = index;
	job->done_counter = counter;
}

static void run_until(uv_loop_t *loop, const int *counter, int target)
{
	for (int i = 0; i < 100000 && *counter < target; i++)
		uv_run(loop, UV_RUN_ONCE);
}

static void test_many_jobs(void **state)
{
	(void)state;
	enum { N = 20000 };
	uv_loop_t loop;
	uv_loop_init(&loop);
	const char *error;
	struct wd_worker_pool *pool = wd_worker_pool_create(4, N, &error);
	assert_non_null(pool);
	struct wd_completion_queue *queue = wd_completion_queue_create(&loop, &error);
	assert_non_null(queue);
	struct job *jobs = calloc(N, sizeof(*jobs));
	int counter = 0;
	atomic_store(&worked, 0);
	for (int i = 0; i < N; i++) {
		init_job(&jobs[i], i, &counter);
		assert_int_equal(wd_worker_pool_submit(pool, queue, &jobs[i].work, &error), WD_OK);
	}
	run_until(&loop, &counter, N);
	assert_int_equal(counter, N);
	assert_int_equal(atomic_load(&worked), N);
	pthread_t self = pthread_self();
	for (int i = 0; i < N; i++) {
		assert_true(jobs[i].done);
		assert_int_equal(jobs[i].status, WD_OK);
		/* done runs on the loop thread, work never does */
		assert_true(pthread_equal(jobs[i].done_thread, self));
		assert_false(pthread_equal(jobs[i].ran_on, self));
	}
	wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_completion_queue_destroy(&queue);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(jobs);
}

/* Jobs that wait for each other: they can only all finish when the pool
   really runs `threads` of them at the same time. */
static atomic_int running_together;

static void rendezvous_work(struct wd_work *work)
{
	struct job *job = work->context;
	atomic_fetch_add(&running_together, 1);
	for (int i = 0; i < 5000 && atomic_load(&running_together) < 4; i++)
		usleep(1000);
	job->status = atomic_load(&running_together) >= 4 ? 1 : 0;
}

static void rendezvous_done(struct wd_work *work, int status)
{
	struct job *job = work->context;
	job->done = status == WD_OK;
	(*job->done_counter)++;
}

static void test_threads_run_in_parallel(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	const char *error;
	struct wd_worker_pool *pool = wd_worker_pool_create(4, 16, &error);
	struct wd_completion_queue *queue = wd_completion_queue_create(&loop, &error);
	struct job jobs[4] = { 0 };
	int counter = 0;
	atomic_store(&running_together, 0);
	for (int i = 0; i < 4; i++) {
		jobs[i].work.work = rendezvous_work;
		jobs[i].work.done = rendezvous_done;
		jobs[i].work.context = &jobs[i];
		jobs[i].done_counter = &counter;
		assert_int_equal(wd_worker_pool_submit(pool, queue, &jobs[i].work, &error), WD_OK);
	}
	run_until(&loop, &counter, 4);
	for (int i = 0; i < 4; i++) {
		assert_true(jobs[i].done);
		assert_int_equal(jobs[i].status, 1);
	}
	wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_completion_queue_destroy(&queue);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_completion_order_single_thread(void **state)
{
	(void)state;
	enum { N = 500 };
	uv_loop_t loop;
	uv_loop_init(&loop);
	const char *error;
	struct wd_worker_pool *pool = wd_worker_pool_create(1, N, &error);
	struct wd_completion_queue *queue = wd_completion_queue_create(&loop, &error);
	struct job jobs[N] = { 0 };
	int counter = 0;
	for (int i = 0; i < N; i++) {
		init_job(&jobs[i], i, &counter);
		wd_worker_pool_submit(pool, queue, &jobs[i].work, &error);
	}
	run_until(&loop, &counter, N);
	/* one worker: completions come back in submission order */
	for (int i = 0; i < N; i++)
		assert_int_equal(jobs[i].done_order, i);
	wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_completion_queue_destroy(&queue);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_completion_order_by_finish(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	const char *error;
	struct wd_worker_pool *pool = wd_worker_pool_create(2, 10, &error);
	struct wd_completion_queue *queue = wd_completion_queue_create(&loop, &error);
	struct job slow = { 0 }, fast = { 0 };
	int counter = 0;
	init_job(&slow, 0, &counter);
	init_job(&fast, 1, &counter);
	slow.sleep_us = 1000000; /* a wide margin on a loaded machine */
	wd_worker_pool_submit(pool, queue, &slow.work, &error);
	wd_worker_pool_submit(pool, queue, &fast.work, &error);
	run_until(&loop, &counter, 2);
	assert_int_equal(fast.done_order, 0);
	assert_int_equal(slow.done_order, 1);
	wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_completion_queue_destroy(&queue);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

static atomic_int gate_state; /* 1: the blocking job runs, 2: it may finish */

static void gate_work(struct wd_work *work)
{
	(void)work;
	atomic_store(&gate_state, 1);
	while (atomic_load(&gate_state) != 2)
		usleep(1000);
}

static void test_queue_limit(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	const char *error;
	struct wd_worker_pool *pool = wd_worker_pool_create(1, 3, &error);
	struct wd_completion_queue *queue = wd_completion_queue_create(&loop, &error);
	struct job gate = { 0 }, jobs[5] = { 0 };
	int counter = 0, accepted = 0;
	atomic_store(&gate_state, 0);
	init_job(&gate, -1, &counter);
	gate.work.work = gate_work;
	assert_int_equal(wd_worker_pool_submit(pool, queue, &gate.work, &error), WD_OK);
	while (atomic_load(&gate_state) != 1)
		usleep(1000);
	/* the only worker is busy: exactly queue_limit jobs fit */
	for (int i = 0; i < 5; i++) {
		init_job(&jobs[i], i, &counter);
		if (wd_worker_pool_submit(pool, queue, &jobs[i].work, &error) == WD_OK)
			accepted++;
		else
			assert_string_equal(error, "worker queue is full");
	}
	assert_int_equal(accepted, 3);
	assert_int_equal(wd_worker_pool_queued(pool), 3);
	atomic_store(&gate_state, 2);
	run_until(&loop, &counter, 4);
	assert_int_equal(counter, 4);
	wd_worker_pool_destroy(&pool, WD_WORKER_SHUTDOWN_DRAIN);
	wd_completion_queue_destroy(&queue);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

static void test_shutdown_cancel_and_drain(void **state)
{
	(void)state;
	enum { N = 50 };
	for (int mode = 0; mode < 2; mode++) {
		uv_loop_t loop;
		uv_loop_init(&loop);
		const char *error;
		struct wd_worker_pool *pool = wd_worker_pool_create(1, N, &error);
		struct wd_completion_queue *queue = wd_completion_queue_create(&loop, &error);
		struct job jobs[N] = { 0 };
		int counter = 0;
		atomic_store(&worked, 0);
		for (int i = 0; i < N; i++) {
			init_job(&jobs[i], i, &counter);
			jobs[i].sleep_us = 2000;
			wd_worker_pool_submit(pool, queue, &jobs[i].work, &error);
		}
		wd_worker_pool_destroy(&pool, mode == 0 ? WD_WORKER_SHUTDOWN_CANCEL :
							  WD_WORKER_SHUTDOWN_DRAIN);
		assert_null(pool);
		run_until(&loop, &counter, N);
		/* every job completes exactly once, run or cancelled */
		assert_int_equal(counter, N);
		int ran = 0, cancelled = 0;
		for (int i = 0; i < N; i++) {
			assert_true(jobs[i].done);
			if (jobs[i].status == WD_OK)
				ran++;
			else if (jobs[i].status == WD_WORK_CANCELLED)
				cancelled++;
		}
		assert_int_equal(ran + cancelled, N);
		assert_int_equal(ran, atomic_load(&worked));
		if (mode == 0)
			assert_true(cancelled > N / 2);
		else
			assert_int_equal(ran, N);
		wd_completion_queue_destroy(&queue);
		uv_run(&loop, UV_RUN_DEFAULT);
		assert_int_equal(uv_loop_close(&loop), 0);
	}
}

static void test_submit_after_shutdown_and_bad_size(void **state)
{
	(void)state;
	const char *error;
	assert_null(wd_worker_pool_create(0, 10, &error));
	assert_non_null(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_jobs),
		cmocka_unit_test(test_threads_run_in_parallel),
		cmocka_unit_test(test_completion_order_single_thread),
		cmocka_unit_test(test_completion_order_by_finish),
		cmocka_unit_test(test_queue_limit),
		cmocka_unit_test(test_shutdown_cancel_and_drain),
		cmocka_unit_test(test_submit_after_shutdown_and_bad_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
