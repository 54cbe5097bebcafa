#ifndef WD_STORE_MESSAGE_H
#define WD_STORE_MESSAGE_H

/* Storing and reading messages (reference §2.9, §3, §4.6), byte-exact.
 *
 * A message document carries WildDuck's fields (uid, modseq, flags and their
 * boolean mirrors, dates, subject, msgid, indexed headers, the WildDuck view
 * of the MIME tree with attachmentMap, size, magic, exp/rdate, meta) so that
 * WildDuck can read it, plus a field WildDuck ignores, `wdc`, that rebuilds
 * the delivered bytes exactly: `wdc.pieces` is the message as a list of
 * literal byte runs ({l: Binary}) and attachment bodies ({a: "ATTnnnnn",
 * s: length}) whose files live de-duplicated in GridFS. `size` is the exact
 * number of bytes BODY[] returns (DESIGN.md §3: RFC822.SIZE equals BODY[]).
 *
 * Order of operations (crash safety): attachments are stored first (their
 * references are released again if a later step fails), then quota, UID and
 * MODSEQ, then the document, then the journal entry and the notification. A
 * crash after the attachments and before the document leaves references that
 * `wdctl check --repair` recounts. */

#include "wd-store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_buffer;

struct wd_message_add {
	const uint8_t *raw;         /* the message as delivered or appended */
	size_t len;
	const char *const *flags;   /* IMAP flags as given */
	size_t flag_count;
	int64_t idate_ms;           /* INTERNALDATE; 0 = now */
	const char *source;         /* meta.source: "IMAP", "LMTP", "API", "IMPORT" */
	const char *session_id;     /* journal `ignore`, or NULL */
	bool decode_base64;         /* attachments.decodeBase64 */
};

struct wd_message_added {
	bson_oid_t id;
	bson_oid_t user;
	uint32_t uid;
	uint32_t modseq;
	uint64_t size;
	unsigned attachments;       /* bodies stored in GridFS */
};

int wd_store_message_add(struct wd_store *store, const bson_oid_t *mailbox,
			 const struct wd_message_add *req, struct wd_message_added *added_r,
			 char **error_r);

/* Pull-style reading of a message's exact bytes: each read appends one
   literal piece or at most one GridFS chunk of an attachment. */
struct wd_message_reader;
struct wd_message_reader *wd_store_message_open(struct wd_store *store, const bson_oid_t *mailbox,
						uint32_t uid, char **error_r);
/* The same by message id: the one lookup FerretDB answers from an index. */
struct wd_message_reader *wd_store_message_open_id(struct wd_store *store, const bson_oid_t *id,
						   char **error_r);
uint64_t wd_message_reader_size(const struct wd_message_reader *reader);
int wd_message_reader_read(struct wd_message_reader *reader, struct wd_buffer *out, bool *eof_r,
			   char **error_r);
void wd_message_reader_close(struct wd_message_reader **reader);

#endif
