/* Redis counters and the settings collection, as delivery uses them.
 *
 * wdf:<id> (forwards per day) and wda:<id> (autoreplies) are WildDuck's
 * ttlcounter (lib/lua/ttlcounter.lua): at or over the limit, refuse;
 * otherwise add, and start the window when the counter was zero. One EVAL,
 * so Node and C processes count together without a race. When Redis cannot
 * be reached the check passes (WildDuck logs and goes on too).
 *
 * Settings (reference §4.20: key, value as JSON text) are read at most once
 * a minute: const:max:storage (quota when users.quota is 0; default
 * maxStorage MiB or 1 GiB), const:max:forwards (2000) and
 * const:autoreply:interval (4 h, in ms). */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ttlcounter_script[] =
	"local current = tonumber(redis.call('GET', KEYS[1])) or 0\n"
	"local increment, limit = tonumber(ARGV[1]) or 0, tonumber(ARGV[2]) or 0\n"
	"if current >= limit then return {0, current} end\n"
	"if increment > 0 then\n"
	"  local updated = tonumber(redis.call('INCRBY', KEYS[1], increment))\n"
	"  if current == 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]) or 0) end\n"
	"  return {1, updated}\n"
	"end\n"
	"return {1, current}\n";

bool wd__deliver_ttlcounter(struct wd_deliver *deliver, const char *key, int64_t increment,
			    int64_t limit, int64_t window)
{
	if (limit <= 0)
		return true; /* no limit: WildDuck does not even call the script */
	char inc[24], lim[24], win[24];
	snprintf(inc, sizeof(inc), "%lld", (long long)increment);
	snprintf(lim, sizeof(lim), "%lld", (long long)limit);
	snprintf(win, sizeof(win), "%lld", (long long)window);
	const char *argv[] = { "EVAL", ttlcounter_script, "1", key, inc, lim, win };
	struct redisReply *reply = wd_store_redis_argv(deliver->store, 7, argv, NULL);
	if (reply == NULL)
		return true;
	bool allowed = true;
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER)
		allowed = reply->element[0]->integer != 0;
	else if (reply->type == REDIS_REPLY_ERROR)
		wd_warning(DELIVER_LOG, "counter %s: %s", key, reply->str);
	freeReplyObject(reply);
	return allowed;
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
