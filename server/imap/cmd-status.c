/* STATUS (RFC 3501 §6.3.10) with HIGHESTMODSEQ (RFC 7162), SIZE (RFC 8438),
 * APPENDLIMIT (RFC 7889), MAILBOXID (RFC 8474) and DELETED (RFC 9051).
 *
 * Counts come from one pass over the mailbox's messages with a projection
 * of the three fields they need (FerretDB scans the collection for any
 * filter but _id, so one pass beats one count per item); MESSAGES alone is
 * a count. RECENT counts the messages above the mailbox's \Recent
 * watermark (imap-sync.h), those the next session to select it will see as
 * recent; STATUS reads the watermark and never claims (0 without Redis). */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-mailbox-args.h"
#include "imap-sync.h"
#include "imap-writer.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "wd-store-fdb.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

#define COUNTED_ITEMS \
	(WD_IMAP_STATUS_UNSEEN | WD_IMAP_STATUS_SIZE | WD_IMAP_STATUS_DELETED | WD_IMAP_STATUS_RECENT)

static int64_t doc_int(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, key))
		return 0;
	if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it) ||
	    BSON_ITER_HOLDS_DOUBLE(&it))
		return bson_iter_as_int64(&it);
	return 0;
}

static bool doc_bool(const bson_t *doc, const char *key, bool def)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, key))
		return def;
	return bson_iter_as_bool(&it);
}

struct fdb_count {
	struct wd_imap_status_values *v;
	uint32_t recent_above;
};

static int fdb_count_one(void *ctx, const struct wd_store_fdb_msg *msg)
{
	struct fdb_count *count = ctx;
	struct wd_imap_status_values *v = count->v;

	v->messages++;
	v->unseen += msg->unseen;
	v->deleted += !msg->undeleted;
	v->size += msg->size > 0 ? (uint64_t)msg->size : 0;
	if (msg->uid > count->recent_above)
		v->recent++;
	return 0;
}

int wd_imap_status_compute(struct wd_store *store, const struct wd_mailbox *mailbox,
			   unsigned items, struct wd_imap_status_values *values_r, char **error_r)
{
	memset(values_r, 0, sizeof(*values_r));
	bson_oid_copy(&mailbox->id, &values_r->id);
	values_r->uid_next = mailbox->uid_next;
	values_r->uid_validity = mailbox->uid_validity;
	values_r->highest_modseq = mailbox->modify_index;
	if (!(items & (COUNTED_ITEMS | WD_IMAP_STATUS_MESSAGES)))
		return 0;

	/* UIDs above it are recent; without Redis none is (UINT32_MAX) */
	uint32_t recent_above = UINT32_MAX;
	if ((items & WD_IMAP_STATUS_RECENT) &&
	    wd_imap_recent_watermark(store, &mailbox->id, &recent_above) < 0)
		recent_above = UINT32_MAX;
	/* FerretDB on SQLite: the metadata index, no document decoded */
	struct fdb_count count = { values_r, recent_above };
	char *fdb_error = NULL;
	int fret = wd_store_fdb_messages(store, &mailbox->id, 1, UINT32_MAX, fdb_count_one,
					 &count, &fdb_error);
	if (fret != WD_STORE_FDB_NONE && fret != WD_OK && error_r != NULL)
		*error_r = fdb_error;
	else
		free(fdb_error);
	if (fret != WD_STORE_FDB_NONE)
		return fret == WD_OK ? 0 : WD_STORE_ERR_DATABASE;
	values_r->messages = values_r->unseen = values_r->deleted = values_r->recent = 0;
	values_r->size = 0;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_OID(&filter, "mailbox", &mailbox->id);
	bson_error_t err;
	int ret = 0;
	if (!(items & COUNTED_ITEMS)) {
		int64_t n = mongoc_collection_count_documents(coll, &filter, NULL, NULL, NULL, &err);
		if (n < 0)
			ret = -1;
		else
			values_r->messages = (uint32_t)n;
	} else {
		bson_t opts = BSON_INITIALIZER, proj;
		BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
		BSON_APPEND_INT32(&proj, "_id", 0);
		BSON_APPEND_INT32(&proj, "unseen", 1);
		BSON_APPEND_INT32(&proj, "size", 1);
		BSON_APPEND_INT32(&proj, "undeleted", 1);
		BSON_APPEND_INT32(&proj, "uid", 1);
		bson_append_document_end(&opts, &proj);
		mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
		const bson_t *doc;
		while (mongoc_cursor_next(cursor, &doc)) {
			values_r->messages++;
			if (doc_bool(doc, "unseen", false))
				values_r->unseen++;
			if (!doc_bool(doc, "undeleted", true))
				values_r->deleted++;
			values_r->size += (uint64_t)doc_int(doc, "size");
			if (doc_int(doc, "uid") > (int64_t)recent_above)
				values_r->recent++;
		}
		if (mongoc_cursor_error(cursor, &err))
			ret = -1;
		mongoc_cursor_destroy(cursor);
		bson_destroy(&opts);
	}
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (ret < 0) {
		if (error_r != NULL)
			*error_r = strdup(err.message);
		return WD_STORE_ERR_DATABASE;
	}
	return 0;
}

int wd_imap_status_write(struct wd_buffer *out, const char *path, unsigned items,
			 const struct wd_imap_status_values *v, bool utf8, uint64_t append_limit)
{
	int ret = wd_buffer_append_str(out, "* STATUS ");
	ret |= wd_imap_write_mailbox(out, path, utf8);
	ret |= wd_buffer_append_str(out, " (");
	const char *sep = "";
#define ITEM(flag, fmt, value)                                                        \
	do {                                                                          \
		if (items & (flag)) {                                                 \
			ret |= wd_buffer_printf(out, "%s" fmt, sep, value);           \
			sep = " ";                                                    \
		}                                                                     \
	} while (0)
	ITEM(WD_IMAP_STATUS_MESSAGES, "MESSAGES %u", v->messages);
	ITEM(WD_IMAP_STATUS_RECENT, "RECENT %u", v->recent);
	ITEM(WD_IMAP_STATUS_UIDNEXT, "UIDNEXT %u", v->uid_next);
	ITEM(WD_IMAP_STATUS_UIDVALIDITY, "UIDVALIDITY %u", v->uid_validity);
	ITEM(WD_IMAP_STATUS_UNSEEN, "UNSEEN %u", v->unseen);
	ITEM(WD_IMAP_STATUS_DELETED, "DELETED %u", v->deleted);
	ITEM(WD_IMAP_STATUS_SIZE, "SIZE %llu", (unsigned long long)v->size);
	ITEM(WD_IMAP_STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
	     (unsigned long long)v->highest_modseq);
	ITEM(WD_IMAP_STATUS_APPENDLIMIT, "APPENDLIMIT %llu", (unsigned long long)append_limit);
#undef ITEM
	if (items & WD_IMAP_STATUS_MAILBOXID) {
		char hex[25];
		bson_oid_to_string(&v->id, hex);
		ret |= wd_buffer_printf(out, "%sMAILBOXID (%s)", sep, hex);
	}
	ret |= wd_buffer_append_str(out, ")\r\n");
	return ret < 0 ? WD_ERROR : WD_OK;
}

struct status_job {
	struct wd_imap_store_job base;
	const char *path;
	unsigned items;
	struct wd_imap_status_values values;
};

static void status_work(void *context)
{
	struct status_job *job = context;
	struct wd_mailbox *mailbox = NULL;
	job->base.ret = wd_store_mailbox_get_by_path(job->base.store, &job->base.user, job->path,
						     &mailbox, &job->base.error);
	if (job->base.ret == 0)
		job->base.ret = wd_imap_status_compute(job->base.store, mailbox, job->items,
						       &job->values, &job->base.error);
	wd_mailbox_free(&mailbox);
}

static enum wd_imap_cmd_result status_done(struct wd_imap_cmd *cmd)
{
	struct status_job *job = cmd->context;
	struct wd_imap_session *session = cmd->session;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	wd_imap_status_write(&session->out, job->path, job->items, &job->values,
			     session->utf8_accept, session->server->set.max_message);
	wd_imap_session_send(session);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "STATUS completed");
}

enum wd_imap_cmd_result wd_imap_cmd_status(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 2))
		return WD_IMAP_CMD_DONE;
	struct status_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	const char *error;
	if (wd_imap_status_items_parse(&cmd->parsed->args[1], &job->items, &error) < 0)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, error);
	job->path = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[0]);
	if (job->path == NULL)
		return WD_IMAP_CMD_DONE;
	return wd_imap_cmd_store_job(cmd, &job->base, status_work, status_done);
}
