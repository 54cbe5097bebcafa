#ifndef API_USER_FIELDS_H
#define API_USER_FIELDS_H

/* Field conventions shared by the user, address and domain alias routes
 * (routes-users.c, routes-addresses.c, routes-domainaliases.c), as
 * WildDuck's API applies them:
 *
 *   - tags: trimmed, empty ones dropped, de-duplicated case-insensitively,
 *     sorted case-insensitively, stored with a lower-cased `tagsview`;
 *   - forwarding targets: "smtp(s)://…" relay, "http(s)://…" web hook, else
 *     an address (has '@'), each stored as {id, type, value};
 *   - metaData / internalData: an object or a JSON string of one, stored as
 *     JSON text, given back parsed (formatMetaData);
 *   - listings: WildDuck's cursor paging fields and answer shape. */

#include "account.h" /* API_PAGE_FIELDS */
#include "api.h"
#include "wd-store-user-admin.h"

/* tags / tagsview from a JSON array of strings. */
void api_tags_append(bson_t *doc, const json_t *tags);
/* A "tags"/"requiredTags" query (comma separated) into a tagsview filter
   {$in / $all} appended to `filter`. */
void api_tags_filter(bson_t *filter, const char *tags, const char *required);

/* targets from a JSON array of strings. `self_addrview` (may be NULL) is
   refused as a target ("Can not forward to self"); with `store`, address
   targets that resolve to a local user get `user`. false with `error`
   (static or in buf) for the client. */
bool api_targets_append(struct wd_store *store, bson_t *doc, const char *key,
			const json_t *targets, const char *self_addrview, char *error,
			size_t error_size);
/* The values of a stored targets array as a JSON array. */
json_t *api_targets_json(const bson_t *doc);

/* JSON text of a metaData value (object or JSON string of an object),
   malloc'd; NULL when it is neither. */
char *api_metadata_text(const json_t *value);
/* The stored metaData (key) as WildDuck's formatMetaData gives it: parsed
   JSON, the string itself when it does not parse, {} when absent/empty. */
json_t *api_metadata_json(const bson_t *doc, const char *key);

/* Listing: fields `limit`, `next`, `previous`, `page` (account.h's
   API_PAGE_FIELDS) in,
   {success, query, total, page, previousCursor, nextCursor, results} out.
   `kind` names the cursors. Returns false after answering (400 for a
   cursor that is not ours, or a store error). */
bool api_listing_find(struct api_request *req, const char *kind,
		   struct wd_store_page_request *preq, struct wd_store_page *page_r);
/* The answer object (results array filled by the caller, stolen). */
json_t *api_listing_reply(struct api_request *req, const char *kind,
		       const struct wd_store_page_request *preq, const struct wd_store_page *page,
		       json_t *results);

/* A string field of a document, or NULL. */
const char *api_doc_str(const bson_t *doc, const char *key);
/* A field as JSON (null when absent). */
json_t *api_doc_json(const bson_t *doc, const char *key);

/* A JavaScript number as the Node driver writes it (int32 when it fits). */
void api_bson_js_number(bson_t *doc, const char *key, int64_t value);

/* Regex filter {key: {$regex: escaped(text)}} appended to `doc`. */
void api_regex_append(bson_t *doc, const char *key, const char *text);

#endif
