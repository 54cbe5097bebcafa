/* Change sync for the selected mailbox: journal or full re-sync → queue →
 * untagged responses at safe points (contract in imap-sync.h).
 *
 * The queue is three sets, each bounded:
 *   new       UIDs above the view's last UID, not yet in the view (EXISTS);
 *   expunged  UIDs still in the view, removed in the mailbox (EXPUNGE);
 *   fetches   flag changes, latest per UID wins at emission (FETCH).
 * UID sets are sorted disjoint ranges (struct uidset), so a mass expunge of
 * a contiguous block is one range. Emission order: EXPUNGE first (if
 * allowed), then FETCH for messages still in the view, then EXISTS, so
 * that every sequence number written is the one the client holds at that
 * point of the stream. */
#include "imap-sync.h"

#include <hiredis/hiredis.h>
#include "wd-result.h"
#include "wd-store-user.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Room for one more item in a malloc'd array of `size`-byte items;
   itemsp is the address of the array pointer (of any pointer type, hence
   the memcpy). */
static int grow(void *itemsp, size_t *cap, size_t count, size_t size)
{
	void *items;

	if (count < *cap)
		return WD_OK;
	size_t ncap = *cap < 16 ? 16 : *cap * 2;
	memcpy(&items, itemsp, sizeof(items));
	items = realloc(items, ncap * size);
	if (items == NULL)
		return WD_ERROR;
	memcpy(itemsp, &items, sizeof(items));
	*cap = ncap;
	return WD_OK;
}

/* ---- UID sets as sorted disjoint ranges ---- */

struct uidset {
	struct wd_imap_seq_range *r;
	size_t n, cap;
};

/* Index of the first range whose last >= uid. */
static size_t uidset_find(const struct uidset *s, uint32_t uid)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->r[mid].last < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool uidset_contains(const struct uidset *s, uint32_t uid)
{
	size_t i = uidset_find(s, uid);
	return i < s->n && s->r[i].first <= uid;
}

/* Add [first, last] (merging with neighbours). */
static int uidset_add(struct uidset *s, uint32_t first, uint32_t last)
{
	size_t i = uidset_find(s, first == 0 ? 0 : first - 1);

	if (i < s->n && s->r[i].first <= (uint64_t)last + 1) {
		/* overlaps or touches r[i]: widen it, then swallow followers */
		if (first < s->r[i].first)
			s->r[i].first = first;
		if (last > s->r[i].last)
			s->r[i].last = last;
		size_t j = i + 1;
		while (j < s->n && s->r[j].first <= (uint64_t)s->r[i].last + 1) {
			if (s->r[j].last > s->r[i].last)
				s->r[i].last = s->r[j].last;
			j++;
		}
		memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
		s->n -= j - i - 1;
		return WD_OK;
	}
	if (grow(&s->r, &s->cap, s->n, sizeof(*s->r)) < 0)
		return WD_ERROR;
	memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
	s->r[i] = (struct wd_imap_seq_range){ first, last };
	s->n++;
	return WD_OK;
}

static int uidset_remove(struct uidset *s, uint32_t uid)
{
	size_t i = uidset_find(s, uid);

	if (i >= s->n || s->r[i].first > uid)
		return WD_OK;
	struct wd_imap_seq_range *r = &s->r[i];
	if (r->first == r->last) {
		memmove(r, r + 1, (s->n - i - 1) * sizeof(*r));
		s->n--;
	} else if (uid == r->first) {
		r->first++;
	} else if (uid == r->last) {
		r->last--;
	} else {
		uint32_t last = r->last;
		r->last = uid - 1;
		return uidset_add(s, uid + 1, last);
	}
	return WD_OK;
}

static void uidset_clear(struct uidset *s)
{
	free(s->r);
	memset(s, 0, sizeof(*s));
}

/* ---- change sets ---- */

struct wd_imap_changes *wd_imap_changes_create(void)
{
	return calloc(1, sizeof(struct wd_imap_changes));
}

void wd_imap_changes_free(struct wd_imap_changes **_changes)
{
	struct wd_imap_changes *changes = *_changes;

	if (changes == NULL)
		return;
	*_changes = NULL;
	for (size_t i = 0; i < changes->count; i++)
		free(changes->items[i].flags);
	free(changes->items);
	wd_imap_view_destroy(&changes->current);
	free(changes);
}

int wd_imap_changes_add(struct wd_imap_changes *changes, enum wd_journal_command command,
			uint32_t uid, uint32_t modseq, const char *const *flags, size_t flag_count)
{
	char *text = NULL;

	if (grow(&changes->items, &changes->cap, changes->count, sizeof(*changes->items)) < 0)
		return WD_ERROR;
	if (command == WD_JOURNAL_FETCH) {
		size_t len = 1;
		for (size_t i = 0; i < flag_count; i++)
			len += strlen(flags[i]) + 1;
		text = malloc(len);
		if (text == NULL)
			return WD_ERROR;
		len = 0;
		for (size_t i = 0; i < flag_count; i++) {
			size_t n = strlen(flags[i]);
			if (len > 0)
				text[len++] = ' ';
			memcpy(text + len, flags[i], n);
			len += n;
		}
		text[len] = '\0';
	}
	changes->items[changes->count++] = (struct wd_imap_change){ command, uid, modseq, text };
	if (modseq > changes->modseq)
		changes->modseq = modseq;
	return WD_OK;
}

/* ---- worker thread ---- */

int wd_imap_recent_claim(struct wd_store *store, const bson_oid_t *mailbox, uint32_t last_uid,
			 uint32_t *first_r)
{
	/* Raise the watermark to ARGV[1] (never lower it), keep it 30 days
	   after the last claim, return the old value: one atomic step on the
	   Redis all instances share. An absent key (mailbox never selected, or
	   untouched for 30 days) claims every message, as RFC 3501 has it for a
	   mailbox no session has seen. */
	static const char script[] =
		"local o = tonumber(redis.call('GET', KEYS[1]) or '0') "
		"local n = tonumber(ARGV[1]) "
		"if n > o then redis.call('SET', KEYS[1], n, 'EX', 2592000) "
		"else redis.call('EXPIRE', KEYS[1], 2592000) end "
		"return o";
	char hex[25];

	*first_r = last_uid == UINT32_MAX ? UINT32_MAX : last_uid + 1;
	bson_oid_to_string(mailbox, hex);
	char key[40], uid[16];
	snprintf(key, sizeof(key), "wdc:recent:%s", hex);
	snprintf(uid, sizeof(uid), "%" PRIu32, last_uid);
	const char *argv[] = { "EVAL", script, "1", key, uid };
	redisReply *reply = wd_store_redis_argv(store, 5, argv, NULL);
	if (reply == NULL)
		return WD_ERROR;
	int ret = WD_ERROR;
	if (reply->type == REDIS_REPLY_INTEGER) {
		if (reply->integer < 0)
			*first_r = 1;
		else if ((uint64_t)reply->integer < last_uid)
			*first_r = (uint32_t)reply->integer + 1;
		ret = WD_OK;
	}
	freeReplyObject(reply);
	return ret;
}

int wd_imap_recent_watermark(struct wd_store *store, const bson_oid_t *mailbox,
			     uint32_t *watermark_r)
{
	char hex[25], key[40];
	bson_oid_to_string(mailbox, hex);
	snprintf(key, sizeof(key), "wdc:recent:%s", hex);
	const char *argv[] = { "GET", key };
	redisReply *reply = wd_store_redis_argv(store, 2, argv, NULL);
	if (reply == NULL)
		return WD_ERROR;
	int ret = WD_OK;
	*watermark_r = 0;
	if (reply->type == REDIS_REPLY_STRING) {
		char *end;
		unsigned long long v = strtoull(reply->str, &end, 10);
		*watermark_r = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	} else if (reply->type != REDIS_REPLY_NIL) {
		ret = WD_ERROR;
	}
	freeReplyObject(reply);
	return ret;
}

/* Claim the UIDs above what the changes and the view start from. */
static void claim_new(struct wd_store *store, const bson_oid_t *mailbox,
		      struct wd_imap_changes *changes, uint32_t last_uid)
{
	uint32_t first;

	if (last_uid == 0)
		return;
	uint64_t start = uv_hrtime();
	int ret = wd_imap_recent_claim(store, mailbox, last_uid, &first);
	changes->redis_ns += uv_hrtime() - start;
	if (ret < 0 || first > last_uid)
		return;
	changes->recent_first = first;
	changes->recent_last = last_uid;
}

struct journal_read {
	struct wd_imap_changes *changes;
	const char *session_id;
	uint32_t max_exists;
	bool failed, overflow;
};

static bool journal_entry(const struct wd_journal_entry *entry, void *context)
{
	struct journal_read *jr = context;
	struct wd_imap_changes *changes = jr->changes;

	if (changes->count >= WD_IMAP_SYNC_MAX_CHANGES) {
		jr->overflow = true;
		return false;
	}
	switch (entry->command) {
	case WD_JOURNAL_EXISTS:
	case WD_JOURNAL_EXPUNGE:
		break;
	case WD_JOURNAL_FETCH:
		if (entry->ignore != NULL && jr->session_id != NULL &&
		    strcmp(entry->ignore, jr->session_id) == 0) {
			if (entry->modseq > changes->modseq)
				changes->modseq = entry->modseq;
			return true;
		}
		break;
	default:
		return true; /* CREATE/RENAME/DELETE are the mailbox list's */
	}
	if (entry->command == WD_JOURNAL_EXISTS && entry->uid > jr->max_exists)
		jr->max_exists = entry->uid;
	if (wd_imap_changes_add(changes, entry->command, entry->uid, entry->modseq,
				entry->flags, entry->has_flags ? entry->flag_count : 0) < 0) {
		jr->failed = true;
		return false;
	}
	return true;
}

int wd_imap_sync_read_journal(struct wd_store *store, const bson_oid_t *mailbox, uint64_t modseq,
			      const char *session_id, bool claim_recent,
			      struct wd_imap_changes **changes_r, char **error_r)
{
	struct journal_read jr = { .session_id = session_id };

	*changes_r = NULL;
	*error_r = NULL;
	jr.changes = wd_imap_changes_create();
	if (jr.changes == NULL) {
		*error_r = strdup("out of memory");
		return WD_ERROR;
	}
	jr.changes->modseq = modseq;
	uint64_t start = uv_hrtime();
	int ret = wd_store_journal_since(store, mailbox, modseq > UINT32_MAX ? UINT32_MAX :
						  (uint32_t)modseq,
					 journal_entry, &jr, error_r);
	jr.changes->database_ns = uv_hrtime() - start;
	if (ret == 0 && jr.failed) {
		*error_r = strdup("out of memory");
		ret = WD_ERROR;
	}
	if (ret != 0) {
		wd_imap_changes_free(&jr.changes);
		return WD_ERROR;
	}
	if (jr.overflow) {
		/* too much to queue entry by entry: compare with the mailbox */
		wd_imap_changes_free(&jr.changes);
		return wd_imap_sync_read_full(store, mailbox, modseq, claim_recent, changes_r,
					      error_r);
	}
	if (claim_recent)
		claim_new(store, mailbox, jr.changes, jr.max_exists);
	*changes_r = jr.changes;
	return WD_OK;
}

/* Flags of the messages changed after `modseq`, as FETCH changes. */
static int read_changed_flags(struct wd_store *store, const bson_oid_t *mailbox, uint64_t modseq,
			      struct wd_imap_changes *changes, char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *filter = BCON_NEW("mailbox", BCON_OID(mailbox), "modseq", "{", "$gt",
				  BCON_INT64((int64_t)modseq), "}");
	bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "uid", BCON_INT32(1),
				"modseq", BCON_INT32(1), "flags", BCON_INT32(1), "}", "sort", "{",
				"modseq", BCON_INT32(1), "}", "limit",
				BCON_INT64(WD_IMAP_SYNC_MAX_FLAG_CHANGES + 1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	int ret = WD_OK;
	size_t seen = 0;

	while (ret == WD_OK && mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it, child;
		uint32_t uid = 0, mseq = 0;
		const char *flags[128];
		size_t n = 0;
		if (++seen > WD_IMAP_SYNC_MAX_FLAG_CHANGES) {
			changes->truncated = true;
			break;
		}
		if (bson_iter_init_find(&it, doc, "uid") && BSON_ITER_HOLDS_NUMBER(&it))
			uid = (uint32_t)bson_iter_as_int64(&it);
		if (bson_iter_init_find(&it, doc, "modseq") && BSON_ITER_HOLDS_NUMBER(&it))
			mseq = (uint32_t)bson_iter_as_int64(&it);
		if (bson_iter_init_find(&it, doc, "flags") && BSON_ITER_HOLDS_ARRAY(&it) &&
		    bson_iter_recurse(&it, &child)) {
			while (n < WD_N_ELEMENTS(flags) && bson_iter_next(&child))
				if (BSON_ITER_HOLDS_UTF8(&child))
					flags[n++] = bson_iter_utf8(&child, NULL);
		}
		if (uid != 0 &&
		    wd_imap_changes_add(changes, WD_JOURNAL_FETCH, uid, mseq, flags, n) < 0) {
			*error_r = strdup("out of memory");
			ret = WD_ERROR;
		}
	}
	if (ret == WD_OK && mongoc_cursor_error(cursor, &error)) {
		*error_r = bson_strdup_printf("messages: %s", error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

int wd_imap_sync_read_full(struct wd_store *store, const bson_oid_t *mailbox, uint64_t modseq,
			   bool claim_recent, struct wd_imap_changes **changes_r, char **error_r)
{
	struct wd_imap_changes *changes = wd_imap_changes_create();
	uint64_t now_modseq = 0;
	uint64_t start = uv_hrtime();

	*changes_r = NULL;
	*error_r = NULL;
	if (changes == NULL) {
		*error_r = strdup("out of memory");
		return WD_ERROR;
	}
	/* the UID list first: changes after its modifyIndex come again with
	   the next journal read, and flags after `modseq` are read after it */
	int ret = wd_imap_view_load(store, mailbox, &changes->current, &now_modseq, error_r);
	if (ret == WD_OK)
		ret = read_changed_flags(store, mailbox, modseq, changes, error_r);
	changes->database_ns = uv_hrtime() - start;
	if (ret != WD_OK) {
		wd_imap_changes_free(&changes);
		return ret < 0 ? ret : WD_ERROR;
	}
	/* never move back, never past what the UID list reflects */
	changes->modseq = now_modseq > modseq ? now_modseq : modseq;
	if (claim_recent)
		claim_new(store, mailbox, changes, wd_imap_view_last_uid(changes->current));
	*changes_r = changes;
	return WD_OK;
}

int wd_imap_sync_read(struct wd_store *store, const bson_oid_t *mailbox, uint64_t modseq,
		      const char *session_id, bool claim_recent, enum wd_imap_sync_due kind,
		      struct wd_imap_changes **changes_r, char **error_r)
{
	if (kind == WD_IMAP_SYNC_FULL)
		return wd_imap_sync_read_full(store, mailbox, modseq, claim_recent, changes_r,
					      error_r);
	return wd_imap_sync_read_journal(store, mailbox, modseq, session_id, claim_recent,
					 changes_r, error_r);
}

/* ---- loop thread ---- */

struct pending_fetch {
	uint32_t uid, modseq;
	char *flags;
	size_t order; /* arrival, so the latest change of a UID wins */
};

struct wd_imap_sync {
	uint64_t modseq;
	struct uidset new_uids, expunged, recent;
	struct pending_fetch *fetches;
	size_t fetch_count, fetch_cap, fetch_order;
	int64_t last_read_ms, last_full_ms;
	bool redis_was_down;
};

struct wd_imap_sync *wd_imap_sync_create(uint64_t modseq)
{
	struct wd_imap_sync *sync = calloc(1, sizeof(*sync));

	if (sync != NULL)
		sync->modseq = modseq;
	return sync;
}

static void clear_fetches(struct wd_imap_sync *sync)
{
	for (size_t i = 0; i < sync->fetch_count; i++)
		free(sync->fetches[i].flags);
	sync->fetch_count = 0;
}

void wd_imap_sync_destroy(struct wd_imap_sync **_sync)
{
	struct wd_imap_sync *sync = *_sync;

	if (sync == NULL)
		return;
	*_sync = NULL;
	clear_fetches(sync);
	free(sync->fetches);
	uidset_clear(&sync->new_uids);
	uidset_clear(&sync->expunged);
	uidset_clear(&sync->recent);
	free(sync);
}

uint64_t wd_imap_sync_modseq(const struct wd_imap_sync *sync)
{
	return sync->modseq;
}

/* Highest UID the session knows of (view or queue). */
static uint32_t known_last(const struct wd_imap_sync *sync, const struct wd_imap_view *view)
{
	uint32_t last = wd_imap_view_last_uid(view);
	if (sync->new_uids.n > 0 && sync->new_uids.r[sync->new_uids.n - 1].last > last)
		last = sync->new_uids.r[sync->new_uids.n - 1].last;
	return last;
}

static int queue_expunge(struct wd_imap_sync *sync, const struct wd_imap_view *view, uint32_t uid)
{
	if (uidset_contains(&sync->new_uids, uid))
		return uidset_remove(&sync->new_uids, uid); /* never announced */
	if (wd_imap_view_seq(view, uid) == 0)
		return WD_OK; /* expunged by this session, or before the load */
	return uidset_add(&sync->expunged, uid, uid);
}

static int queue_fetch(struct wd_imap_sync *sync, struct wd_imap_change *change)
{
	if (sync->fetch_count >= WD_IMAP_SYNC_MAX_FLAG_CHANGES)
		return WD_OK; /* bounded: CONDSTORE clients catch up by MODSEQ */
	if (grow(&sync->fetches, &sync->fetch_cap, sync->fetch_count, sizeof(*sync->fetches)) < 0)
		return WD_ERROR;
	sync->fetches[sync->fetch_count++] = (struct pending_fetch){
		change->uid, change->modseq, change->flags, sync->fetch_order++
	};
	change->flags = NULL; /* moved */
	return WD_OK;
}

/* out += A \ B, and out += A ∩ B, on normalised range lists. */

static int ranges_minus(const struct wd_imap_seq_range *a, size_t na,
			const struct wd_imap_seq_range *b, size_t nb, struct uidset *out)
{
	size_t j = 0;

	for (size_t i = 0; i < na; i++) {
		uint64_t cur = a[i].first;
		while (j < nb && b[j].last < cur)
			j++;
		for (size_t k = j; k < nb && b[k].first <= a[i].last && cur <= a[i].last; k++) {
			if (b[k].first > cur && uidset_add(out, (uint32_t)cur, b[k].first - 1) < 0)
				return WD_ERROR;
			if ((uint64_t)b[k].last + 1 > cur)
				cur = (uint64_t)b[k].last + 1;
		}
		if (cur <= a[i].last && uidset_add(out, (uint32_t)cur, a[i].last) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

static int ranges_and(const struct wd_imap_seq_range *a, size_t na,
		      const struct wd_imap_seq_range *b, size_t nb, struct uidset *out)
{
	size_t i = 0, j = 0;

	while (i < na && j < nb) {
		uint32_t lo = a[i].first > b[j].first ? a[i].first : b[j].first;
		uint32_t hi = a[i].last < b[j].last ? a[i].last : b[j].last;
		if (lo <= hi && uidset_add(out, lo, hi) < 0)
			return WD_ERROR;
		if (a[i].last < b[j].last)
			i++;
		else
			j++;
	}
	return WD_OK;
}

/* Full re-sync: the view (with the queue) against the mailbox's UIDs now,
   as range arithmetic (O(runs), not O(messages)). */
static int queue_diff(struct wd_imap_sync *sync, const struct wd_imap_view *view,
		      const struct wd_imap_view *current)
{
	struct wd_arena *arena = wd_arena_create(0);
	struct wd_imap_seqset v, c;
	struct uidset kept = { 0 };
	int ret = WD_ERROR;

	if (arena == NULL)
		return WD_ERROR;
	if (wd_imap_view_to_uidset(view, arena, &v) < 0 ||
	    wd_imap_view_to_uidset(current, arena, &c) < 0)
		goto out;
	/* in the view, gone now */
	if (ranges_minus(v.ranges, v.count, c.ranges, c.count, &sync->expunged) < 0)
		goto out;
	/* queued as new: only those still there */
	if (ranges_and(sync->new_uids.r, sync->new_uids.n, c.ranges, c.count, &kept) < 0)
		goto out;
	uint32_t last = wd_imap_view_last_uid(view);
	if (sync->new_uids.n > 0)
		last = sync->new_uids.r[sync->new_uids.n - 1].last;
	/* new: above everything known (a UID below it that the session never
	   saw cannot be shown without breaking UID order) */
	if (last < UINT32_MAX) {
		struct wd_imap_seq_range above = { last + 1, UINT32_MAX };
		if (ranges_and(&above, 1, c.ranges, c.count, &kept) < 0)
			goto out;
	}
	uidset_clear(&sync->new_uids);
	sync->new_uids = kept;
	kept = (struct uidset){ 0 };
	ret = WD_OK;
out:
	uidset_clear(&kept);
	wd_arena_destroy(&arena);
	return ret;
}

int wd_imap_sync_add(struct wd_imap_sync *sync, const struct wd_imap_view *view,
		     struct wd_imap_changes *changes)
{
	int ret = WD_OK;

	if (changes->current != NULL)
		ret = queue_diff(sync, view, changes->current);
	for (size_t i = 0; ret == WD_OK && i < changes->count; i++) {
		struct wd_imap_change *change = &changes->items[i];
		switch (change->command) {
		case WD_JOURNAL_EXISTS:
			if (change->uid > known_last(sync, view))
				ret = uidset_add(&sync->new_uids, change->uid, change->uid);
			break;
		case WD_JOURNAL_EXPUNGE:
			ret = queue_expunge(sync, view, change->uid);
			break;
		case WD_JOURNAL_FETCH:
			ret = queue_fetch(sync, change);
			break;
		default:
			break;
		}
	}
	if (ret == WD_OK && changes->recent_first != 0)
		ret = uidset_add(&sync->recent, changes->recent_first, changes->recent_last);
	if (ret == WD_OK && changes->modseq > sync->modseq)
		sync->modseq = changes->modseq;
	wd_imap_changes_free(&changes);
	return ret;
}

static int compare_fetch(const void *a, const void *b)
{
	const struct pending_fetch *x = a, *y = b;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

int wd_imap_sync_write_set(const struct wd_imap_seqset *set, struct wd_buffer *out)
{
	for (size_t i = 0; i < set->count; i++) {
		const struct wd_imap_seq_range *r = &set->ranges[i];
		int ret = r->first == r->last ?
			wd_buffer_printf(out, "%s%" PRIu32, i ? "," : "", r->first) :
			wd_buffer_printf(out, "%s%" PRIu32 ":%" PRIu32, i ? "," : "", r->first,
					 r->last);
		if (ret < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

static int emit_expunges(struct wd_imap_sync *sync, struct wd_imap_view *view, unsigned flags,
			 struct wd_buffer *out)
{
	struct uidset *x = &sync->expunged;
	int ret = WD_OK;

	if (flags & WD_IMAP_SYNC_QRESYNC) {
		/* one VANISHED line with the UIDs still in the view */
		struct uidset gone = { 0 };
		for (size_t i = 0; ret == WD_OK && i < x->n; i++)
			for (uint64_t u = x->r[i].first; ret == WD_OK && u <= x->r[i].last; u++)
				if (wd_imap_view_expunge(view, (uint32_t)u, NULL) == WD_OK)
					ret = uidset_add(&gone, (uint32_t)u, (uint32_t)u);
		if (ret == WD_OK && gone.n > 0) {
			struct wd_imap_seqset set = { .ranges = gone.r, .count = gone.n };
			if (wd_buffer_append_str(out, "* VANISHED ") < 0 ||
			    wd_imap_sync_write_set(&set, out) < 0 ||
			    wd_buffer_append_str(out, "\r\n") < 0)
				ret = WD_ERROR;
		}
		uidset_clear(&gone);
	} else {
		for (size_t i = 0; ret == WD_OK && i < x->n; i++) {
			for (uint64_t u = x->r[i].first; ret == WD_OK && u <= x->r[i].last; u++) {
				uint32_t seq;
				if (wd_imap_view_expunge(view, (uint32_t)u, &seq) == WD_OK)
					ret = wd_buffer_printf(out, "* %" PRIu32 " EXPUNGE\r\n", seq);
			}
		}
	}
	uidset_clear(x);
	return ret;
}

static int emit_fetches(struct wd_imap_sync *sync, const struct wd_imap_view *view,
			unsigned flags, struct wd_buffer *out)
{
	int ret = WD_OK;

	qsort(sync->fetches, sync->fetch_count, sizeof(*sync->fetches), compare_fetch);
	for (size_t i = 0; ret == WD_OK && i < sync->fetch_count; i++) {
		const struct pending_fetch *f = &sync->fetches[i];
		if (i + 1 < sync->fetch_count && sync->fetches[i + 1].uid == f->uid)
			continue; /* a later change of the same message follows */
		uint32_t seq = wd_imap_view_seq(view, f->uid);
		if (seq == 0 || uidset_contains(&sync->expunged, f->uid))
			continue; /* not in the client's view, or being expunged */
		/* \Recent is the session's, not stored: the same FLAGS as FETCH */
		const char *stored = f->flags != NULL ? f->flags : "";
		bool recent = uidset_contains(&sync->recent, f->uid);
		ret = wd_buffer_printf(out, "* %" PRIu32 " FETCH (UID %" PRIu32 " FLAGS (%s%s%s)",
				       seq, f->uid, recent ? "\\Recent" : "",
				       recent && *stored != '\0' ? " " : "", stored);
		if (ret == WD_OK && (flags & (WD_IMAP_SYNC_CONDSTORE | WD_IMAP_SYNC_QRESYNC)))
			ret = wd_buffer_printf(out, " MODSEQ (%" PRIu32 ")", f->modseq);
		if (ret == WD_OK)
			ret = wd_buffer_append_str(out, ")\r\n");
	}
	clear_fetches(sync);
	return ret;
}

static int emit_exists(struct wd_imap_sync *sync, struct wd_imap_view *view, struct wd_buffer *out)
{
	struct uidset *n = &sync->new_uids;
	uint32_t before = wd_imap_view_count(view);
	int ret = WD_OK;

	/* UIDs the session put in the view itself meanwhile are skipped */
	for (size_t i = 0; ret == WD_OK && i < n->n; i++)
		for (uint64_t u = n->r[i].first; ret == WD_OK && u <= n->r[i].last; u++)
			if (u > wd_imap_view_last_uid(view))
				ret = wd_imap_view_append(view, (uint32_t)u);
	uidset_clear(n);
	if (wd_imap_view_count(view) != before &&
	    wd_buffer_printf(out, "* %" PRIu32 " EXISTS\r\n", wd_imap_view_count(view)) < 0)
		ret = WD_ERROR;
	/* RECENT goes with every EXISTS, as Dovecot sends it: the client's
	   count cannot drift whatever it does on EXPUNGE */
	if (ret == WD_OK && wd_imap_view_count(view) != before)
		ret = wd_buffer_printf(out, "* %" PRIu32 " RECENT\r\n",
				       wd_imap_sync_recent_count(sync, view));
	return ret;
}

int wd_imap_sync_emit(struct wd_imap_sync *sync, struct wd_imap_view *view, unsigned flags,
		      struct wd_buffer *out)
{
	int ret = WD_OK;

	if ((flags & WD_IMAP_SYNC_EXPUNGE_OK) && sync->expunged.n > 0)
		ret = emit_expunges(sync, view, flags, out);
	if (ret == WD_OK && sync->fetch_count > 0)
		ret = emit_fetches(sync, view, flags, out);
	if (ret == WD_OK && sync->new_uids.n > 0)
		ret = emit_exists(sync, view, out);
	return ret;
}

bool wd_imap_sync_pending(const struct wd_imap_sync *sync, unsigned flags)
{
	return sync->new_uids.n > 0 || sync->fetch_count > 0 ||
	       ((flags & WD_IMAP_SYNC_EXPUNGE_OK) && sync->expunged.n > 0);
}

bool wd_imap_sync_is_expunged(const struct wd_imap_sync *sync, uint32_t uid)
{
	return uidset_contains(&sync->expunged, uid);
}

void wd_imap_sync_recent_add(struct wd_imap_sync *sync, uint32_t first, uint32_t last)
{
	if (first != 0 && first <= last)
		(void)uidset_add(&sync->recent, first, last); /* no memory: fewer \Recent */
}

const struct wd_imap_seq_range *wd_imap_sync_recent_ranges(const struct wd_imap_sync *sync,
							   size_t *count_r)
{
	*count_r = sync->recent.n;
	return sync->recent.r;
}

bool wd_imap_sync_is_recent(const struct wd_imap_sync *sync, uint32_t uid)
{
	return uidset_contains(&sync->recent, uid);
}

uint32_t wd_imap_sync_recent_count(const struct wd_imap_sync *sync,
				   const struct wd_imap_view *view)
{
	uint64_t n = 0;

	/* each claimed range counts the view's messages inside it */
	for (size_t i = 0; i < sync->recent.n; i++) {
		const struct wd_imap_seq_range *r = &sync->recent.r[i];
		uint32_t from = wd_imap_view_seq_ceil(view, r->first);
		uint32_t to = r->last == UINT32_MAX ? wd_imap_view_count(view) + 1 :
			      wd_imap_view_seq_ceil(view, r->last + 1);
		n += to - from;
	}
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* ---- when to read ---- */

void wd_imap_sync_policy_default(struct wd_imap_sync_policy *policy)
{
	policy->poll_ms = 30 * 1000;
	policy->gap_ms = 150 * 60 * 1000;
	policy->full_ms = 60 * 60 * 1000;
}

enum wd_imap_sync_due wd_imap_sync_due(struct wd_imap_sync *sync,
				       const struct wd_imap_sync_policy *policy, int64_t now_ms,
				       bool notified, bool redis_up)
{
	if (!redis_up)
		sync->redis_was_down = true;
	if (sync->last_read_ms == 0) {
		/* the load counts as a full read */
		sync->last_read_ms = sync->last_full_ms = now_ms;
	}
	if (now_ms - sync->last_read_ms >= policy->gap_ms ||
	    now_ms - sync->last_full_ms >= policy->full_ms || (redis_up && sync->redis_was_down))
		return WD_IMAP_SYNC_FULL;
	if (notified || (!redis_up && now_ms - sync->last_read_ms >= policy->poll_ms))
		return WD_IMAP_SYNC_JOURNAL;
	return WD_IMAP_SYNC_NONE;
}

void wd_imap_sync_read_done(struct wd_imap_sync *sync, enum wd_imap_sync_due kind, int64_t now_ms)
{
	if (kind == WD_IMAP_SYNC_NONE)
		return;
	sync->last_read_ms = now_ms;
	if (kind == WD_IMAP_SYNC_FULL) {
		sync->last_full_ms = now_ms;
		sync->redis_was_down = false;
	}
}

int wd_imap_sync_vanished_earlier(const struct wd_imap_view *view, struct wd_arena *arena,
				  const struct wd_imap_seqset *known_uids, uint32_t uid_next,
				  struct wd_buffer *out)
{
	struct wd_imap_seq_range all = { 1, uid_next > 1 ? uid_next - 1 : 1 };
	struct wd_imap_seqset known = { .ranges = &all, .count = 1 }, present;
	struct uidset gone = { 0 }, asked = { 0 };
	int ret = WD_ERROR;

	if (known_uids != NULL && known_uids->count > 0) {
		/* copy, "*" as the last UID the mailbox has given out */
		known = *known_uids;
		known.ranges = wd_arena_alloc(arena, known.count * sizeof(*known.ranges));
		if (known.ranges == NULL)
			return WD_ERROR;
		memcpy(known.ranges, known_uids->ranges, known.count * sizeof(*known.ranges));
		wd_imap_seqset_resolve(&known, uid_next > 1 ? uid_next - 1 : 0);
	} else if (uid_next <= 1) {
		return WD_OK;
	}
	/* UIDs never given out cannot have vanished */
	if (wd_imap_view_to_uidset(view, arena, &present) < 0 ||
	    ranges_and(known.ranges, known.count, &all, 1, &asked) < 0 ||
	    ranges_minus(asked.r, asked.n, present.ranges, present.count, &gone) < 0)
		goto out;
	ret = WD_OK;
	if (gone.n > 0) {
		struct wd_imap_seqset set = { .ranges = gone.r, .count = gone.n };
		if (wd_buffer_append_str(out, "* VANISHED (EARLIER) ") < 0 ||
		    wd_imap_sync_write_set(&set, out) < 0 || wd_buffer_append_str(out, "\r\n") < 0)
			ret = WD_ERROR;
	}
out:
	uidset_clear(&asked);
	uidset_clear(&gone);
	return ret;
}
