/* STORE and UID STORE (RFC 3501 §6.4.6, RFC 7162 §3.1.3 UNCHANGEDSINCE).
 *
 *   STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] (flag ...) | flag ...
 *
 * One worker job changes the flags of the set's messages
 * (wd_store_message_flags: one MODSEQ for all, journal entries marked with
 * this session's id so the sync does not announce them again). Unless
 * .SILENT, the new FLAGS (with UID for UID STORE and MODSEQ under
 * CONDSTORE) are then streamed as for FETCH. Messages UNCHANGEDSINCE
 * refused are named in [MODIFIED set] of the tagged OK. */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-fetch.h"
#include "imap-view.h"
#include "wd-arena.h"
#include "wd-store-message.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STORE_MAX_FLAGS 100

struct store_ctx {
	struct wd_imap_fetch_stream stream; /* first */
	struct wd_imap_store_job job;
	bson_oid_t mailbox;
	struct wd_flags_change change;
	struct wd_flags_result result;
	struct wd_imap_fetch_span *spans;
	size_t span_count;
	bool silent;
	struct wd_imap_fetch_args args;
	struct wd_imap_fetch_request request;
};

static void store_ctx_free(void *context)
{
	struct store_ctx *ctx = context;
	free(ctx->result.modified);
	ctx->result.modified = NULL;
}

static void store_work(void *context)
{
	struct store_ctx *ctx = context;
	ctx->job.ret = wd_store_message_flags(ctx->job.store, &ctx->mailbox, &ctx->change,
					      &ctx->result, &ctx->job.error);
}

static enum wd_imap_cmd_result store_finish(struct wd_imap_cmd *cmd)
{
	struct store_ctx *ctx = cmd->context;
	struct wd_imap_session *session = cmd->session;
	wd_imap_cmd_sync_emit(cmd, cmd->uid);
	if (ctx->result.modified_count == 0)
		return wd_imap_cmd_reply(cmd, "OK", NULL, "STORE completed");
	/* [MODIFIED set]: UIDs for UID STORE, sequence numbers otherwise */
	uint32_t *numbers = ctx->result.modified;
	size_t n = 0;
	for (size_t i = 0; i < ctx->result.modified_count; i++) {
		uint32_t v = numbers[i];
		if (!cmd->uid)
			v = wd_imap_view_seq(session->selected->view, v);
		if (v != 0)
			numbers[n++] = v;
	}
	qsort(numbers, n, sizeof(*numbers), wd_imap_u32_compare);
	struct wd_buffer code = WD_BUFFER_INIT;
	wd_buffer_append_str(&code, "MODIFIED ");
	wd_imap_write_number_set(&code, numbers, n);
	wd_buffer_append(&code, "", 1);
	enum wd_imap_cmd_result r = wd_imap_cmd_reply(
		cmd, "OK", (const char *)wd_buffer_bytes(&code), "Conditional STORE failed");
	wd_buffer_release(&code);
	return r;
}

/* Leave the messages UNCHANGEDSINCE refused out of the FETCH responses
   (RFC 7162 §3.1.3): spans rebuilt from the UIDs that remain. */
static int drop_modified(struct wd_imap_cmd *cmd, struct store_ctx *ctx)
{
	const struct wd_imap_view *view = cmd->session->selected->view;
	size_t n = ctx->result.modified_count;
	uint32_t *modified = wd_arena_alloc(cmd->arena, n * sizeof(*modified));
	struct wd_imap_fetch_span *spans =
		wd_arena_alloc(cmd->arena, ctx->change.uid_count * sizeof(*spans));
	if (modified == NULL || spans == NULL)
		return -1;
	memcpy(modified, ctx->result.modified, n * sizeof(*modified));
	qsort(modified, n, sizeof(*modified), wd_imap_u32_compare);
	size_t count = 0;
	for (size_t i = 0; i < ctx->change.uid_count; i++) {
		uint32_t uid = ctx->change.uids[i];
		uint32_t seq = wd_imap_view_seq(view, uid);
		if (seq == 0 || bsearch(&uid, modified, n, sizeof(*modified), wd_imap_u32_compare))
			continue;
		struct wd_imap_fetch_span *last = count > 0 ? &spans[count - 1] : NULL;
		if (last != NULL && uid == last->uid_last + 1 &&
		    seq == last->seq_first + (last->uid_last - last->uid_first) + 1)
			last->uid_last = uid;
		else
			spans[count++] = (struct wd_imap_fetch_span){ uid, uid, seq };
	}
	ctx->spans = spans;
	ctx->span_count = count;
	return 0;
}

static enum wd_imap_cmd_result store_done(struct wd_imap_cmd *cmd)
{
	struct store_ctx *ctx = cmd->context;
	if (ctx->job.ret < 0)
		return wd_imap_cmd_store_error(cmd, ctx->job.ret, ctx->job.error);
	if (ctx->result.modified_count > 0 && drop_modified(cmd, ctx) < 0)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	bool condstore = cmd->session->condstore;
	if ((ctx->silent && (!condstore || ctx->result.changed == 0)) || cmd->session->closed)
		return store_finish(cmd);
	if (ctx->span_count == 0)
		return store_finish(cmd);
	/* the flags as they are now, as FETCH sends them; .SILENT under
	   CONDSTORE still tells the new MODSEQ (RFC 7162 §3.1.3) */
	ctx->args.items = (ctx->silent ? WD_IMAP_FETCH_MODSEQ : WD_IMAP_FETCH_FLAGS) |
			  (cmd->uid ? WD_IMAP_FETCH_UID : 0);
	wd_imap_cmd_fetch_request_init(cmd, &ctx->request, &ctx->args);
	ctx->request.spans = ctx->spans;
	ctx->request.span_count = ctx->span_count;
	return wd_imap_cmd_fetch_stream(cmd, &ctx->request, store_finish);
}

/* "+FLAGS.SILENT" and friends. */
static bool parse_item(const char *item, enum wd_flags_op *op_r, bool *silent_r)
{
	*op_r = WD_FLAGS_REPLACE;
	if (*item == '+') {
		*op_r = WD_FLAGS_ADD;
		item++;
	} else if (*item == '-') {
		*op_r = WD_FLAGS_REMOVE;
		item++;
	}
	if (strncasecmp(item, "FLAGS", 5) != 0)
		return false;
	item += 5;
	*silent_r = strcasecmp(item, ".SILENT") == 0;
	return *item == '\0' || *silent_r;
}

enum wd_imap_cmd_result wd_imap_cmd_store(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	const struct wd_imap_command *parsed = cmd->parsed;
	const struct wd_imap_arg *args = parsed->args;
	size_t count = parsed->arg_count, pos = 1;
	struct wd_imap_msgset set;
	const char *item;

	if (count < 3)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "STORE expects a set, an item and flags");
	struct store_ctx *ctx = wd_imap_cmd_context_new(cmd, sizeof(*ctx));
	if (ctx == NULL)
		return WD_IMAP_CMD_DONE;
	wd_arena_add_cleanup(cmd->arena, store_ctx_free, ctx);
	if (!wd_imap_cmd_msgset(cmd, &args[0], &set))
		return WD_IMAP_CMD_DONE;
	const struct wd_imap_arg *mods;
	size_t mod_count;
	if (wd_imap_arg_get_list(&args[1], &mods, &mod_count)) {
		const char *value;
		char *end;
		if (mod_count != 2 || !wd_imap_arg_atom_equals(&mods[0], "UNCHANGEDSINCE") ||
		    !wd_imap_arg_get_atom(&mods[1], &value) || value[0] < '0' || value[0] > '9')
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid STORE modifier");
		ctx->change.unchanged_since = strtoull(value, &end, 10);
		if (*end != '\0')
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid UNCHANGEDSINCE");
		session->condstore = true;
		pos++;
	}
	if (pos >= count)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "STORE item expected");
	if (!wd_imap_arg_get_atom(&args[pos], &item) ||
	    !parse_item(item, &ctx->change.op, &ctx->silent))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid STORE item");
	pos++;
	/* a flag list, or flags as separate atoms */
	const struct wd_imap_arg *flags = args + pos;
	size_t flag_count = count - pos;
	if (flag_count == 1 && wd_imap_arg_get_list(&args[pos], &flags, &flag_count)) {
		/* the list's elements */
	}
	if (flag_count > STORE_MAX_FLAGS)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Too many flags");
	const char **names = wd_arena_alloc(cmd->arena, (flag_count + 1) * sizeof(*names));
	if (names == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	for (size_t i = 0; i < flag_count; i++) {
		if (!wd_imap_arg_get_atom(&flags[i], &names[i]) || !wd_imap_flag_valid(names[i]))
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid flag");
	}
	if (sel->read_only)
		return wd_imap_cmd_reply(cmd, "NO", "READ-ONLY", "Mailbox is read-only");

	uint32_t *uids;
	size_t uid_count;
	if (wd_imap_cmd_msgset_spans(cmd, &set, &ctx->spans, &ctx->span_count, &uids,
				     &uid_count) < 0)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	if (uid_count == 0)
		return store_finish(cmd);
	ctx->change.uids = uids;
	ctx->change.uid_count = uid_count;
	ctx->change.flags = names;
	ctx->change.flag_count = flag_count;
	ctx->change.session_id = session->id;
	bson_oid_copy(&sel->mailbox, &ctx->mailbox);
	wd_imap_store_job_init(cmd, &ctx->job);
	return wd_imap_cmd_job(cmd, store_work, ctx, store_done);
}
