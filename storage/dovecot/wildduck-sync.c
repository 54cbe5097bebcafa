/* Mailbox sync: the Dovecot index follows MongoDB (issue 7, reference
 * dovecot-plugins.md §1.4 and §1.6).
 *
 * One sync is one mail_index_sync_begin() .. commit():
 *
 *   1. push: the changes Dovecot made since the last sync (sync records:
 *      flags, keywords, expunge requests) are written through libwdstore,
 *      grouped so that one STORE is one wd_store_message_flags() call and
 *      one backend MODSEQ, with WildDuck's journal entries and wd_events
 *      beacon (libwdstore writes both). Expunge requests become
 *      wd_store_message_expunge() (after \Deleted is set, which WildDuck's
 *      EXPUNGE requires), or, in a POP3 session, WildDuck's POP3 QUIT
 *      semantics (\Seen, then moved to \Trash). Only what the backend
 *      really removed is expunged from the index.
 *   2. pull: the mailbox document, then either the journal after the
 *      position stored in the index header extension "wildduck" (which UIDs
 *      to look at; their current flags and MODSEQs are read from `messages`)
 *      or, the first time, after a gap and periodically, every message
 *      (uid, modseq, flags) in uid order merged against the index.
 *      UIDVALIDITY and UIDNEXT are the mailbox's; new UIDs are appended
 *      with the backend's UID.
 *
 * MODSEQs (the trap of §1.4): Dovecot's transaction log counts its own
 * modseq, one per record, and only raises a message's modseq. So the
 * per-message MODSEQ is written afterwards, in a second transaction, as an
 * extension record update of the modseq extension (which overwrites and
 * does not count); a FETCH MODSEQ then shows exactly the backend's value.
 * HIGHESTMODSEQ is the mailbox's modifyIndex, kept in our header extension
 * and reported by get_status; the log's own counter is only raised to it
 * (so it stays >= every backend value), which keeps CHANGEDSINCE and the
 * expunge lookups of QRESYNC on the safe side: they may name a UID twice,
 * never miss one. After the first import of an index the log is rotated,
 * so a QRESYNC modseq from before this process is "too old" for the log
 * and imap computes VANISHED (EARLIER) from the UIDs instead.
 */
#include "wildduck-storage.h"

#include "ioloop.h"
#include "hash.h"
#include "seq-range-array.h"
#include "mail-index-modseq.h"
#include "mailbox-recent-flags.h"
#include "mail-transaction-log-private.h"

/* wd-server's \Recent claim (libwdimap), by path: Dovecot has headers of
   the same names */
#include "../../server/imap/imap-sync.h"
#include "wd-store.h"
#include "wd-store-journal.h"
#include "wd-store-message.h"
#include "wd-store-pop3.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <sys/time.h>

/* A journal read that names more messages than this becomes a full re-read. */
#define WILDDUCK_SYNC_MAX_TOUCHED 2000
/* New messages read one by one (by _id) in one journal read; more are read
   by a full re-read. */
#define WILDDUCK_SYNC_MAX_LOOKUPS 200
/* Journal entries re-read below the stored position: a writer that
   allocated its MODSEQ before ours may insert its entry after we read.
   Reading an entry twice changes nothing: a read applies the latest FETCH
   of each message in its window, which is the message's latest change
   whenever the window holds any. */
#define WILDDUCK_SYNC_OVERLAP 16
/* The journal expires after 3 h: after this long without a read, re-read
   the mailbox instead. */
#define WILDDUCK_SYNC_GAP_MS (150LL * 60 * 1000)

struct modseq_update {
	uint32_t uid;
	uint64_t modseq;
};

/* one group of the push: these UIDs get (or lose) these flags */
struct flag_group {
	enum wd_flags_op op;
	const char *flags;        /* space separated, as written */
	ARRAY_TYPE(seq_range) uids;
};

struct wildduck_sync_ctx {
	struct wildduck_mailbox *mbox;
	struct wildduck_user *wuser;
	struct mail_index_sync_ctx *index_sync_ctx;
	struct mail_index_view *sync_view;
	struct mail_index_transaction *trans;
	pool_t pool;

	struct wildduck_index_header ext;
	bool have_ext;
	uint32_t next_uid;        /* first UID that may be appended */
	uint32_t messages_count;

	ARRAY_TYPE(seq_range) expunged_seqs;  /* expunged in trans already */
	ARRAY(struct modseq_update) modseqs;
	ARRAY(struct flag_group) groups;

	/* keyword lists seen in this sync, so 100k messages with the same
	   keywords share one struct mail_keywords */
	const char *kw_cache_key;
	struct mail_keywords *kw_cache;

	bool full;
	bool imported;
	bool failed;
};

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A UID or MODSEQ as written (int32, int64 or a JavaScript double); 0 for
   anything else or below 1. */
static uint64_t iter_uint(const bson_iter_t *it)
{
	if (!BSON_ITER_HOLDS_NUMBER(it) || bson_iter_as_int64(it) < 1)
		return 0;
	return (uint64_t)bson_iter_as_int64(it);
}

static void sync_set_error(struct wildduck_sync_ctx *ctx, const char *what, char *error)
{
	mailbox_set_critical(&ctx->mbox->box, "wildduck: %s: %s", what,
			     error != NULL ? error : "database error");
	free(error);
	ctx->failed = TRUE;
}

/* ---- flags ---- */

static const struct {
	const char *name;
	enum mail_flags flag;
} system_flags[] = {
	{ "\\Answered", MAIL_ANSWERED },
	{ "\\Flagged", MAIL_FLAGGED },
	{ "\\Deleted", MAIL_DELETED },
	{ "\\Seen", MAIL_SEEN },
	{ "\\Draft", MAIL_DRAFT },
};

/* A flag list: system flags as a mask, keywords sorted by name
   (NULL-terminated, in the data stack). \Recent is never stored. */
static void split_flags(const char *const *names, unsigned int count, enum mail_flags *flags_r,
			const char *const **keywords_r)
{
	ARRAY_TYPE(const_string) keywords;

	*flags_r = 0;
	t_array_init(&keywords, 4);
	for (unsigned int n = 0; n < count; n++) {
		const char *name = names[n];
		bool system = FALSE;
		for (unsigned int i = 0; i < N_ELEMENTS(system_flags); i++) {
			if (strcasecmp(name, system_flags[i].name) == 0) {
				*flags_r |= system_flags[i].flag;
				system = TRUE;
			}
		}
		if (system || name[0] == '\\' || *name == '\0' || strchr(name, ' ') != NULL)
			continue;
		array_push_back(&keywords, &name);
	}
	array_sort(&keywords, i_strcmp_p);
	array_append_zero(&keywords);
	*keywords_r = array_front(&keywords);
}

/* The flags of a messages document. */
static void parse_flags(const bson_t *doc, enum mail_flags *flags_r, const char *const **keywords_r)
{
	ARRAY_TYPE(const_string) names;
	bson_iter_t it, child;

	t_array_init(&names, 8);
	if (bson_iter_init_find(&it, doc, "flags") && BSON_ITER_HOLDS_ARRAY(&it) &&
	    bson_iter_recurse(&it, &child)) {
		while (bson_iter_next(&child)) {
			if (BSON_ITER_HOLDS_UTF8(&child)) {
				const char *name = t_strdup(bson_iter_utf8(&child, NULL));
				array_push_back(&names, &name);
			}
		}
	}
	unsigned int count;
	const char *const *list = array_get(&names, &count);
	split_flags(list, count, flags_r, keywords_r);
}

/* The keywords of `seq` in the view, sorted, NULL-terminated. */
static const char *const *view_keywords(struct wildduck_sync_ctx *ctx, uint32_t seq)
{
	ARRAY_TYPE(keyword_indexes) idx;
	ARRAY_TYPE(const_string) names;
	const ARRAY_TYPE(keywords) *all = mail_index_get_keywords(ctx->mbox->box.index);
	unsigned int i;

	t_array_init(&idx, 8);
	t_array_init(&names, 8);
	mail_index_lookup_keywords(ctx->sync_view, seq, &idx);
	for (i = 0; i < array_count(&idx); i++) {
		unsigned int n = *array_idx(&idx, i);
		if (n < array_count(all)) {
			const char *name = array_idx_elem(all, n);
			array_push_back(&names, &name);
		}
	}
	array_sort(&names, i_strcmp_p);
	array_append_zero(&names);
	return array_front(&names);
}

static bool keywords_equal(const char *const *a, const char *const *b)
{
	for (; *a != NULL && *b != NULL; a++, b++) {
		if (strcmp(*a, *b) != 0)
			return FALSE;
	}
	return *a == NULL && *b == NULL;
}

static struct mail_keywords *sync_keywords(struct wildduck_sync_ctx *ctx,
					   const char *const *keywords)
{
	const char *key = t_strarray_join(keywords, " ");

	if (ctx->kw_cache != NULL && strcmp(ctx->kw_cache_key, key) == 0)
		return ctx->kw_cache;
	if (ctx->kw_cache != NULL)
		mail_index_keywords_unref(&ctx->kw_cache);
	ctx->kw_cache_key = p_strdup(ctx->pool, key);
	ctx->kw_cache = mail_index_keywords_create(ctx->mbox->box.index, keywords);
	return ctx->kw_cache;
}

/* ---- push: Dovecot's changes to the backend ---- */

static struct flag_group *group_get(struct wildduck_sync_ctx *ctx, enum wd_flags_op op,
				    const char *flags)
{
	struct flag_group *group;

	array_foreach_modifiable(&ctx->groups, group) {
		if (group->op == op && strcmp(group->flags, flags) == 0)
			return group;
	}
	group = array_append_space(&ctx->groups);
	group->op = op;
	group->flags = p_strdup(ctx->pool, flags);
	p_array_init(&group->uids, ctx->pool, 8);
	return group;
}

static void flag_names(string_t *str, enum mail_flags flags)
{
	for (unsigned int i = 0; i < N_ELEMENTS(system_flags); i++) {
		if ((flags & system_flags[i].flag) == 0)
			continue;
		if (str_len(str) > 0)
			str_append_c(str, ' ');
		str_append(str, system_flags[i].name);
	}
}

/* Sync records of one uid range with one operation are merged first (a
   STORE +FLAGS (\Seen $Label) is a FLAGS record and a KEYWORD_ADD record),
   then grouped by (operation, flags) as imapc does. */
struct pending_store {
	uint32_t uid1, uid2;
	enum wd_flags_op op;
	string_t *flags;
};

static void pending_flush(struct wildduck_sync_ctx *ctx, struct pending_store *p)
{
	if (p->uid1 == 0 || str_len(p->flags) == 0)
		return;
	struct flag_group *group = group_get(ctx, p->op, str_c(p->flags));
	seq_range_array_add_range(&group->uids, p->uid1, p->uid2);
	p->uid1 = p->uid2 = 0;
	str_truncate(p->flags, 0);
}

static void pending_add(struct wildduck_sync_ctx *ctx, struct pending_store *p, uint32_t uid1,
			uint32_t uid2, enum wd_flags_op op, const char *flags)
{
	if (p->uid1 != uid1 || p->uid2 != uid2 || p->op != op) {
		pending_flush(ctx, p);
		p->uid1 = uid1;
		p->uid2 = uid2;
		p->op = op;
	}
	if (str_len(p->flags) > 0)
		str_append_c(p->flags, ' ');
	str_append(p->flags, flags);
}

/* UIDs of `range` as an array (what libwdstore takes). */
static uint32_t *range_uids(const ARRAY_TYPE(seq_range) *range, size_t *count_r)
{
	struct seq_range_iter iter;
	unsigned int n = 0;
	uint32_t uid;
	size_t count = seq_range_count(range);
	uint32_t *uids = i_new(uint32_t, count + 1);

	seq_range_array_iter_init(&iter, range);
	while (seq_range_array_iter_nth(&iter, n, &uid))
		uids[n++] = uid;
	*count_r = n;
	return uids;
}

static int push_flags(struct wildduck_sync_ctx *ctx)
{
	struct wildduck_mailbox *mbox = ctx->mbox;
	struct flag_group *group;

	array_foreach_modifiable(&ctx->groups, group) {
		size_t uid_count;
		uint32_t *uids = range_uids(&group->uids, &uid_count);
		const char *const *flags = t_strsplit_spaces(group->flags, " ");
		struct wd_flags_change change = {
			.uids = uids,
			.uid_count = uid_count,
			.op = group->op,
			.flags = flags,
			.flag_count = str_array_length(flags),
			.session_id = mbox->box.storage->user->session_id,
		};
		struct wd_flags_result result = { 0 };
		char *error = NULL;
		int ret = wd_store_message_flags(ctx->wuser->store, &mbox->id, &change, &result,
						 &error);
		i_free(uids);
		free(result.modified);
		if (ret < 0) {
			sync_set_error(ctx, "storing flags", error);
			return -1;
		}
		free(error);
	}
	return 0;
}

static int push_expunges(struct wildduck_sync_ctx *ctx, const ARRAY_TYPE(seq_range) *requested)
{
	struct wildduck_mailbox *mbox = ctx->mbox;
	struct mail_user *user = mbox->box.storage->user;
	ARRAY_TYPE(seq_range) undeleted;
	struct seq_range_iter iter;
	unsigned int n = 0;
	uint32_t uid, seq, *expunged = NULL;
	size_t uid_count, expunged_count = 0;
	char *error = NULL;
	int ret;

	if (array_count(requested) == 0)
		return 0;

	/* WildDuck removes only \Deleted messages: give the flag to those
	   expunged without it (POP3 DELE, MOVE done by copy + expunge) */
	t_array_init(&undeleted, 8);
	seq_range_array_iter_init(&iter, requested);
	while (seq_range_array_iter_nth(&iter, n++, &uid)) {
		if (!mail_index_lookup_seq(ctx->sync_view, uid, &seq))
			continue;
		const struct mail_index_record *rec = mail_index_lookup(ctx->sync_view, seq);
		if ((rec->flags & MAIL_DELETED) == 0)
			seq_range_array_add(&undeleted, uid);
	}

	uint32_t *uids = range_uids(requested, &uid_count);
	bool pop3 = strcmp(user->service, "pop3") == 0 && ctx->wuser->pop3_trash &&
		    mbox->box.inbox_user;
	if (pop3) {
		/* WildDuck's POP3 never deletes: DELE moves to Trash (with
		   \Seen) at QUIT, exactly as wd-server's POP3 does */
		struct wd_pop3_update update = {
			.deleted_uids = uids,
			.deleted_count = uid_count,
			.session_id = user->session_id,
		};
		struct wd_pop3_update_result result;
		ret = wd_store_pop3_update(ctx->wuser->store, &ctx->wuser->user_id, &mbox->id,
					   &update, &result, &error);
		if (ret == WD_STORE_ERR_NOT_FOUND) {
			/* no Trash: fall back to expunging */
			free(error);
			error = NULL;
			pop3 = FALSE;
		} else if (ret < 0) {
			i_free(uids);
			sync_set_error(ctx, "POP3 delete", error);
			return -1;
		}
	}
	if (!pop3) {
		if (array_count(&undeleted) > 0) {
			size_t undeleted_count;
			uint32_t *undeleted_uids = range_uids(&undeleted, &undeleted_count);
			const char *deleted_flag = "\\Deleted";
			struct wd_flags_change change = {
				.uids = undeleted_uids,
				.uid_count = undeleted_count,
				.op = WD_FLAGS_ADD,
				.flags = &deleted_flag,
				.flag_count = 1,
				.session_id = user->session_id,
			};
			struct wd_flags_result result = { 0 };
			ret = wd_store_message_flags(ctx->wuser->store, &mbox->id, &change,
						     &result, &error);
			i_free(undeleted_uids);
			free(result.modified);
			if (ret < 0) {
				i_free(uids);
				sync_set_error(ctx, "flagging \\Deleted before expunge", error);
				return -1;
			}
			free(error);
			error = NULL;
		}
		ret = wd_store_message_expunge(ctx->wuser->store, &mbox->id, uids, uid_count,
					       user->session_id, &expunged, &expunged_count,
					       &error);
		free(expunged);
		if (ret < 0) {
			i_free(uids);
			sync_set_error(ctx, "expunge", error);
			return -1;
		}
	}
	free(error);
	i_free(uids);
	/* what is gone is found by the pull below, which reads the backend
	   after these writes: a message another writer saved from deletion
	   stays */
	return 0;
}

static int sync_push(struct wildduck_sync_ctx *ctx)
{
	struct mail_index_sync_rec rec;
	struct pending_store pending = { .flags = t_str_new(64) };
	ARRAY_TYPE(seq_range) expunges;
	const ARRAY_TYPE(keywords) *keywords = mail_index_get_keywords(ctx->mbox->box.index);
	string_t *str = t_str_new(64);
	uint32_t seq1, seq2;

	t_array_init(&expunges, 8);
	while (mail_index_sync_next(ctx->index_sync_ctx, &rec)) {
		if (!mail_index_lookup_seq_range(ctx->sync_view, rec.uid1, rec.uid2, &seq1, &seq2))
			continue; /* expunged already */
		switch (rec.type) {
		case MAIL_INDEX_SYNC_TYPE_EXPUNGE:
			seq_range_array_add_range(&expunges, rec.uid1, rec.uid2);
			break;
		case MAIL_INDEX_SYNC_TYPE_FLAGS:
			if ((rec.add_flags & MAIL_FLAGS_NONRECENT) != 0) {
				str_truncate(str, 0);
				flag_names(str, rec.add_flags & MAIL_FLAGS_NONRECENT);
				pending_add(ctx, &pending, rec.uid1, rec.uid2, WD_FLAGS_ADD,
					    str_c(str));
			}
			if ((rec.remove_flags & MAIL_FLAGS_NONRECENT) != 0) {
				str_truncate(str, 0);
				flag_names(str, rec.remove_flags & MAIL_FLAGS_NONRECENT);
				pending_add(ctx, &pending, rec.uid1, rec.uid2, WD_FLAGS_REMOVE,
					    str_c(str));
			}
			break;
		case MAIL_INDEX_SYNC_TYPE_KEYWORD_ADD:
		case MAIL_INDEX_SYNC_TYPE_KEYWORD_REMOVE:
			if (rec.keyword_idx >= array_count(keywords))
				break;
			pending_add(ctx, &pending, rec.uid1, rec.uid2,
				    rec.type == MAIL_INDEX_SYNC_TYPE_KEYWORD_ADD ? WD_FLAGS_ADD :
										   WD_FLAGS_REMOVE,
				    array_idx_elem(keywords, rec.keyword_idx));
			break;
		}
	}
	pending_flush(ctx, &pending);

	if (push_flags(ctx) < 0)
		return -1;
	return push_expunges(ctx, &expunges);
}

/* ---- pull: the backend's state into the index ---- */

static void record_modseq(struct wildduck_sync_ctx *ctx, uint32_t uid, uint64_t modseq)
{
	struct modseq_update *u = array_append_space(&ctx->modseqs);
	u->uid = uid;
	u->modseq = modseq;
}

static void expunge_seq(struct wildduck_sync_ctx *ctx, uint32_t seq)
{
	if (seq_range_exists(&ctx->expunged_seqs, seq))
		return;
	seq_range_array_add(&ctx->expunged_seqs, seq);
	mail_index_expunge(ctx->trans, seq);
}

/* The record extension of `seq` (in the sync view when existing) from the
   document, written only when it differs. */
static void import_record(struct wildduck_sync_ctx *ctx, const bson_t *doc, uint32_t seq,
			  bool existing)
{
	struct wildduck_index_record rec;
	const void *data = NULL;
	bool expunged;

	wildduck_index_record_from_doc(doc, &rec);
	if (existing) {
		mail_index_lookup_ext(ctx->sync_view, seq, ctx->mbox->rec_ext_id, &data, &expunged);
		if (data != NULL && memcmp(data, &rec, sizeof(rec)) == 0)
			return;
	}
	mail_index_update_ext(ctx->trans, seq, ctx->mbox->rec_ext_id, &rec, NULL);
}

/* A message's state against the index: FALSE when the index does not hold
   it (or it was expunged in this sync). */
static bool import_state(struct wildduck_sync_ctx *ctx, uint32_t uid, uint64_t modseq,
			 enum mail_flags flags, const char *const *keywords, uint32_t *seq_r)
{
	uint32_t seq;

	if (!mail_index_lookup_seq(ctx->sync_view, uid, &seq))
		return FALSE;
	*seq_r = seq;
	if (seq_range_exists(&ctx->expunged_seqs, seq))
		return TRUE;
	const struct mail_index_record *rec = mail_index_lookup(ctx->sync_view, seq);
	if ((rec->flags & MAIL_FLAGS_NONRECENT) != flags)
		mail_index_update_flags(ctx->trans, seq, MODIFY_REPLACE, flags);
	if (!keywords_equal(view_keywords(ctx, seq), keywords)) {
		mail_index_update_keywords(ctx->trans, seq, MODIFY_REPLACE,
					   sync_keywords(ctx, keywords));
	}
	if (mail_index_modseq_lookup(ctx->sync_view, seq) != modseq)
		record_modseq(ctx, uid, modseq);
	return TRUE;
}

/* One backend message (uid, modseq, flags, and the record fields) against
   the index: updated, or appended with its UID. */
static void import_message(struct wildduck_sync_ctx *ctx, const bson_t *doc, uint32_t uid,
			   uint64_t modseq)
{
	enum mail_flags flags;
	const char *const *keywords;
	uint32_t seq;

	parse_flags(doc, &flags, &keywords);
	if (import_state(ctx, uid, modseq, flags, keywords, &seq)) {
		if (!seq_range_exists(&ctx->expunged_seqs, seq))
			import_record(ctx, doc, seq, TRUE);
		return;
	}
	if (uid < ctx->next_uid) {
		/* below UIDNEXT but not in the index: expunged here
		   already (UIDs are never reused) */
		return;
	}
	mail_index_append(ctx->trans, uid, &seq);
	if (flags != 0)
		mail_index_update_flags(ctx->trans, seq, MODIFY_REPLACE, flags);
	if (keywords[0] != NULL) {
		mail_index_update_keywords(ctx->trans, seq, MODIFY_REPLACE,
					   sync_keywords(ctx, keywords));
	}
	import_record(ctx, doc, seq, FALSE);
	ctx->next_uid = uid + 1;
	record_modseq(ctx, uid, modseq);
	ctx->imported = TRUE;
}

static mongoc_cursor_t *messages_find(struct wildduck_sync_ctx *ctx, mongoc_client_t *client,
				      mongoc_collection_t **coll_r, const bson_t *extra)
{
	/* what the index keeps: flags, MODSEQ and the record extension */
	return wildduck_messages_cursor(ctx->mbox, client, coll_r, extra, TRUE, 10000);
}

/* Every message of the mailbox, merged against the index in uid order. */
static int pull_full(struct wildduck_sync_ctx *ctx)
{
	struct wd_store *store = ctx->wuser->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll;
	mongoc_cursor_t *cursor = messages_find(ctx, client, &coll, NULL);
	const bson_t *doc;
	bson_error_t error;
	bson_iter_t it;
	uint32_t vseq = 1, vuid = 0, last_uid = 0;
	int ret = 0;

	if (vseq <= ctx->messages_count)
		mail_index_lookup_uid(ctx->sync_view, vseq, &vuid);
	while (mongoc_cursor_next(cursor, &doc)) {
		if (!bson_iter_init_find(&it, doc, "uid"))
			continue;
		uint64_t uid = iter_uint(&it);
		if (uid == 0 || uid > UINT32_MAX || uid <= last_uid)
			continue; /* never written by a writer; duplicates skipped */
		last_uid = (uint32_t)uid;
		uint64_t modseq = bson_iter_init_find(&it, doc, "modseq") ? iter_uint(&it) : 0;
		/* index messages below this backend UID are gone */
		while (vseq <= ctx->messages_count && vuid < uid) {
			expunge_seq(ctx, vseq);
			if (++vseq <= ctx->messages_count)
				mail_index_lookup_uid(ctx->sync_view, vseq, &vuid);
		}
		T_BEGIN {
			import_message(ctx, doc, (uint32_t)uid, modseq);
		} T_END;
		if (vseq <= ctx->messages_count && vuid == uid) {
			if (++vseq <= ctx->messages_count)
				mail_index_lookup_uid(ctx->sync_view, vseq, &vuid);
		}
	}
	if (mongoc_cursor_error(cursor, &error)) {
		mailbox_set_critical(&ctx->mbox->box, "wildduck: reading messages: %s",
				     error.message);
		ctx->failed = TRUE;
		ret = -1;
	} else {
		for (; vseq <= ctx->messages_count; vseq++)
			expunge_seq(ctx, vseq);
	}
	mongoc_cursor_destroy(cursor);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

/* What the journal says about one UID, latest entry last. */
struct journal_uid {
	uint32_t uid;
	bool exists, expunged, fetched;
	bool have_id;
	bson_oid_t id;
	uint64_t modseq;          /* of the latest FETCH */
	const char **flags;       /* FETCH: the full list (NULL-terminated) */
	unsigned int flag_count;
};

struct journal_read {
	pool_t pool;
	HASH_TABLE(void *, struct journal_uid *) uids;
	ARRAY(struct journal_uid *) order;
	bool too_many;
};

static struct journal_uid *journal_uid_get(struct journal_read *read, uint32_t uid)
{
	struct journal_uid *ju = hash_table_lookup(read->uids, POINTER_CAST(uid));

	if (ju == NULL) {
		ju = p_new(read->pool, struct journal_uid, 1);
		ju->uid = uid;
		hash_table_insert(read->uids, POINTER_CAST(uid), ju);
		array_push_back(&read->order, &ju);
	}
	return ju;
}

static bool journal_entry(const struct wd_journal_entry *entry, void *context)
{
	struct journal_read *read = context;
	struct journal_uid *ju;

	if (entry->uid == 0)
		return TRUE;
	switch (entry->command) {
	case WD_JOURNAL_EXISTS:
	case WD_JOURNAL_FETCH:
	case WD_JOURNAL_EXPUNGE:
		break;
	default:
		return TRUE;
	}
	ju = journal_uid_get(read, entry->uid);
	if (entry->has_message) {
		ju->have_id = TRUE;
		bson_oid_copy(&entry->message, &ju->id);
	}
	if (entry->command == WD_JOURNAL_EXISTS) {
		ju->exists = TRUE;
	} else if (entry->command == WD_JOURNAL_EXPUNGE) {
		ju->expunged = TRUE;
	} else if (entry->has_flags) {
		/* the full list after the change: the latest one wins */
		ju->fetched = TRUE;
		ju->modseq = entry->modseq;
		ju->flags = p_new(read->pool, const char *, entry->flag_count + 1);
		for (size_t i = 0; i < entry->flag_count; i++)
			ju->flags[i] = p_strdup(read->pool, entry->flags[i]);
		ju->flag_count = entry->flag_count;
	}
	if (array_count(&read->order) > WILDDUCK_SYNC_MAX_TOUCHED) {
		read->too_many = TRUE;
		return FALSE;
	}
	return TRUE;
}

static int journal_uid_cmp(struct journal_uid *const *a, struct journal_uid *const *b)
{
	return (*a)->uid < (*b)->uid ? -1 : (*a)->uid > (*b)->uid;
}

/* A message new to the index, read by _id (the lookup FerretDB answers
   from an index; any other filter scans the collection). 0 when gone. */
static int import_new(struct wildduck_sync_ctx *ctx, const struct journal_uid *ju)
{
	bson_t *doc = NULL;
	const char *error;
	bson_iter_t it;
	int ret = wildduck_message_doc_by_id(ctx->mbox, &ju->id, &doc, &error);

	if (ret < 0) {
		mailbox_set_critical(&ctx->mbox->box, "wildduck: reading message: %s", error);
		ctx->failed = TRUE;
		return -1;
	}
	if (ret == 0)
		return 0;
	if (bson_iter_init_find(&it, doc, "uid") && iter_uint(&it) == ju->uid) {
		uint64_t modseq = bson_iter_init_find(&it, doc, "modseq") ? iter_uint(&it) : 0;
		T_BEGIN {
			import_message(ctx, doc, ju->uid, modseq);
		} T_END;
	}
	bson_destroy(doc);
	return 1;
}

/* The journal after our position, applied: EXPUNGE entries expunge, the
   latest FETCH entry of a message gives its flags and MODSEQ, and a
   message new to the index (EXISTS) is read by its _id. No query scans
   the messages collection. 0, 1 when a full re-read is needed instead
   (too many entries, entries without a message id), -1 error. */
static int pull_journal(struct wildduck_sync_ctx *ctx)
{
	struct wd_store *store = ctx->wuser->store;
	struct journal_read read;
	struct journal_uid **order;
	unsigned int count, lookups = 0;
	char *error = NULL;
	uint32_t since = ctx->ext.modseq > WILDDUCK_SYNC_OVERLAP ?
			 (uint32_t)(ctx->ext.modseq - WILDDUCK_SYNC_OVERLAP) : 0;
	int ret = 0;

	i_zero(&read);
	read.pool = ctx->pool;
	hash_table_create_direct(&read.uids, ctx->pool, 64);
	p_array_init(&read.order, ctx->pool, 64);
	if (wd_store_journal_since(store, &ctx->mbox->id, since, journal_entry, &read,
				   &error) < 0) {
		hash_table_destroy(&read.uids);
		sync_set_error(ctx, "reading the journal", error);
		return -1;
	}
	free(error);
	hash_table_destroy(&read.uids);
	if (read.too_many)
		return 1;

	array_sort(&read.order, journal_uid_cmp);
	order = array_get_modifiable(&read.order, &count);
	for (unsigned int i = 0; i < count && ret >= 0; i++) {
		const struct journal_uid *ju = order[i];
		uint32_t seq;

		if (ju->expunged) {
			if (mail_index_lookup_seq(ctx->sync_view, ju->uid, &seq))
				expunge_seq(ctx, seq);
			continue;
		}
		if (ju->fetched) T_BEGIN {
			enum mail_flags flags;
			const char *const *keywords;
			split_flags(ju->flags, ju->flag_count, &flags, &keywords);
			if (import_state(ctx, ju->uid, ju->modseq, flags, keywords, &seq)) {
				/* known message: its change is in the entry */
				ju = NULL;
			}
		} T_END;
		if (ju == NULL)
			continue;
		if (mail_index_lookup_seq(ctx->sync_view, ju->uid, &seq) || ju->uid < ctx->next_uid)
			continue; /* known, or expunged here before */
		if (!ju->have_id || ++lookups > WILDDUCK_SYNC_MAX_LOOKUPS)
			return 1;
		ret = import_new(ctx, ju);
	}
	return ret < 0 ? -1 : 0;
}

static void ext_header_read(struct wildduck_sync_ctx *ctx)
{
	const void *data;
	size_t size;

	mail_index_get_header_ext(ctx->sync_view, ctx->mbox->hdr_ext_id, &data, &size);
	if (size >= sizeof(ctx->ext)) {
		memcpy(&ctx->ext, data, sizeof(ctx->ext));
		ctx->have_ext = memcmp(ctx->ext.mailbox_id, ctx->mbox->id.bytes,
				       sizeof(ctx->ext.mailbox_id)) == 0;
	}
	if (!ctx->have_ext)
		i_zero(&ctx->ext);
}

static int sync_pull(struct wildduck_sync_ctx *ctx, bool *reset_r)
{
	struct wildduck_mailbox *mbox = ctx->mbox;
	const struct mail_index_header *hdr = mail_index_get_header(ctx->sync_view);
	struct wd_mailbox *doc = NULL;
	char *error = NULL;
	int64_t now = now_ms();
	int ret;

	*reset_r = FALSE;
	ret = wd_store_mailbox_get_by_id(ctx->wuser->store, &ctx->wuser->user_id, &mbox->id, &doc,
					 &error);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(error);
		mailbox_set_deleted(&mbox->box);
		ctx->failed = TRUE;
		return -1;
	}
	if (ret < 0) {
		sync_set_error(ctx, "reading the mailbox", error);
		return -1;
	}
	free(error);

	if (hdr->uid_validity != 0 && hdr->uid_validity != doc->uid_validity) {
		/* another mailbox under this index (deleted and created
		   again): start over, the way imapc does */
		mail_index_reset(ctx->trans);
		*reset_r = TRUE;
		wd_mailbox_free(&doc);
		return 0;
	}
	if (hdr->uid_validity == 0) {
		uint32_t uid_validity = doc->uid_validity;
		mail_index_update_header(ctx->trans,
					 offsetof(struct mail_index_header, uid_validity),
					 &uid_validity, sizeof(uid_validity), TRUE);
	}
	mbox->uid_validity = doc->uid_validity;
	mbox->uid_next = doc->uid_next;

	ext_header_read(ctx);
	if (!ctx->have_ext || ctx->ext.uid_validity != doc->uid_validity ||
	    now - ctx->ext.last_sync_ms > WILDDUCK_SYNC_GAP_MS ||
	    now - ctx->ext.last_full_ms > (int64_t)ctx->wuser->full_sync_secs * 1000)
		ctx->full = TRUE;

	uint64_t modify_index = doc->modify_index;
	if (ctx->full) {
		e_debug(mbox->box.event, "wildduck: reading the whole mailbox (modifyIndex %"PRIu64")",
			modify_index);
		ret = pull_full(ctx);
	} else if (modify_index == ctx->ext.modseq && doc->uid_next <= hdr->next_uid) {
		ret = 0; /* nothing changed */
	} else {
		e_debug(mbox->box.event, "wildduck: reading the journal after %"PRIu64
			" (modifyIndex %"PRIu64")", ctx->ext.modseq, modify_index);
		ret = pull_journal(ctx);
		if (ret > 0) {
			ctx->full = TRUE;
			ret = pull_full(ctx);
		}
	}
	if (ret < 0) {
		wd_mailbox_free(&doc);
		return -1;
	}

	/* UIDNEXT: the mailbox's (messages appended meanwhile arrive with
	   the next sync) */
	if (hdr->next_uid < doc->uid_next && ctx->next_uid < doc->uid_next) {
		uint32_t next_uid = doc->uid_next;
		mail_index_update_header(ctx->trans,
					 offsetof(struct mail_index_header, next_uid),
					 &next_uid, sizeof(next_uid), FALSE);
	}
	if (mail_index_modseq_get_highest(ctx->sync_view) < modify_index)
		mail_index_update_highest_modseq(ctx->trans, modify_index);

	/* our position */
	struct modseq_update *u;
	uint64_t highest = modify_index;
	array_foreach_modifiable(&ctx->modseqs, u) {
		if (u->modseq > highest)
			highest = u->modseq;
	}
	if (ctx->have_ext && ctx->ext.highest_modseq > highest && ctx->ext.modseq == modify_index)
		highest = ctx->ext.highest_modseq;
	memcpy(ctx->ext.mailbox_id, mbox->id.bytes, sizeof(ctx->ext.mailbox_id));
	ctx->ext.uid_validity = doc->uid_validity;
	ctx->ext.modseq = modify_index;
	ctx->ext.highest_modseq = highest;
	ctx->ext.last_sync_ms = now;
	if (ctx->full)
		ctx->ext.last_full_ms = now;
	mail_index_update_header_ext(ctx->trans, mbox->hdr_ext_id, 0, &ctx->ext, sizeof(ctx->ext));
	wd_mailbox_free(&doc);
	return 0;
}

/* The per-message MODSEQs, exactly the backend's (see the top). */
static int write_modseqs(struct wildduck_sync_ctx *ctx)
{
	struct mailbox *box = &ctx->mbox->box;
	struct mail_index_view *view;
	struct mail_index_transaction *trans;
	const struct modseq_update *u;
	uint32_t seq;

	if (array_count(&ctx->modseqs) == 0)
		return 0;
	view = mail_index_view_open(box->index);
	trans = mail_index_transaction_begin(view, MAIL_INDEX_TRANSACTION_FLAG_EXTERNAL);
	array_foreach(&ctx->modseqs, u) {
		if (mail_index_lookup_seq(view, u->uid, &seq)) {
			uint64_t modseq = u->modseq;
			mail_index_update_ext(trans, seq, box->index->modseq_ext_id, &modseq, NULL);
		}
	}
	int ret = mail_index_transaction_commit(&trans);
	mail_index_view_close(&view);
	if (ret < 0) {
		mailbox_set_index_error(box);
		return -1;
	}
	return 0;
}

/* \Recent as wd-server keeps it across servers: the highest UID some
   session has seen is a Redis watermark per mailbox (wdc:recent:<id>); a
   session that selects the mailbox read-write claims the UIDs above it, so
   exactly one session, of any server, sees each message as recent. Without
   Redis nothing is recent. */
static void recent_claim(struct wildduck_mailbox *mbox)
{
	struct mailbox *box = &mbox->box;
	struct mail_index_view *view = mail_index_view_open(box->index);
	uint32_t count = mail_index_view_get_messages_count(view), last_uid = 0, first, seq1, seq2;

	if (count > 0)
		mail_index_lookup_uid(view, count, &last_uid);
	if (last_uid > mbox->recent_claimed &&
	    wd_imap_recent_claim(mbox->storage->wuser->store, &mbox->id, last_uid, &first) == 0) {
		if (first <= mbox->recent_claimed)
			first = mbox->recent_claimed + 1;
		if (first <= last_uid &&
		    mail_index_lookup_seq_range(view, first, last_uid, &seq1, &seq2))
			mailbox_recent_flags_set_seqs(box, view, seq1, seq2);
		mbox->recent_claimed = last_uid;
	}
	mail_index_view_close(&view);
}

static int wildduck_sync_once(struct wildduck_mailbox *mbox, bool full, bool *again_r)
{
	struct mailbox *box = &mbox->box;
	struct wildduck_sync_ctx ctx;
	enum mail_index_sync_flags sync_flags;
	bool reset = FALSE;
	int ret;

	*again_r = FALSE;
	i_zero(&ctx);
	ctx.mbox = mbox;
	ctx.wuser = mbox->storage->wuser;
	ctx.full = full || mbox->force_full;

	sync_flags = index_storage_get_sync_flags(box) | MAIL_INDEX_SYNC_FLAG_FLUSH_DIRTY;
	ret = mail_index_sync_begin(box->index, &ctx.index_sync_ctx, &ctx.sync_view, &ctx.trans,
				    sync_flags);
	if (ret <= 0) {
		if (ret < 0)
			mailbox_set_index_error(box);
		return ret;
	}
	ctx.pool = pool_alloconly_create("wildduck sync", 4096);
	p_array_init(&ctx.expunged_seqs, ctx.pool, 16);
	p_array_init(&ctx.modseqs, ctx.pool, 64);
	p_array_init(&ctx.groups, ctx.pool, 4);
	ctx.messages_count = mail_index_view_get_messages_count(ctx.sync_view);
	ctx.next_uid = mail_index_get_header(ctx.sync_view)->next_uid;
	bool first_import = ctx.messages_count == 0 &&
			    mail_index_get_header(ctx.sync_view)->uid_validity == 0;

	mbox->syncing = TRUE;
	T_BEGIN {
		ret = sync_push(&ctx);
	} T_END;
	if (ret == 0) T_BEGIN {
		ret = sync_pull(&ctx, &reset);
	} T_END;
	mbox->syncing = FALSE;

	if (ctx.kw_cache != NULL)
		mail_index_keywords_unref(&ctx.kw_cache);
	if (first_import && ret == 0 && !reset && box->index->log->head != NULL &&
	    box->index->log->head->need_rotate == NULL) {
		/* QRESYNC from before this index existed: make the log "too
		   old" for it, so VANISHED (EARLIER) is computed from UIDs */
		box->index->log->head->need_rotate = i_strdup("wildduck: initial import");
	}
	/* commit even after a failure: what was imported is true */
	if (mail_index_sync_commit(&ctx.index_sync_ctx) < 0) {
		mailbox_set_index_error(box);
		ret = -1;
	}
	if (ret == 0 && !reset && write_modseqs(&ctx) < 0)
		ret = -1;
	if (ret == 0 && !reset && (box->flags & MAILBOX_FLAG_DROP_RECENT) != 0)
		recent_claim(mbox);
	if (ret == 0 && ctx.full)
		mbox->force_full = FALSE;
	if (ret == 0 && (ctx.imported || array_count(&ctx.expunged_seqs) > 0) && mbox->meta != NULL)
		wildduck_meta_cache_reset(mbox->meta);
	pool_unref(&ctx.pool);
	*again_r = reset;
	return ret < 0 || ctx.failed ? -1 : 0;
}

int wildduck_sync(struct wildduck_mailbox *mbox, bool full)
{
	bool again;
	int ret;

	if (mbox->syncing)
		return 0;
	ret = wildduck_sync_once(mbox, full, &again);
	if (ret == 0 && again)
		ret = wildduck_sync_once(mbox, TRUE, &again);
	mbox->notified = FALSE;
	mbox->sync_failed = ret < 0;
	return ret;
}

uint64_t wildduck_sync_highest_modseq(struct wildduck_mailbox *mbox)
{
	const void *data;
	size_t size;
	struct wildduck_index_header ext;

	mail_index_get_header_ext(mbox->box.view, mbox->hdr_ext_id, &data, &size);
	if (size < sizeof(ext))
		return mail_index_modseq_get_highest(mbox->box.view);
	memcpy(&ext, data, sizeof(ext));
	return ext.highest_modseq;
}

void wildduck_sync_register_ext(struct wildduck_mailbox *mbox)
{
	mbox->hdr_ext_id = mail_index_ext_register(mbox->box.index, "wildduck",
						   sizeof(struct wildduck_index_header), 0, 0);
	mbox->rec_ext_id = mail_index_ext_register(mbox->box.index, "wildduck-msg", 0,
						   sizeof(struct wildduck_index_record),
						   sizeof(uint64_t));
	mbox->exts_registered = TRUE;
}

struct mailbox_sync_context *
wildduck_mailbox_sync_init(struct mailbox *box, enum mailbox_sync_flags flags)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);
	int ret = 0;

	if (!box->opened) {
		if (mailbox_open(box) < 0)
			ret = -1;
	}
	if (ret == 0 && (box->flags & MAILBOX_FLAG_SAVEONLY) == 0 &&
	    (!box->synced || mbox->notified || mbox->force_full ||
	     index_mailbox_want_full_sync(box, flags) ||
	     mail_index_sync_have_any(box->index, 0)))
		ret = wildduck_sync(mbox, (flags & MAILBOX_SYNC_FLAG_FORCE_RESYNC) != 0);
	return index_mailbox_sync_init(box, flags, ret < 0);
}
