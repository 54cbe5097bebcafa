/* QUIT (RFC 1939 §6). In AUTHORIZATION it only says goodbye. In
 * TRANSACTION the session enters UPDATE: one job applies what the session
 * did, as WildDuck's onUpdate (wd_store_pop3_update): messages RETR sent
 * whole that were unseen when listed get \Seen; deleted ones get \Seen and
 * move to Trash. Only then is the answer sent: +OK when everything was
 * applied, "-ERR [SYS/TEMP] ..." when something was not (RFC 1939 lets the
 * client know that deleted messages were not removed). The connection
 * closes either way. */
#include "pop3-commands.h"
#include "pop3-session.h"

#include "wd-log.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

struct update_job {
	struct wd_store *store;
	bson_oid_t user;
	bson_oid_t mailbox;
	uint32_t *seen;
	size_t seen_count;
	uint32_t *deleted;
	size_t deleted_count;
	char session_id[32];
	struct wd_pop3_update_result result;
	int ret;
	char *error;
};

static void update_job_free(void *context)
{
	struct update_job *job = context;
	free(job->seen);
	free(job->deleted);
	free(job->error);
}

static void update_work(void *context)
{
	struct update_job *job = context;
	struct wd_pop3_update update = {
		.seen_uids = job->seen, .seen_count = job->seen_count,
		.deleted_uids = job->deleted, .deleted_count = job->deleted_count,
		.session_id = job->session_id,
	};
	job->ret = wd_store_pop3_update(job->store, &job->user, &job->mailbox, &update,
					&job->result, &job->error);
}

static enum wd_pop3_cmd_result update_done(struct wd_pop3_cmd *cmd)
{
	struct update_job *job = cmd->context;
	struct wd_pop3_session *session = cmd->session;
	session->close_after = true;
	if (job->ret < 0) {
		wd_warning("pop3", "%s: %s: QUIT update failed: %s", session->id, session->username,
			   job->error != NULL ? job->error : "?");
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Some deleted messages not removed");
	}
	wd_info("pop3", "%s: %s: %zu messages marked seen, %zu moved to Trash", session->id,
		session->username, job->result.seen, job->result.moved);
	return wd_pop3_cmd_ok(cmd, "Bye (%zu message%s deleted)", job->result.moved,
			      job->result.moved == 1 ? "" : "s");
}

enum wd_pop3_cmd_result wd_pop3_cmd_quit(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	if (session->state != WD_POP3_STATE_TRANSACTION) {
		session->close_after = true;
		return wd_pop3_cmd_ok(cmd, "Bye");
	}
	session->state = WD_POP3_STATE_UPDATE;
	size_t n = session->maildrop.count;
	struct update_job *job = wd_pop3_cmd_context_new(cmd, sizeof(*job), update_job_free);
	if (job == NULL) {
		session->close_after = true;
		return WD_POP3_CMD_DONE;
	}
	job->seen = calloc(n + 1, sizeof(*job->seen));
	job->deleted = calloc(n + 1, sizeof(*job->deleted));
	if (job->seen == NULL || job->deleted == NULL) {
		session->close_after = true;
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const struct wd_pop3_message *msg = &session->maildrop.messages[i];
		uint8_t marks = session->marks[i];
		if (marks & WD_POP3_MARK_DELETED)
			job->deleted[job->deleted_count++] = msg->uid;
		else if ((marks & WD_POP3_MARK_RETRIEVED) && !msg->seen)
			job->seen[job->seen_count++] = msg->uid;
	}
	if (job->seen_count == 0 && job->deleted_count == 0) {
		session->close_after = true;
		return wd_pop3_cmd_ok(cmd, "Bye");
	}
	job->store = session->server->deps.store;
	job->user = session->user;
	job->mailbox = session->maildrop.mailbox;
	memcpy(job->session_id, session->id, sizeof(job->session_id));
	/* whatever the job's fate, the session ends after its answer */
	session->close_after = true;
	return wd_pop3_cmd_job(cmd, update_work, job, update_done);
}
