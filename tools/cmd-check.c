/* wdctl check [--repair]
 *
 * Recounts what the store keeps as counters and compares:
 *   - attachment files: metadata.c (references) and metadata.m (sum of the
 *     referencing messages' magic) against the messages and archived
 *     documents that list them in mimeTree.attachmentMap; references to
 *     files that do not exist;
 *   - mailboxes: uidNext above every stored UID, modifyIndex at least every
 *     stored MODSEQ;
 *   - users: storageUsed equal to the sum of their messages' sizes.
 * With --repair the counters are set to the recounted values and the
 * attachment garbage collector runs (24 h grace). Run it while nothing is
 * delivering to the affected mailboxes: a message stored during the recount
 * is not seen by it. Exit status 3 when problems remain.
 *
 * `wdctl gc` runs the same recount as its repair of interrupted writes
 * (wdctl_recount_settled): a store killed between its steps leaves an
 * attachment's counters or storageUsed too high (the counter changes come
 * before the message insert). There a counter is corrected only when it
 * has not changed for the settle time (metadata.cu, users.wdcQuotaChanged:
 * no store is in flight for it), and only if it is still what was read
 * (the update's filter), so gc may run while mail is delivered. Mailboxes
 * are not touched there: a UID allocated for a message never inserted is a
 * gap, not an error. */
#include "wdctl.h"
#include "wd-store-attachment.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct att_ref {
	uint8_t hash[WD_ATTACHMENT_HASH_LEN];
	int64_t count, magic;
};

struct max_entry {
	bson_oid_t key;
	int64_t a, b; /* mailbox: max uid, max modseq; user: size sum */
};

struct array {
	void *items;
	size_t count, cap, size;
};

static void *array_push(struct array *a)
{
	if (a->count == a->cap) {
		a->cap = a->cap == 0 ? 256 : a->cap * 2;
		a->items = realloc(a->items, a->cap * a->size);
	}
	void *item = (char *)a->items + a->count * a->size;
	memset(item, 0, a->size);
	a->count++;
	return item;
}

static int cmp_att(const void *x, const void *y)
{
	return memcmp(x, y, WD_ATTACHMENT_HASH_LEN);
}

static int cmp_oid(const void *x, const void *y)
{
	return bson_oid_compare(x, y);
}

/* Sort, then merge equal keys (summing, or max-ing for mailboxes). */
static void merge_att(struct array *a)
{
	qsort(a->items, a->count, a->size, cmp_att);
	struct att_ref *r = a->items;
	size_t n = 0;
	for (size_t i = 0; i < a->count; i++) {
		if (n > 0 && memcmp(r[n - 1].hash, r[i].hash, WD_ATTACHMENT_HASH_LEN) == 0) {
			r[n - 1].count += r[i].count;
			r[n - 1].magic += r[i].magic;
		} else {
			r[n++] = r[i];
		}
	}
	a->count = n;
}

static void merge_max(struct array *a, bool sum)
{
	qsort(a->items, a->count, a->size, cmp_oid);
	struct max_entry *e = a->items;
	size_t n = 0;
	for (size_t i = 0; i < a->count; i++) {
		if (n > 0 && bson_oid_equal(&e[n - 1].key, &e[i].key)) {
			if (sum) {
				e[n - 1].a += e[i].a;
			} else {
				if (e[i].a > e[n - 1].a)
					e[n - 1].a = e[i].a;
				if (e[i].b > e[n - 1].b)
					e[n - 1].b = e[i].b;
			}
		} else {
			e[n++] = e[i];
		}
	}
	a->count = n;
}

static int64_t int_field(const bson_t *doc, const char *key)
{
	bson_iter_t iter, found;
	return bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, key, &found) &&
			       BSON_ITER_HOLDS_NUMBER(&found) ?
		       bson_iter_as_int64(&found) : 0;
}

static bool oid_field(const bson_t *doc, const char *key, bson_oid_t *oid)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_OID(&iter))
		return false;
	bson_oid_copy(bson_iter_oid(&iter), oid);
	return true;
}

/* One pass over messages (live and archived). */
static int scan_messages(struct wdctl *ctl, const char *collection, bool live, struct array *atts,
			 struct array *mailboxes, struct array *users)
{
	mongoc_client_t *client = wd_store_client(ctl->store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(ctl->store, client, WD_STORE_DB_MAIN, collection);
	bson_t *opts = BCON_NEW("projection", "{", "mailbox", BCON_INT32(1), "user", BCON_INT32(1),
				"uid", BCON_INT32(1), "modseq", BCON_INT32(1), "size", BCON_INT32(1),
				"magic", BCON_INT32(1), "mimeTree.attachmentMap", BCON_INT32(1), "}");
	bson_t query = BSON_INITIALIZER;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &query, opts, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		int64_t magic = int_field(doc, "magic");
		bson_iter_t iter, map;
		if (bson_iter_init(&iter, doc) &&
		    bson_iter_find_descendant(&iter, "mimeTree.attachmentMap", &map) &&
		    BSON_ITER_HOLDS_DOCUMENT(&map)) {
			bson_iter_t entry;
			bson_iter_recurse(&map, &entry);
			while (bson_iter_next(&entry)) {
				const uint8_t *data;
				uint32_t len;
				bson_subtype_t subtype;
				if (!BSON_ITER_HOLDS_BINARY(&entry))
					continue;
				bson_iter_binary(&entry, &subtype, &len, &data);
				if (len != WD_ATTACHMENT_HASH_LEN)
					continue;
				struct att_ref *r = array_push(atts);
				memcpy(r->hash, data, WD_ATTACHMENT_HASH_LEN);
				r->count = 1;
				r->magic = magic;
			}
		}
		if (!live)
			continue;
		struct max_entry *m = array_push(mailboxes);
		if (oid_field(doc, "mailbox", &m->key)) {
			m->a = int_field(doc, "uid");
			m->b = int_field(doc, "modseq");
		} else {
			mailboxes->count--;
		}
		struct max_entry *u = array_push(users);
		if (oid_field(doc, "user", &u->key))
			u->a = int_field(doc, "size");
		else
			users->count--;
	}
	bson_error_t error;
	int ret = 0;
	if (mongoc_cursor_error(cursor, &error))
		ret = wdctl_fail("check: cannot read %s: %s", collection, error.message);
	mongoc_cursor_destroy(cursor);
	bson_destroy(&query);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ctl->store, WD_STORE_DB_MAIN, client);
	return ret;
}

struct tally {
	unsigned problems, repaired;
	bool repair;
	/* gc: repair only counters unchanged since this time (ms), 0: all */
	int64_t settled_before;
};

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A counter's last change (a Date field), or -1 when the field is absent. */
static int64_t date_field(const bson_t *doc, const char *key)
{
	bson_iter_t iter, found;
	return bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, key, &found) &&
			       BSON_ITER_HOLDS_DATE_TIME(&found) ?
		       bson_iter_date_time(&found) : -1;
}

/* In gc mode a counter whose time field changed within the settle time
   may belong to a store in flight: left alone (not a problem either). */
static bool unsettled(const struct tally *t, const bson_t *doc, const char *time_key)
{
	return t->settled_before != 0 && date_field(doc, time_key) >= t->settled_before;
}

/* $set on one document; `guard` (may be NULL) holds more filter fields:
   the values the recount saw, so a change since then makes it a no-op. */
static void set_fields(struct wdctl *ctl, enum wd_store_db db, const char *collection,
		       const bson_value_t *id, const bson_t *guard, bson_t *set, struct tally *t)
{
	mongoc_client_t *client = wd_store_client(ctl->store, db);
	mongoc_collection_t *coll = wd_store_collection(ctl->store, client, db, collection);
	bson_t query = BSON_INITIALIZER, update = BSON_INITIALIZER, reply;
	BSON_APPEND_VALUE(&query, "_id", id);
	if (guard != NULL)
		bson_concat(&query, guard);
	BSON_APPEND_DOCUMENT(&update, "$set", set);
	bson_error_t error;
	if (mongoc_collection_update_one(coll, &query, &update, NULL, &reply, &error)) {
		bson_iter_t iter;
		if (guard == NULL || (bson_iter_init_find(&iter, &reply, "modifiedCount") &&
				      bson_iter_as_int64(&iter) > 0))
			t->repaired++;
		else
			printf("  changed meanwhile, left for the next run\n");
	} else {
		fprintf(stderr, "wdctl: repair failed: %s\n", error.message);
	}
	bson_destroy(&reply);
	bson_destroy(&update);
	bson_destroy(&query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ctl->store, db, client);
}

static void check_files(struct wdctl *ctl, struct array *atts, struct tally *t)
{
	struct att_ref *refs = atts->items;
	bool *seen = calloc(atts->count + 1, sizeof(bool));
	mongoc_client_t *client = wd_store_client(ctl->store, WD_STORE_DB_GRIDFS);
	mongoc_collection_t *coll =
		wd_store_collection(ctl->store, client, WD_STORE_DB_GRIDFS, "attachments.files");
	bson_t query = BSON_INITIALIZER;
	bson_t *opts = BCON_NEW("projection", "{", "metadata.c", BCON_INT32(1), "metadata.m",
				BCON_INT32(1), "metadata.cu", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &query, opts, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		if (!bson_iter_init_find(&iter, doc, "_id") || !BSON_ITER_HOLDS_BINARY(&iter))
			continue;
		const uint8_t *hash;
		uint32_t len;
		bson_subtype_t subtype;
		bson_iter_binary(&iter, &subtype, &len, &hash);
		if (len != WD_ATTACHMENT_HASH_LEN)
			continue;
		struct att_ref *r = bsearch(hash, refs, atts->count, sizeof(*refs), cmp_att);
		int64_t want_c = r != NULL ? r->count : 0, want_m = r != NULL ? r->magic : 0;
		if (r != NULL)
			seen[r - refs] = true;
		int64_t c = int_field(doc, "metadata.c"), m = int_field(doc, "metadata.m");
		if ((c == want_c && m == want_m) || unsettled(t, doc, "metadata.cu"))
			continue;
		char hex[2 * WD_ATTACHMENT_HASH_LEN + 1];
		for (int i = 0; i < WD_ATTACHMENT_HASH_LEN; i++)
			snprintf(hex + 2 * i, 3, "%02x", hash[i]);
		printf("attachment %s: counters c=%lld m=%lld, recounted c=%lld m=%lld\n", hex,
		       (long long)c, (long long)m, (long long)want_c, (long long)want_m);
		t->problems++;
		if (t->repair) {
			/* cu restarts the garbage collector's grace period */
			bson_t *set = BCON_NEW("metadata.c", BCON_INT64(want_c), "metadata.m",
					       BCON_INT64(want_m), "metadata.cu",
					       BCON_DATE_TIME(now_ms()));
			bson_t *guard = t->settled_before == 0 ? NULL :
					BCON_NEW("metadata.c", BCON_INT64(c), "metadata.m",
						 BCON_INT64(m), "metadata.cu",
						 BCON_DATE_TIME(date_field(doc, "metadata.cu")));
			set_fields(ctl, WD_STORE_DB_GRIDFS, "attachments.files", bson_iter_value(&iter),
				   guard, set, t);
			bson_destroy(set);
			if (guard != NULL)
				bson_destroy(guard);
		}
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(&query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ctl->store, WD_STORE_DB_GRIDFS, client);
	for (size_t i = 0; i < atts->count; i++) {
		if (seen[i])
			continue;
		char hex[2 * WD_ATTACHMENT_HASH_LEN + 1];
		for (int k = 0; k < WD_ATTACHMENT_HASH_LEN; k++)
			snprintf(hex + 2 * k, 3, "%02x", refs[i].hash[k]);
		printf("attachment %s: referenced by %lld messages but missing (not repairable)\n",
		       hex, (long long)refs[i].count);
		t->problems++;
	}
	free(seen);
}

static void check_documents(struct wdctl *ctl, enum wd_store_db db, const char *collection,
			    struct array *recount, bool mailboxes, struct tally *t)
{
	mongoc_client_t *client = wd_store_client(ctl->store, db);
	mongoc_collection_t *coll = wd_store_collection(ctl->store, client, db, collection);
	bson_t query = BSON_INITIALIZER;
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &query, NULL, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_oid_t id;
		if (!oid_field(doc, "_id", &id))
			continue;
		struct max_entry *e = bsearch(&id, recount->items, recount->count, recount->size, cmp_oid);
		int64_t a = e != NULL ? e->a : 0, b = e != NULL ? e->b : 0;
		char hex[25];
		bson_oid_to_string(&id, hex);
		bson_iter_t iter;
		bson_iter_init_find(&iter, doc, "_id");
		if (mailboxes) {
			if (t->settled_before != 0)
				continue;
			int64_t uid_next = int_field(doc, "uidNext"), modify = int_field(doc, "modifyIndex");
			if (uid_next > a && modify >= b)
				continue;
			printf("mailbox %s: uidNext=%lld modifyIndex=%lld, stored max uid=%lld "
			       "modseq=%lld\n", hex, (long long)uid_next, (long long)modify,
			       (long long)a, (long long)b);
			t->problems++;
			if (t->repair) {
				bson_t *set = BCON_NEW("uidNext", BCON_INT32((int32_t)(uid_next > a ? uid_next : a + 1)),
						       "modifyIndex",
						       BCON_INT32((int32_t)(modify >= b ? modify : b)));
				set_fields(ctl, db, collection, bson_iter_value(&iter), NULL, set, t);
				bson_destroy(set);
			}
		} else {
			int64_t used = int_field(doc, "storageUsed");
			if (used == a || unsettled(t, doc, "wdcQuotaChanged"))
				continue;
			printf("user %s: storageUsed=%lld, messages sum to %lld\n", hex,
			       (long long)used, (long long)a);
			t->problems++;
			if (t->repair) {
				/* int32 while it fits, as WildDuck's $inc leaves it */
				bson_t *set = a >= INT32_MIN && a <= INT32_MAX ?
						      BCON_NEW("storageUsed", BCON_INT32((int32_t)a)) :
						      BCON_NEW("storageUsed", BCON_INT64(a));
				bson_t *guard = NULL;
				if (t->settled_before != 0) {
					/* numbers compare across int32/int64/double */
					guard = BCON_NEW("storageUsed", BCON_INT64(used));
					int64_t changed = date_field(doc, "wdcQuotaChanged");
					if (changed >= 0)
						BSON_APPEND_DATE_TIME(guard, "wdcQuotaChanged", changed);
					else
						BCON_APPEND(guard, "wdcQuotaChanged", "{", "$exists",
							    BCON_BOOL(false), "}");
				}
				set_fields(ctl, db, collection, bson_iter_value(&iter), guard, set, t);
				bson_destroy(set);
				if (guard != NULL)
					bson_destroy(guard);
			}
		}
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(&query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(ctl->store, db, client);
}

/* The recount and the comparisons (repairs as t->repair and
   t->settled_before say); WDCTL_EXIT_FAIL when the messages cannot be read. */
static int recount(struct wdctl *ctl, struct tally *t)
{
	struct array atts = { .size = sizeof(struct att_ref) };
	struct array mailboxes = { .size = sizeof(struct max_entry) };
	struct array users = { .size = sizeof(struct max_entry) };
	if (scan_messages(ctl, "messages", true, &atts, &mailboxes, &users) != 0 ||
	    scan_messages(ctl, "archived", false, &atts, &mailboxes, &users) != 0)
		return WDCTL_EXIT_FAIL;
	merge_att(&atts);
	merge_max(&mailboxes, false);
	merge_max(&users, true);
	check_files(ctl, &atts, t);
	check_documents(ctl, WD_STORE_DB_MAIN, "mailboxes", &mailboxes, true, t);
	check_documents(ctl, WD_STORE_DB_USERS, "users", &users, false, t);
	free(atts.items);
	free(mailboxes.items);
	free(users.items);
	return WDCTL_EXIT_OK;
}

int wdctl_recount_settled(struct wdctl *ctl, int64_t settled_before_ms, unsigned *found_r,
			  unsigned *repaired_r)
{
	struct tally t = { .repair = true, .settled_before = settled_before_ms };
	int ret = recount(ctl, &t);
	*found_r = t.problems;
	*repaired_r = t.repaired;
	return ret;
}

int wdctl_check(struct wdctl *ctl, int argc, char **argv)
{
	struct tally t = { 0 };
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--repair") == 0)
			t.repair = true;
		else
			return wdctl_fail("usage: wdctl check [--repair]");
	}
	if (recount(ctl, &t) != WDCTL_EXIT_OK)
		return WDCTL_EXIT_FAIL;
	if (t.repair) {
		struct wd_attachment_gc_report gc;
		char *error = NULL;
		if (wd_store_attachment_gc(ctl->store, now_ms(), 24LL * 3600 * 1000,
					   &gc, &error) < 0) {
			wdctl_fail("check: garbage collection failed: %s", error);
			free(error);
		} else {
			printf("garbage collection: %u unreferenced files, %u sets of orphan chunks "
			       "removed\n", gc.files, gc.orphan_chunk_sets);
		}
	}
	printf("%u problems found, %u repaired\n", t.problems, t.repaired);
	return t.problems > t.repaired ? WDCTL_EXIT_PROBLEMS : WDCTL_EXIT_OK;
}
