/* EXPUNGE and UID EXPUNGE (RFC 3501 §6.4.3, RFC 4315 §2.1).
 *
 * One job deletes the \Deleted messages (all, or those of the UID set)
 * with wd_store_message_expunge; back on the loop thread the changes other
 * sessions made are sent first, then this session's own expunges as
 * EXPUNGE (or VANISHED with QRESYNC), the view shrinking as they go. */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-arena.h"
#include "wd-store-message.h"

#include <stdlib.h>
#include <string.h>

struct expunge_ctx {
	struct wd_imap_store_job job; /* first */
	bson_oid_t mailbox;
	char session_id[32];
	const uint32_t *uids;
	size_t uid_count;
	bool all;
	uint32_t *expunged;
	size_t expunged_count;
};

static void expunge_ctx_free(void *context)
{
	struct expunge_ctx *ctx = context;
	free(ctx->expunged);
	ctx->expunged = NULL;
}

static void expunge_work(void *context)
{
	struct expunge_ctx *ctx = context;
	ctx->job.ret = wd_store_message_expunge(ctx->job.store, &ctx->mailbox,
						ctx->all ? NULL : ctx->uids,
						ctx->all ? 0 : ctx->uid_count, ctx->session_id,
						&ctx->expunged, &ctx->expunged_count,
						&ctx->job.error);
}

static enum wd_imap_cmd_result expunge_done(struct wd_imap_cmd *cmd)
{
	struct expunge_ctx *ctx = cmd->context;
	if (ctx->job.ret < 0)
		return wd_imap_cmd_store_error(cmd, ctx->job.ret, ctx->job.error);
	wd_imap_cmd_sync_emit(cmd, true);
	if (ctx->expunged_count > 0) {
		qsort(ctx->expunged, ctx->expunged_count, sizeof(*ctx->expunged), wd_imap_u32_compare);
		wd_imap_cmd_announce_expunged(cmd, ctx->expunged, ctx->expunged_count);
	}
	return wd_imap_cmd_reply(cmd, "OK", NULL, "EXPUNGE completed");
}

enum wd_imap_cmd_result wd_imap_cmd_expunge(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	struct expunge_ctx *ctx;

	if (!wd_imap_cmd_want_args(cmd, cmd->uid ? 1 : 0))
		return WD_IMAP_CMD_DONE;
	if ((ctx = wd_imap_cmd_context_new(cmd, sizeof(*ctx))) == NULL)
		return WD_IMAP_CMD_DONE;
	wd_arena_add_cleanup(cmd->arena, expunge_ctx_free, ctx);
	if (sel->read_only)
		return wd_imap_cmd_reply(cmd, "NO", "READ-ONLY", "Mailbox is read-only");
	ctx->all = !cmd->uid;
	if (cmd->uid) {
		struct wd_imap_msgset set;
		struct wd_imap_fetch_span *spans;
		size_t span_count;
		uint32_t *uids;
		if (!wd_imap_cmd_msgset(cmd, &cmd->parsed->args[0], &set))
			return WD_IMAP_CMD_DONE;
		if (wd_imap_cmd_msgset_spans(cmd, &set, &spans, &span_count, &uids,
					     &ctx->uid_count) < 0)
			return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
		ctx->uids = uids;
		if (ctx->uid_count == 0)
			return expunge_done(cmd);
	}
	bson_oid_copy(&sel->mailbox, &ctx->mailbox);
	memcpy(ctx->session_id, session->id, sizeof(ctx->session_id));
	return wd_imap_cmd_store_job(cmd, &ctx->job, expunge_work, expunge_done);
}
