/* Redis counters and the settings collection, as delivery uses them.
 *
 * wdf:<id> (forwards per day) and wda:<id> (autoreplies) are WildDuck's
 * ttlcounter (storage/wd-store-counter.h). When Redis cannot be reached the
 * check passes (WildDuck logs and goes on too).
 *
 * Settings (reference §4.20: key, value as JSON text) are read at most once
 * a minute: const:max:storage (quota when users.quota is 0; default
 * maxStorage MiB or 1 GiB), const:max:forwards (2000) and
 * const:autoreply:interval (4 h, in ms). */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-store.h"
#include "wd-store-counter.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool wd__deliver_ttlcounter(struct wd_deliver *deliver, const char *key, int64_t increment,
			    int64_t limit, int64_t window)
{
	if (limit <= 0)
		return true; /* no limit: WildDuck does not even call the script */
	struct wd_ttlcounter counter;
	/* Redis down: allowed (the store logs the outage) */
	wd_store_ttlcounter(deliver->store, key, increment, limit, window, &counter);
	return counter.allowed;
}

/* A setting's number: the JSON text in `value` ("1073741824"), or a number
   some writers store directly. false when absent or not a number. */
static bool read_setting(struct wd_store *store, const char *key, int64_t *value_r)
{
	bson_t *query = BCON_NEW("key", BCON_UTF8(key));
	bson_t *doc = NULL;
	bool found = false;
	bson_iter_t iter;
	if (wd__deliver_find_one(store, WD_STORE_DB_MAIN, "settings", query, &doc) == 0 &&
	    bson_iter_init_find(&iter, doc, "value")) {
		if (BSON_ITER_HOLDS_UTF8(&iter)) {
			const char *text = bson_iter_utf8(&iter, NULL);
			char *end;
			*value_r = (int64_t)strtod(text, &end);
			found = end != text;
		} else if (BSON_ITER_HOLDS_NUMBER(&iter)) {
			*value_r = bson_iter_as_int64(&iter);
			found = true;
		}
	}
	if (doc != NULL)
		bson_destroy(doc);
	bson_destroy(query);
	return found;
}

static void load_settings(struct wd_deliver *deliver)
{
	int64_t now = wd__deliver_now_ms();
	pthread_mutex_lock(&deliver->lock);
	bool fresh = deliver->settings_loaded_ms != 0 &&
		     now - deliver->settings_loaded_ms < DELIVER_SETTINGS_CACHE_MS;
	pthread_mutex_unlock(&deliver->lock);
	if (fresh)
		return;
	int64_t storage = deliver->settings.max_storage, forwards = DELIVER_MAX_FORWARDS,
		interval = DELIVER_AUTOREPLY_INTERVAL_MS, v;
	if (read_setting(deliver->store, "const:max:storage", &v) && v > 0)
		storage = v;
	if (read_setting(deliver->store, "const:max:forwards", &v) && v > 0)
		forwards = v;
	if (read_setting(deliver->store, "const:autoreply:interval", &v) && v > 0)
		interval = v;
	pthread_mutex_lock(&deliver->lock);
	deliver->setting_max_storage = storage;
	deliver->setting_max_forwards = forwards;
	deliver->setting_autoreply_interval = interval;
	deliver->settings_loaded_ms = now;
	pthread_mutex_unlock(&deliver->lock);
}

static int64_t setting(struct wd_deliver *deliver, const int64_t *field)
{
	load_settings(deliver);
	pthread_mutex_lock(&deliver->lock);
	int64_t v = *field;
	pthread_mutex_unlock(&deliver->lock);
	return v;
}

int64_t wd__deliver_setting_max_storage(struct wd_deliver *deliver)
{
	return setting(deliver, &deliver->setting_max_storage);
}

int64_t wd__deliver_setting_max_forwards(struct wd_deliver *deliver)
{
	return setting(deliver, &deliver->setting_max_forwards);
}

int64_t wd__deliver_setting_autoreply_interval(struct wd_deliver *deliver)
{
	return setting(deliver, &deliver->setting_autoreply_interval);
}
