/* NOOP and CHECK (RFC 3501 §6.1.2, §6.4.1). In the selected state both read
 * what changed in the mailbox since the session's modseq on a worker thread
 * (the journal, or the whole mailbox when the sync policy says so:
 * wd_imap_selected_read_prepare) and send it (EXISTS, RECENT, FETCH FLAGS,
 * EXPUNGE or VANISHED) before the tagged OK: the way a client without IDLE
 * polls. A failed read is logged and answered OK; the next one catches up. */
#include "imap-commands.h"
#include "imap-session.h"

struct sync_job {
	struct wd_store *store;
	struct wd_imap_selected_read read;
};

static void sync_work(void *context)
{
	struct sync_job *job = context;
	wd_imap_selected_read_run(job->store, &job->read, NULL);
}

static enum wd_imap_cmd_result sync_done(struct wd_imap_cmd *cmd)
{
	struct sync_job *job = cmd->context;
	wd_imap_selected_read_apply(cmd, &job->read, true);
	return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
}

static enum wd_imap_cmd_result noop_start(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	if (session->selected == NULL)
		return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
	struct sync_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->store = session->server->deps.store;
	wd_imap_selected_read_init(cmd, &job->read);
	return wd_imap_cmd_job(cmd, sync_work, job, sync_done);
}

enum wd_imap_cmd_result wd_imap_cmd_noop(struct wd_imap_cmd *cmd)
{
	return noop_start(cmd);
}

enum wd_imap_cmd_result wd_imap_cmd_check(struct wd_imap_cmd *cmd)
{
	return noop_start(cmd);
}
