/* SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 4731 ESEARCH, RFC 5182
 * SEARCHRES, RFC 7162 MODSEQ).
 *
 * The program is parsed and converted against the session's view on the
 * loop thread (sequence numbers, "$" and \Recent become UID sets), run as
 * ONE query on the worker pool (imap-search.c), and answered on the loop
 * thread where the view maps UIDs back to sequence numbers. RETURN (SAVE)
 * keeps the matches as the session's "$" (UIDs, so later expunges cannot
 * shift it). */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-search-args.h"
#include "imap-search.h"
#include "imap-sync.h"
#include "imap-view.h"
#include "wd-arena.h"

#include <stdlib.h>
#include <string.h>

struct search_ctx {
	struct wd_imap_store_job job;
	bson_oid_t mailbox;
	struct wd_imap_search_program program;
	struct wd_search_key *key;
	uint32_t max_uid;
	struct wd_imap_search_result result;
};

static void search_ctx_free(void *context)
{
	struct search_ctx *ctx = context;
	wd_imap_search_result_free(&ctx->result);
}

static void search_work(void *context)
{
	struct search_ctx *ctx = context;
	ctx->job.ret = wd_imap_search_run(ctx->job.store, &ctx->mailbox, ctx->key, ctx->max_uid,
					  ctx->program.uses_modseq, &ctx->result, &ctx->job.error);
}

static uint32_t map_seq(void *context, uint32_t uid)
{
	return wd_imap_view_seq(context, uid);
}

static void save_result(struct wd_imap_selected *sel, const struct wd_imap_search_result *result)
{
	free(sel->saved);
	sel->saved = NULL;
	sel->saved_count = 0;
	if (result == NULL || result->range_count == 0)
		return;
	sel->saved = malloc(result->range_count * sizeof(*sel->saved));
	if (sel->saved == NULL)
		return;
	for (size_t i = 0; i < result->range_count; i++) {
		sel->saved[i].first = result->ranges[i].first;
		sel->saved[i].last = result->ranges[i].last;
	}
	sel->saved_count = result->range_count;
}

static enum wd_imap_cmd_result search_done(struct wd_imap_cmd *cmd)
{
	struct search_ctx *ctx = cmd->context;
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	const struct wd_imap_search_program *program = &ctx->program;
	unsigned ret_opts = program->return_options;

	if (ctx->job.ret < 0) {
		if (ret_opts & WD_IMAP_SEARCH_RETURN_SAVE)
			save_result(sel, NULL);
		return wd_imap_cmd_store_error(cmd, ctx->job.ret, ctx->job.error);
	}
	if (ret_opts & WD_IMAP_SEARCH_RETURN_SAVE)
		save_result(sel, &ctx->result);
	wd_imap_search_map_cb *map = cmd->uid ? NULL : map_seq;
	bool with_modseq = program->uses_modseq;
	if (!program->esearch) {
		wd_imap_search_format(&session->out, &ctx->result, map, sel->view, with_modseq);
	} else if (ret_opts != WD_IMAP_SEARCH_RETURN_SAVE) {
		/* SAVE alone answers nothing (RFC 5182 §2.4) */
		wd_imap_esearch_format(&session->out, cmd->tag, cmd->uid,
				       ret_opts & ~(unsigned)WD_IMAP_SEARCH_RETURN_SAVE,
				       &ctx->result, map, sel->view, with_modseq);
	}
	wd_imap_session_send(session);
	wd_imap_cmd_sync_emit(cmd, cmd->uid);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "SEARCH completed");
}

/* The \Recent UIDs the view holds, ascending. */
static int recent_uids(struct wd_imap_cmd *cmd, const uint32_t **uids_r, size_t *count_r)
{
	struct wd_imap_selected *sel = cmd->session->selected;
	size_t n;
	const struct wd_imap_seq_range *ranges = wd_imap_sync_recent_ranges(sel->sync, &n);
	*uids_r = NULL;
	*count_r = 0;
	if (n == 0)
		return 0;
	struct wd_imap_msgset set = { { (struct wd_imap_seq_range *)ranges, n, false, false },
				      true };
	struct wd_imap_fetch_span *spans;
	size_t span_count;
	uint32_t *uids;
	if (wd_imap_cmd_msgset_spans(cmd, &set, &spans, &span_count, &uids, count_r) < 0)
		return -1;
	*uids_r = uids;
	return 0;
}

enum wd_imap_cmd_result wd_imap_cmd_search(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	const struct wd_imap_command *parsed = cmd->parsed;
	const char *error = NULL;

	struct search_ctx *ctx = wd_imap_cmd_context_new(cmd, sizeof(*ctx));
	if (ctx == NULL)
		return WD_IMAP_CMD_DONE;
	wd_arena_add_cleanup(cmd->arena, search_ctx_free, ctx);
	if (wd_imap_search_parse(cmd->arena, parsed->args, parsed->arg_count, NULL, &ctx->program,
				 &error) < 0) {
		if (ctx->program.bad_charset)
			return wd_imap_cmd_reply(cmd, "NO", "BADCHARSET (UTF-8 US-ASCII)",
						 error != NULL ? error : "Unsupported charset");
		return wd_imap_cmd_replyf(cmd, "BAD", NULL, "Invalid SEARCH: %s",
					  error != NULL ? error : "syntax error");
	}
	if (ctx->program.uses_modseq)
		session->condstore = true;

	struct wd_imap_seqset saved = { sel->saved, sel->saved_count, false, false };
	struct wd_imap_search_view view = { sel->view, &saved, NULL, 0 };
	if (recent_uids(cmd, &view.recent, &view.recent_count) < 0)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	if (wd_imap_search_to_store(cmd->arena, ctx->program.root, &view, &ctx->key, &error) < 0)
		return wd_imap_cmd_replyf(cmd, "BAD", NULL, "Invalid SEARCH: %s",
					  error != NULL ? error : "?");
	ctx->max_uid = wd_imap_view_last_uid(sel->view);
	bson_oid_copy(&sel->mailbox, &ctx->mailbox);
	if (ctx->max_uid == 0) /* empty mailbox: nothing can match */
		return search_done(cmd);
	return wd_imap_cmd_store_job(cmd, &ctx->job, search_work, search_done);
}
