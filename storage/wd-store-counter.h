#ifndef WD_STORE_COUNTER_H
#define WD_STORE_COUNTER_H

/* WildDuck's ttlcounter (lib/lua/ttlcounter.lua, reference §4.3): a Redis
 * counter with a window. At or over `limit` nothing is added and the call
 * is refused; otherwise `increment` is added, and the first increment
 * starts the window (EXPIRE). One EVAL, so Node and C processes count
 * together without a race. Used for daily limits (POP3 downloads, forwards,
 * autoreplies) and, with the script text, by libwdauth's failure limits on
 * its own connection. */

#include <stdbool.h>
#include <stdint.h>

struct wd_store;

/* KEYS[1] counter; ARGV increment, limit, window (s). Returns {allowed,
   value, ttl}. */
extern const char wd_store_ttlcounter_script[];

struct wd_ttlcounter {
	bool allowed;
	int64_t value;
	int64_t ttl;   /* seconds left in the window (0 when unknown) */
};

/* WD_OK with the result, WD_ERROR when Redis cannot be reached or answers
   with an error (*r then says allowed: callers degrade, as WildDuck). */
int wd_store_ttlcounter(struct wd_store *store, const char *key, int64_t increment,
			int64_t limit, int64_t window, struct wd_ttlcounter *r);

#endif
