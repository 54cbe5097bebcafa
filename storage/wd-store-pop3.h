#ifndef WD_STORE_POP3_H
#define WD_STORE_POP3_H

/* What a POP3 session needs from the database, with WildDuck's semantics
 * (reference §4.18, pop3.js): the maildrop listed at login and the changes
 * made at QUIT. Blocking calls for worker threads.
 *
 * The maildrop is the user's INBOX only, and only its newest messages:
 * users.pop3MaxMessages when set (non-zero), else the server's
 * pop3.maxMessages, never more than WD_POP3_MAILDROP_MAX (the caller picks:
 * libwdauth's login result carries the user's value, read from the users
 * document itself rather than WildDuck's cached:<user> mirror of it, which
 * WildDuck deletes on every update anyway). Messages below the
 * user's POP3 watermark are never listed: the Redis hash pxm:<user> maps the
 * INBOX id to the lowest UID listed before (WildDuck's legacy hash
 * `pop3uid`, keyed by the mailbox alone, is read when pxm: has nothing).
 * Each listing stores the UID of the oldest message it lists there, as
 * WildDuck does, so a message that was once below the window never comes
 * back when newer ones are deleted. Redis being down only loses the
 * watermark (everything from UID 1 is a candidate); the listing still works.
 *
 * The QUIT update (RFC 1939 UPDATE state): retrieved messages that were
 * unseen get \Seen; deleted ones get \Seen too and are then moved to the
 * user's \Trash mailbox (so the moved copies carry the flag), through the
 * ordinary flag and MOVE operations of wd-store-message.h: modseq, journal,
 * wd_events and WildDuck's mail:mbwr lock are handled there. Nothing is
 * ever deleted by POP3. */

#include "wd-store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard cap on a listing, whatever users.pop3MaxMessages says (its memory
   is kept for the whole session: about 40 bytes a message). */
#define WD_POP3_MAILDROP_MAX 100000
/* WildDuck's default for pop3.maxMessages (config/pop3.toml). */
#define WD_POP3_DEFAULT_MAX_MESSAGES 250

struct wd_pop3_message {
	bson_oid_t id;      /* UIDL: the id as 24 hex digits */
	uint32_t uid;
	uint64_t size;      /* messages.size: exactly what RETR sends before dot-stuffing */
	bool seen;          /* !messages.unseen when listed */
};

struct wd_pop3_maildrop {
	bson_oid_t mailbox;             /* the INBOX */
	struct wd_pop3_message *messages; /* oldest first (malloc'd) */
	size_t count;
	uint64_t size;                  /* sum of the sizes */
	uint32_t watermark;             /* the pxm: value the listing started from (0: none) */
};

/* Lists the newest `max` messages (0: WD_POP3_DEFAULT_MAX_MESSAGES; capped
   at WD_POP3_MAILDROP_MAX) of the INBOX of `user` and moves the watermark
   (see above). Returns 0, or a negative
   enum wd_store_error_kind (wd-store-user.h) with a malloc'd *error_r:
   NOT_FOUND when the user has no INBOX, DATABASE otherwise. */
int wd_store_pop3_list(struct wd_store *store, const bson_oid_t *user, unsigned max,
		       struct wd_pop3_maildrop *maildrop_r, char **error_r);
void wd_pop3_maildrop_free(struct wd_pop3_maildrop *maildrop);

struct wd_pop3_update {
	/* UIDs in the maildrop's mailbox: retrieved and unseen (not deleted),
	   and deleted (DELE) */
	const uint32_t *seen_uids;
	size_t seen_count;
	const uint32_t *deleted_uids;
	size_t deleted_count;
	const char *session_id;   /* journal `ignore`, or NULL */
};

struct wd_pop3_update_result {
	size_t seen;              /* messages whose flags changed */
	size_t moved;             /* messages moved to Trash */
};

/* The QUIT update of a session of `user` on `mailbox` (its INBOX). Returns
   0, or a negative error kind with a malloc'd *error_r: NOT_FOUND when the
   user has no \Trash mailbox (nothing moved; flags may be set), DATABASE
   otherwise. Messages deleted meanwhile by another session are skipped. */
int wd_store_pop3_update(struct wd_store *store, const bson_oid_t *user,
			 const bson_oid_t *mailbox, const struct wd_pop3_update *update,
			 struct wd_pop3_update_result *result_r, char **error_r);

/* ---- the daily download limit (WildDuck's pdw:<user>) ----
 *
 * Bytes a user may retrieve by POP3 in 24 hours, counted in Redis with
 * WildDuck's ttlcounter semantics so that Node and C servers share the
 * count: a retrieval is refused once the counter is at the limit; the
 * bytes sent are added when it ends (the window starts with the first). */
#define WD_POP3_DOWNLOAD_WINDOW 86400

/* users.pop3MaxDownload when set, else the setting const:max:pop3:download,
   else `default_bytes` (pop3.maxDownloadMB). 0 means no limit. A database
   error gives `default_bytes` (logged by nobody: the limit is a policy, not
   a reason to refuse the login). */
int64_t wd_store_pop3_download_limit(struct wd_store *store, const bson_oid_t *user,
				     int64_t default_bytes);
/* Whether a retrieval may start; when not, *retry_after_r is the seconds
   until the window ends. Always true without a limit or without Redis. */
bool wd_store_pop3_download_allowed(struct wd_store *store, const bson_oid_t *user,
				    int64_t limit, int64_t *retry_after_r);
/* Count `bytes` sent. */
void wd_store_pop3_download_add(struct wd_store *store, const bson_oid_t *user, int64_t limit,
				uint64_t bytes);

#endif
