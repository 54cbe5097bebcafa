/* GETQUOTA / GETQUOTAROOT (RFC 9208) with the STORAGE resource: one quota
 * root "" per user, usage and limit from the user document in KiB (a quota
 * of 0 means the default, maxStorage MiB, as in WildDuck). */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-writer.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-store-user.h"

#include <string.h>

struct quota_job {
	struct wd_imap_store_job base;
	const char *path;    /* GETQUOTAROOT: the mailbox, must exist */
	int64_t default_quota;
	int64_t used, limit;
};

static void quota_work(void *context)
{
	struct quota_job *job = context;
	if (job->path != NULL) {
		struct wd_mailbox *mailbox = NULL;
		job->base.ret = wd_store_mailbox_get_by_path(job->base.store, &job->base.user,
							     job->path, &mailbox, &job->base.error);
		wd_mailbox_free(&mailbox);
		if (job->base.ret < 0)
			return;
	}
	struct wd_user *user = NULL;
	job->base.ret = wd_store_user_get(job->base.store, &job->base.user, &user,
					  &job->base.error);
	if (job->base.ret < 0)
		return;
	job->used = user->storage_used > 0 ? user->storage_used : 0;
	job->limit = user->quota > 0 ? user->quota : job->default_quota;
	wd_user_free(&user);
}

static enum wd_imap_cmd_result quota_done(struct wd_imap_cmd *cmd)
{
	struct quota_job *job = cmd->context;
	struct wd_imap_session *session = cmd->session;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	struct wd_buffer *out = &session->out;
	if (job->path != NULL) {
		wd_buffer_append_str(out, "* QUOTAROOT ");
		wd_imap_write_mailbox(out, job->path, session->utf8_accept);
		wd_buffer_append_str(out, " \"\"\r\n");
	}
	wd_buffer_printf(out, "* QUOTA \"\" (STORAGE %lld %lld)\r\n",
			 (long long)((job->used + 1023) / 1024), (long long)(job->limit / 1024));
	wd_imap_session_send(session);
	return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
}

static enum wd_imap_cmd_result quota_start(struct wd_imap_cmd *cmd, struct quota_job *job)
{
	int64_t max_mb;
	const char *error;
	if (wd_config_get_int(cmd->session->server->deps.config, "maxStorage", 1024, &max_mb,
			      &error) < 0)
		max_mb = 1024;
	job->default_quota = max_mb * 1024 * 1024;
	return wd_imap_cmd_store_job(cmd, &job->base, quota_work, quota_done);
}

enum wd_imap_cmd_result wd_imap_cmd_getquotaroot(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 1))
		return WD_IMAP_CMD_DONE;
	struct quota_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->path = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[0]);
	if (job->path == NULL)
		return WD_IMAP_CMD_DONE;
	return quota_start(cmd, job);
}

enum wd_imap_cmd_result wd_imap_cmd_getquota(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 1))
		return WD_IMAP_CMD_DONE;
	const char *root;
	size_t len;
	if (!wd_imap_arg_get_astring(&cmd->parsed->args[0], &root, &len))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "GETQUOTA expects a quota root");
	if (len != 0)
		return wd_imap_cmd_reply(cmd, "NO", "NONEXISTENT", "No such quota root");
	struct quota_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	return quota_start(cmd, job);
}
