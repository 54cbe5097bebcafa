#ifndef WD_OUTBOUND_H
#define WD_OUTBOUND_H

/* The outbound queue: mail that wildduck-c itself sends (forwards,
 * autoreplies, later the API's submit/forward), queued in the sender
 * database in ZoneMTA's format (reference §2.16: GridFS bucket `mail` +
 * `zone-queue`, one entry per recipient) so that a ZoneMTA instance can
 * deliver it as it does for WildDuck, and delivered by our own sender when
 * one is configured: it takes due entries with an atomic lock (any number of
 * instances), hands them to the configured SMTP relay, retries temporary
 * failures on ZoneMTA's schedule and drops permanent ones with a log line.
 *
 * Never an open relay: nothing enters the queue from the network; only
 * libwddeliver and wd-api call wd_outbound_queue(), with recipients they
 * decided (forward targets, the sender of a message being auto-replied).
 *
 * docs/OUTBOUND.md documents the sender.* settings, the documents written
 * and the sender's behaviour. */

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_store;
struct wd_config;
struct wd_outbound;

/* sender.* settings: the relay (host, port, TLS), zone, loop secret,
   whether this process runs the sender; documented in docs/OUTBOUND.md.
   Thread-safe after creation: wd_outbound_queue() may run on any number of
   worker threads at once. */
struct wd_outbound *wd_outbound_create(struct wd_store *store, const struct wd_config *config,
				       char **error_r);
/* Stops the sender first when it runs. */
void wd_outbound_destroy(struct wd_outbound **outbound);

struct wd_outbound_message {
	const char *from;            /* envelope sender, "" for <> */
	const char *const *to;       /* envelope recipients */
	size_t to_count;
	const uint8_t *raw;          /* the complete message, headers and body */
	size_t len;
	const char *reason;          /* "forward", "autoreply", "submit" */
	const char *interface;       /* "forwarder", "autoreplies", "maildrop" */
	const bson_oid_t *user;      /* owner, or NULL */
	const char *parent_id;       /* the message that caused it (queue id or Message-ID), or NULL */
	const char *origin;          /* client IP the parent came from, or NULL */
	/* Optional, NULL when unknown: */
	const char *user_email;      /* the owner's address (envelope `user`) */
	/* Forwards: the recipient whose filter or forwarding targets forward the
	   message. As in WildDuck's forward, every delivery then carries it as
	   `forwardedFor` (part of the X-WildDuck-Seen loop hash) and the stored
	   envelope's `to` is [forwarded_for] while the queue entries go to `to`. */
	const char *forwarded_for;
};

/* What wd_outbound_queue() returns besides WD_OK / WD_ERROR: a forward
   refused as a loop (30 or more Received: headers, or an X-WildDuck-Seen
   header of ours for the same deliveries); nothing was queued. */
#define WD_OUTBOUND_LOOP (-2)

/* Queues one message for its recipients as WildDuck's maildropper does:
   the header block is kept as a list of lines in the file's metadata
   (Message-ID and Date added when missing, Bcc removed, X-WildDuck-Seen
   added to forwards when sender.loopSecret is set), the body goes to
   GridFS unchanged, then one zone-queue entry per recipient.
   *queue_id_r (19 bytes with NUL) gets the ZoneMTA queue id. Blocking
   (database). WD_ERROR or WD_OUTBOUND_LOOP with a malloc'd *error_r. */
int wd_outbound_queue(struct wd_outbound *outbound, const struct wd_outbound_message *msg,
		      char queue_id_r[19], char **error_r);

/* What wd_outbound_remove() returns besides WD_OK / WD_ERROR. */
#define WD_OUTBOUND_NO_SUCH_ENTRY (-3)  /* no queued message with that id */
#define WD_OUTBOUND_NOT_OWNER (-4)      /* queued for another user */

/* Removes the entries of queue id `queue_id` that no sender holds (the
   API's DELETE /users/:user/outbound/:queueId, WildDuck's
   removeFromQueue): refused for a message queued for another user than
   `user` (NULL: anyone's). The message file goes once no entry is left.
   *deleted_r counts the removed entries (queue-remove.c). */
int wd_outbound_remove(struct wd_outbound *outbound, const char *queue_id, const bson_oid_t *user,
		       int64_t *deleted_r, char **error_r);

/* Runs the sender in its own thread until stop (sender.enabled). Start
   fails when the sender is already running. Stop returns promptly: an
   SMTP exchange in progress is abandoned and its entry unlocked for the
   next attempt (not counted as a deferral). */
int wd_outbound_sender_start(struct wd_outbound *outbound, char **error_r);
void wd_outbound_sender_stop(struct wd_outbound *outbound);

/* sender.enabled: whether this process should run the sender. */
bool wd_outbound_sender_enabled(const struct wd_outbound *outbound);
bool wd_outbound_sender_running(const struct wd_outbound *outbound);
/* Poll the queue now instead of at the next interval (a message was just
   queued by this process). Harmless when the sender is not running. */
void wd_outbound_sender_wake(struct wd_outbound *outbound);

/* "sender delivering to HOST:PORT (zone Z)" */
void wd_outbound_describe(const struct wd_outbound *outbound, char *buf, size_t size);

/* Counters since creation (for logs and tests). */
struct wd_outbound_stats {
	uint64_t queued;      /* messages queued through this object */
	uint64_t attempts;    /* entries the sender locked and tried */
	uint64_t delivered;   /* accepted by the relay */
	uint64_t deferred;    /* temporary failure, retried later */
	uint64_t dropped;     /* permanent failure or out of retries */
};
void wd_outbound_get_stats(const struct wd_outbound *outbound, struct wd_outbound_stats *stats_r);

#endif
