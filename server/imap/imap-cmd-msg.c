/* Helpers of the message commands (FETCH, STORE, SEARCH, EXPUNGE, COPY,
 * MOVE): the message set argument against the session's view, spans and UID
 * lists for storage, the untagged updates at a command's safe point, and
 * the FETCH stream that FETCH and STORE share (imap-commands.h). */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-fetch.h"
#include "imap-sync.h"
#include "imap-view.h"
#include "wd-arena.h"
#include "wd-conn.h"
#include "wd-log.h"
#include "wd-notify.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Output a FETCH job produces per step before the loop thread sends it. */
#define FETCH_STEP_BUDGET (64 * 1024)

static void free_pointer(void *context)
{
	void **p = context;
	free(*p);
	*p = NULL;
}

bool wd_imap_cmd_msgset(struct wd_imap_cmd *cmd, const struct wd_imap_arg *arg,
			struct wd_imap_msgset *set_r)
{
	const char *str, *error;
	struct wd_imap_selected *sel = cmd->session->selected;
	memset(set_r, 0, sizeof(*set_r));
	if (!wd_imap_arg_get_atom(arg, &str)) {
		wd_imap_cmd_reply(cmd, "BAD", NULL, "Sequence set expected");
		return false;
	}
	if (wd_imap_seqset_parse(cmd->arena, str, strlen(str), WD_IMAP_SEQSET_ALLOW_SAVED, 0,
				 &set_r->set, &error) < 0) {
		wd_imap_cmd_replyf(cmd, "BAD", NULL, "Invalid sequence set: %s", error);
		return false;
	}
	set_r->uid = cmd->uid;
	if (set_r->set.saved) {
		/* "$" (RFC 5182) is kept as UIDs, whatever the command */
		set_r->uid = true;
		set_r->set.ranges = sel->saved;
		set_r->set.count = sel->saved_count;
		set_r->set.saved = false;
		set_r->set.has_star = false;
	}
	return true;
}

int wd_imap_cmd_msgset_uidset(struct wd_imap_cmd *cmd, const struct wd_imap_msgset *set,
			      struct wd_imap_seqset *uids_r)
{
	const struct wd_imap_view *view = cmd->session->selected->view;
	if (!set->uid)
		return wd_imap_view_seqs_to_uids(view, cmd->arena, &set->set, uids_r);
	*uids_r = set->set;
	uids_r->ranges = wd_arena_alloc(cmd->arena, (set->set.count + 1) * sizeof(*uids_r->ranges));
	if (uids_r->ranges == NULL)
		return WD_ERROR;
	memcpy(uids_r->ranges, set->set.ranges, set->set.count * sizeof(*uids_r->ranges));
	wd_imap_seqset_resolve(uids_r, wd_imap_view_last_uid(view));
	return WD_OK;
}

int wd_imap_cmd_msgset_spans(struct wd_imap_cmd *cmd, const struct wd_imap_msgset *set,
			     struct wd_imap_fetch_span **spans_r, size_t *count_r,
			     uint32_t **uids_r, size_t *uid_count_r)
{
	struct wd_imap_view_iter iter;
	struct wd_imap_fetch_span *spans = NULL;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0, un = 0, ucap = 0;
	uint32_t seq, uid;

	*spans_r = NULL;
	*count_r = 0;
	if (uids_r != NULL) {
		*uids_r = NULL;
		*uid_count_r = 0;
	}
	if (wd_imap_view_iter_init(&iter, cmd->session->selected->view, cmd->arena, &set->set,
				   set->uid) < 0)
		return WD_ERROR;
	while (wd_imap_view_iter_next(&iter, &seq, &uid)) {
		if (uids_r != NULL) {
			if (un == ucap) {
				ucap = ucap == 0 ? 64 : ucap * 2;
				uint32_t *grown = realloc(uids, ucap * sizeof(*uids));
				if (grown == NULL)
					goto fail;
				uids = grown;
			}
			uids[un++] = uid;
		}
		if (n > 0) {
			struct wd_imap_fetch_span *last = &spans[n - 1];
			if (uid == last->uid_last + 1 &&
			    seq == last->seq_first + (last->uid_last - last->uid_first) + 1) {
				last->uid_last = uid;
				continue;
			}
		}
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			struct wd_imap_fetch_span *grown = realloc(spans, cap * sizeof(*spans));
			if (grown == NULL)
				goto fail;
			spans = grown;
		}
		spans[n++] = (struct wd_imap_fetch_span){ uid, uid, seq };
	}
	/* freed with the command */
	void **holder = wd_arena_alloc(cmd->arena, 2 * sizeof(void *));
	if (holder == NULL)
		goto fail;
	holder[0] = spans;
	holder[1] = uids;
	wd_arena_add_cleanup(cmd->arena, free_pointer, &holder[0]);
	wd_arena_add_cleanup(cmd->arena, free_pointer, &holder[1]);
	*spans_r = spans;
	*count_r = n;
	if (uids_r != NULL) {
		*uids_r = uids;
		*uid_count_r = un;
	}
	return WD_OK;
fail:
	free(spans);
	free(uids);
	return WD_ERROR;
}

void wd_imap_session_sync(struct wd_imap_session *session, struct wd_imap_changes *changes,
			  bool expunge_ok)
{
	struct wd_imap_selected *sel = session->selected;
	if (sel == NULL || session->closed) {
		wd_imap_changes_free(&changes);
		return;
	}
	if (changes != NULL)
		wd_imap_sync_add(sel->sync, sel->view, changes);
	unsigned flags = expunge_ok ? WD_IMAP_SYNC_EXPUNGE_OK : 0;
	if (session->condstore)
		flags |= WD_IMAP_SYNC_CONDSTORE;
	if (session->qresync)
		flags |= WD_IMAP_SYNC_QRESYNC;
	if (!wd_imap_sync_pending(sel->sync, flags))
		return;
	wd_imap_sync_emit(sel->sync, sel->view, flags, &session->out);
	wd_imap_session_send(session);
}

void wd_imap_selected_read_prepare(struct wd_imap_session *session,
				   struct wd_imap_selected_read *read)
{
	struct wd_imap_selected *sel = session->selected;
	struct wd_imap_server *server = session->server;
	memset(read, 0, sizeof(*read));
	if (sel == NULL)
		return;
	read->active = true;
	bson_oid_copy(&sel->mailbox, &read->mailbox);
	read->modseq = wd_imap_sync_modseq(sel->sync);
	read->claim_recent = !sel->read_only;
	memcpy(read->session_id, session->id, sizeof(read->session_id));
	read->started_ms = (int64_t)uv_now(server->deps.loop);
	bool redis_up = server->notify != NULL && wd_notify_connected(server->notify);
	read->kind = wd_imap_sync_due(sel->sync, &server->sync_policy, read->started_ms, true,
				      redis_up) == WD_IMAP_SYNC_FULL ?
			     WD_IMAP_SYNC_FULL :
			     WD_IMAP_SYNC_JOURNAL;
}

void wd_imap_selected_read_clear(struct wd_imap_selected_read *read)
{
	wd_imap_changes_free(&read->changes);
	free(read->error);
	read->error = NULL;
}

static void selected_read_free(void *context)
{
	wd_imap_selected_read_clear(context);
}

void wd_imap_selected_read_init(struct wd_imap_cmd *cmd, struct wd_imap_selected_read *read)
{
	wd_imap_selected_read_prepare(cmd->session, read);
	wd_arena_add_cleanup(cmd->arena, selected_read_free, read);
}

void wd_imap_selected_read_run(struct wd_store *store, struct wd_imap_selected_read *read,
			       const bson_oid_t *target)
{
	if (!read->active || (target != NULL && !bson_oid_equal(&read->mailbox, target)))
		return;
	wd_imap_selected_read_clear(read);
	read->ret = wd_imap_sync_read(store, &read->mailbox, read->modseq, read->session_id,
				      read->claim_recent, (enum wd_imap_sync_due)read->kind,
				      &read->changes, &read->error);
	if (read->ret < 0)
		wd_imap_changes_free(&read->changes);
}

void wd_imap_selected_read_finish(struct wd_imap_session *session,
				  struct wd_imap_selected_read *read, bool expunge_ok)
{
	struct wd_imap_selected *sel = session->selected;
	struct wd_imap_changes *changes = read->changes;
	read->changes = NULL;
	bool same = sel != NULL && read->active && bson_oid_equal(&sel->mailbox, &read->mailbox);
	if (read->active && read->ret < 0)
		wd_warning("imap", "%s: %s read failed: %s", session->id,
			   read->kind == WD_IMAP_SYNC_FULL ? "mailbox" : "journal",
			   read->error != NULL ? read->error : "?");
	if (!same)
		wd_imap_changes_free(&changes);
	else if (read->ret == WD_OK && changes != NULL)
		wd_imap_sync_read_done(sel->sync, (enum wd_imap_sync_due)read->kind,
				       read->started_ms);
	wd_imap_session_sync(session, changes, expunge_ok);
}

void wd_imap_selected_read_apply(struct wd_imap_cmd *cmd, struct wd_imap_selected_read *read,
				 bool expunge_ok)
{
	wd_imap_selected_read_finish(cmd->session, read, expunge_ok);
}

void wd_imap_cmd_sync_emit(struct wd_imap_cmd *cmd, bool expunge_ok)
{
	wd_imap_session_sync(cmd->session, NULL, expunge_ok);
}

void wd_imap_cmd_announce_expunged(struct wd_imap_cmd *cmd, const uint32_t *uids, size_t count)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	struct wd_buffer *out = &session->out;
	bool vanished = session->qresync;
	size_t written = 0;
	uint32_t run_first = 0, run_last = 0;

	for (size_t i = 0; i < count; i++) {
		uint32_t seq;
		if (wd_imap_view_expunge(sel->view, uids[i], &seq) < 0)
			continue; /* announced already (another session's expunge) */
		if (!vanished) {
			wd_buffer_printf(out, "* %u EXPUNGE\r\n", seq);
			continue;
		}
		if (written > 0 && run_last + 1 == uids[i]) {
			run_last = uids[i];
			continue;
		}
		if (written > 0)
			wd_buffer_printf(out, run_first == run_last ? "%s%u" : "%s%u:%u",
					 written == 1 ? "* VANISHED " : ",", run_first, run_last);
		if (written == 0)
			written = 1;
		else
			written = 2;
		run_first = run_last = uids[i];
	}
	if (vanished && written > 0)
		wd_buffer_printf(out, run_first == run_last ? "%s%u\r\n" : "%s%u:%u\r\n",
				 written == 1 ? "* VANISHED " : ",", run_first, run_last);
	wd_imap_session_send(session);
}

bool wd_imap_flag_valid(const char *flag)
{
	static const char *const system[] = { "\\Answered", "\\Flagged", "\\Deleted", "\\Seen",
					      "\\Draft" };
	if (flag[0] != '\\')
		return flag[0] != '\0' && strpbrk(flag, "(){%*\"\\]") == NULL;
	for (size_t i = 0; i < sizeof(system) / sizeof(system[0]); i++) {
		if (strcasecmp(flag, system[i]) == 0)
			return true;
	}
	return false;
}

int wd_imap_u32_compare(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int wd_imap_write_number_set(struct wd_buffer *out, const uint32_t *numbers, size_t count)
{
	int ret = 0;
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && numbers[j + 1] == numbers[j] + 1)
			j++;
		if (j == i)
			ret |= wd_buffer_printf(out, "%s%u", i == 0 ? "" : ",", numbers[i]);
		else
			ret |= wd_buffer_printf(out, "%s%u:%u", i == 0 ? "" : ",", numbers[i],
						numbers[j]);
		i = j + 1;
	}
	return ret < 0 ? WD_ERROR : WD_OK;
}

/* ---- the FETCH stream ---- */

static void stream_free(void *context)
{
	struct wd_imap_fetch_stream *stream = context;
	wd_imap_fetch_run_destroy(&stream->run);
	wd_buffer_release(&stream->buf);
	free(stream->error);
	stream->error = NULL;
}

static void stream_work(void *context)
{
	struct wd_imap_fetch_stream *stream = context;
	free(stream->error);
	stream->error = NULL;
	stream->ret = wd_imap_fetch_run_step(stream->run, &stream->buf, FETCH_STEP_BUDGET,
					     &stream->error);
	stream->broken = stream->ret < 0 && wd_imap_fetch_run_broken(stream->run);
}

static enum wd_imap_cmd_result stream_next(struct wd_imap_cmd *cmd);

static struct wd_imap_fetch_stream *cmd_stream(struct wd_imap_cmd *cmd)
{
	/* every context that streams starts with the stream */
	return cmd->context;
}

static enum wd_imap_cmd_result stream_step_done(struct wd_imap_cmd *cmd)
{
	struct wd_imap_fetch_stream *stream = cmd_stream(cmd);
	struct wd_imap_session *session = cmd->session;
	if (session->closed)
		return WD_IMAP_CMD_DONE;
	if (stream->buf.len > 0) {
		wd_buffer_append(&session->out, wd_buffer_bytes(&stream->buf), stream->buf.len);
		wd_buffer_clear(&stream->buf);
		wd_imap_session_send(session);
	}
	if (stream->ret < 0) {
		if (stream->broken) {
			wd_imap_session_bye(session, "FETCH response could not be completed");
			return WD_IMAP_CMD_DONE;
		}
		/* the database failed (unreachable, past dbs.timeout): temporary */
		return wd_imap_cmd_reply(cmd, "NO", "UNAVAILABLE",
					 stream->error != NULL ? stream->error : "FETCH failed");
	}
	if (stream->ret == WD_OK)
		return stream->done(cmd);
	cmd->step = stream_next;
	if (wd_imap_session_output_full(session))
		return WD_IMAP_CMD_WAIT_OUTPUT;
	return stream_next(cmd);
}

static enum wd_imap_cmd_result stream_next(struct wd_imap_cmd *cmd)
{
	return wd_imap_cmd_job(cmd, stream_work, cmd_stream(cmd), stream_step_done);
}

enum wd_imap_cmd_result wd_imap_cmd_fetch_stream(struct wd_imap_cmd *cmd,
						 const struct wd_imap_fetch_request *request,
						 wd_imap_cmd_fn *done)
{
	struct wd_imap_fetch_stream *stream = cmd_stream(cmd);
	struct wd_buffer empty = WD_BUFFER_INIT;
	stream->buf = empty;
	stream->done = done;
	stream->run = wd_imap_fetch_run_create(request);
	wd_arena_add_cleanup(cmd->arena, stream_free, stream);
	if (stream->run == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	return stream_next(cmd);
}

void wd_imap_cmd_fetch_request_init(struct wd_imap_cmd *cmd, struct wd_imap_fetch_request *req,
				    const struct wd_imap_fetch_args *args)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_selected *sel = session->selected;
	size_t recent_count;
	const struct wd_imap_seq_range *recent =
		wd_imap_sync_recent_ranges(sel->sync, &recent_count);
	struct wd_search_uid_range *copy = NULL;
	if (recent_count > 0) {
		copy = wd_arena_alloc(cmd->arena, recent_count * sizeof(*copy));
		if (copy == NULL)
			recent_count = 0;
		for (size_t i = 0; i < recent_count; i++)
			copy[i] = (struct wd_search_uid_range){ recent[i].first, recent[i].last };
	}
	memset(req, 0, sizeof(*req));
	req->store = session->server->deps.store;
	bson_oid_copy(&sel->mailbox, &req->mailbox);
	req->args = args;
	if (session->utf8_accept)
		req->flags |= WD_IMAP_FETCH_F_UTF8;
	if (session->condstore)
		req->flags |= WD_IMAP_FETCH_F_CONDSTORE;
	if (sel->read_only)
		req->flags |= WD_IMAP_FETCH_F_READONLY;
	req->recent = copy;
	req->recent_count = recent_count;
	req->session_id = session->id;
}
