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
 * decided (forward targets, the sender of a message being auto-replied). */

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_store;
struct wd_config;
struct wd_outbound;

/* sender.* settings: the relay (host, port, TLS), zone, loop secret,
   whether this process runs the sender; documented in docs/. */
struct wd_outbound *wd_outbound_create(struct wd_store *store, const struct wd_config *config,
				       char **error_r);
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
};

/* Queues one message for its recipients. *queue_id_r (19 bytes with NUL)
   gets the ZoneMTA queue id. Blocking (database). */
int wd_outbound_queue(struct wd_outbound *outbound, const struct wd_outbound_message *msg,
		      char queue_id_r[19], char **error_r);

/* Runs the sender in its own thread until stop (sender.enabled). */
int wd_outbound_sender_start(struct wd_outbound *outbound, char **error_r);
void wd_outbound_sender_stop(struct wd_outbound *outbound);

#endif
