/* DELETE (RFC 3501 §6.3.4). Storage is flat: children stay (RFC 3501 allows
 * it; WildDuck does the same). INBOX and special-use mailboxes are refused by
 * storage. */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-arena.h"
#include "wd-store-user.h"

#include <string.h>

struct delete_job {
	struct wd_imap_store_job base;
	const char *path;
};

static void delete_work(void *context)
{
	struct delete_job *job = context;
	struct wd_mailbox *mailbox = NULL;
	job->base.ret = wd_store_mailbox_get_by_path(job->base.store, &job->base.user, job->path,
						     &mailbox, &job->base.error);
	if (job->base.ret == 0)
		job->base.ret = wd_store_mailbox_delete(job->base.store, &job->base.user,
							&mailbox->id, &job->base.error);
	wd_mailbox_free(&mailbox);
}

static enum wd_imap_cmd_result delete_done(struct wd_imap_cmd *cmd)
{
	struct delete_job *job = cmd->context;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "DELETE completed");
}

enum wd_imap_cmd_result wd_imap_cmd_delete(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 1))
		return WD_IMAP_CMD_DONE;
	struct delete_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->path = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[0]);
	if (job->path == NULL)
		return WD_IMAP_CMD_DONE;
	if (strcmp(job->path, "INBOX") == 0)
		return wd_imap_cmd_reply(cmd, "NO", "CANNOT", "INBOX cannot be deleted");
	return wd_imap_cmd_store_job(cmd, &job->base, delete_work, delete_done);
}
