#ifndef WD_NOTIFY_H
#define WD_NOTIFY_H

/* The Redis `wd_events` subscriber (DESIGN.md §4): how wd-server (IMAP IDLE
 * and change sync) and wd-api (EventSource) learn that a user's mailboxes
 * changed, whichever process (Node WildDuck or ours) made the change.
 *
 * One wd_notify per loop thread holds one hiredis async connection on that
 * loop, subscribed to `wd_events`. Every message WildDuck publishes there
 * (wildduck-model.md §4.2/§4.3) is parsed strictly and bounded; the forms
 * that name a user become one callback on the loop thread:
 *
 *   {"e":"<user hex>"}                                      WD_NOTIFY_CHANGED
 *   {"e":"<user hex>","p":{"command":"LOGOUT","reason":…}}  WD_NOTIFY_LOGOUT
 *   {"e":"<user hex>","p":{"command":"DROP","mailbox":"<hex>"}} WD_NOTIFY_DROP
 *
 * A falsy "p" (null, false, 0, "") counts as absent, as in WildDuck
 * (`data.e && !data.p`). Everything else — other payloads such as the
 * mailbox path IMAP COPY publishes, unknown commands, malformed JSON, an "e"
 * that is not 24 hex digits, messages over WD_NOTIFY_MESSAGE_MAX bytes — is
 * counted as ignored and produces no callback.
 *
 * Redis being down degrades, never blocks: wd_notify_connected() is false
 * until the SUBSCRIBE is confirmed and again from the moment the connection
 * drops, and callers must then fall back to periodic re-sync. Reconnects run
 * by themselves with a backoff (100 ms doubling to 5 s); an attempt that is
 * not subscribed within the connect timeout (2 s) is abandoned and retried.
 * Host names are resolved with uv_getaddrinfo (hiredis 0.14 would resolve
 * synchronously on the loop thread). TCP keepalive notices a silent peer.
 *
 * Lifetime: create, then destroy at any state; destroy may be called from
 * inside the callback. Memory is released from libuv close callbacks, so
 * run the loop after destroy until it has no more handles. */

#include <stdbool.h>
#include <stdint.h>
#include <bson/bson.h>
#include <uv.h>

/* Larger wd_events messages are ignored (WildDuck's are < 200 bytes). */
#define WD_NOTIFY_MESSAGE_MAX 4096
/* LOGOUT reasons longer than this are cut (on a UTF-8 boundary). */
#define WD_NOTIFY_REASON_MAX 255

struct wd_notify;

enum wd_notify_kind {
	WD_NOTIFY_CHANGED, /* the user's journal changed: re-sync selected mailboxes */
	WD_NOTIFY_LOGOUT,  /* end every session of the user (reason may be "") */
	WD_NOTIFY_DROP,    /* end sessions that have `mailbox` selected */
};

struct wd_notify_event {
	enum wd_notify_kind kind;
	bson_oid_t user;
	bson_oid_t mailbox;                     /* DROP only */
	char reason[WD_NOTIFY_REASON_MAX + 1];  /* LOGOUT only, NUL-terminated */
};

/* Runs on the loop thread; the event is valid during the call only. */
typedef void wd_notify_fn(void *context, const struct wd_notify_event *event);

struct wd_notify_stats {
	uint64_t received;   /* messages on wd_events */
	uint64_t delivered;  /* of those, turned into a callback */
	uint64_t ignored;    /* of those, malformed, oversized or of another form */
	uint64_t subscribes; /* confirmed subscriptions (1 + reconnects) */
	uint64_t attempts;   /* connect attempts, successful or not */
};

/* Starts connecting on the next loop iteration; never blocks. redis_url is
   redis://[[user]:password@]host[:port][/db] (the db is irrelevant for
   pub/sub; a password means AUTH). NULL and *error_r (free() it) when the URL
   is invalid. The callback is type-checked against the context's type. */
#define wd_notify_create(loop, redis_url, callback, context, error_r) \
	wd__notify_create(loop, redis_url, \
		((void)WD__NOTIFY_CALLBACK_CHECK(callback, context), \
		 (wd_notify_fn *)(void (*)(void))(callback)), \
		context, error_r)
#define WD__NOTIFY_CALLBACK_CHECK(callback, context) \
	(sizeof(char[1 - 2 * !__builtin_types_compatible_p(typeof(&(callback)), \
		void (*)(typeof(context), const struct wd_notify_event *))]) - 1)
struct wd_notify *wd__notify_create(uv_loop_t *loop, const char *redis_url,
				    wd_notify_fn *callback, void *context, char **error_r);

/* Closes the connection, cancels timers and lookups; safe in every state and
   from inside the callback. No callback runs after it returns. */
void wd_notify_destroy(struct wd_notify **notify);

/* True while subscribed: pushes arrive. False: poll. */
bool wd_notify_connected(const struct wd_notify *notify);
void wd_notify_get_stats(const struct wd_notify *notify, struct wd_notify_stats *stats_r);

/* Tuning, mostly for tests; applies from the next attempt. 0 keeps a value. */
void wd_notify_set_timeouts(struct wd_notify *notify, unsigned connect_timeout_ms,
			    unsigned backoff_min_ms, unsigned backoff_max_ms);

#endif
