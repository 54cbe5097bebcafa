/* NOOP and CHECK (RFC 3501 §6.1.2, §6.4.1). In the selected state both read
 * the mailbox's journal since the session's modseq on a worker thread
 * (imap-sync.h) and send what changed (EXISTS, RECENT, FETCH FLAGS, EXPUNGE
 * or VANISHED) before the tagged OK: the way a client without IDLE polls. */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-sync.h"
#include "wd-arena.h"
#include "wd-log.h"

#include <stdlib.h>
#include <string.h>

struct sync_job {
	struct wd_store *store;
	bson_oid_t mailbox;
	uint64_t modseq;
	char session_id[32];
	bool claim_recent;
	int ret;
	char *error;
	struct wd_imap_changes *changes;
};

static void sync_job_free(void *context)
{
	struct sync_job *job = context;
	free(job->error);
	wd_imap_changes_free(&job->changes);
}

static void sync_work(void *context)
{
	struct sync_job *job = context;
	job->ret = wd_imap_sync_read_journal(job->store, &job->mailbox, job->modseq,
					     job->session_id, job->claim_recent, &job->changes,
					     &job->error);
}

static enum wd_imap_cmd_result sync_done(struct wd_imap_cmd *cmd)
{
	struct sync_job *job = cmd->context;
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	if (job->ret < 0) {
		/* the next NOOP tries again; the client keeps what it has */
		wd_warning("imap", "%s: journal read failed: %s", session->id,
			   job->error != NULL ? job->error : "?");
	} else if (sel != NULL && bson_oid_equal(&sel->mailbox, &job->mailbox)) {
		wd_imap_session_sync(session, job->changes, true);
		job->changes = NULL;
	}
	return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
}

static enum wd_imap_cmd_result noop_start(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	if (sel == NULL)
		return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
	struct sync_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->store = session->server->deps.store;
	bson_oid_copy(&sel->mailbox, &job->mailbox);
	job->modseq = wd_imap_sync_modseq(sel->sync);
	memcpy(job->session_id, session->id, sizeof(job->session_id));
	job->claim_recent = !sel->read_only;
	wd_arena_add_cleanup(cmd->arena, sync_job_free, job);
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
