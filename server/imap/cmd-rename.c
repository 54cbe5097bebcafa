/* RENAME (RFC 3501 §6.3.5): the mailbox and every mailbox below it move
 * (storage renames the children too). RENAME INBOX, which RFC 3501 defines
 * as moving INBOX's messages, is refused as WildDuck refuses it. */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-arena.h"
#include "wd-store-user.h"

#include <string.h>

struct rename_job {
	struct wd_imap_store_job base;
	const char *from, *to;
};

static void rename_work(void *context)
{
	struct rename_job *job = context;
	struct wd_mailbox *mailbox = NULL;
	job->base.ret = wd_store_mailbox_get_by_path(job->base.store, &job->base.user, job->from,
						     &mailbox, &job->base.error);
	if (job->base.ret == 0)
		job->base.ret = wd_store_mailbox_rename(job->base.store, &job->base.user,
							&mailbox->id, job->to, NULL,
							&job->base.error);
	wd_mailbox_free(&mailbox);
}

static enum wd_imap_cmd_result rename_done(struct wd_imap_cmd *cmd)
{
	struct rename_job *job = cmd->context;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "RENAME completed");
}

enum wd_imap_cmd_result wd_imap_cmd_rename(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 2))
		return WD_IMAP_CMD_DONE;
	struct rename_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->from = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[0]);
	if (job->from == NULL)
		return WD_IMAP_CMD_DONE;
	job->to = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[1]);
	if (job->to == NULL)
		return WD_IMAP_CMD_DONE;
	if (strcmp(job->from, "INBOX") == 0)
		return wd_imap_cmd_reply(cmd, "NO", "CANNOT", "INBOX cannot be renamed");
	if (strcmp(job->to, "INBOX") == 0)
		return wd_imap_cmd_reply(cmd, "NO", "ALREADYEXISTS", "INBOX already exists");
	return wd_imap_cmd_store_job(cmd, &job->base, rename_work, rename_done);
}
