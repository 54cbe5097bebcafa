/* SUBSCRIBE / UNSUBSCRIBE (RFC 3501 §6.3.6-7) of existing mailboxes (the
 * subscription is a flag of the mailbox document, as in WildDuck). */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-arena.h"
#include "wd-store-user.h"

struct subscribe_job {
	struct wd_imap_store_job base;
	const char *path;
	bool subscribed;
};

static void subscribe_work(void *context)
{
	struct subscribe_job *job = context;
	job->base.ret = wd_store_mailbox_subscribe(job->base.store, &job->base.user, job->path,
						   job->subscribed, &job->base.error);
}

static enum wd_imap_cmd_result subscribe_done(struct wd_imap_cmd *cmd)
{
	struct subscribe_job *job = cmd->context;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
}

static enum wd_imap_cmd_result subscribe_start(struct wd_imap_cmd *cmd, bool subscribed)
{
	if (!wd_imap_cmd_want_args(cmd, 1))
		return WD_IMAP_CMD_DONE;
	struct subscribe_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->path = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[0]);
	if (job->path == NULL)
		return WD_IMAP_CMD_DONE;
	job->subscribed = subscribed;
	return wd_imap_cmd_store_job(cmd, &job->base, subscribe_work, subscribe_done);
}

enum wd_imap_cmd_result wd_imap_cmd_subscribe(struct wd_imap_cmd *cmd)
{
	return subscribe_start(cmd, true);
}

enum wd_imap_cmd_result wd_imap_cmd_unsubscribe(struct wd_imap_cmd *cmd)
{
	return subscribe_start(cmd, false);
}
