#ifndef WD_STORE_UPDATE_LOCK_H
#define WD_STORE_UPDATE_LOCK_H

/* The store's update lock (store-lock.c) for modules above storage that
 * keep documents of their own (the outbound queue's claim of an entry).
 *
 * FerretDB 1.x runs findAndModify and update as a read, a computation and
 * a write that are not one transaction (docs/ARCHITECTURE.md), so two
 * processes can both "atomically" claim the same document. Where the
 * server's updates are not atomic (wd_store_caps.atomic_updates false) this
 * lock orders such read-modify-writes: a mutex for the threads of this
 * process plus a Redis lock `wdc:lock:<name>` (10 s expiry) for other
 * processes; with Redis down only the mutex remains (logged by the Redis
 * layer). On MongoDB it does nothing. Hold it across one read-modify-write,
 * never across network I/O or another update lock. */

struct wd_store;
struct wd_store_update_lock;

/* Blocks until the lock named `name` is held (at most 15 s, then WD_ERROR
   with a malloc'd *error_r). *lock_r is set on WD_OK; give it back with
   wd_store_update_unlock(). */
int wd_store_update_lock(struct wd_store *store, const char *name,
			 struct wd_store_update_lock **lock_r, char **error_r);
void wd_store_update_unlock(struct wd_store *store, struct wd_store_update_lock **lock);

#endif
