/* The session engine (imap-session.h): input → parser → command queue → run
 * loop → handler steps → output, with jobs on the worker pool.
 *
 * The run loop (session_run) is the only place that starts or resumes
 * commands. It is entered from the connection callbacks (input, drain) and
 * from job completions, never re-entered (a nested call sets `rerun`), and
 * holds a reference on the session while it runs, so nothing it uses is
 * freed under it.
 *
 * A job whose session closed before a worker took it is skipped (the
 * command's `abandoned` flag, set by on_close, read by the worker): a
 * client that gave up must not hold a worker thread, least of all while
 * the database is stuck and every job waits for dbs.timeout
 * (tests/faults/test_db_outage.py). Its done callback still runs and only
 * frees, so job functions need no part in it. */
#include "imap-session.h"

#include "imap-lease.h"
#include "wd-spool.h"

#include "imap-utf7.h"
#include "imap-writer.h"
#include "wd-arena.h"
#include "wd-conn.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum cmd_wait {
	CMD_RUNNABLE,
	CMD_WAIT_OUTPUT,
	CMD_WAIT_STORAGE,
	CMD_WAIT_INPUT,
};

static void session_run(struct wd_imap_session *session);

/* ---- per-user connection counts ---- */

static struct wd__imap_user_count **user_slot(struct wd_imap_server *server,
					      const bson_oid_t *user)
{
	size_t bucket = bson_oid_hash(user) % server->user_count_buckets;
	struct wd__imap_user_count **slot = &server->user_counts[bucket];
	while (*slot != NULL && !bson_oid_equal(&(*slot)->user, user))
		slot = &(*slot)->next;
	return slot;
}

static int user_count_take(struct wd_imap_server *server, const bson_oid_t *user,
			   unsigned limit)
{
	struct wd__imap_user_count **slot = user_slot(server, user);
	if (*slot == NULL) {
		struct wd__imap_user_count *uc = calloc(1, sizeof(*uc));
		if (uc == NULL)
			return WD_ERROR;
		bson_oid_copy(user, &uc->user);
		*slot = uc;
	}
	if (limit > 0 && (*slot)->count >= limit)
		return WD_ERROR;
	(*slot)->count++;
	return WD_OK;
}

static void user_count_release(struct wd_imap_server *server, const bson_oid_t *user)
{
	struct wd__imap_user_count **slot = user_slot(server, user);
	struct wd__imap_user_count *uc = *slot;
	if (uc == NULL)
		return;
	if (--uc->count == 0) {
		*slot = uc->next;
		free(uc);
	}
}

/* ---- commands ---- */

static struct wd_imap_cmd *cmd_new(struct wd_imap_session *session, struct wd_imap_command *parsed)
{
	struct wd_imap_cmd *cmd = calloc(1, sizeof(*cmd));
	if (cmd == NULL)
		return NULL;
	if (parsed == NULL) {
		struct wd_arena *arena = wd_arena_create(0);
		if (arena == NULL) {
			free(cmd);
			return NULL;
		}
		cmd->arena = arena;
	} else {
		cmd->parsed = parsed;
		cmd->arena = parsed->arena;
		cmd->tag = parsed->tag;
		cmd->name = parsed->name;
		cmd->uid = parsed->uid;
	}
	cmd->session = session;
	cmd->refcount = 1;
	wd_imap_session_ref(session);
	return cmd;
}

static void cmd_unref(struct wd_imap_cmd **_cmd)
{
	struct wd_imap_cmd *cmd = *_cmd;
	*_cmd = NULL;
	if (cmd == NULL || --cmd->refcount > 0)
		return;
	struct wd_imap_session *session = cmd->session;
	if (cmd->parsed != NULL)
		wd_imap_command_destroy(&cmd->parsed);
	else
		wd_arena_destroy(&cmd->arena);
	free(cmd);
	wd_imap_session_unref(&session);
}

static void queue_push(struct wd_imap_session *session, struct wd_imap_cmd *cmd)
{
	if (session->queue_tail != NULL)
		session->queue_tail->next = cmd;
	else
		session->queue_head = cmd;
	session->queue_tail = cmd;
	session->queued++;
}

static struct wd_imap_cmd *queue_pop(struct wd_imap_session *session)
{
	struct wd_imap_cmd *cmd = session->queue_head;
	if (cmd == NULL)
		return NULL;
	session->queue_head = cmd->next;
	if (session->queue_head == NULL)
		session->queue_tail = NULL;
	session->queued--;
	cmd->next = NULL;
	return cmd;
}

static void cmd_job_work(struct wd_work *work)
{
	struct wd_imap_cmd *cmd = work->context;
	if (atomic_load_explicit(&cmd->abandoned, memory_order_acquire))
		return;
	cmd->job_fn(cmd->job_context);
}

static void cmd_job_done(struct wd_work *work, int status)
{
	struct wd_imap_cmd *cmd = work->context;
	struct wd_imap_session *session = cmd->session;
	cmd->job_pending = false;
	if (status == WD_OK && !session->closed && session->current == cmd) {
		cmd->step = cmd->job_next;
		cmd->refcount--; /* the job's; the session still holds one */
		wd_imap_session_ref(session);
		session_run(session);
		wd_imap_session_unref(&session);
		return;
	}
	cmd_unref(&cmd);
}

enum wd_imap_cmd_result wd_imap_cmd_job(struct wd_imap_cmd *cmd, wd_imap_job_fn *fn,
					void *context, wd_imap_cmd_fn *next)
{
	struct wd_imap_server *server = cmd->session->server;
	memset(&cmd->work, 0, sizeof(cmd->work));
	cmd->work.work = cmd_job_work;
	cmd->work.done = cmd_job_done;
	cmd->work.context = cmd;
	cmd->job_fn = fn;
	cmd->job_context = context;
	cmd->job_next = next;
	cmd->refcount++;
	cmd->job_pending = true;
	atomic_store_explicit(&cmd->abandoned, false, memory_order_relaxed);
	const char *error;
	if (wd_worker_pool_submit(server->deps.pool, server->deps.queue, &cmd->work, &error) < 0) {
		cmd->refcount--;
		cmd->job_pending = false;
		wd_warning("imap", "%s: job refused: %s", cmd->session->id, error);
		return wd_imap_cmd_reply(cmd, "NO", "UNAVAILABLE", "Server busy, try again later");
	}
	return WD_IMAP_CMD_WAIT_STORAGE;
}

/* ---- output ---- */

int wd_imap_session_send(struct wd_imap_session *session)
{
	struct wd_buffer *out = &session->out;
	int ret = WD_OK;
	if (out->len > 0 && !session->closed)
		ret = wd_conn_write(session->conn, wd_buffer_bytes(out), out->len);
	wd_buffer_clear(out);
	if (out->cap > 64 * 1024)
		wd_buffer_release(out);
	return ret;
}

int wd_imap_session_untagged(struct wd_imap_session *session, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char stack[512];
	int n = vsnprintf(stack, sizeof(stack), fmt, ap);
	va_end(ap);
	if (n < 0)
		return WD_ERROR;
	int ret;
	if ((size_t)n < sizeof(stack)) {
		ret = wd_buffer_printf(&session->out, "* %s\r\n", stack);
	} else {
		char *big = malloc((size_t)n + 1);
		if (big == NULL)
			return WD_ERROR;
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		ret = wd_buffer_printf(&session->out, "* %s\r\n", big);
		free(big);
	}
	if (ret < 0)
		return WD_ERROR;
	return wd_imap_session_send(session);
}

int wd_imap_session_status(struct wd_imap_session *session, const char *tag, const char *status,
			   const char *code, const char *text)
{
	if (wd_imap_write_status(&session->out, tag, status, code, text) < 0)
		return WD_ERROR;
	return wd_imap_session_send(session);
}

enum wd_imap_cmd_result wd_imap_cmd_reply(struct wd_imap_cmd *cmd, const char *status,
					  const char *code, const char *text)
{
	wd_imap_session_status(cmd->session, cmd->tag, status, code, text);
	return WD_IMAP_CMD_DONE;
}

enum wd_imap_cmd_result wd_imap_cmd_replyf(struct wd_imap_cmd *cmd, const char *status,
					   const char *code, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return wd_imap_cmd_reply(cmd, status, code, text);
}

bool wd_imap_session_output_full(const struct wd_imap_session *session)
{
	return wd_conn_output_full(session->conn);
}

/* ---- state ---- */

bool wd_imap_session_auth_allowed(const struct wd_imap_session *session)
{
	return wd_tls_plaintext_auth_allowed(session->server->set.insecure_auth, session->conn);
}

void wd_imap_session_update_limits(struct wd_imap_session *session)
{
	session->limits.utf8_accept = session->utf8_accept;
	wd_imap_parser_set_limits(session->parser, &session->limits);
}

int wd_imap_session_login(struct wd_imap_session *session, const bson_oid_t *user,
			  const char *username, unsigned limit, bool leased)
{
	if (leased) {
		session->leased = true;
	} else {
		if (user_count_take(session->server, user, limit) < 0)
			return WD_ERROR;
		session->counted = true;
	}
	session->has_user = true;
	bson_oid_copy(user, &session->user);
	free(session->username);
	session->username = strdup(username);
	session->state = WD_IMAP_STATE_AUTH;
	return WD_OK;
}

void wd_imap_session_unselect(struct wd_imap_session *session)
{
	struct wd_imap_selected *sel = session->selected;
	if (sel == NULL)
		return;
	session->selected = NULL;
	wd__imap_selected_free(sel);
	if (session->state == WD_IMAP_STATE_SELECTED)
		session->state = WD_IMAP_STATE_AUTH;
}

static void timeout_cb(struct wd_conn *conn, void *context);

static void arm_timeout(struct wd_imap_session *session)
{
	const struct wd_imap_settings *set = &session->server->set;
	unsigned ms = session->state == WD_IMAP_STATE_NOT_AUTH ? set->unauth_timeout_ms
							       : set->idle_timeout_ms;
	wd_conn_set_timeout(session->conn, ms, timeout_cb);
}

static void timeout_cb(struct wd_conn *conn, void *context)
{
	struct wd_imap_session *session = context;
	if (session->current != NULL && session->current->job_pending) {
		/* a slow storage call is not idleness */
		arm_timeout(session);
		return;
	}
	wd_info("imap", "%s: %s timeout", session->id,
		session->state == WD_IMAP_STATE_NOT_AUTH ? "unauthenticated" : "idle");
	wd_imap_session_bye(session, "Autologout; idle for too long");
}

void wd_imap_session_bye(struct wd_imap_session *session, const char *text)
{
	if (session->closed)
		return;
	wd_imap_session_status(session, NULL, "BYE", NULL, text);
	wd_conn_flush(session->conn);
	session->closed = true;
	wd_conn_close(session->conn, text);
}

/* ---- the run loop ---- */

static enum wd_imap_cmd_result cmd_begin(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	if (cmd->error_text != NULL) {
		wd_imap_session_status(session, cmd->tag, cmd->error_status, cmd->error_code,
				       cmd->error_text);
		if (cmd->error_close)
			session->close_after = true;
		return WD_IMAP_CMD_DONE;
	}
	const struct wd_imap_command_def *def = cmd->def;
	if (def == NULL || (cmd->uid && !(def->flags & WD_IMAP_CMD_UID)))
		return wd_imap_cmd_replyf(cmd, "BAD", NULL, "Unknown command %s%s",
					  cmd->uid ? "UID " : "", cmd->name);
	if (!(def->states & session->state)) {
		if (session->state == WD_IMAP_STATE_NOT_AUTH)
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Log in first");
		if (def->states == WD_IMAP_STATE_NOT_AUTH)
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Already authenticated");
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Select a mailbox first");
	}
	cmd->step = def->handler;
	return def->handler(cmd);
}

static struct wd_imap_cmd *queue_error(struct wd_imap_session *session,
				       const struct wd_imap_event *ev)
{
	struct wd_imap_cmd *cmd = cmd_new(session, NULL);
	if (cmd == NULL)
		return NULL;
	cmd->tag = ev->tag != NULL ? wd_arena_strdup(cmd->arena, ev->tag) : NULL;
	cmd->name = "";
	cmd->error_status = ev->respond_no ? "NO" : "BAD";
	cmd->error_code = ev->resp_code;
	cmd->error_text = wd_arena_strdup(cmd->arena, ev->message != NULL ? ev->message
									  : "Syntax error");
	cmd->error_close = ev->recovery == WD_IMAP_RECOVER_CLOSE;
	cmd->step = cmd_begin;
	queue_push(session, cmd);
	return cmd;
}

static void apply_result(struct wd_imap_session *session, struct wd_imap_cmd *cmd,
			 enum wd_imap_cmd_result result);

static void spools_drop(struct wd_spool **spools, size_t count)
{
	for (size_t i = 0; i < count; i++)
		wd_spool_destroy(&spools[i]);
	free(spools);
}

static void session_spools_drop(struct wd_imap_session *session)
{
	wd_spool_destroy(&session->spool_current);
	spools_drop(session->spools, session->spool_count);
	session->spools = NULL;
	session->spool_count = 0;
	session->spool_failed = false;
}

static void cmd_spools_free(void *context)
{
	struct wd_imap_cmd *cmd = context;
	spools_drop(cmd->spools, cmd->spool_count);
	cmd->spools = NULL;
	cmd->spool_count = 0;
}

/* APPEND's message literals (top level, after the mailbox name) are
   streamed into spools instead of the argument tree. */
static void literal_begin(struct wd_imap_session *session, const struct wd_imap_event *ev)
{
	if (ev->name == NULL || ev->uid || strcmp(ev->name, "APPEND") != 0 ||
	    ev->literal_depth != 0 || ev->literal_index < 1 ||
	    session->state == WD_IMAP_STATE_NOT_AUTH)
		return;
	if (wd_imap_parser_literal_stream(session->parser) < 0)
		return;
	wd_spool_destroy(&session->spool_current);
	session->spool_current = wd_spool_create(WD_SPOOL_MEMORY);
	if (session->spool_current == NULL)
		session->spool_failed = true;
}

static void literal_data(struct wd_imap_session *session, const struct wd_imap_event *ev)
{
	if (session->spool_current == NULL)
		return;
	if (!session->spool_failed &&
	    wd_spool_write(session->spool_current, ev->data, ev->len) < 0)
		session->spool_failed = true;
	if (!ev->last)
		return;
	struct wd_spool **grown =
		realloc(session->spools, (session->spool_count + 1) * sizeof(*grown));
	if (grown == NULL) {
		session->spool_failed = true;
		wd_spool_destroy(&session->spool_current);
		return;
	}
	session->spools = grown;
	session->spools[session->spool_count++] = session->spool_current;
	session->spool_current = NULL;
}

/* One event from the parser. Returns false to stop parsing for now. */
static bool handle_event(struct wd_imap_session *session, struct wd_imap_event *ev)
{
	switch (ev->type) {
	case WD_IMAP_EVENT_COMMAND: {
		struct wd_imap_cmd *cmd = cmd_new(session, ev->command);
		if (cmd == NULL) {
			wd_imap_command_destroy(&ev->command);
			wd_imap_session_bye(session, "Out of memory");
			return false;
		}
		cmd->def = wd_imap_command_find(cmd->name);
		cmd->step = cmd_begin;
		if (session->spool_count > 0 || session->spool_failed) {
			cmd->spools = session->spools;
			cmd->spool_count = session->spool_count;
			cmd->spool_failed = session->spool_failed;
			session->spools = NULL;
			session->spool_count = 0;
			session->spool_failed = false;
			wd_arena_add_cleanup(cmd->arena, cmd_spools_free, cmd);
		}
		queue_push(session, cmd);
		if (cmd->def != NULL && (cmd->def->flags & WD_IMAP_CMD_BARRIER)) {
			session->barrier = true;
			return false;
		}
		return true;
	}
	case WD_IMAP_EVENT_CONTINUE:
		wd_conn_write_str(session->conn, "+ Ready for literal data\r\n");
		wd_conn_flush(session->conn);
		return true;
	case WD_IMAP_EVENT_LITERAL:
		/* literals go into the argument tree, APPEND's messages to spools */
		literal_begin(session, ev);
		return true;
	case WD_IMAP_EVENT_LITERAL_DATA:
		literal_data(session, ev);
		return true;
	case WD_IMAP_EVENT_LINE: {
		struct wd_imap_cmd *cmd = session->current;
		session->reading_line = false;
		if (cmd == NULL || cmd->on_line == NULL)
			return true;
		cmd->refcount++;
		enum wd_imap_cmd_result result = cmd->on_line(cmd, ev->data, ev->len);
		apply_result(session, cmd, result);
		cmd_unref(&cmd);
		return true;
	}
	case WD_IMAP_EVENT_ERROR:
		session_spools_drop(session);
		if (queue_error(session, ev) == NULL) {
			wd_imap_session_bye(session, "Out of memory");
			return false;
		}
		return ev->recovery != WD_IMAP_RECOVER_CLOSE;
	}
	return true;
}

/* Parse buffered input into the queue (or a raw line for the current
   command) as far as allowed. */
static void parse_input(struct wd_imap_session *session)
{
	/* after an event the parser may have one without input (CONTINUE
	   right after a sync literal's header, when nothing follows yet) */
	bool after_event = false;
	while (!session->closed && !session->waiting_output) {
		if (!session->reading_line &&
		    (session->barrier || session->queued >= WD_IMAP_MAX_QUEUED))
			break;
		size_t len, consumed = 0;
		const uint8_t *data = wd_conn_input(session->conn, &len);
		if (len == 0 && !after_event)
			break;
		after_event = false;
		struct wd_imap_event ev;
		int ret = wd_imap_parser_feed(session->parser, data, len, &consumed, &ev);
		bool more = true;
		if (ret == WD_OK)
			more = handle_event(session, &ev);
		if (session->closed)
			break;
		wd_conn_consume(session->conn, consumed);
		if (ret != WD_OK || !more)
			break;
		after_event = true;
	}
}

static void cmd_finish(struct wd_imap_session *session, struct wd_imap_cmd *cmd)
{
	if (session->current == cmd) {
		session->current = NULL;
		if (cmd->def != NULL && (cmd->def->flags & WD_IMAP_CMD_BARRIER))
			session->barrier = false;
		cmd_unref(&cmd);
	}
	if (!session->closed)
		arm_timeout(session);
	if (session->close_after && !session->closed) {
		wd_conn_flush(session->conn);
		session->closed = true;
		wd_conn_close(session->conn, "closed by server");
	}
}

static void apply_result(struct wd_imap_session *session, struct wd_imap_cmd *cmd,
			 enum wd_imap_cmd_result result)
{
	switch (result) {
	case WD_IMAP_CMD_DONE:
		cmd_finish(session, cmd);
		if (!session->closed && wd_conn_output_full(session->conn))
			session->waiting_output = true;
		break;
	case WD_IMAP_CMD_WAIT_OUTPUT:
		session->waiting_output = true;
		break;
	case WD_IMAP_CMD_WAIT_STORAGE:
		break;
	case WD_IMAP_CMD_WAIT_INPUT:
		wd_conn_flush(session->conn);
		session->reading_line = true;
		wd_imap_parser_read_line(session->parser);
		break;
	}
}

static enum cmd_wait cmd_wait_state(const struct wd_imap_session *session,
				    const struct wd_imap_cmd *cmd)
{
	if (cmd->job_pending)
		return CMD_WAIT_STORAGE;
	if (session->reading_line)
		return CMD_WAIT_INPUT;
	if (session->waiting_output)
		return CMD_WAIT_OUTPUT;
	return CMD_RUNNABLE;
}

static void session_run(struct wd_imap_session *session)
{
	if (session->running)
		return;
	session->running = true;
	wd_imap_session_ref(session);
	while (!session->closed) {
		parse_input(session);
		if (session->closed)
			break;
		struct wd_imap_cmd *cmd = session->current;
		if (cmd == NULL) {
			if (session->waiting_output || session->queue_head == NULL)
				break;
			cmd = session->current = queue_pop(session);
		}
		if (cmd_wait_state(session, cmd) != CMD_RUNNABLE)
			break;
		apply_result(session, cmd, cmd->step(cmd));
	}
	if (!session->closed)
		wd_conn_flush(session->conn);
	session->running = false;
	wd_imap_session_unref(&session);
}

/* ---- connection callbacks ---- */

static void on_input(struct wd_conn *conn, void *context)
{
	session_run(context);
}

static void on_drain(struct wd_conn *conn, void *context)
{
	struct wd_imap_session *session = context;
	session->waiting_output = false;
	session_run(session);
}

static void on_close(struct wd_conn *conn, void *context, const char *reason)
{
	struct wd_imap_session *session = context;
	struct wd_imap_server *server = session->server;
	wd_debug("imap", "%s: closed (%s)", session->id, reason);
	session->closed = true;
	struct wd_imap_cmd *cmd;
	while ((cmd = queue_pop(session)) != NULL)
		cmd_unref(&cmd);
	if (session->current != NULL) {
		cmd = session->current;
		session->current = NULL;
		if (cmd->job_pending)
			atomic_store_explicit(&cmd->abandoned, true, memory_order_release);
		cmd_unref(&cmd); /* a pending job keeps its own reference */
	}
	if (session->counted) {
		user_count_release(server, &session->user);
		session->counted = false;
	}
	wd_imap_lease_release(session);
	if (session->prev != NULL)
		session->prev->next = session->next;
	else
		server->sessions = session->next;
	if (session->next != NULL)
		session->next->prev = session->prev;
	session->prev = session->next = NULL;
	server->session_count--;
	wd_imap_session_unref(&session);
}

static const struct wd_conn_callbacks session_callbacks = {
	.on_input = on_input,
	.on_drain = on_drain,
	.on_close = on_close,
};

void wd__imap_session_accept(struct wd_conn *conn, void *context)
{
	struct wd_imap_server *server = context;
	if (server->shutting_down) {
		wd_conn_write_str(conn, "* BYE Server shutting down\r\n");
		wd_conn_close(conn, "shutting down");
		return;
	}
	struct wd_imap_session *session = calloc(1, sizeof(*session));
	if (session != NULL) {
		wd_imap_parser_limits_default(&session->limits);
		session->limits.max_literal = server->set.max_message;
		session->limits.literal_plus = server->set.literal_plus;
		session->limits.literal_minus = !server->set.literal_plus;
		session->parser = wd_imap_parser_create(&session->limits);
	}
	if (session == NULL || session->parser == NULL) {
		free(session);
		wd_conn_write_str(conn, "* BYE Out of memory\r\n");
		wd_conn_close(conn, "out of memory");
		return;
	}
	session->server = server;
	session->conn = conn;
	wd_conn_ref(conn);
	session->refcount = 1; /* dropped in on_close */
	session->state = WD_IMAP_STATE_NOT_AUTH;
	/* unique in the process across loops (the journal's `ignore` and the
	   connection lease name sessions by it) */
	static atomic_uint_fast64_t session_counter;
	snprintf(session->id, sizeof(session->id), "%08x%08x", (unsigned)getpid() & 0xffffff,
		 (unsigned)(atomic_fetch_add(&session_counter, 1) + 1));
	session->next = server->sessions;
	if (server->sessions != NULL)
		server->sessions->prev = session;
	server->sessions = session;
	server->session_count++;
	wd_conn_set_callbacks(conn, &session_callbacks, session);
	wd_debug("imap", "%s: connection from %s%s", session->id, wd_conn_peer_ip(conn),
		 wd_conn_is_tls(conn) ? " (TLS)" : "");

	wd_buffer_append_str(&session->out, "* OK [CAPABILITY ");
	wd_imap_session_capabilities(session);
	wd_buffer_printf(&session->out, "] %s ready\r\n", server->set.greeting);
	wd_imap_session_send(session);
	wd_conn_flush(conn);
	arm_timeout(session);
}

void wd_imap_session_ref(struct wd_imap_session *session)
{
	session->refcount++;
}

void wd_imap_session_unref(struct wd_imap_session **_session)
{
	struct wd_imap_session *session = *_session;
	*_session = NULL;
	if (session == NULL || --session->refcount > 0)
		return;
	wd_imap_session_unselect(session);
	session_spools_drop(session);
	wd_imap_parser_destroy(&session->parser);
	wd_buffer_release(&session->out);
	free(session->username);
	wd_conn_unref(&session->conn);
	free(session);
}
