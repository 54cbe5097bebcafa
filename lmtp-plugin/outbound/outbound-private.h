#ifndef OUTBOUND_PRIVATE_H
#define OUTBOUND_PRIVATE_H

/* Inside libwdoutbound: the wd_outbound object, its settings, and the
 * pieces the queue writer (queue-write.c) and the sender (sender.c) share.
 * Internal non-static functions are wd__outbound_* / wd__queue_* etc. */

#include "wd-outbound.h"

#include <mongoc/mongoc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_buffer;
struct wd_store;

/* sender.* (docs/OUTBOUND.md). Times are milliseconds. */
struct wd_outbound_settings {
	bool enabled;
	const char *zone;         /* sendingZone of new entries and of the sender */
	const char *gfs;          /* GridFS bucket name */
	const char *collection;   /* queue collection */
	const char *loop_secret;  /* NULL: no X-WildDuck-Seen */
	const char *instance_id;  /* `assigned` of entries this sender locked */
	char hostname[256];       /* EHLO name and Message-ID domain fallback */

	const char *relay_host;
	unsigned relay_port;
	bool relay_secure;        /* implicit TLS */
	bool relay_starttls;      /* STARTTLS required */
	const char *relay_user;   /* AUTH PLAIN when set */
	const char *relay_pass;
	bool relay_insecure_auth; /* allow AUTH without TLS */
	bool tls_reject_unauthorized;
	const char *tls_ca;       /* CA file, NULL = system store */

	int64_t poll_interval_ms;
	int64_t lock_ms;          /* lock expiry: a crashed sender's entries return */
	int64_t connect_timeout_ms;
	int64_t timeout_ms;       /* each reply and each write */
	int64_t data_timeout_ms;  /* the reply to the final "." */
	unsigned max_per_connection;
};

struct wd_outbound_sender;

struct wd_outbound {
	struct wd_store *store;
	struct wd_outbound_settings set;
	char *owned[16];          /* strings the settings point to */
	size_t owned_count;

	/* queue ids (queue-id.c) */
	pthread_mutex_t id_lock;
	int64_t id_time_ms;
	unsigned id_seq;
	char id_suffix[5];

	/* ZoneMTA's queue indexes, created once (outbound.c) */
	pthread_mutex_t index_lock;
	bool indexes_done;

	struct wd_outbound_sender *sender; /* NULL when not running */
	pthread_mutex_t sender_lock;

	atomic_uint_fast64_t stat_queued, stat_attempts, stat_delivered, stat_deferred,
		stat_dropped;
};

/* Wall clock in milliseconds. */
int64_t wd__outbound_now_ms(void);
/* Monotonic clock in milliseconds. */
int64_t wd__outbound_monotonic_ms(void);
/* printf into a malloc'd string (error messages). */
char *wd__outbound_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* g_mime_init() once per process. */
void wd__outbound_gmime_init(void);
/* The GridFS bucket `sender.gfs` on a borrowed sender-db client. */
mongoc_gridfs_bucket_t *wd__outbound_bucket(struct wd_outbound *outbound, mongoc_client_t *client,
					    char **error_r);
/* Delete a queued message's GridFS file (files document and chunks). */
int wd__outbound_remove_file(struct wd_outbound *outbound, mongoc_client_t *client,
			     const bson_value_t *file_id, char **error_r);
/* Remove the GridFS file of queue id `id` when no queue entry refers to it
   any more (queue-entries.c). */
int wd__queue_release_file(struct wd_outbound *outbound, mongoc_client_t *client, const char *id,
			   char **error_r);
/* ZoneMTA's queue indexes on the sender database, once per object;
   rejections are logged, never fatal. */
void wd__outbound_ensure_indexes(struct wd_outbound *outbound);

/* ---- queue ids (queue-id.c) ----
   ZoneMTA's seq-index: hex(time_ms * 0x1000 + seq) followed by a 4-hex
   suffix fixed per object; 18 characters for the next few centuries. */
#define WD_QUEUE_ID_SIZE 19
void wd__queue_id_init(struct wd_outbound *outbound);
void wd__queue_id_next(struct wd_outbound *outbound, char id_r[WD_QUEUE_ID_SIZE]);

/* ---- the header block as ZoneMTA keeps it (queue-headers.c) ----
   mailsplit's Headers: the header block split into lines, each with its
   key (lower-cased, trimmed) and the raw line with folding kept as CRLF. */
struct wd_header_line {
	char *key;        /* NUL-terminated, raw bytes */
	uint8_t *line;    /* the line without its final line break */
	size_t len;
};

struct wd_headers {
	struct wd_header_line *lines;
	size_t count, cap;
};

/* Split raw into the header block and the body as WildDuck's
   MessageSplitter does: the header block ends at the first empty line
   ("\n\n" or "\n\r\n"); without one the whole message is header and the
   body is empty. *body_offset_r is where the body starts. */
int wd__headers_split(const uint8_t *raw, size_t len, struct wd_headers *headers,
		      size_t *body_offset_r);
void wd__headers_free(struct wd_headers *headers);
size_t wd__headers_count(const struct wd_headers *headers, const char *key);
/* The n'th line with `key` (lower-case), or NULL. */
const struct wd_header_line *wd__headers_find(const struct wd_headers *headers, const char *key,
					      size_t n);
/* The value of a line: after the first ':', line breaks removed, trimmed
   (malloc'd, NUL-terminated). */
char *wd__header_value(const struct wd_header_line *line);
/* Add "Key: value" at the top, folded at 76 characters as libmime does. */
int wd__headers_prepend(struct wd_headers *headers, const char *key, const char *value);
void wd__headers_remove(struct wd_headers *headers, const char *key);
/* The header block as ZoneMTA rebuilds it: lines joined by CRLF, then an
   empty line. Line breaks that are not folding are dropped, as mailsplit's
   build() does, so a stored line can never start a header of its own. */
int wd__headers_build(const struct wd_headers *headers, struct wd_buffer *out);
/* metadata.data.headers: [{key, line}] with every byte one code point
   (Node's "binary" strings), as the Node driver writes them. */
void wd__headers_append_bson(const struct wd_headers *headers, bson_t *parent, const char *name);
/* Back from such an array; lines holding code points above U+00FF (written
   by something else than a Node "binary" string) are kept as UTF-8. */
int wd__headers_from_bson(const bson_t *array, struct wd_headers *headers, char **error_r);

/* ---- envelope.parsedEnvelope (queue-addresses.c) ----
   Appends {from, to, cc, bcc, replyTo, sender} from the header block. */
void wd__queue_parsed_envelope(const struct wd_headers *headers, bson_t *envelope);

/* ---- the DKIM body hash (body-hash.c) ----
   base64 SHA-256 of the body in relaxed canonicalization (RFC 6376 §3.4.4),
   the `dkim.bodyHash` ZoneMTA signs with. out gets 44 characters + NUL. */
int wd__body_hash_relaxed(const uint8_t *body, size_t len, char out[45]);

/* ---- loop protection for forwards (loop-check.c) ----
   WildDuck's checkLoop(): 30 or more Received: headers, or an
   X-WildDuck-Seen header whose HMAC matches these deliveries, is a loop;
   otherwise (with a secret) a new X-WildDuck-Seen header is added.
   deliveries_json is JSON.stringify() of the deliveries list. */
int wd__loop_check(const char *secret, struct wd_headers *headers, const char *deliveries_json,
		   bool *looped_r);

#endif
