/* The public face of the store's update lock (wd-store-update-lock.h): the
 * lock of store-lock.c in a heap object, so that its layout stays private. */
#include "wd-store-update-lock.h"
#include "store-private.h"
#include "wd-result.h"

#include <stdlib.h>

struct wd_store_update_lock {
	struct wd_store_lock lock;
};

int wd_store_update_lock(struct wd_store *store, const char *name,
			 struct wd_store_update_lock **lock_r, char **error_r)
{
	struct wd_store_update_lock *lock = calloc(1, sizeof(*lock));
	if (lock == NULL) {
		*error_r = wd__store_error("out of memory");
		return WD_ERROR;
	}
	if (wd__store_lock(store, name, &lock->lock, error_r) < 0) {
		free(lock);
		return WD_ERROR;
	}
	*lock_r = lock;
	return WD_OK;
}

void wd_store_update_unlock(struct wd_store *store, struct wd_store_update_lock **_lock)
{
	struct wd_store_update_lock *lock = *_lock;
	*_lock = NULL;
	if (lock == NULL)
		return;
	wd__store_unlock(store, &lock->lock);
	free(lock);
}
