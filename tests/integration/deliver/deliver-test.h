#ifndef DELIVER_TEST_H
#define DELIVER_TEST_H

/* Shared setup of the libwddeliver integration tests (suite lmtp): the
 * store and auth of tests/integration/auth/auth-test-stack.h (a fresh
 * database per process on the stack's FerretDB and Redis), a wd_deliver
 * built from TOML text, users with their default mailboxes, a whole
 * transaction in one call, and the stored message read back. Forwards and
 * autoreplies go to a capturing queue unless a test wires the real
 * outbound queue. */

#include "auth-test-stack.h"
#include "wd-deliver.h"
#include "wd-store-user.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the capturing queue received. */
struct captured {
	char *from;
	char *to[8];
	size_t to_count;
	char *raw;
	size_t len;
	char *reason;
	char *forwarded_for;
};
extern struct captured captured[32];
extern size_t captured_count;
void capture_reset(void);
/* Makes the capturing queue fail (WD_ERROR) or answer a loop (-2) from now
   on; 0 accepts again. */
void capture_fail_with(int ret);

/* A wd_deliver over test_store/test_auth from TOML text (NULL: defaults),
   queueing into the capture. */
struct wd_deliver *deliver_open(const char *toml);

/* A user "<name><tag>" with address "<name><tag>@example.com" (written to
   address_r when not NULL, 200 bytes) and the default mailboxes. */
bson_oid_t make_user(const char *name, char *address_r);
/* $set on the user document (users DB), BCON pairs as a document. */
void user_set(const bson_oid_t *user, const bson_t *set);
bson_oid_t mailbox_of(const bson_oid_t *user, const char *path_or_special_use);
/* Messages in the user's mailbox. */
int64_t count_in(const bson_oid_t *user, const char *path_or_special_use);
/* The newest stored message of a mailbox (document, free with bson_destroy). */
bson_t *last_in(const bson_oid_t *user, const char *path_or_special_use);
/* The _id of the newest message of a mailbox (it must have one). */
bson_oid_t last_id(const bson_oid_t *user, const char *path_or_special_use);
/* Documents of `collection` matching `filter` in any store and database. */
int64_t count_docs(struct wd_store *store, enum wd_store_db db, const char *collection,
		   const bson_t *filter);
/* The exact bytes of a stored message (malloc'd). */
char *stored_bytes(const bson_oid_t *message_id, size_t *len_r);

/* A filter of the user from extended JSON (query and action objects,
   ObjectIds as {"$oid": "..."}); returns its id. */
bson_oid_t filter_add(const bson_oid_t *user, const char *query_json, const char *action_json,
		      bool disabled);
void filters_clear(const bson_oid_t *user);
/* A document into a main-DB collection from extended JSON; returns _id. */
bson_oid_t insert_json(const char *collection, const char *json);
/* Flags of the newest message in the mailbox, joined with spaces ("" none;
   NULL when the mailbox is empty; malloc'd). */
char *last_flags(const bson_oid_t *user, const char *path_or_special_use);
/* The user's storageUsed. */
int64_t storage_used(const bson_oid_t *user);
/* Bytes a delivery stores: the trace headers plus the message. */
size_t delivered_size(const char *recipient, const char *sender, const char *raw);

/* RCPT each address, then DATA for the accepted ones; rcpt_replies[i] and
   data_replies[i] answer addresses[i] (data_replies[i].code 0 when refused
   at RCPT). */
void transaction(struct wd_deliver *deliver, const char *mail_from, const char *const *addresses,
		 size_t count, const char *raw, struct wd_deliver_reply *rcpt_replies,
		 struct wd_deliver_reply *data_replies);
/* One recipient; returns the DATA reply code (or the RCPT refusal's). */
unsigned deliver_one(struct wd_deliver *deliver, const char *mail_from, const char *address,
		     const char *raw, struct wd_deliver_reply *reply_r);

#endif
