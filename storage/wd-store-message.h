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
 * s: length}) whose files live de-duplicated in GridFS; `wdc.tree` is its
 * MIME layout as byte offsets (IMAP sections without a parse); `wdc.imap`
 * holds ENVELOPE, BODYSTRUCTURE and BODY as FETCH sends them. `size` is the exact
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
	/* Delivery's additions (NULL elsewhere): `meta` fields written after
	   meta.source and meta.time (from, to, origin, transtype, queueId,
	   transactionId…; never source or time themselves), and top-level
	   fields appended to the document (filters, outbound, forwardTargets;
	   never a field the store writes). */
	const bson_t *meta;
	const bson_t *fields;
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

/* Pull-style reading of a message's exact bytes (message-reader.c): each
   read appends a slice of a literal piece or at most one GridFS chunk of an
   attachment, so memory is bounded by a chunk. Messages written by WildDuck
   (no wdc) are read as WildDuck's IMAP server serves them: rebuilt from
   mimeTree and cut or padded to their `size`. */
struct wd_message_reader;
struct wd_message_reader *wd_store_message_open(struct wd_store *store, const bson_oid_t *mailbox,
						uint32_t uid, char **error_r);
/* The same by message id: the one lookup FerretDB answers from an index. */
struct wd_message_reader *wd_store_message_open_id(struct wd_store *store, const bson_oid_t *id,
						   char **error_r);
/* The same from a document already loaded (a FETCH batch): it must hold
   `wdc` and `mimeTree.attachmentMap` (ours) or `mimeTree` and `size`
   (WildDuck's; with only its _id the tree is fetched). No query for ours. */
struct wd_message_reader *wd_store_message_open_doc(struct wd_store *store, const bson_t *doc,
						    char **error_r);
/* Narrow what the reader returns to BODY[section]<offset.length> (spec NULL
   = the whole message; length UINT64_MAX = to the end). May be called
   again for another section of the same message (a FETCH with several body
   items): what the previous one left unread is dropped. Sections are
   resolved from the stored layout (wdc.tree)
   without reading the message; only HEADER.FIELDS(.NOT) reads the header
   block it filters. A part that does not exist gives an empty section, the
   answer IMAP servers send. */
struct wd_mime_section_spec;
int wd_message_reader_select(struct wd_message_reader *reader,
			     const struct wd_mime_section_spec *spec, uint64_t offset,
			     uint64_t length, char **error_r);
/* Bytes the reader returns in all (the section's after a select). */
uint64_t wd_message_reader_size(const struct wd_message_reader *reader);
/* Bytes of the whole message (RFC822.SIZE). */
uint64_t wd_message_reader_message_size(const struct wd_message_reader *reader);
int wd_message_reader_read(struct wd_message_reader *reader, struct wd_buffer *out, bool *eof_r,
			   char **error_r);
void wd_message_reader_close(struct wd_message_reader **reader);

/* ---- changes to stored messages (store-message-ops.c) ---- */

enum wd_flags_op {
	WD_FLAGS_REPLACE, /* FLAGS */
	WD_FLAGS_ADD,     /* +FLAGS */
	WD_FLAGS_REMOVE,  /* -FLAGS */
};

/* IMAP STORE (reference §4.10): flags compare without case; added flags keep
   the client's spelling; every boolean mirror (unseen, flagged, undeleted,
   draft, searchable) is set from the resulting list, whatever combination
   changed (WildDuck writes only the last). Changed messages share ONE new
   MODSEQ and get a journal FETCH entry each. With unchanged_since (CONDSTORE,
   0 = none) messages whose modseq is higher are left alone and listed in
   *modified_r. */
struct wd_flags_change {
	const uint32_t *uids;
	size_t uid_count;
	enum wd_flags_op op;
	const char *const *flags;
	size_t flag_count;
	uint64_t unchanged_since;
	const char *session_id;
};

struct wd_flags_result {
	uint32_t modseq;        /* the new MODSEQ, 0 when nothing changed */
	size_t changed;
	uint32_t *modified;     /* UNCHANGEDSINCE failures (malloc'd) */
	size_t modified_count;
};

int wd_store_message_flags(struct wd_store *store, const bson_oid_t *mailbox,
			   const struct wd_flags_change *change, struct wd_flags_result *result_r,
			   char **error_r);

/* COPY / MOVE (reference §4.11): each message gets a new document in `target`
   with a new UID (in source UID order); COPY adds attachment references and
   quota and marks the sources `copied`; MOVE deletes the sources with one
   source MODSEQ for their EXPUNGE entries. *uid_map_r (malloc'd, pairs
   source, target) gives the COPYUID/MOVE response. */
int wd_store_message_copy(struct wd_store *store, const bson_oid_t *source, const uint32_t *uids,
			  size_t uid_count, const bson_oid_t *target, bool move,
			  const char *session_id, uint32_t **uid_map_r, size_t *count_r,
			  char **error_r);

/* EXPUNGE (reference §4.8): deletes the messages flagged \Deleted (all of
   them, or only those in `uids` for UID EXPUNGE). Unless the message is a
   draft or was copied, a copy goes to `archived` (exp, rdate in 25 days) and
   keeps its attachment references; otherwise the references are released.
   Quota shrinks by the deleted sizes. *expunged_r (malloc'd) lists the UIDs. */
int wd_store_message_expunge(struct wd_store *store, const bson_oid_t *mailbox,
			     const uint32_t *uids, size_t uid_count, const char *session_id,
			     uint32_t **expunged_r, size_t *count_r, char **error_r);

/* Retention (reference §4.8): messages with exp and rdate <= now are deleted
   (archived unless the user was deleted or the message was copied), with
   quota, journal and write lock as EXPUNGE; archived messages past their
   rdate are purged and their attachment references released. At most
   `limit` of each per call; run it periodically from one process. */
struct wd_retention_report {
	unsigned expired, archived, purged;
};
int wd_store_retention_gc(struct wd_store *store, int64_t now_ms, unsigned limit,
			  struct wd_retention_report *report, char **error_r);

#endif
