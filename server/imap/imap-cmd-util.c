/* Helpers shared by the command handlers (imap-commands.h). */
#include "imap-commands.h"

#include "imap-session.h"
#include "imap-utf7.h"
#include "wd-arena.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

static void free_job_error(void *context)
{
	struct wd_imap_store_job *job = context;
	free(job->error);
	job->error = NULL;
}

void wd_imap_store_job_init(struct wd_imap_cmd *cmd, struct wd_imap_store_job *job)
{
	struct wd_imap_session *session = cmd->session;
	job->store = session->server->deps.store;
	bson_oid_copy(&session->user, &job->user);
	job->ret = 0;
	job->error = NULL;
	wd_arena_add_cleanup(cmd->arena, free_job_error, job);
}

enum wd_imap_cmd_result wd_imap_cmd_store_job(struct wd_imap_cmd *cmd,
					      struct wd_imap_store_job *job, wd_imap_job_fn *fn,
					      wd_imap_cmd_fn *next)
{
	wd_imap_store_job_init(cmd, job);
	return wd_imap_cmd_job(cmd, fn, job, next);
}

void *wd_imap_cmd_context_new(struct wd_imap_cmd *cmd, size_t size)
{
	cmd->context = wd_arena_zalloc(cmd->arena, size);
	if (cmd->context == NULL)
		wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	return cmd->context;
}

enum wd_imap_cmd_result wd_imap_cmd_store_error(struct wd_imap_cmd *cmd, int ret,
						const char *error)
{
	const char *code;
	const char *text = error;
	switch (ret) {
	case WD_STORE_ERR_NOT_FOUND:
		code = "NONEXISTENT";
		text = "Mailbox does not exist";
		break;
	case WD_STORE_ERR_EXISTS:
		code = "ALREADYEXISTS";
		text = "Mailbox already exists";
		break;
	case WD_STORE_ERR_LIMIT:
		code = "LIMIT";
		break;
	case WD_STORE_ERR_INVALID:
		code = "CANNOT";
		break;
	case WD_STORE_ERR_NOT_PERMITTED:
		code = "CANNOT";
		break;
	case WD_STORE_ERR_DATABASE:
		/* the database unreachable, stuck past dbs.timeout or answering
		   errors: RFC 5530's temporary failure, the client tries again */
		code = "UNAVAILABLE";
		text = "Temporarily unavailable, try again later";
		break;
	default:
		code = "SERVERBUG";
		text = "Internal server error";
		break;
	}
	return wd_imap_cmd_reply(cmd, "NO", code, text != NULL ? text : "Failed");
}

const char *wd_imap_cmd_mailbox_arg(struct wd_imap_cmd *cmd, const struct wd_imap_arg *arg)
{
	const char *raw, *name, *error;
	size_t len;
	if (!wd_imap_arg_get_astring(arg, &raw, &len)) {
		wd_imap_cmd_reply(cmd, "BAD", NULL, "Mailbox name expected");
		return NULL;
	}
	if (wd_imap_mailbox_name_decode(cmd->arena, raw, len, cmd->session->utf8_accept, &name,
					&error) < 0) {
		wd_imap_cmd_replyf(cmd, "BAD", NULL, "Invalid mailbox name: %s", error);
		return NULL;
	}
	char *normal = wd_mailbox_path_normalize(name);
	if (normal == NULL) {
		wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
		return NULL;
	}
	name = wd_arena_strdup(cmd->arena, normal);
	free(normal);
	return name;
}

bool wd_imap_cmd_want_args(struct wd_imap_cmd *cmd, size_t count)
{
	size_t have = cmd->parsed != NULL ? cmd->parsed->arg_count : 0;
	if (have == count)
		return true;
	wd_imap_cmd_replyf(cmd, "BAD", NULL, "%s expects %zu argument%s", cmd->name, count,
			   count == 1 ? "" : "s");
	return false;
}
