#ifndef API_ACCOUNT_H
#define API_ACCOUNT_H

/* What the account-settings route modules share (account.c): routes-auth.c,
 * routes-2fa.c, routes-asps.c, routes-filters.c, routes-autoreply.c and
 * routes-storage.c.
 *
 *   - the auth log's "who is asking" (protocol API, the `ip` the caller
 *     passed for its end user or else the connection's address, `sess`);
 *   - libwdauth errors as WildDuck's answers;
 *   - WildDuck's paged listings (mongo-cursor-pagination): a page of at most
 *     `limit` documents in _id order (or by a string field, then _id),
 *     ascending or descending, with opaque `next` / `previous` cursors that
 *     hold the sort key of the page's last / first document;
 *   - a number from the settings collection (WildDuck's settings handler). */

#include "api.h"

#include "wd-auth.h"

#include <mongoc/mongoc.h>

/* `ip` and `sess` from the input; protocol "API". Borrowed from req. */
void api_account_meta(struct api_request *req, struct wd_auth_meta *meta_r);

/* The answer for a negative libwdauth return: NOT_FOUND → 404
   `not_found_code`, STATE → 400 `state_code`, LIMIT → 403 TooMany,
   INVALID → 400 InputValidationError, RATELIMITED → 403 RateLimitedError,
   otherwise 500 InternalDatabaseError (the detail only logged). */
void api_account_auth_error(struct api_request *req, int ret, const char *error,
			    const char *not_found_code, const char *state_code);

struct api_page {
	const char *kind;       /* cursor kind ("authlog", "filters", ...) */
	const char *field;      /* NULL: by _id; else a string field, then _id */
	bool descending;
	int64_t limit;          /* 1..250 */
	const char *next;       /* cursors from the request, NULL when absent */
	const char *previous;
};

struct api_page_result {
	bson_t **docs;
	size_t count;
	char *next_cursor;      /* NULL: no next page (JSON false) */
	char *previous_cursor;  /* NULL: no previous page */
	int64_t total;          /* documents matching the filter */
};

/* One page of `filter` on `coll`. 0; otherwise the answer was sent (400
   InputValidationError for a cursor that is not ours, 500 for the
   database). */
int api_page_find(struct api_request *req, mongoc_collection_t *coll, const bson_t *filter,
		  const struct api_page *page, struct api_page_result *result_r);
void api_page_result_free(struct api_page_result *result);
/* Adds total, page, previousCursor, nextCursor and `results` (stolen) to
   `body`, as WildDuck's listings answer. */
void api_page_reply_fields(struct api_request *req, json_t *body,
			   const struct api_page_result *result, json_t *results);

/* The page-size and cursor fields every listing takes. */
#define API_PAGE_FIELDS                                                                        \
	{ "limit", API_T_INT, API_F_QUERY, 1, 250, NULL, "How many records to return (20)" },  \
	{ "next", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 1024, NULL,                   \
	  "Cursor value for next page, retrieved from nextCursor response value" },            \
	{ "previous", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK, 0, 1024, NULL,               \
	  "Cursor value for previous page, retrieved from previousCursor response value" },    \
	{ "page", API_T_INT, API_F_QUERY, 1, 1000000, NULL,                                    \
	  "Current page number. Informational only, page numbers start from 1" }

/* A collection on a borrowed client for one handler step. */
struct api_coll {
	struct wd_store *store;
	int db; /* enum wd_store_db */
	mongoc_client_t *client;
	mongoc_collection_t *coll;
};
void api_coll_get(struct api_request *req, int db, const char *name, struct api_coll *c);
void api_coll_put(struct api_coll *c);
/* Logs `what` and the driver's message, answers 500 InternalDatabaseError. */
void api_db_failed(struct api_request *req, const char *what, const bson_error_t *error);

/* The first document of `filter` in `collection` (a copy to destroy), NULL
   when there is none; *failed_r true when the database failed (answered
   500). */
bson_t *api_find_one(struct api_request *req, int db, const char *collection,
		     const bson_t *filter, bool *failed_r);

/* Milliseconds since the epoch. */
int64_t api_now_ms(void);

/* `text` with every regular expression metacharacter escaped (malloc'd),
   for a literal $regex substring match. */
char *api_regex_escape(const char *text);

/* A positive number stored under `key` in the settings collection (value
   is JSON text), or `def`. */
int64_t api_account_setting(struct api_request *req, const char *key, int64_t def);

#endif
