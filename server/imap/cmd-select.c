/* SELECT / EXAMINE (RFC 3501 §6.3.1-2, CONDSTORE and QRESYNC parameters of
 * RFC 7162), CLOSE (§6.4.2) and UNSELECT (RFC 3691).
 *
 * One job does the blocking part: the mailbox by path, the view and its
 * state (imap-view.h), the \Recent claim for a read-write SELECT
 * (imap-sync.h), and with QRESYNC the flag changes since the client's
 * modseq. The loop thread then installs the selected state and writes the
 * untagged responses in RFC 3501's order. A failed SELECT leaves the
 * session unselected (RFC 3501 §6.3.1); selecting while selected first
 * sends "* OK [CLOSED]" (RFC 7162 §3.2.11). */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-mailbox-args.h"
#include "imap-sync.h"
#include "imap-view.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

struct select_job {
	struct wd_imap_store_job base;
	const char *path;
	bool read_only;
	struct wd_imap_select_args args;
	/* results */
	struct wd_mailbox *mailbox;
	struct wd_imap_view *view;
	struct wd_imap_mailbox_state state;
	bool has_state;
	uint32_t recent_first;
	struct wd_imap_changes *changes; /* QRESYNC: flag changes since args.modseq */
};

static void select_job_free(void *context)
{
	struct select_job *job = context;
	wd_mailbox_free(&job->mailbox);
	wd_imap_view_destroy(&job->view);
	if (job->has_state)
		wd_imap_mailbox_state_free(&job->state);
	wd_imap_changes_free(&job->changes);
}

static void select_work(void *context)
{
	struct select_job *job = context;
	struct wd_imap_store_job *base = &job->base;
	base->ret = wd_store_mailbox_get_by_path(base->store, &base->user, job->path, &job->mailbox,
						 &base->error);
	if (base->ret < 0)
		return;
	base->ret = wd_imap_view_load_state(base->store, &job->mailbox->id, &job->view,
					    &job->state, &base->error);
	if (base->ret < 0)
		return;
	job->has_state = true;
	uint32_t last = job->state.uid_next > 0 ? job->state.uid_next - 1 : 0;
	job->recent_first = last + 1;
	if (!job->read_only && last > 0 &&
	    wd_imap_recent_claim(base->store, &job->mailbox->id, last, &job->recent_first) < 0)
		job->recent_first = last + 1;
	if (job->args.qresync && job->args.uidvalidity == job->state.uid_validity &&
	    job->args.modseq < job->state.highest_modseq) {
		char *error = NULL;
		if (wd_imap_sync_read_full(base->store, &job->mailbox->id, job->args.modseq, false,
					   &job->changes, &error) < 0) {
			/* the client then resynchronises the slow way */
			job->changes = NULL;
			free(error);
		}
	}
}

void wd__imap_selected_free(struct wd_imap_selected *selected)
{
	if (selected == NULL)
		return;
	wd_imap_view_destroy(&selected->view);
	struct wd_imap_sync *sync = selected->sync;
	wd_imap_sync_destroy(&sync);
	free(selected->saved);
	free(selected->path);
	free(selected);
}

static void write_flag_list(struct wd_buffer *out, const struct wd_imap_mailbox_state *state,
			    bool with_star)
{
	wd_buffer_append_str(out, "(\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (size_t i = 0; i < state->flag_count; i++) {
		const char *flag = state->flags[i];
		/* keywords are atoms; anything else in the database is not sent */
		if (flag[0] == '\0' || flag[0] == '\\' || strpbrk(flag, " (){%*\"\\]") != NULL)
			continue;
		bool plain = true;
		for (const char *p = flag; *p != '\0'; p++)
			plain = plain && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
		if (plain)
			wd_buffer_printf(out, " %s", flag);
	}
	wd_buffer_append_str(out, with_star ? " \\*)" : ")");
}

static enum wd_imap_cmd_result select_done(struct wd_imap_cmd *cmd)
{
	struct select_job *job = cmd->context;
	struct wd_imap_session *session = cmd->session;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);

	struct wd_imap_selected *sel = calloc(1, sizeof(*sel));
	struct wd_imap_sync *sync = wd_imap_sync_create(job->state.highest_modseq);
	if (sel == NULL || sync == NULL || (sel->path = strdup(job->mailbox->path)) == NULL) {
		free(sel);
		wd_imap_sync_destroy(&sync);
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	}
	bson_oid_copy(&job->mailbox->id, &sel->mailbox);
	sel->read_only = job->read_only;
	sel->view = job->view;
	job->view = NULL;
	sel->uid_validity = job->state.uid_validity;
	sel->uid_next = job->state.uid_next;
	sel->highest_modseq = job->state.highest_modseq;
	sel->sync = sync;
	uint32_t last = sel->uid_next > 0 ? sel->uid_next - 1 : 0;
	if (job->recent_first <= last)
		wd_imap_sync_recent_add(sync, job->recent_first, last);
	session->selected = sel;
	session->state = WD_IMAP_STATE_SELECTED;
	if (job->args.condstore || job->args.qresync)
		session->condstore = true;

	struct wd_buffer *out = &session->out;
	wd_buffer_append_str(out, "* FLAGS ");
	write_flag_list(out, &job->state, false);
	wd_buffer_printf(out, "\r\n* %u EXISTS\r\n* %u RECENT\r\n", wd_imap_view_count(sel->view),
			 wd_imap_sync_recent_count(sync, sel->view));
	if (job->state.first_unseen > 0)
		wd_buffer_printf(out, "* OK [UNSEEN %u] First unseen\r\n", job->state.first_unseen);
	if (sel->read_only) {
		wd_buffer_append_str(out, "* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n");
	} else {
		wd_buffer_append_str(out, "* OK [PERMANENTFLAGS ");
		write_flag_list(out, &job->state, true);
		wd_buffer_append_str(out, "] Flags permitted\r\n");
	}
	wd_buffer_printf(out, "* OK [UIDVALIDITY %u] UIDs valid\r\n", sel->uid_validity);
	wd_buffer_printf(out, "* OK [UIDNEXT %u] Predicted next UID\r\n", sel->uid_next);
	if (wd_imap_capability_enabled("CONDSTORE"))
		wd_buffer_printf(out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
				 (unsigned long long)sel->highest_modseq);
	if (job->args.qresync && job->args.uidvalidity == sel->uid_validity) {
		wd_imap_sync_vanished_earlier(sel->view, cmd->arena, &job->args.known_uids,
					      sel->uid_next, out);
		if (job->changes != NULL) {
			wd_imap_sync_add(sync, sel->view, job->changes);
			job->changes = NULL;
			wd_imap_sync_emit(sync, sel->view,
					  WD_IMAP_SYNC_EXPUNGE_OK | WD_IMAP_SYNC_CONDSTORE |
						  WD_IMAP_SYNC_QRESYNC,
					  out);
		}
	}
	wd_imap_session_send(session);
	return wd_imap_cmd_replyf(cmd, "OK", sel->read_only ? "READ-ONLY" : "READ-WRITE",
				  "%s completed", cmd->name);
}

static enum wd_imap_cmd_result select_start(struct wd_imap_cmd *cmd, bool read_only)
{
	struct wd_imap_session *session = cmd->session;
	struct select_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	const char *error;
	if (wd_imap_select_args_parse(cmd->arena, cmd->parsed->args, cmd->parsed->arg_count,
				      &job->args, &error) < 0)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, error);
	if (job->args.qresync && !session->qresync)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "QRESYNC is not enabled");
	if (job->args.condstore && !wd_imap_capability_enabled("CONDSTORE"))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "CONDSTORE is not supported");
	struct wd_imap_arg name_arg = cmd->parsed->args[0];
	job->path = wd_imap_cmd_mailbox_arg(cmd, &name_arg);
	if (job->path == NULL)
		return WD_IMAP_CMD_DONE;
	if (session->selected != NULL) {
		wd_imap_session_unselect(session);
		wd_imap_session_untagged(session, "OK [CLOSED] Previous mailbox closed");
	}
	job->read_only = read_only;
	wd_arena_add_cleanup(cmd->arena, select_job_free, job);
	return wd_imap_cmd_store_job(cmd, &job->base, select_work, select_done);
}

enum wd_imap_cmd_result wd_imap_cmd_select(struct wd_imap_cmd *cmd)
{
	return select_start(cmd, false);
}

enum wd_imap_cmd_result wd_imap_cmd_examine(struct wd_imap_cmd *cmd)
{
	return select_start(cmd, true);
}

enum wd_imap_cmd_result wd_imap_cmd_unselect(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	wd_imap_session_unselect(cmd->session);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "UNSELECT completed");
}

/* CLOSE: a read-write mailbox loses its \Deleted messages silently. */
struct close_job {
	struct wd_imap_store_job base;
	bson_oid_t mailbox;
	char session_id[32];
	uint32_t *expunged;
	size_t count;
};

static void close_job_free(void *context)
{
	struct close_job *job = context;
	free(job->expunged);
}

static void close_work(void *context)
{
	struct close_job *job = context;
	job->base.ret = wd_store_message_expunge(job->base.store, &job->mailbox, NULL, 0,
						 job->session_id, &job->expunged, &job->count,
						 &job->base.error);
}

static enum wd_imap_cmd_result close_done(struct wd_imap_cmd *cmd)
{
	struct close_job *job = cmd->context;
	wd_imap_session_unselect(cmd->session);
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "CLOSE completed");
}

enum wd_imap_cmd_result wd_imap_cmd_close(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	if (session->selected->read_only) {
		wd_imap_session_unselect(session);
		return wd_imap_cmd_reply(cmd, "OK", NULL, "CLOSE completed");
	}
	struct close_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	wd_arena_add_cleanup(cmd->arena, close_job_free, job);
	bson_oid_copy(&session->selected->mailbox, &job->mailbox);
	memcpy(job->session_id, session->id, sizeof(job->session_id));
	return wd_imap_cmd_store_job(cmd, &job->base, close_work, close_done);
}
