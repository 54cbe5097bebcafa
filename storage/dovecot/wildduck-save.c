/* APPEND, LMTP delivery, COPY and MOVE into the wildduck storage, written
 * through libwdstore so that the backend allocates the UIDs (APPENDUID,
 * COPYUID), parses and stores the message (mimeTree, GridFS attachments,
 * quota, journal EXISTS, wd_events) exactly as wd-server does.
 *
 * Saves are collected during the transaction and written at commit
 * (transaction_save_commit_pre), in the order they were made:
 *   - a saved message is kept in memory until then (bounded by
 *     wildduck_max_message_size), so a quota refusal by the quota plugin
 *     after save_finish, or a rollback, leaves nothing in the database;
 *   - a COPY/MOVE between two mailboxes of this storage is a native
 *     wd_store_message_copy() per source mailbox: documents are cloned,
 *     attachments shared by reference count, MOVE deletes the sources
 *     with one source MODSEQ (WildDuck's move). Anything else (LMTP's raw
 *     mail, another storage) is copied by saving its stream.
 *
 * Until the commit each message is a temporary append in the transaction
 * (UID 0) whose stream and sizes are known, so LMTP and the quota plugin
 * can read `dest_mail`; commit_pre expunges those appends again and
 * reports the backend's UIDs in changes->saved_uids. The real records
 * arrive with the next sync, as imapc does it. */
#include "wildduck-storage.h"

#include "istream.h"
#include "ostream.h"
#include "seq-range-array.h"
#include "mail-copy.h"

#include "wd-store.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <stdlib.h>

enum pending_kind {
	PENDING_SAVE,
	PENDING_COPY,
};

struct pending {
	enum pending_kind kind;
	/* SAVE */
	buffer_t *data;
	const char **flags;       /* NULL-terminated, in the context pool */
	int64_t idate_ms;
	/* COPY */
	struct wildduck_mailbox *src;
	uint32_t src_uid;
	bool move;
};

struct wildduck_save_context {
	struct mail_save_context ctx;

	struct wildduck_mailbox *mbox;
	struct mail_index_transaction *trans;
	pool_t pool;

	/* the message being saved now */
	buffer_t *data;
	struct istream *input;

	ARRAY(struct pending) pending;
	uint64_t pending_bytes;     /* saved messages held until the commit */
	unsigned int temp_appends;

	uint32_t uid_validity;
	ARRAY_TYPE(seq_range) saved_uids;

	bool failed:1;
	bool finished:1;
};

#define WILDDUCK_SAVECTX(s) container_of(s, struct wildduck_save_context, ctx)
/* A transaction holds at most this many times wildduck_max_message_size of
   saved messages before its commit. */
#define WILDDUCK_SAVE_PENDING_FACTOR 4

struct mail_save_context *wildduck_save_alloc(struct mailbox_transaction_context *t)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(t->box);
	struct wildduck_save_context *ctx;

	if (t->save_ctx == NULL) {
		pool_t pool = pool_alloconly_create("wildduck save", 1024);
		ctx = p_new(pool, struct wildduck_save_context, 1);
		ctx->pool = pool;
		ctx->ctx.transaction = t;
		ctx->mbox = mbox;
		ctx->trans = t->itrans;
		p_array_init(&ctx->pending, pool, 4);
		p_array_init(&ctx->saved_uids, pool, 4);
		t->save_ctx = &ctx->ctx;
	}
	return t->save_ctx;
}

static struct wildduck_user *save_user(struct wildduck_save_context *ctx)
{
	return ctx->mbox->storage->wuser;
}

int wildduck_save_begin(struct mail_save_context *_ctx, struct istream *input)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);
	uoff_t size;

	ctx->finished = FALSE;
	if (i_stream_get_size(input, TRUE, &size) > 0 &&
	    size > save_user(ctx)->max_message_size) {
		mail_storage_set_error(_ctx->transaction->box->storage, MAIL_ERROR_LIMIT,
				       "Message is larger than the allowed size");
		ctx->failed = TRUE;
		return -1;
	}
	/* the bytes are stored as given (byte-exact, as wd-server does) */
	ctx->data = buffer_create_dynamic(default_pool, 8192);
	ctx->input = input;
	i_stream_ref(input);
	_ctx->data.output = o_stream_create_buffer(ctx->data);
	return 0;
}

int wildduck_save_continue(struct mail_save_context *_ctx)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);

	if (ctx->failed)
		return -1;
	if (index_storage_save_continue(_ctx, ctx->input, NULL) < 0) {
		ctx->failed = TRUE;
		return -1;
	}
	if (ctx->data->used > save_user(ctx)->max_message_size) {
		mail_storage_set_error(_ctx->transaction->box->storage, MAIL_ERROR_LIMIT,
				       "Message is larger than the allowed size");
		ctx->failed = TRUE;
		return -1;
	}
	/* a MULTIAPPEND holds every message until the commit: bounded too */
	if (ctx->pending_bytes + ctx->data->used >
	    WILDDUCK_SAVE_PENDING_FACTOR * save_user(ctx)->max_message_size) {
		mail_storage_set_error(_ctx->transaction->box->storage, MAIL_ERROR_LIMIT,
				       "Too much data in one transaction");
		ctx->failed = TRUE;
		return -1;
	}
	return 0;
}

/* IMAP flags of a save, as strings (NULL-terminated, in the save pool). */
static const char **save_flags(struct wildduck_save_context *ctx)
{
	static const struct {
		enum mail_flags flag;
		const char *name;
	} system[] = {
		{ MAIL_ANSWERED, "\\Answered" }, { MAIL_FLAGGED, "\\Flagged" },
		{ MAIL_DELETED, "\\Deleted" },   { MAIL_SEEN, "\\Seen" },
		{ MAIL_DRAFT, "\\Draft" },
	};
	struct mail_keywords *kw = ctx->ctx.data.keywords;
	const ARRAY_TYPE(keywords) *names =
		mail_index_get_keywords(ctx->ctx.transaction->box->index);
	unsigned int n = 0, max = N_ELEMENTS(system) + (kw == NULL ? 0 : kw->count) + 1;
	const char **flags = p_new(ctx->pool, const char *, max);

	for (unsigned int i = 0; i < N_ELEMENTS(system); i++) {
		if ((ctx->ctx.data.flags & system[i].flag) != 0)
			flags[n++] = system[i].name;
	}
	for (unsigned int i = 0; kw != NULL && i < kw->count; i++) {
		if (kw->idx[i] < array_count(names))
			flags[n++] = p_strdup(ctx->pool, array_idx_elem(names, kw->idx[i]));
	}
	flags[n] = NULL;
	return flags;
}

/* A temporary append that dest_mail points at until the commit. */
static void temp_append(struct wildduck_save_context *ctx)
{
	struct mail *dest_mail = ctx->ctx.dest_mail;
	uint32_t seq;

	mail_index_append(ctx->trans, 0, &seq);
	mail_set_seq_saving(dest_mail, seq);
	ctx->temp_appends++;
	(INDEX_MAIL(dest_mail))->data.no_caching = TRUE;
	(INDEX_MAIL(dest_mail))->data.forced_no_caching = TRUE;
}

int wildduck_save_finish(struct mail_save_context *_ctx)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);
	struct index_mail *imail;
	struct pending *p;

	ctx->finished = TRUE;
	if (!ctx->failed && o_stream_finish(_ctx->data.output) < 0) {
		mail_set_critical(_ctx->dest_mail, "wildduck: buffering the message failed: %s",
				  o_stream_get_error(_ctx->data.output));
		ctx->failed = TRUE;
	}
	if (_ctx->data.output != NULL)
		o_stream_unref(&_ctx->data.output);
	if (ctx->input != NULL)
		i_stream_unref(&ctx->input);

	if (!ctx->failed && ctx->data != NULL) {
		p = array_append_space(&ctx->pending);
		p->kind = PENDING_SAVE;
		p->data = ctx->data;
		ctx->data = NULL;
		ctx->pending_bytes += p->data->used;
		p->flags = save_flags(ctx);
		p->idate_ms = _ctx->data.received_date == (time_t)-1 ||
					      _ctx->data.received_date == 0 ?
				      0 :
				      (int64_t)_ctx->data.received_date * 1000;

		/* dest_mail reads the bytes being saved (LMTP reads its
		   headers, the quota plugin its size) */
		temp_append(ctx);
		imail = INDEX_MAIL(_ctx->dest_mail);
		imail->data.stream = i_stream_create_copy_from_data(p->data->data, p->data->used);
		i_stream_set_name(imail->data.stream, "wildduck:saving");
		imail->data.physical_size = imail->data.virtual_size = p->data->used;
		/* not read yet, but marked so (as imapc does), and set up by
		   index_mail_init_stream(), which registers the callback that
		   lets index_mail_close() free it */
		_ctx->dest_mail->mail_stream_accessed = TRUE;
		struct istream *input;
		if (index_mail_init_stream(imail, NULL, NULL, &input) < 0)
			ctx->failed = TRUE;
	}
	if (ctx->data != NULL)
		buffer_free(&ctx->data);
	index_save_context_free(_ctx);
	return ctx->failed ? -1 : 0;
}

void wildduck_save_cancel(struct mail_save_context *_ctx)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);

	ctx->failed = TRUE;
	(void)wildduck_save_finish(_ctx);
	/* a failed save must not fail the other saves of the transaction */
	ctx->failed = FALSE;
}

static bool same_backend(struct wildduck_save_context *ctx, struct mail *mail)
{
	if (strcmp(mail->box->storage->name, WILDDUCK_STORAGE_NAME) != 0)
		return FALSE;
	struct wildduck_mailbox *src = WILDDUCK_MAILBOX(mail->box);
	struct wildduck_user *a = src->storage->wuser, *b = save_user(ctx);
	return a->store == b->store && bson_oid_equal(&a->user_id, &b->user_id) && src->have_id;
}

int wildduck_copy(struct mail_save_context *_ctx, struct mail *mail)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);
	struct pending *p;
	uoff_t size;

	if (!same_backend(ctx, mail))
		return mail_storage_copy(_ctx, mail);

	if (mail->expunged || mail_get_physical_size(mail, &size) < 0) {
		mail_storage_set_error(_ctx->transaction->box->storage, MAIL_ERROR_EXPUNGED,
				       "Some of the requested messages no longer exist.");
		index_save_context_free(_ctx);
		return -1;
	}
	p = array_append_space(&ctx->pending);
	p->kind = PENDING_COPY;
	p->src = WILDDUCK_MAILBOX(mail->box);
	p->src_uid = mail->uid;
	p->move = _ctx->moving;

	temp_append(ctx);
	/* for the quota plugin: the copy's size */
	struct index_mail *imail = INDEX_MAIL(_ctx->dest_mail);
	imail->data.physical_size = imail->data.virtual_size = size;
	index_save_context_free(_ctx);
	return 0;
}

static const char *save_source(struct wildduck_save_context *ctx)
{
	const char *service = ctx->ctx.transaction->box->storage->user->service;

	if (strcmp(service, "lmtp") == 0 || strcmp(service, "lda") == 0)
		return "LMTP";
	if (strcmp(service, "imap") == 0)
		return "IMAP";
	return "IMPORT";
}

static int commit_save(struct wildduck_save_context *ctx, const struct pending *p)
{
	struct wildduck_user *wuser = save_user(ctx);
	struct mailbox *box = ctx->ctx.transaction->box;
	struct wd_message_add req;
	struct wd_message_added added;
	char *error = NULL;

	i_zero(&req);
	req.raw = p->data->data;
	req.len = p->data->used;
	req.flags = p->flags;
	req.flag_count = str_array_length(p->flags);
	req.idate_ms = p->idate_ms;
	req.source = save_source(ctx);
	req.session_id = box->storage->user->session_id;
	req.decode_base64 = TRUE;
	int ret = wd_store_message_add(wuser->store, &ctx->mbox->id, &req, &added, &error);
	if (ret < 0) {
		wildduck_storage_set_error(box->storage, ret, error);
		return -1;
	}
	free(error);
	seq_range_array_add(&ctx->saved_uids, added.uid);
	return 0;
}

/* The copies of one run (same source mailbox, same move flag). */
static int commit_copies(struct wildduck_save_context *ctx, const struct pending *run,
			 unsigned int count)
{
	struct wildduck_user *wuser = save_user(ctx);
	struct mailbox *box = ctx->ctx.transaction->box;
	uint32_t *uids = i_new(uint32_t, count), *map = NULL;
	size_t mapped = 0;
	char *error = NULL;

	for (unsigned int i = 0; i < count; i++)
		uids[i] = run[i].src_uid;
	int ret = wd_store_message_copy(wuser->store, &run[0].src->id, uids, count,
					&ctx->mbox->id, run[0].move, box->storage->user->session_id,
					&map, &mapped, &error);
	i_free(uids);
	if (ret < 0) {
		free(map);
		wildduck_storage_set_error(box->storage, ret, error);
		return -1;
	}
	free(error);
	for (size_t i = 0; i < mapped; i++)
		seq_range_array_add(&ctx->saved_uids, map[i * 2 + 1]);
	free(map);
	if (mapped < count) {
		mail_storage_set_error(box->storage, MAIL_ERROR_EXPUNGED,
				       "Some of the requested messages no longer exist.");
		return -1;
	}
	return 0;
}

static void pending_free(struct wildduck_save_context *ctx)
{
	struct pending *p;

	array_foreach_modifiable(&ctx->pending, p) {
		if (p->data != NULL)
			buffer_free(&p->data);
	}
	array_clear(&ctx->pending);
	ctx->pending_bytes = 0;
}

int wildduck_transaction_save_commit_pre(struct mail_save_context *_ctx)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);
	struct mail_transaction_commit_changes *changes = _ctx->transaction->changes;
	unsigned int count, i, j;
	const struct pending *p;
	int ret = 0;

	if (!ctx->mbox->have_id) {
		int found = wildduck_mailbox_lookup(ctx->mbox);
		if (found <= 0) {
			if (found == 0)
				mail_storage_set_error(_ctx->transaction->box->storage,
						       MAIL_ERROR_NOTFOUND,
						       T_MAIL_ERR_MAILBOX_NOT_FOUND(
							       _ctx->transaction->box->vname));
			ret = -1;
		}
	}
	p = array_get(&ctx->pending, &count);
	for (i = 0; ret == 0 && i < count; i = j) {
		if (p[i].kind == PENDING_SAVE) {
			ret = commit_save(ctx, &p[i]);
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < count && p[j].kind == PENDING_COPY && p[j].src == p[i].src &&
				p[j].move == p[i].move;
		     j++)
			;
		ret = commit_copies(ctx, &p[i], j - i);
	}
	pending_free(ctx);

	/* the temporary appends go: the backend's records come with the
	   next sync */
	uint32_t last_seq = mail_index_view_get_messages_count(_ctx->transaction->view);
	for (i = 0; i < ctx->temp_appends && last_seq > 0; i++)
		mail_index_expunge(ctx->trans, last_seq - i);
	ctx->temp_appends = 0;

	if (array_count(&ctx->saved_uids) > 0) {
		changes->uid_validity = ctx->mbox->uid_validity;
		array_append_array(&changes->saved_uids, &ctx->saved_uids);
	}
	if (ret < 0)
		ctx->failed = TRUE;
	return ret;
}

void wildduck_transaction_save_commit_post(struct mail_save_context *_ctx,
					   struct mail_index_transaction_commit_result *result ATTR_UNUSED)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);

	/* a save to the selected mailbox arrives with the next sync */
	pending_free(ctx);
	pool_unref(&ctx->pool);
}

void wildduck_transaction_save_rollback(struct mail_save_context *_ctx)
{
	struct wildduck_save_context *ctx = WILDDUCK_SAVECTX(_ctx);

	/* nothing was written yet: the pending saves are simply dropped */
	if (ctx->data != NULL)
		buffer_free(&ctx->data);
	if (_ctx->data.output != NULL)
		o_stream_unref(&_ctx->data.output);
	if (ctx->input != NULL)
		i_stream_unref(&ctx->input);
	pending_free(ctx);
	pool_unref(&ctx->pool);
}
