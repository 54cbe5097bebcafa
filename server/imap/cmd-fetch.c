/* FETCH and UID FETCH (RFC 3501 §6.4.5, RFC 3516 BINARY, RFC 7162
 * CHANGEDSINCE and VANISHED).
 *
 * The handler parses the set and the items, turns the set into spans of the
 * session's view (UID ↔ sequence number runs) and hands them to the FETCH
 * stream (imap-cmd-msg.c): imap-fetch.c loads and renders the responses a
 * batch at a time on the worker pool, the loop thread sends each step and
 * waits for the output to drain before the next. Messages another session
 * expunged meanwhile get no response (RFC 2180 §4.1.1) and the tagged OK
 * says [EXPUNGEISSUE] (RFC 5530). Untagged updates follow the responses;
 * EXPUNGE only for UID FETCH (RFC 3501 §7.4.1).
 *
 * UID FETCH with VANISHED (RFC 7162 §3.2.6) first brings the session up to
 * date (a read of the selected mailbox, whose expunges a UID command may
 * announce), so VANISHED (EARLIER) names every UID of the set that no longer
 * exists, including those another session expunged a moment ago. */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-fetch.h"
#include "imap-sync.h"
#include "imap-view.h"
#include "wd-arena.h"

#include <string.h>

struct fetch_ctx {
	struct wd_imap_fetch_stream stream; /* first */
	struct wd_imap_fetch_args args;
	struct wd_store *store;
	struct wd_imap_selected_read read; /* VANISHED: the sync first */
	struct wd_imap_fetch_request request;
};

static enum wd_imap_cmd_result fetch_done(struct wd_imap_cmd *cmd)
{
	struct fetch_ctx *ctx = cmd->context;
	uint64_t missing = ctx->stream.run != NULL ? wd_imap_fetch_run_missing(ctx->stream.run) : 0;
	wd_imap_cmd_sync_emit(cmd, cmd->uid);
	if (missing > 0)
		return wd_imap_cmd_replyf(cmd, "OK", "EXPUNGEISSUE",
					  "%llu of the messages no longer exist",
					  (unsigned long long)missing);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "FETCH completed");
}

static enum wd_imap_cmd_result fetch_start(struct wd_imap_cmd *cmd)
{
	struct fetch_ctx *ctx = cmd->context;
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	struct wd_imap_msgset set;

	if (sel == NULL)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "No mailbox selected");
	if (!wd_imap_cmd_msgset(cmd, &cmd->parsed->args[0], &set))
		return WD_IMAP_CMD_DONE;
	struct wd_imap_fetch_span *spans;
	size_t span_count;
	if (wd_imap_cmd_msgset_spans(cmd, &set, &spans, &span_count, NULL, NULL) < 0)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");

	if (ctx->args.vanished) {
		/* RFC 7162 §3.2.6: the UIDs of the set that no longer exist (all
		   of them, not only those expunged after CHANGEDSINCE: allowed) */
		struct wd_imap_seqset uids;
		if (wd_imap_cmd_msgset_uidset(cmd, &set, &uids) < 0)
			return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
		uint32_t uid_next = wd_imap_view_last_uid(sel->view) + 1;
		if (sel->uid_next > uid_next)
			uid_next = sel->uid_next;
		if (uids.count > 0)
			wd_imap_sync_vanished_earlier(sel->view, cmd->arena, &uids, uid_next,
						      &session->out);
		wd_imap_session_send(session);
	}
	if (span_count == 0)
		return fetch_done(cmd);
	wd_imap_cmd_fetch_request_init(cmd, &ctx->request, &ctx->args);
	ctx->request.spans = spans;
	ctx->request.span_count = span_count;
	return wd_imap_cmd_fetch_stream(cmd, &ctx->request, fetch_done);
}

static void sync_work(void *context)
{
	struct fetch_ctx *ctx = context;
	wd_imap_selected_read_run(ctx->store, &ctx->read, NULL);
}

static enum wd_imap_cmd_result sync_done(struct wd_imap_cmd *cmd)
{
	struct fetch_ctx *ctx = cmd->context;
	wd_imap_selected_read_apply(cmd, &ctx->read, true);
	return fetch_start(cmd);
}

enum wd_imap_cmd_result wd_imap_cmd_fetch(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	const struct wd_imap_command *parsed = cmd->parsed;
	const char *error;

	if (parsed->arg_count < 2)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "FETCH expects a set and items");
	struct fetch_ctx *ctx = wd_imap_cmd_context_new(cmd, sizeof(*ctx));
	if (ctx == NULL)
		return WD_IMAP_CMD_DONE;
	if (wd_imap_fetch_args_parse(cmd->arena, parsed->args + 1, parsed->arg_count - 1, cmd->uid,
				     &ctx->args, &error) < 0)
		return wd_imap_cmd_replyf(cmd, "BAD", NULL, "Invalid FETCH arguments: %s", error);
	if (ctx->args.vanished && !session->qresync)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "VANISHED needs ENABLE QRESYNC");
	if (ctx->args.changedsince_set || (ctx->args.items & WD_IMAP_FETCH_MODSEQ))
		session->condstore = true; /* RFC 7162 §3.1: a CONDSTORE-enabling command */
	if (!ctx->args.vanished)
		return fetch_start(cmd);
	ctx->store = session->server->deps.store;
	wd_imap_selected_read_init(cmd, &ctx->read);
	return wd_imap_cmd_job(cmd, sync_work, ctx, sync_done);
}
