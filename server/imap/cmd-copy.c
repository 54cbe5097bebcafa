/* COPY, MOVE and their UID forms (RFC 3501 §6.4.7, RFC 6851 MOVE, RFC 4315
 * COPYUID).
 *
 * One job finds the target mailbox (missing: NO [TRYCREATE]) and copies or
 * moves the messages of the set the view holds with wd_store_message_copy,
 * which gives the source → target UID pairs. COPY answers OK [COPYUID ...];
 * MOVE sends "* OK [COPYUID ...]" then the expunges of the sources (RFC
 * 6851 §4.3), then OK. */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-arena.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

struct copy_ctx {
	struct wd_imap_store_job job; /* first */
	bson_oid_t source;
	const char *target_path;
	char session_id[32];
	bool move;
	bool same_mailbox;
	const uint32_t *uids;
	size_t uid_count;
	struct wd_mailbox *target;
	uint32_t *map; /* pairs source, target */
	size_t map_count;
	struct wd_imap_selected_read read; /* COPY into the selected mailbox */
};

static void copy_ctx_free(void *context)
{
	struct copy_ctx *ctx = context;
	wd_mailbox_free(&ctx->target);
	free(ctx->map);
	ctx->map = NULL;
}

static void copy_work(void *context)
{
	struct copy_ctx *ctx = context;
	struct wd_imap_store_job *job = &ctx->job;
	job->ret = wd_store_mailbox_get_by_path(job->store, &job->user, ctx->target_path,
						&ctx->target, &job->error);
	if (job->ret < 0 || ctx->uid_count == 0)
		return;
	job->ret = wd_store_message_copy(job->store, &ctx->source, ctx->uids, ctx->uid_count,
					 &ctx->target->id, ctx->move, ctx->session_id, &ctx->map,
					 &ctx->map_count, &job->error);
	if (job->ret >= 0 && !ctx->move)
		wd_imap_selected_read_run(job->store, &ctx->read, &ctx->target->id);
}

/* "COPYUID validity src dst" in `out` (NUL-terminated). */
static void write_copyuid(const struct copy_ctx *ctx, struct wd_buffer *out, uint32_t *scratch)
{
	wd_buffer_printf(out, "COPYUID %u ", ctx->target->uid_validity);
	for (size_t i = 0; i < ctx->map_count; i++)
		scratch[i] = ctx->map[2 * i];
	wd_imap_write_number_set(out, scratch, ctx->map_count);
	wd_buffer_append_str(out, " ");
	for (size_t i = 0; i < ctx->map_count; i++)
		scratch[i] = ctx->map[2 * i + 1];
	wd_imap_write_number_set(out, scratch, ctx->map_count);
	wd_buffer_append(out, "", 1);
}

static enum wd_imap_cmd_result copy_done(struct wd_imap_cmd *cmd)
{
	struct copy_ctx *ctx = cmd->context;
	struct wd_imap_session *session = cmd->session;
	if (ctx->job.ret == WD_STORE_ERR_NOT_FOUND && ctx->target == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "TRYCREATE", "Target mailbox does not exist");
	if (ctx->job.ret < 0)
		return wd_imap_cmd_store_error(cmd, ctx->job.ret, ctx->job.error);
	const char *what = ctx->move ? "MOVE" : "COPY";
	if (ctx->map_count == 0) {
		wd_imap_cmd_sync_emit(cmd, ctx->move || cmd->uid);
		return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", what);
	}
	struct wd_buffer code = WD_BUFFER_INIT;
	uint32_t *scratch = wd_arena_alloc(cmd->arena, ctx->map_count * sizeof(*scratch));
	if (scratch == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	write_copyuid(ctx, &code, scratch);
	enum wd_imap_cmd_result r;
	if (!ctx->move) {
		wd_imap_selected_read_apply(cmd, &ctx->read, cmd->uid);
		r = wd_imap_cmd_reply(cmd, "OK", (const char *)wd_buffer_bytes(&code),
				      "COPY completed");
	} else {
		wd_imap_session_status(session, NULL, "OK", (const char *)wd_buffer_bytes(&code),
				       "Moved");
		wd_imap_cmd_sync_emit(cmd, true);
		for (size_t i = 0; i < ctx->map_count; i++)
			scratch[i] = ctx->map[2 * i];
		qsort(scratch, ctx->map_count, sizeof(*scratch), wd_imap_u32_compare);
		wd_imap_cmd_announce_expunged(cmd, scratch, ctx->map_count);
		r = wd_imap_cmd_reply(cmd, "OK", NULL, "MOVE completed");
	}
	wd_buffer_release(&code);
	return r;
}

static enum wd_imap_cmd_result copy_start(struct wd_imap_cmd *cmd, bool move)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	struct copy_ctx *ctx;
	struct wd_imap_msgset set;
	struct wd_imap_fetch_span *spans;
	size_t span_count;
	uint32_t *uids;

	if (!wd_imap_cmd_want_args(cmd, 2))
		return WD_IMAP_CMD_DONE;
	if ((ctx = wd_imap_cmd_context_new(cmd, sizeof(*ctx))) == NULL)
		return WD_IMAP_CMD_DONE;
	wd_arena_add_cleanup(cmd->arena, copy_ctx_free, ctx);
	if (!wd_imap_cmd_msgset(cmd, &cmd->parsed->args[0], &set))
		return WD_IMAP_CMD_DONE;
	if ((ctx->target_path = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[1])) == NULL)
		return WD_IMAP_CMD_DONE;
	if (move && sel->read_only)
		return wd_imap_cmd_reply(cmd, "NO", "READ-ONLY", "Mailbox is read-only");
	if (wd_imap_cmd_msgset_spans(cmd, &set, &spans, &span_count, &uids, &ctx->uid_count) < 0)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	ctx->uids = uids;
	ctx->move = move;
	bson_oid_copy(&sel->mailbox, &ctx->source);
	memcpy(ctx->session_id, session->id, sizeof(ctx->session_id));
	wd_imap_selected_read_init(cmd, &ctx->read);
	return wd_imap_cmd_store_job(cmd, &ctx->job, copy_work, copy_done);
}

enum wd_imap_cmd_result wd_imap_cmd_copy(struct wd_imap_cmd *cmd)
{
	return copy_start(cmd, false);
}

enum wd_imap_cmd_result wd_imap_cmd_move(struct wd_imap_cmd *cmd)
{
	return copy_start(cmd, true);
}
