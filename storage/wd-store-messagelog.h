#ifndef WD_STORE_MESSAGELOG_H
#define WD_STORE_MESSAGELOG_H

/* The message log: WildDuck 1.x's `messagelog` collection in the main
 * database (removed from later WildDuck, which logs to Graylog instead).
 * One document per event in a message's life, written by whoever caused it:
 *
 *   {id: queue id, action: "STORE" | "FORWARD" | "AUTOREPLY" | ...,
 *    parentId: ObjectId of the stored message (when there is one),
 *    "message-id", source, origin, from, to: [addresses], transtype,
 *    targets: [{type, value}], created: Date}
 *
 * `id` ties events of one transaction together: the queue id of the
 * incoming message (meta.queueId, else the stored message's _id as a hex
 * string) for STORE, the outbound queue id for FORWARD and AUTOREPLY, so
 * that the message's `outbound` list finds them even without parentId.
 * Other writers (an MTA's plugins) may add seq, ip, host, mx, reason,
 * error and response; readers get the documents as they are.
 *
 * Entries expire after WD_MESSAGELOG_TTL_MS (WildDuck's TTL index on
 * `created`, 180 days; wd_store_expire_ttl() where the server does not
 * enforce TTL indexes).
 *
 * Blocking calls (worker threads). */

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_store;

#define WD_MESSAGELOG_TTL_MS (180LL * 24 * 3600 * 1000)
/* Bounds of one entry: longer strings are cut (at a character boundary),
   arrays past the count are cut too. */
#define WD_MESSAGELOG_MAX_STRING 1024
#define WD_MESSAGELOG_MAX_ITEMS 256
/* Entries one lookup returns at most. */
#define WD_MESSAGELOG_MAX_EVENTS 1000

struct wd_messagelog_target {
	const char *type;   /* "mail", "relay", "http" */
	const char *value;
};

/* What a writer knows; NULL / zero fields are left out of the document. */
struct wd_messagelog_entry {
	const char *id;                 /* queue id (required) */
	const char *action;             /* "STORE", "FORWARD", ... (required) */
	const bson_oid_t *parent_id;    /* the stored message, NULL: none */
	const char *message_id;         /* Message-ID header */
	const char *source;             /* "LMTP", "API", ... */
	const char *origin;             /* the client that handed the message over */
	const char *from;               /* envelope sender ("" for <>) */
	const char *const *to;          /* envelope recipients */
	size_t to_count;
	const char *transtype;          /* "LMTP", "ESMTP", ... */
	const struct wd_messagelog_target *targets; /* forward targets */
	size_t target_count;
	int64_t created_ms;             /* 0: now */
};

/* Inserts one entry. WD_STORE_ERR_INVALID without id or action,
   WD_STORE_ERR_DATABASE when the insert fails (malloc'd *error_r). */
int wd_store_messagelog_add(struct wd_store *store, const struct wd_messagelog_entry *entry,
			    char **error_r);

/* The events of the message {mailbox, uid} of `user` (WildDuck's
   GetMessageEvents): entries whose parentId is the message or whose id is
   one of its `outbound` queue ids, ordered by `created` (then insertion),
   at most WD_MESSAGELOG_MAX_EVENTS. *message_id_r gets the message's _id;
   `fn` sees each document (borrowed for the call) until it returns false.
   WD_STORE_ERR_NOT_FOUND when the mailbox has no such message or it is
   not the user's; WD_STORE_ERR_DATABASE with *error_r. */
typedef bool wd_messagelog_fn(const bson_t *entry, void *context);
int wd_store_messagelog_for_message(struct wd_store *store, const bson_oid_t *user,
				    const bson_oid_t *mailbox, uint32_t uid,
				    bson_oid_t *message_id_r, wd_messagelog_fn *fn, void *context,
				    char **error_r);

#endif
