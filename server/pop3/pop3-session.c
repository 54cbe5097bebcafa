/* The POP3 session engine (pop3-session.h): input → parser → command queue
 * → run loop → handler steps → output, with jobs on the worker pool.
 *
 * The run loop (session_run) is the only place that starts or resumes
 * commands. It is entered from the connection callbacks (input, drain,
 * timer) and from job completions, never re-entered, and holds a reference
 * on the session while it runs, so nothing it uses is freed under it. */
#include "pop3-session.h"

#include "wd-conn.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void session_run(struct wd_pop3_session *session);
static void arm_timeout(struct wd_pop3_session *session);
static void timeout_cb(struct wd_conn *conn, void *context);

/* ---- commands ---- */

static struct wd_pop3_cmd *cmd_new(struct wd_pop3_session *session, const char *name,
				   const uint8_t *args, size_t args_len)
{
	struct wd_pop3_cmd *cmd = calloc(1, sizeof(*cmd));
	if (cmd == NULL)
		return NULL;
	cmd->args = malloc(args_len + 1);
	if (cmd->args == NULL) {
		free(cmd);
		return NULL;
	}
	if (args_len > 0)
		memcpy(cmd->args, args, args_len);
	cmd->args[args_len] = '\0';
	cmd->args_len = args_len;
	snprintf(cmd->name_buf, sizeof(cmd->name_buf), "%s", name);
	cmd->name = cmd->name_buf;
	cmd->session = session;
	cmd->refcount = 1;
	wd_pop3_session_ref(session);
	return cmd;
}

static void cmd_unref(struct wd_pop3_cmd **_cmd)
{
	struct wd_pop3_cmd *cmd = *_cmd;
	*_cmd = NULL;
	if (cmd == NULL || --cmd->refcount > 0)
		return;
	struct wd_pop3_session *session = cmd->session;
	if (cmd->context != NULL) {
		if (cmd->context_free != NULL)
			cmd->context_free(cmd->context);
		free(cmd->context);
	}
	/* PASS and AUTH carry credentials */
	explicit_bzero(cmd->args, cmd->args_len);
	free(cmd->args);
	free(cmd);
	wd_pop3_session_unref(&session);
}

static void queue_push(struct wd_pop3_session *session, struct wd_pop3_cmd *cmd)
{
	if (session->queue_tail != NULL)
		session->queue_tail->next = cmd;
	else
		session->queue_head = cmd;
	session->queue_tail = cmd;
	session->queued++;
}

static struct wd_pop3_cmd *queue_pop(struct wd_pop3_session *session)
{
	struct wd_pop3_cmd *cmd = session->queue_head;
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
	struct wd_pop3_cmd *cmd = work->context;
	cmd->job_fn(cmd->job_context);
}

static void cmd_job_done(struct wd_work *work, int status)
{
	struct wd_pop3_cmd *cmd = work->context;
	struct wd_pop3_session *session = cmd->session;
	cmd->pending = false;
	if (status == WD_OK && !session->closed && session->current == cmd) {
		cmd->step = cmd->job_next;
		cmd->refcount--; /* the job's; the session still holds one */
		wd_pop3_session_ref(session);
		session_run(session);
		wd_pop3_session_unref(&session);
		return;
	}
	cmd_unref(&cmd);
}

enum wd_pop3_cmd_result wd_pop3_cmd_job(struct wd_pop3_cmd *cmd, wd_pop3_job_fn *fn,
					void *context, wd_pop3_cmd_fn *next)
{
	struct wd_pop3_server *server = cmd->session->server;
	memset(&cmd->work, 0, sizeof(cmd->work));
	cmd->work.work = cmd_job_work;
	cmd->work.done = cmd_job_done;
	cmd->work.context = cmd;
	cmd->job_fn = fn;
	cmd->job_context = context;
	cmd->job_next = next;
	cmd->refcount++;
	cmd->pending = true;
	const char *error;
	if (wd_worker_pool_submit(server->deps.pool, server->deps.queue, &cmd->work, &error) < 0) {
		cmd->refcount--;
		cmd->pending = false;
		wd_warning("pop3", "%s: job refused: %s", cmd->session->id, error);
		if (cmd->in_response) {
			cmd->session->close_after = true;
			return WD_POP3_CMD_DONE;
		}
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Server busy, try again later");
	}
	return WD_POP3_CMD_WAIT_STORAGE;
}

/* The delay uses the connection's one timer: the idle timeout is re-armed
   when the command finishes. No reference is taken: after the connection
   closed its timer never fires, and the command went with the session's
   queue. */
enum wd_pop3_cmd_result wd_pop3_cmd_delay(struct wd_pop3_cmd *cmd, unsigned ms,
					  wd_pop3_cmd_fn *next)
{
	struct wd_pop3_session *session = cmd->session;
	if (ms == 0) {
		cmd->step = next;
		return next(cmd);
	}
	cmd->job_next = next;
	cmd->pending = true;
	session->delaying = true;
	wd_conn_set_timeout(session->conn, ms, timeout_cb);
	return WD_POP3_CMD_WAIT_STORAGE;
}

/* ---- output ---- */

int wd_pop3_session_send(struct wd_pop3_session *session)
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

bool wd_pop3_session_output_full(const struct wd_pop3_session *session)
{
	return wd_conn_output_full(session->conn);
}

/* ---- state ---- */

bool wd_pop3_session_auth_allowed(const struct wd_pop3_session *session)
{
	return wd_tls_plaintext_auth_allowed(session->server->set.insecure_auth, session->conn);
}

bool wd_pop3_session_stls_allowed(const struct wd_pop3_session *session)
{
	return session->server->tls != NULL && !session->server->set.disable_starttls &&
	       !wd_conn_is_tls(session->conn) && session->state == WD_POP3_STATE_AUTHORIZATION;
}

int wd_pop3_session_login(struct wd_pop3_session *session, const bson_oid_t *user,
			  const char *username, struct wd_pop3_maildrop *maildrop)
{
	uint8_t *marks = calloc(maildrop->count > 0 ? maildrop->count : 1, 1);
	char *name = strdup(username);
	if (marks == NULL || name == NULL) {
		free(marks);
		free(name);
		return WD_ERROR;
	}
	session->marks = marks;
	free(session->username);
	session->username = name;
	session->maildrop = *maildrop;
	memset(maildrop, 0, sizeof(*maildrop));
	session->live_count = session->maildrop.count;
	session->live_size = session->maildrop.size;
	session->has_user = true;
	bson_oid_copy(user, &session->user);
	session->state = WD_POP3_STATE_TRANSACTION;
	return WD_OK;
}

static void close_now(struct wd_pop3_session *session, const char *reason)
{
	wd_conn_flush(session->conn);
	session->closed = true;
	wd_conn_close(session->conn, reason);
}

void wd_pop3_session_abort(struct wd_pop3_session *session, const char *text)
{
	if (session->closed)
		return;
	wd_buffer_printf(&session->out, "-ERR %s\r\n", text);
	wd_pop3_session_send(session);
	close_now(session, text);
}

static void timeout_cb(struct wd_conn *conn, void *context)
{
	struct wd_pop3_session *session = context;
	if (session->delaying) {
		session->delaying = false;
		struct wd_pop3_cmd *cmd = session->current;
		if (cmd != NULL && cmd->pending) {
			cmd->pending = false;
			cmd->step = cmd->job_next;
			session_run(session);
		}
		return;
	}
	if (session->current != NULL && session->current->pending) {
		/* a slow storage call is not idleness */
		arm_timeout(session);
		return;
	}
	wd_info("pop3", "%s: idle timeout", session->id);
	wd_pop3_session_abort(session, "Disconnected for inactivity");
}

static void arm_timeout(struct wd_pop3_session *session)
{
	if (!session->delaying)
		wd_conn_set_timeout(session->conn, session->server->set.idle_timeout_ms, timeout_cb);
}

/* ---- the run loop ---- */

static enum wd_pop3_cmd_result cmd_begin(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	const struct wd_pop3_command_def *def = cmd->def;
	if (cmd->error_text != NULL || def == NULL) {
		const char *text = cmd->error_text != NULL ? cmd->error_text : "Unknown command";
		if (++session->bad_commands >= WD_POP3_MAX_BAD_COMMANDS) {
			session->close_after = true;
			return wd_pop3_cmd_err(cmd, NULL, "%s; too many bad commands, closing", text);
		}
		return wd_pop3_cmd_err(cmd, NULL, "%s", text);
	}
	session->bad_commands = 0;
	if (!(def->states & session->state)) {
		if (session->state == WD_POP3_STATE_AUTHORIZATION)
			return wd_pop3_cmd_err(cmd, NULL, "Log in first");
		return wd_pop3_cmd_err(cmd, NULL, "Command not valid in this state");
	}
	cmd->step = def->handler;
	return def->handler(cmd);
}

static void queue_error(struct wd_pop3_session *session, const char *error)
{
	struct wd_pop3_cmd *cmd = cmd_new(session, "", NULL, 0);
	if (cmd == NULL) {
		wd_pop3_session_abort(session, "Out of memory");
		return;
	}
	cmd->error_text = error;
	cmd->step = cmd_begin;
	queue_push(session, cmd);
}

static void apply_result(struct wd_pop3_session *session, struct wd_pop3_cmd *cmd,
			 enum wd_pop3_cmd_result result);

/* One event from the parser. Returns false to stop parsing for now. */
static bool handle_event(struct wd_pop3_session *session, const struct wd_pop3_event *ev)
{
	switch (ev->type) {
	case WD_POP3_EVENT_COMMAND: {
		struct wd_pop3_cmd *cmd = cmd_new(session, ev->name, ev->args, ev->args_len);
		if (cmd == NULL) {
			wd_pop3_session_abort(session, "Out of memory");
			return false;
		}
		cmd->def = wd_pop3_command_find(cmd->name);
		cmd->step = cmd_begin;
		queue_push(session, cmd);
		if (cmd->def != NULL && (cmd->def->flags & WD_POP3_CMD_BARRIER)) {
			session->barrier = true;
			return false;
		}
		return true;
	}
	case WD_POP3_EVENT_LINE: {
		struct wd_pop3_cmd *cmd = session->current;
		session->reading_line = false;
		if (cmd == NULL || cmd->on_line == NULL)
			return true;
		cmd->refcount++;
		apply_result(session, cmd, cmd->on_line(cmd, ev->args, ev->args_len));
		cmd_unref(&cmd);
		return true;
	}
	case WD_POP3_EVENT_ERROR:
		if (session->reading_line && session->current != NULL) {
			/* the raw line a command waited for was unusable */
			struct wd_pop3_cmd *cmd = session->current;
			session->reading_line = false;
			cmd->refcount++;
			apply_result(session, cmd, wd_pop3_cmd_err(cmd, NULL, "%s", ev->error));
			cmd_unref(&cmd);
			return true;
		}
		queue_error(session, ev->error);
		return !session->closed;
	}
	return true;
}

/* Parse buffered input into the queue (or a raw line for the current
   command) as far as allowed. */
static void parse_input(struct wd_pop3_session *session)
{
	while (!session->closed && !session->waiting_output) {
		if (!session->reading_line &&
		    (session->barrier || session->queued >= WD_POP3_MAX_QUEUED))
			break;
		size_t len, consumed = 0;
		const uint8_t *data = wd_conn_input(session->conn, &len);
		if (len == 0)
			break;
		struct wd_pop3_event ev;
		int ret = wd_pop3_parser_feed(session->parser, data, len, &consumed, &ev);
		bool more = true;
		if (ret == WD_OK)
			more = handle_event(session, &ev);
		if (session->closed)
			break;
		wd_conn_consume(session->conn, consumed);
		if (ret != WD_OK || !more)
			break;
	}
}

static void cmd_finish(struct wd_pop3_session *session, struct wd_pop3_cmd *cmd)
{
	if (session->current == cmd) {
		session->current = NULL;
		if (cmd->def != NULL && (cmd->def->flags & WD_POP3_CMD_BARRIER))
			session->barrier = false;
		cmd_unref(&cmd);
	}
	if (!session->closed)
		arm_timeout(session);
	if (session->close_after && !session->closed)
		close_now(session, "closed by server");
}

static void apply_result(struct wd_pop3_session *session, struct wd_pop3_cmd *cmd,
			 enum wd_pop3_cmd_result result)
{
	switch (result) {
	case WD_POP3_CMD_DONE:
		cmd_finish(session, cmd);
		if (!session->closed && wd_conn_output_full(session->conn))
			session->waiting_output = true;
		break;
	case WD_POP3_CMD_WAIT_OUTPUT:
		session->waiting_output = true;
		break;
	case WD_POP3_CMD_WAIT_STORAGE:
		break;
	case WD_POP3_CMD_WAIT_INPUT:
		wd_conn_flush(session->conn);
		session->reading_line = true;
		wd_pop3_parser_read_line(session->parser);
		break;
	}
}

static bool cmd_runnable(const struct wd_pop3_session *session, const struct wd_pop3_cmd *cmd)
{
	return !cmd->pending && !session->reading_line && !session->waiting_output;
}

static void session_run(struct wd_pop3_session *session)
{
	if (session->running)
		return;
	session->running = true;
	wd_pop3_session_ref(session);
	while (!session->closed) {
		parse_input(session);
		if (session->closed)
			break;
		struct wd_pop3_cmd *cmd = session->current;
		if (cmd == NULL) {
			if (session->waiting_output || session->queue_head == NULL)
				break;
			cmd = session->current = queue_pop(session);
		}
		if (!cmd_runnable(session, cmd))
			break;
		apply_result(session, cmd, cmd->step(cmd));
	}
	if (!session->closed)
		wd_conn_flush(session->conn);
	session->running = false;
	wd_pop3_session_unref(&session);
}

/* ---- connection callbacks ---- */

static void on_input(struct wd_conn *conn, void *context)
{
	session_run(context);
}

static void on_drain(struct wd_conn *conn, void *context)
{
	struct wd_pop3_session *session = context;
	session->waiting_output = false;
	/* the client reads: a long RETR to a slow client is not idleness */
	arm_timeout(session);
	session_run(session);
}

static void on_close(struct wd_conn *conn, void *context, const char *reason)
{
	struct wd_pop3_session *session = context;
	struct wd_pop3_server *server = session->server;
	wd_debug("pop3", "%s: closed (%s)", session->id, reason);
	session->closed = true;
	session->delaying = false;
	struct wd_pop3_cmd *cmd;
	while ((cmd = queue_pop(session)) != NULL)
		cmd_unref(&cmd);
	if (session->current != NULL) {
		cmd = session->current;
		session->current = NULL;
		cmd_unref(&cmd); /* a pending job keeps its own reference */
	}
	if (session->prev != NULL)
		session->prev->next = session->next;
	else
		server->sessions = session->next;
	if (session->next != NULL)
		session->next->prev = session->prev;
	session->prev = session->next = NULL;
	server->session_count--;
	wd_pop3_session_unref(&session);
}

static const struct wd_conn_callbacks session_callbacks = {
	.on_input = on_input,
	.on_drain = on_drain,
	.on_close = on_close,
};

void wd__pop3_session_accept(struct wd_conn *conn, void *context)
{
	struct wd_pop3_server *server = context;
	if (server->shutting_down) {
		wd_conn_write_str(conn, "-ERR [SYS/TEMP] Server shutting down\r\n");
		wd_conn_close(conn, "shutting down");
		return;
	}
	struct wd_pop3_session *session = calloc(1, sizeof(*session));
	if (session != NULL)
		session->parser = wd_pop3_parser_create(WD_POP3_LINE_MAX);
	if (session == NULL || session->parser == NULL) {
		free(session);
		wd_conn_write_str(conn, "-ERR [SYS/TEMP] Out of memory\r\n");
		wd_conn_close(conn, "out of memory");
		return;
	}
	session->server = server;
	session->conn = conn;
	wd_conn_ref(conn);
	session->refcount = 1; /* dropped in on_close */
	session->state = WD_POP3_STATE_AUTHORIZATION;
	/* unique in the process across loops (logs, the journal's `ignore`) */
	static atomic_uint_fast64_t session_counter;
	snprintf(session->id, sizeof(session->id), "%08x%08x", (unsigned)getpid() & 0xffffff,
		 (unsigned)(atomic_fetch_add(&session_counter, 1) + 1));
	session->next = server->sessions;
	if (server->sessions != NULL)
		server->sessions->prev = session;
	server->sessions = session;
	server->session_count++;
	wd_conn_set_callbacks(conn, &session_callbacks, session);
	wd_debug("pop3", "%s: connection from %s%s", session->id, wd_conn_peer_ip(conn),
		 wd_conn_is_tls(conn) ? " (TLS)" : "");
	wd_buffer_printf(&session->out, "+OK %s ready\r\n", server->set.name);
	wd_pop3_session_send(session);
	wd_conn_flush(conn);
	arm_timeout(session);
}

void wd_pop3_session_ref(struct wd_pop3_session *session)
{
	session->refcount++;
}

void wd_pop3_session_unref(struct wd_pop3_session **_session)
{
	struct wd_pop3_session *session = *_session;
	*_session = NULL;
	if (session == NULL || --session->refcount > 0)
		return;
	wd_pop3_maildrop_free(&session->maildrop);
	free(session->marks);
	wd_pop3_parser_destroy(&session->parser);
	wd_buffer_release(&session->out);
	free(session->username);
	if (session->user_arg != NULL) {
		explicit_bzero(session->user_arg, strlen(session->user_arg));
		free(session->user_arg);
	}
	wd_conn_unref(&session->conn);
	free(session);
}
