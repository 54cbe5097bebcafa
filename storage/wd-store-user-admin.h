#ifndef WD_STORE_USER_ADMIN_H
#define WD_STORE_USER_ADMIN_H

/* What the HTTP API's user, address and domain alias endpoints need beyond
 * wd-store-user.h (reference §2.1–§2.3, WildDuck's lib/api/users.js,
 * addresses.js, domainaliases.js):
 *
 *   - cursor paging over a collection in the order of a unique key, as
 *     WildDuck's mongo-cursor-pagination does (users by _id, addresses by
 *     addrview, domain aliases by alias), with the total count;
 *   - single-document reads, inserts, updates and deletes by _id in the
 *     users database, with the duplicate-key refusal of the unique indexes
 *     (users.unameview, addresses.addrview) as WD_STORE_ERR_EXISTS;
 *   - recounting users.storageUsed from the user's messages;
 *   - renaming the domain of every address (and main address) at once.
 *
 * Same conventions as wd-store-user.h: blocking, thread-safe, 0 or a
 * negative enum wd_store_error_kind with a malloc'd *error_r. */

#include "wd-store-user.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_STORE_PAGE_MAX 250

struct wd_store_page_request {
	enum wd_store_db db;
	const char *collection;
	const bson_t *filter;      /* NULL: everything */
	const bson_t *projection;  /* NULL: whole documents */
	const char *sort_key;      /* a unique key: "_id" (ObjectId) or a string field */
	/* At most one: values after `after` (next page) or before `before`
	   (previous page), as stored (24 hex digits for "_id"). */
	const char *after;
	const char *before;
	unsigned limit;            /* 1..WD_STORE_PAGE_MAX (clamped) */
};

struct wd_store_page {
	bson_t **docs;             /* in ascending sort_key order */
	size_t count;
	bool has_next, has_previous;
	int64_t total;             /* documents matching the filter */
};

/* WD_STORE_ERR_INVALID for an `after`/`before` that is not a valid key. */
int wd_store_page_find(struct wd_store *store, const struct wd_store_page_request *req,
		       struct wd_store_page *page_r, char **error_r);
void wd_store_page_free(struct wd_store_page *page);
/* The sort key of a document as a string (hex for ObjectIds), malloc'd. */
char *wd_store_page_key(const bson_t *doc, const char *sort_key);

/* One document by _id (*doc_r initialised only on success), NOT_FOUND. */
int wd_store_doc_get(struct wd_store *store, enum wd_store_db db, const char *collection,
		     const bson_oid_t *id, bson_t *doc_r, char **error_r);
/* Inserts `doc` (which holds its _id). EXISTS on a duplicate unique key. */
int wd_store_doc_insert(struct wd_store *store, enum wd_store_db db, const char *collection,
			const bson_t *doc, char **error_r);
/* update_one on {_id: id, ...extra}. NOT_FOUND when nothing matched, EXISTS
   on a duplicate unique key. Updates of a users document hold the user's
   update lock (FerretDB replaces whole documents: an $inc of storageUsed
   must not be lost). */
int wd_store_doc_update(struct wd_store *store, enum wd_store_db db, const char *collection,
			const bson_oid_t *id, const bson_t *extra, const bson_t *update,
			char **error_r);
/* delete_one {_id: id}; NOT_FOUND when nothing was deleted. */
int wd_store_doc_delete(struct wd_store *store, enum wd_store_db db, const char *collection,
			const bson_oid_t *id, char **error_r);
/* Documents matching `filter` (count_documents). */
int wd_store_doc_count(struct wd_store *store, enum wd_store_db db, const char *collection,
		       const bson_t *filter, int64_t *count_r, char **error_r);

/* Sets users.storageUsed to the sum of the sizes of the user's messages
   (WildDuck's POST /users/:user/quota/reset) and gives the value before. */
int wd_store_user_quota_recount(struct wd_store *store, const bson_oid_t *user,
				int64_t *used_r, int64_t *previous_r, char **error_r);

struct wd_rename_domain_report {
	int64_t addresses, users, aliases;
};
/* Every address whose addrview ends in "@old" gets "@new" (address and
   addrview), a user whose main address was one of them follows, and
   domain aliases pointing at `old` point at `new`. Both domains are
   normalised here. A clash with an existing address stops with EXISTS
   after the addresses renamed so far (each one is a single update). */
int wd_store_address_rename_domain(struct wd_store *store, const char *old_domain,
				   const char *new_domain, struct wd_rename_domain_report *report_r,
				   char **error_r);

/* A numeric setting of the `settings` collection ({key, value}; the value
   a number or a string of digits), `def` when absent or not positive. */
int64_t wd_store_setting_int(struct wd_store *store, const char *key, int64_t def);

#endif
