#ifndef WD_STORE_LEASE_H
#define WD_STORE_LEASE_H

/* Session leases: how many sessions of one kind (IMAP) a user holds across
 * every instance, for limits such as imap.maxConnections that must hold
 * cluster-wide.
 *
 * Each session is a member of a Redis sorted set per kind and user
 * (`wdc:lease:<kind>:<user id>`), scored with the time its lease runs out
 * (Redis's clock, so instances need not agree on time). A claim first drops
 * expired members, then adds the holder unless the set is at the limit; the
 * holder renews its leases well before they run out and releases them when
 * the session ends. An instance that dies without releasing leaves members
 * that expire within one lease time: no counter to repair, unlike
 * WildDuck's `lim:imap` hash (which every newer process wipes instead).
 *
 * Blocking (Redis on this thread's connection): call from worker threads.
 * Redis down is WD_LEASE_UNAVAILABLE; callers decide (wd-server then counts
 * per process). */

#include <bson/bson.h>
#include <stddef.h>

struct wd_store;

enum wd_lease_result {
	WD_LEASE_GRANTED,
	WD_LEASE_REFUSED,     /* the user holds `limit` live leases already */
	WD_LEASE_UNAVAILABLE, /* Redis cannot be reached */
};

/* `holder` names the session uniquely across instances (at most 128
   bytes); limit 0 = no limit (the lease is still recorded). Claiming a
   lease already held renews it. */
enum wd_lease_result wd_store_lease_claim(struct wd_store *store, const char *kind,
					  const bson_oid_t *user, const char *holder,
					  unsigned limit, unsigned lease_ms);
/* Renew the leases of `count` holders of one user (re-adding any that
   expired meanwhile, e.g. across a Redis restart). */
enum wd_lease_result wd_store_lease_renew(struct wd_store *store, const char *kind,
					  const bson_oid_t *user, const char *const *holders,
					  size_t count, unsigned lease_ms);
void wd_store_lease_release(struct wd_store *store, const char *kind, const bson_oid_t *user,
			    const char *holder);
/* Live leases of the user (expired ones not counted); -1 without Redis. */
long long wd_store_lease_count(struct wd_store *store, const char *kind, const bson_oid_t *user);

#endif
