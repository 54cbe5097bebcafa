#ifndef WD_LOOP_SET_H
#define WD_LOOP_SET_H

/* The event loops of wd-server (DESIGN.md §4: one libuv loop per core).
 *
 * Each loop has its own thread (loop 0 runs in the caller's thread, so
 * signal handlers installed on it by main.c run there), its own completion
 * queue for the shared worker pool, and its own instance of every service
 * (wd-service.h); a connection lives on the loop that accepted it, and the
 * kernel spreads connections over the loops' listeners (SO_REUSEPORT).
 * Loops share nothing else but the thread-safe store, auth and pool.
 *
 * Life cycle (main.c):
 *   create   loops, queues, and the services, all before any loop runs
 *   run      threads for loops 1..n-1, loop 0 here; returns when all stopped
 *   shutdown any thread (a signal handler on loop 0): every loop stops
 *            accepting, ends its sessions politely, and stops when it has
 *            none left or after the grace time
 *   destroy  after the worker pool was drained: pending completions are
 *            delivered, handles closed, services destroyed, loops closed */

#include "wd-service.h"

#include <uv.h>

struct wd_loop_set;

/* `shared` gives config, store, auth and pool (loop and queue are filled
   per loop). Services are created and logged here. NULL with a malloc'd
   *error_r when a loop or a service cannot start. */
struct wd_loop_set *wd_loop_set_create(unsigned count, const struct wd_server_deps *shared,
				       char **error_r);
/* Loop 0, for main's signal handlers. */
uv_loop_t *wd_loop_set_main_loop(struct wd_loop_set *set);
unsigned wd_loop_set_count(const struct wd_loop_set *set);
int wd_loop_set_run(struct wd_loop_set *set);
/* Thread-safe. `grace_ms`: the longest a loop waits for its sessions. A
   second call stops every loop at once. */
void wd_loop_set_shutdown(struct wd_loop_set *set, unsigned grace_ms);
void wd_loop_set_destroy(struct wd_loop_set **set);

#endif
