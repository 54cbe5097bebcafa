#ifndef API_UPDATES_H
#define API_UPDATES_H

/* GET /users/:user/updates: the EventSource stream of a user's journal, as
 * WildDuck's lib/api/updates.js sends it (updates.c).
 *
 * Each stream is a libmicrohttpd response whose content reader takes what
 * is due: journal entries after the last sent _id ({user, _id > last},
 * oldest first, at most 500 per read) as `data:` (pretty JSON without _id,
 * ignore, user, modseq, unseenChange, created) and `id: <_id>`; after them
 * one COUNTERS event per mailbox whose totals changed; and `: idling N`
 * comments after 15 s of silence. With nothing due the connection is
 * suspended and costs no thread.
 *
 * The hub is one thread with a libuv loop holding the `wd_events`
 * subscriber (server/notify): a change for a user resumes that user's
 * streams. While Redis is down every stream re-reads the journal each
 * api.updates.pollSeconds (5), so changes still arrive. Last-Event-ID (the
 * header or ?Last-Event-ID=) resumes after that entry; without it the
 * stream starts at the newest entry. api.updates.maxStreams (10,000) bounds
 * the open streams; more are answered 429. */

#include "api.h"

struct api_updates *api_updates_create(struct api_context *ctx, const char *redis_url,
				       char **error_r);
/* Ends every stream (their readers return end of stream) so that the
   daemon can stop; call before api_daemon_stop(). */
void api_updates_shutdown(struct api_updates *updates);
void api_updates_destroy(struct api_updates **updates);

/* Answers `req` with a stream for `user` (which exists), resuming after
   `last_event` when not NULL. */
void api_updates_open(struct api_request *req, const bson_oid_t *user,
		      const bson_oid_t *last_event);

struct api_updates_stats {
	unsigned streams;
	bool subscribed; /* wd_events pushes arrive */
};
void api_updates_get_stats(struct api_updates *updates, struct api_updates_stats *stats_r);

#endif
