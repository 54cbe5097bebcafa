/* CREATE (RFC 3501 §6.3.3) with CREATE-SPECIAL-USE (RFC 6154 §3):
 * "CREATE name (USE (\Sent))". A trailing "/" only says the name will have
 * children (storage is flat: WildDuck creates no parents either). */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-arena.h"
#include "wd-store-user.h"

#include <string.h>
#include <strings.h>

struct create_job {
	struct wd_imap_store_job base;
	const char *path;
	struct wd_mailbox_create opts;
};

static void create_work(void *context)
{
	struct create_job *job = context;
	bson_oid_t id;
	job->base.ret = wd_store_mailbox_create(job->base.store, &job->base.user, job->path,
						&job->opts, &id, &job->base.error);
}

static enum wd_imap_cmd_result create_done(struct wd_imap_cmd *cmd)
{
	struct create_job *job = cmd->context;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "CREATE completed");
}

static const char *const special_uses[] = { "\\Sent", "\\Trash", "\\Drafts", "\\Junk" };

static bool refuse(struct wd_imap_cmd *cmd, const char *status, const char *code,
		   const char *text)
{
	wd_imap_cmd_reply(cmd, status, code, text);
	return false;
}

/* (USE (\Sent)): at most one attribute, one storage knows. False after
   answering. */
static bool parse_use(struct wd_imap_cmd *cmd, const struct wd_imap_arg *arg,
					 const char **special_use_r)
{
	const struct wd_imap_arg *opts, *uses;
	size_t count, use_count;
	if (!wd_imap_arg_get_list(arg, &opts, &count) || count != 2 ||
	    !wd_imap_arg_atom_equals(&opts[0], "USE") ||
	    !wd_imap_arg_get_list(&opts[1], &uses, &use_count))
		return refuse(cmd, "BAD", NULL, "Invalid CREATE parameters");
	for (size_t i = 0; i < use_count; i++) {
		const char *use;
		if (!wd_imap_arg_get_atom(&uses[i], &use))
			return refuse(cmd, "BAD", NULL, "Invalid special-use attribute");
		const char *known = NULL;
		for (size_t k = 0; k < sizeof(special_uses) / sizeof(special_uses[0]); k++) {
			if (strcasecmp(use, special_uses[k]) == 0)
				known = special_uses[k];
		}
		if (known == NULL || (*special_use_r != NULL && *special_use_r != known))
			return refuse(cmd, "NO", "USEATTR", "Unsupported special-use attribute");
		*special_use_r = known;
	}
	return true;
}

enum wd_imap_cmd_result wd_imap_cmd_create(struct wd_imap_cmd *cmd)
{
	size_t count = cmd->parsed->arg_count;
	if (count < 1 || count > 2)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "CREATE expects a mailbox name");
	struct create_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->path = wd_imap_cmd_mailbox_arg(cmd, &cmd->parsed->args[0]);
	if (job->path == NULL)
		return WD_IMAP_CMD_DONE;
	if (strcmp(job->path, "INBOX") == 0)
		return wd_imap_cmd_reply(cmd, "NO", "ALREADYEXISTS", "INBOX always exists");
	if (count == 2 && !parse_use(cmd, &cmd->parsed->args[1], &job->opts.special_use))
		return WD_IMAP_CMD_DONE;
	return wd_imap_cmd_store_job(cmd, &job->base, create_work, create_done);
}
