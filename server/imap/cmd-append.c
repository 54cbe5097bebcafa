/* APPEND (RFC 3501 §6.3.11, RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID,
 * RFC 7889 APPENDLIMIT).
 *
 *   APPEND mailbox [(flags)] ["date-time"] literal [[(flags)] ["date-time"] literal ...]
 *
 * The message literals never enter the argument tree: the session streams
 * them into spools while the command is parsed (wd-spool.h; the parser
 * refuses one above APPENDLIMIT with NO [TOOBIG]). The job finds the
 * mailbox (missing: NO [TRYCREATE]) and stores each message with
 * wd_store_message_add; the answer is OK [APPENDUID validity uids]. */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-spool.h"
#include "wd-arena.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define APPEND_MAX_FLAGS 100

struct append_msg {
	struct wd_spool *spool;
	const char **flags;
	size_t flag_count;
	int64_t idate_ms;
};

struct append_ctx {
	struct wd_imap_store_job job; /* first */
	const char *path;
	char session_id[32];
	struct append_msg *msgs;
	size_t count;
	struct wd_mailbox *mailbox;
	uint32_t *uids;
	size_t done;
	struct wd_imap_selected_read read;
};

static void append_ctx_free(void *context)
{
	struct append_ctx *ctx = context;
	wd_mailbox_free(&ctx->mailbox);
}

static void append_work(void *context)
{
	struct append_ctx *ctx = context;
	struct wd_imap_store_job *job = &ctx->job;
	job->ret = wd_store_mailbox_get_by_path(job->store, &job->user, ctx->path, &ctx->mailbox,
						&job->error);
	for (size_t i = 0; job->ret >= 0 && i < ctx->count; i++) {
		const struct append_msg *msg = &ctx->msgs[i];
		struct wd_message_add req = { 0 };
		struct wd_message_added added;
		size_t len;
		if (wd_spool_map(msg->spool, &req.raw, &len) < 0) {
			job->ret = -1;
			job->error = strdup("Could not read the message spool");
			return;
		}
		req.len = len;
		req.flags = msg->flags;
		req.flag_count = msg->flag_count;
		req.idate_ms = msg->idate_ms;
		req.source = "IMAP";
		req.session_id = ctx->session_id;
		req.decode_base64 = true;
		job->ret = wd_store_message_add(job->store, &ctx->mailbox->id, &req, &added,
						&job->error);
		if (job->ret >= 0)
			ctx->uids[ctx->done++] = added.uid;
	}
	if (job->ret >= 0)
		wd_imap_selected_read_run(job->store, &ctx->read, &ctx->mailbox->id);
}

static enum wd_imap_cmd_result append_done(struct wd_imap_cmd *cmd)
{
	struct append_ctx *ctx = cmd->context;
	if (ctx->job.ret == WD_STORE_ERR_NOT_FOUND && ctx->mailbox == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "TRYCREATE", "Mailbox does not exist");
	if (ctx->job.ret < 0)
		return wd_imap_cmd_store_error(cmd, ctx->job.ret, ctx->job.error);
	wd_imap_selected_read_apply(cmd, &ctx->read, true);
	struct wd_buffer code = WD_BUFFER_INIT;
	wd_buffer_printf(&code, "APPENDUID %u ", ctx->mailbox->uid_validity);
	wd_imap_write_number_set(&code, ctx->uids, ctx->done);
	wd_buffer_append(&code, "", 1);
	enum wd_imap_cmd_result r = wd_imap_cmd_reply(cmd, "OK", (const char *)wd_buffer_bytes(&code),
						      "APPEND completed");
	wd_buffer_release(&code);
	return r;
}

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be space-padded) → ms; -1 if invalid. */
static int64_t parse_date_time(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int day, year, hh, mm, ss, zone;
	char mon[4], sign;
	if (strlen(s) != 26 && !(strlen(s) == 25 && s[1] == '-'))
		return -1;
	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &day, mon, &year, &hh, &mm, &ss, &sign,
		   &zone) != 8 || (sign != '+' && sign != '-'))
		return -1;
	const char *m = strstr(months, mon);
	if (m == NULL || strlen(mon) != 3 || (m - months) % 3 != 0)
		return -1;
	if (day < 1 || day > 31 || year < 1970 || hh > 23 || mm > 59 || ss > 60 ||
	    zone % 100 > 59 || hh < 0 || mm < 0 || ss < 0 || zone < 0)
		return -1;
	struct tm tm = { .tm_mday = day, .tm_mon = (int)(m - months) / 3, .tm_year = year - 1900,
			 .tm_hour = hh, .tm_min = mm, .tm_sec = ss };
	int64_t t = (int64_t)timegm(&tm);
	int64_t offset = (zone / 100) * 3600 + (zone % 100) * 60;
	t -= sign == '+' ? offset : -offset;
	return t * 1000;
}

enum wd_imap_cmd_result wd_imap_cmd_append(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	const struct wd_imap_command *parsed = cmd->parsed;
	const struct wd_imap_arg *args = parsed->args;
	size_t count = parsed->arg_count, pos = 1, spool = 0;
	struct append_ctx *ctx;

	if (cmd->spool_failed)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Could not store the literal");
	if (count < 2)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "APPEND expects a mailbox and a message");
	if ((ctx = wd_imap_cmd_context_new(cmd, sizeof(*ctx))) == NULL)
		return WD_IMAP_CMD_DONE;
	wd_arena_add_cleanup(cmd->arena, append_ctx_free, ctx);
	if ((ctx->path = wd_imap_cmd_mailbox_arg(cmd, &args[0])) == NULL)
		return WD_IMAP_CMD_DONE;
	ctx->msgs = wd_arena_zalloc(cmd->arena, (cmd->spool_count + 1) * sizeof(*ctx->msgs));
	ctx->uids = wd_arena_zalloc(cmd->arena, (cmd->spool_count + 1) * sizeof(*ctx->uids));
	if (ctx->msgs == NULL || ctx->uids == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	while (pos < count) {
		struct append_msg *msg = &ctx->msgs[ctx->count];
		const struct wd_imap_arg *list;
		size_t n;
		const char *str;
		size_t len;
		if (wd_imap_arg_get_list(&args[pos], &list, &n)) {
			if (n > APPEND_MAX_FLAGS)
				return wd_imap_cmd_reply(cmd, "BAD", NULL, "Too many flags");
			msg->flags = wd_arena_alloc(cmd->arena, (n + 1) * sizeof(*msg->flags));
			if (msg->flags == NULL)
				return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
			for (size_t i = 0; i < n; i++) {
				if (!wd_imap_arg_get_atom(&list[i], &msg->flags[i]) ||
				    !wd_imap_flag_valid(msg->flags[i]))
					return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid flag");
			}
			msg->flag_count = n;
			pos++;
		}
		if (pos < count && !args[pos].streamed && args[pos].type != WD_IMAP_ARG_LIST &&
		    wd_imap_arg_get_string(&args[pos], &str, &len)) {
			if ((msg->idate_ms = parse_date_time(str)) < 0)
				return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid date-time");
			pos++;
		}
		if (pos >= count || !args[pos].streamed || spool >= cmd->spool_count)
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Message literal expected");
		msg->spool = cmd->spools[spool++];
		ctx->count++;
		pos++;
	}
	memcpy(ctx->session_id, session->id, sizeof(ctx->session_id));
	wd_imap_selected_read_init(cmd, &ctx->read);
	return wd_imap_cmd_store_job(cmd, &ctx->job, append_work, append_done);
}
