#ifndef WD_AUTH_RATELIMIT_H
#define WD_AUTH_RATELIMIT_H

/* Failure limits as WildDuck keeps them in Redis (reference §4.3): a
 * "ttlcounter" per key that counts failures from the first one for a fixed
 * window and blocks once it reaches the limit, until the key expires.
 *
 *   auth_user:<userId or unameview>   12 failures / 120 s
 *   auth_user:totp:<userId>           failed TOTP checks, same limit
 *   auth_ip:<ip>                      auth.ipFailures / 300 s (0 = off, WildDuck's default)
 *   rl-wl                             set of IPs exempt from both
 *
 * Same keys, same arithmetic (one Lua script, atomic) as WildDuck, so Node
 * and C servers count together. Redis down: everything is allowed (logged
 * by the Redis layer). */

#include "wd-auth.h"

#include <stdbool.h>
#include <stdint.h>

struct wd_auth_limit {
	bool allowed;
	int64_t value; /* failures counted in the window */
	int64_t ttl;   /* seconds until the window ends (when blocked: until allowed again) */
};

/* Counts `count` failures (0: only asks) for `token` (a user id hex, a
   unameview, or "totp:<id>"); `ip` may be NULL (no whitelist check). */
void wd_auth_limit_user(struct wd_auth *auth, const char *token, const char *ip, int count,
			struct wd_auth_limit *limit_r);
/* The same for the IP address; always allowed when auth.ipFailures is 0. */
void wd_auth_limit_ip(struct wd_auth *auth, const char *ip, int count,
		      struct wd_auth_limit *limit_r);
/* Forgets the failures of `token` (on success). */
void wd_auth_limit_release(struct wd_auth *auth, const char *token);

/* "Authentication was rate limited. Try again in 1 minute." into buf: the
   wait rounded down to days/hours/minutes/seconds. */
void wd_auth_limit_message(int64_t ttl, char *buf, size_t size);

#endif
