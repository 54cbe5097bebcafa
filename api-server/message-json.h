#ifndef API_MESSAGE_JSON_H
#define API_MESSAGE_JSON_H

/* Messages as WildDuck's API shows them (message-json.c), shared by the
 * message and submission routes: the listing entry (formatMessageListing),
 * address lists out of a stored parsedHeader with their names RFC 2047
 * decoded (tools.decodeAddresses), one message document looked up by
 * mailbox and UID for a user, and WildDuck's UID range strings. */

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 2047 encoded words of `text` decoded to UTF-8 (B and Q, any charset
   iconv knows; undecodable words are kept as they are). malloc'd. */
char *api_mime_decode_words(const char *text);

/* A parsedHeader address value (array of {address, name} or groups, or one
   such object) as a JSON array with decoded names; NULL when absent. */
json_t *api_addresses_json(const bson_t *parsed_header, const char *key);

/* The document's mimeTree.parsedHeader (a view into `doc`); false when the
   message has none. */
bool api_parsed_header(const bson_t *doc, bson_t *parsed_header_r);

/* WildDuck's formatMessageListing() of a messages document. */
json_t *api_message_listing(const bson_t *doc);

/* The `attachments` list with each entry's GridFS `hash` (hex). */
json_t *api_message_attachments(const bson_t *doc);

/* Shared by the listing and the single message: answered/forwarded from
   the flags, references, contentType/encrypted, metaData. */
void api_message_common(const bson_t *doc, const bson_t *parsed_header, json_t *out);

/* The message {mailbox, uid} of `user` into *doc_r (projection NULL = the
   whole document). Answers 404 MessageNotFound (`not_found` text) or 500
   and returns false otherwise. */
bool api_message_find(struct api_request *req, const bson_oid_t *mailbox, uint32_t uid,
		      const bson_oid_t *user, const bson_t *projection, const char *not_found,
		      bson_t *doc_r);

/* The mailbox `mailbox` of `user` exists? Answers 404 NoSuchMailbox (or 500)
   and returns false otherwise. */
bool api_mailbox_require(struct api_request *req, const bson_oid_t *user,
			 const bson_oid_t *mailbox);

/* WildDuck's message id strings: "5", "1,2,3", "3:15", "3:*". The ranges go
   to ranges[0..*count_r); false when the text is none of these. */
struct wd_search_uid_range;
bool api_uid_range_parse(const char *text, struct wd_search_uid_range *ranges, size_t max,
			 size_t *count_r);
/* A query condition for those ranges ({uid: n} / {$in} / {$gte,$lte}). */
void api_uid_range_append(bson_t *query, const struct wd_search_uid_range *ranges, size_t count);

/* The UIDs in `mailbox` matching `query` (which holds the mailbox), in UID
   order, at most `max`. malloc'd; WD_OK / WD_ERROR with *error_r. */
int api_message_uids(struct api_request *req, const bson_t *query, size_t max, uint32_t **uids_r,
		     size_t *count_r, char **error_r);

/* \Deleted + UID EXPUNGE of `uids` in `mailbox` (archived unless drafts,
   as WildDuck's delete); *deleted_r counts the expunged. */
int api_messages_delete(struct api_request *req, const bson_oid_t *mailbox, const uint32_t *uids,
			size_t count, size_t *deleted_r, char **error_r);

/* The exact bytes of message `id` appended to `out` (at most `max`). */
struct wd_buffer;
int api_message_read_all(struct api_request *req, const bson_oid_t *id, size_t max,
			 struct wd_buffer *out, char **error_r);

/* One STORE of `flags` on `uids` (nothing to do when either is empty). */
#include "wd-store-message.h"
int api_message_flags(struct api_request *req, const bson_oid_t *mailbox, const uint32_t *uids,
		      size_t count, enum wd_flags_op op, const char *const *flags, size_t flag_count,
		      char **error_r);

/* One update (or update_many) of `collection` in the main database under
   the store's update lock of `mailbox` ("mb:<id>", the lock UID and MODSEQ
   allocation take), so that on FerretDB (no atomic updates) a plain field
   change cannot undo a concurrent one. *matched_r (may be NULL) gets
   matchedCount. */
int api_update_locked(struct api_request *req, const bson_oid_t *mailbox, const char *collection,
		      const bson_t *filter, const bson_t *update, bool many, int64_t *matched_r,
		      char **error_r);

/* Integer value of a BSON field (numbers of any type), `def` otherwise. */
int64_t api_bson_int(const bson_t *doc, const char *key, int64_t def);
/* A UTF-8 field (dotted path) or NULL; borrowed from `doc`. */
const char *api_bson_str(const bson_t *doc, const char *dotted);

#endif
