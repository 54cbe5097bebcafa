#ifndef QUEUE_ENTRIES_H
#define QUEUE_ENTRIES_H

/* The sender's operations on ZoneMTA's queue (queue-entries.c). Blocking
 * database calls; used by the sender thread only. */

#include "outbound-private.h"
#include "wd-buffer.h"

#include <sys/types.h>

/* One zone-queue entry this sender has locked. */
struct wd_queue_entry {
	bson_value_t oid;         /* _id */
	bool has_oid;
	char id[64];              /* the message's queue id */
	char seq[24];
	char *recipient;
	double lock_time;         /* our lockTime: the lock is ours while it is there */
	int64_t deferred_count;   /* _deferred.count so far */
	bool deferred_before;     /* _deferred exists */
};

/* Lock the next due entry of sender.zone. *found_r false: none is due. */
int wd__queue_claim(struct wd_outbound *outbound, struct wd_queue_entry *entry,
		    bool *found_r, char **error_r);
void wd__queue_entry_clear(struct wd_queue_entry *entry);

/* What a delivery needs of the message "message <id>". */
struct wd_queued_message {
	char *from;               /* envelope sender, "" for <> */
	char *message_id;         /* for logs, or NULL */
	struct wd_buffer header;  /* the header block as ZoneMTA rebuilds it */
	bool utf8_headers;        /* 8-bit bytes in the header block */
	bson_value_t file_id;
	bool has_file_id;
	uint64_t body_len;
};

enum wd_queue_load {
	WD_QUEUE_LOADED,
	WD_QUEUE_MISSING,    /* no file: the message was removed from the queue */
	WD_QUEUE_MALFORMED,  /* a file we cannot send (no metadata.data, bad headers) */
	WD_QUEUE_TROUBLE,    /* database or memory trouble: try again later */
};
/* Everything but LOADED sets *error_r (malloc'd), MISSING excepted. */
enum wd_queue_load wd__queue_message_load(struct wd_outbound *outbound, const char *id,
					  struct wd_queued_message *message, char **error_r);
void wd__queue_message_clear(struct wd_queued_message *message);

/* The header block, then the GridFS body, as a wd_smtp_read_fn source.
   Holds a sender-db client while open. */
struct wd_queue_reader {
	struct wd_outbound *ob;
	const struct wd_queued_message *message;
	mongoc_client_t *client;
	mongoc_gridfs_bucket_t *bucket;
	mongoc_stream_t *stream;
	size_t header_pos;
	uint64_t body_read;
	char error[600];
};

int wd__queue_reader_open(struct wd_outbound *outbound, const struct wd_queued_message *message,
			  struct wd_queue_reader *reader, char **error_r);
ssize_t wd__queue_reader_read(void *reader, uint8_t *buf, size_t len, const char **error_r);
void wd__queue_reader_close(struct wd_queue_reader *reader);

/* Delivered or dropped: delete the entry, and the file once unreferenced. */
int wd__queue_done(struct wd_outbound *outbound, const struct wd_queue_entry *entry,
		   char **error_r);
/* The file is gone: delete every entry of the message. */
int wd__queue_forget_message(struct wd_outbound *outbound, const char *id, char **error_r);
/* Retry after ttl_ms. *matched_r false when our lock was lost meanwhile. */
int wd__queue_defer(struct wd_outbound *outbound, const struct wd_queue_entry *entry,
		    int64_t ttl_ms, const char *response, bool *matched_r, char **error_r);
/* Give the entry back untouched. */
int wd__queue_unlock(struct wd_outbound *outbound, const struct wd_queue_entry *entry,
		     char **error_r);
/* Files and chunks no entry can refer to any more. */
int wd__queue_collect_garbage(struct wd_outbound *outbound, char **error_r);
/* The retry schedule in ms: const:sender:defer_times, else ZoneMTA's. */
size_t wd__queue_defer_times(struct wd_outbound *outbound, int64_t *times, size_t max);

#endif
