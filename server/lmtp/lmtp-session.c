/* The session engine (lmtp-session.h): input → parser → one command at a
 * time → handler steps → replies, with jobs on the worker pool.
 *
 * The run loop (session_run) is the only place that starts or resumes a
 * command. It is entered from the connection callbacks (input, drain) and
 * from job completions, never re-entered, and holds a reference on the
 * session while it runs, so nothing it uses is freed under it. */
#include "lmtp-session.h"

#include "wd-conn.h"
#include "wd-deliver.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-str.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLY_TEXT_MAX 400

static void session_run(struct wd_lmtp_session *session);
static void arm_timeout(struct wd_lmtp_session *session);

/* ---- replies ---- */

static bool counts_as_error(unsigned code)
{
	return code == 500 || code == 501 || code == 502 || code == 503 || code == 555;
}

static size_t sanitized(char *out, size_t size, const char *text)
{
	size_t n = 0;
	for (const char *p = text; *p != '\0' && n + 1 < size && n < REPLY_TEXT_MAX; p++)
		out[n++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? ' ' : *p;
	out[n] = '\0';
	return n;
}

static void reply_write(struct wd_lmtp_session *session, unsigned code, char sep,
			const char *status, const char *text)
{
	if (session->closed)
		return;
	char clean[REPLY_TEXT_MAX + 1], line[REPLY_TEXT_MAX + 32];
	sanitized(clean, sizeof(clean), text);
	int n;
	/* RFC 2034 §3: enhanced codes once the client saw ENHANCEDSTATUSCODES */
	if (status != NULL && session->lhlo != NULL)
		n = snprintf(line, sizeof(line), "%03u%c%s %s\r\n", code, sep, status, clean);
	else
		n = snprintf(line, sizeof(line), "%03u%c%s\r\n", code, sep, clean);
	if (n > 0)
		wd_conn_write(session->conn, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void wd_lmtp_reply(struct wd_lmtp_session *session, unsigned code, const char *status,
		   const char *text)
{
	if (counts_as_error(code))
		session->errors++;
	reply_write(session, code, ' ', status, text);
}

void wd_lmtp_replyf(struct wd_lmtp_session *session, unsigned code, const char *status,
		    const char *fmt, ...)
{
	char text[REPLY_TEXT_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	wd_lmtp_reply(session, code, status, text);
}

void wd_lmtp_reply_line(struct wd_lmtp_session *session, unsigned code, const char *text)
{
	reply_write(session, code, '-', NULL, text);
}

void wd_lmtp_reply_error(struct wd_lmtp_session *session, const struct wd_lmtp_error *error)
{
	wd_lmtp_reply(session, error->code, error->status, error->text);
}

void wd_lmtp_reply_deliver(struct wd_lmtp_session *session, const struct wd_deliver_reply *reply)
{
	unsigned code;
	const char *status, *text;
	wd_deliver_reply_checked(reply, &code, &status, &text);
	wd_lmtp_reply(session, code, status, text);
}

/* ---- commands ---- */

static struct wd_lmtp_cmd *cmd_new(struct wd_lmtp_session *session, const char *verb,
				   const char *args, size_t args_len)
{
	struct wd_lmtp_cmd *cmd = calloc(1, sizeof(*cmd) + args_len + 1);
	if (cmd == NULL)
		return NULL;
	wd_strlcpy(cmd->verb, verb, sizeof(cmd->verb));
	memcpy(cmd->args_buf, args, args_len);
	cmd->args_buf[args_len] = '\0';
	cmd->args = cmd->args_buf;
	cmd->args_len = args_len;
	cmd->session = session;
	cmd->refcount = 1;
	wd_lmtp_session_ref(session);
	return cmd;
}

static void cmd_unref(struct wd_lmtp_cmd **_cmd)
{
	struct wd_lmtp_cmd *cmd = *_cmd;
	*_cmd = NULL;
	if (cmd == NULL || --cmd->refcount > 0)
		return;
	struct wd_lmtp_session *session = cmd->session;
	if (cmd->context_free != NULL)
		cmd->context_free(cmd->context);
	free(cmd);
	wd_lmtp_session_unref(&session);
}

static void cmd_job_work(struct wd_work *work)
{
	struct wd_lmtp_cmd *cmd = work->context;
	cmd->job_fn(cmd->job_context);
}

/* The job's step runs even when the connection is gone: it owns what the
   job produced (a recipient object, a finished delivery to log). Replies
   written then go nowhere. A job cancelled at shutdown produced nothing:
   its step sees empty results and answers 4xx. */
static void cmd_job_done(struct wd_work *work, int status)
{
	struct wd_lmtp_cmd *cmd = work->context;
	struct wd_lmtp_session *session = cmd->session;
	cmd->job_pending = false;
	cmd->step = cmd->job_next;
	wd_lmtp_session_ref(session);
	if (session->current == cmd && !session->closed)
		session_run(session);
	else
		cmd->job_next(cmd); /* the connection is closed or closing */
	cmd_unref(&cmd); /* the job's */
	wd_lmtp_session_unref(&session);
}

bool wd_lmtp_cmd_job(struct wd_lmtp_cmd *cmd, wd_lmtp_job_fn *fn, void *context,
		     wd_lmtp_cmd_fn *next)
{
	struct wd_lmtp_server *server = cmd->session->server;
	memset(&cmd->work, 0, sizeof(cmd->work));
	cmd->work.work = cmd_job_work;
	cmd->work.done = cmd_job_done;
	cmd->work.context = cmd;
	cmd->job_fn = fn;
	cmd->job_context = context;
	cmd->job_next = next;
	cmd->refcount++;
	cmd->job_pending = true;
	const char *error;
	if (wd_worker_pool_submit(server->deps.pool, server->deps.queue, &cmd->work, &error) < 0) {
		cmd->refcount--;
		cmd->job_pending = false;
		wd_warning("lmtp", "%s: job refused: %s", cmd->session->id, error);
		return false;
	}
	return true;
}

/* ---- closing, timeouts ---- */

void wd_lmtp_session_close(struct wd_lmtp_session *session, unsigned code, const char *status,
			   const char *text)
{
	if (session->closed)
		return;
	wd_lmtp_replyf(session, code, status, "%s %s", session->server->set.name, text);
	wd_conn_flush(session->conn);
	session->closed = true;
	wd_conn_close(session->conn, text);
}

static void timeout_cb(struct wd_conn *conn, void *context)
{
	struct wd_lmtp_session *session = context;
	if (session->current != NULL && session->current->job_pending) {
		/* a slow storage call is not idleness */
		arm_timeout(session);
		return;
	}
	if (session->reading_data) {
		wd_info("lmtp", "%s: message not received within the DATA time limit", session->id);
		wd_lmtp_session_close(session, 421, "4.4.2", "Timeout reading the message, closing");
		return;
	}
	wd_info("lmtp", "%s: idle timeout", session->id);
	wd_lmtp_session_close(session, 421, "4.4.2", "Idle timeout, closing connection");
}

static void arm_timeout(struct wd_lmtp_session *session)
{
	if (session->closed)
		return;
	uint64_t ms = session->server->set.timeout_ms;
	if (session->data_deadline != 0) {
		uint64_t now = uv_now(session->server->deps.loop);
		uint64_t left = session->data_deadline > now ? session->data_deadline - now : 1;
		if (left < ms)
			ms = left;
	}
	wd_conn_set_timeout(session->conn, (unsigned)ms, timeout_cb);
}

/* ---- the run loop ---- */

static void cmd_finish(struct wd_lmtp_session *session, struct wd_lmtp_cmd *cmd)
{
	if (session->current == cmd) {
		session->current = NULL;
		cmd_unref(&cmd);
	}
	if (session->closed)
		return;
	if (session->errors > session->server->set.max_errors) {
		wd_info("lmtp", "%s: too many errors (%u)", session->id, session->errors);
		wd_lmtp_session_close(session, 421, "4.7.0", "Too many errors, closing connection");
	} else if (session->close_after) {
		wd_conn_flush(session->conn);
		session->closed = true;
		wd_conn_close(session->conn, "closed by server");
	} else if (session->server->shutting_down) {
		wd_lmtp_session_close(session, 421, "4.3.2", "Service shutting down");
	} else {
		arm_timeout(session);
	}
}

static void apply_result(struct wd_lmtp_session *session, struct wd_lmtp_cmd *cmd,
			 enum wd_lmtp_cmd_result result)
{
	switch (result) {
	case WD_LMTP_CMD_DONE:
		cmd_finish(session, cmd);
		if (!session->closed && wd_conn_output_full(session->conn))
			session->waiting_output = true;
		break;
	case WD_LMTP_CMD_WAIT_STORAGE:
		wd_assert(cmd->job_pending);
		break;
	case WD_LMTP_CMD_WAIT_DATA:
		if (wd_lmtp_parser_begin_data(session->parser) < 0) {
			/* cannot happen: commands are read only between lines */
			wd_lmtp_session_close(session, 421, "4.3.0", "Internal error");
			break;
		}
		session->reading_data = true;
		session->data_deadline =
			uv_now(session->server->deps.loop) + session->server->set.data_timeout_ms;
		arm_timeout(session);
		wd_conn_flush(session->conn); /* the 354 goes out now */
		break;
	}
}

static void start_command(struct wd_lmtp_session *session, struct wd_lmtp_cmd *cmd)
{
	session->current = cmd;
	cmd->def = wd_lmtp_command_find(cmd->verb);
	enum wd_lmtp_cmd_result result;
	if (cmd->def == NULL) {
		wd_lmtp_reply(session, 500, "5.5.1", "Command unrecognized");
		result = WD_LMTP_CMD_DONE;
	} else if ((cmd->def->flags & WD_LMTP_CMD_NEEDS_LHLO) && session->lhlo == NULL) {
		wd_lmtp_reply(session, 503, "5.5.1", "Send LHLO first");
		result = WD_LMTP_CMD_DONE;
	} else {
		result = cmd->def->handler(cmd);
	}
	apply_result(session, cmd, result);
}

/* One event from the parser between commands. False when there is nothing
   complete to read. */
static bool read_command(struct wd_lmtp_session *session)
{
	size_t len, consumed = 0;
	const uint8_t *data = wd_conn_input(session->conn, &len);
	if (len == 0)
		return false;
	struct wd_lmtp_event ev;
	int ret = wd_lmtp_parser_feed(session->parser, data, len, &consumed, &ev);
	if (ret != WD_OK) {
		wd_conn_consume(session->conn, consumed);
		return false;
	}
	if (ev.type == WD_LMTP_EVENT_ERROR) {
		wd_conn_consume(session->conn, consumed);
		wd_lmtp_reply(session, 500, "5.5.2", ev.message);
		cmd_finish(session, NULL);
		return true;
	}
	wd_assert(ev.type == WD_LMTP_EVENT_COMMAND);
	/* the line is copied into the command, then consumed before the command
	   runs: STARTTLS must see only what came after it */
	char verb[WD_LMTP_VERB_MAX];
	const char *args;
	size_t args_len;
	struct wd_lmtp_error error;
	struct wd_lmtp_cmd *cmd = NULL;
	bool valid = wd_lmtp_command_split(ev.data, ev.len, verb, &args, &args_len, &error) == WD_OK;
	if (valid)
		cmd = cmd_new(session, verb, args, args_len);
	wd_conn_consume(session->conn, consumed);
	if (!valid) {
		wd_lmtp_reply_error(session, &error);
		cmd_finish(session, NULL);
	} else if (cmd == NULL) {
		wd_lmtp_session_close(session, 421, "4.3.0", "Out of memory");
	} else {
		start_command(session, cmd);
	}
	return true;
}

/* Message bytes to the DATA command. False when nothing more is buffered. */
static bool read_data(struct wd_lmtp_session *session)
{
	struct wd_lmtp_cmd *cmd = session->current;
	size_t len, consumed = 0;
	const uint8_t *data = wd_conn_input(session->conn, &len);
	if (len == 0)
		return false;
	struct wd_lmtp_event ev;
	int ret = wd_lmtp_parser_feed(session->parser, data, len, &consumed, &ev);
	if (ret == WD_OK && ev.type == WD_LMTP_EVENT_DATA) {
		cmd->on_data(cmd, ev.data, ev.len);
	} else if (ret == WD_OK && ev.type == WD_LMTP_EVENT_DATA_END) {
		cmd->data_status = ev.status;
		cmd->data_size = ev.size;
		cmd->data_aborted = ev.aborted;
		session->reading_data = false;
		session->data_deadline = 0;
	}
	wd_conn_consume(session->conn, consumed);
	arm_timeout(session);
	return ret == WD_OK;
}

static void session_run(struct wd_lmtp_session *session)
{
	if (session->running)
		return;
	session->running = true;
	wd_lmtp_session_ref(session);
	while (!session->closed) {
		struct wd_lmtp_cmd *cmd = session->current;
		if (cmd != NULL) {
			if (cmd->job_pending)
				break;
			if (session->reading_data) {
				if (!read_data(session))
					break;
				continue;
			}
			apply_result(session, cmd, cmd->step(cmd));
			continue;
		}
		if (session->waiting_output || !read_command(session))
			break;
	}
	if (!session->closed) {
		/* replies of pipelined commands go out together: hold them while
		   a job runs and more commands wait to be read */
		size_t pending;
		wd_conn_input(session->conn, &pending);
		if (session->current == NULL || !session->current->job_pending || pending == 0)
			wd_conn_flush(session->conn);
	}
	session->running = false;
	wd_lmtp_session_unref(&session);
}

/* ---- connection callbacks ---- */

static void on_input(struct wd_conn *conn, void *context)
{
	session_run(context);
}

static void on_drain(struct wd_conn *conn, void *context)
{
	struct wd_lmtp_session *session = context;
	session->waiting_output = false;
	session_run(session);
}

static void on_close(struct wd_conn *conn, void *context, const char *reason)
{
	struct wd_lmtp_session *session = context;
	struct wd_lmtp_server *server = session->server;
	wd_debug("lmtp", "%s: closed (%s)", session->id, reason);
	session->closed = true;
	if (!session->delivering)
		wd_lmtp_txn_abort(session, session->reading_data ? "connection lost during DATA"
								 : "connection closed");
	if (session->current != NULL) {
		struct wd_lmtp_cmd *cmd = session->current;
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
	wd_lmtp_session_unref(&session);
}

static const struct wd_conn_callbacks session_callbacks = {
	.on_input = on_input,
	.on_drain = on_drain,
	.on_close = on_close,
};

void wd__lmtp_session_accept(struct wd_conn *conn, void *context)
{
	struct wd_lmtp_server *server = context;
	if (server->shutting_down) {
		wd_conn_write_str(conn, "421 Service shutting down\r\n");
		wd_conn_close(conn, "shutting down");
		return;
	}
	struct wd_lmtp_session *session = calloc(1, sizeof(*session));
	if (session != NULL) {
		struct wd_lmtp_parser_limits limits;
		wd_lmtp_parser_limits_default(&limits);
		limits.max_message = server->set.max_message;
		limits.max_discard = 4 * server->set.max_message;
		session->parser = wd_lmtp_parser_create(&limits);
	}
	if (session == NULL || session->parser == NULL) {
		free(session);
		wd_conn_write_str(conn, "421 Out of memory\r\n");
		wd_conn_close(conn, "out of memory");
		return;
	}
	session->server = server;
	session->conn = conn;
	wd_conn_ref(conn);
	session->refcount = 1; /* dropped in on_close */
	/* unique in the process across loops */
	static atomic_uint_fast64_t session_counter;
	snprintf(session->id, sizeof(session->id), "L%06x%08x", (unsigned)getpid() & 0xffffff,
		 (unsigned)(atomic_fetch_add(&session_counter, 1) + 1));
	wd_strlcpy(session->peer_ip, wd_conn_peer_ip(conn), sizeof(session->peer_ip));
	session->next = server->sessions;
	if (server->sessions != NULL)
		server->sessions->prev = session;
	server->sessions = session;
	server->session_count++;
	wd_conn_set_callbacks(conn, &session_callbacks, session);
	wd_debug("lmtp", "%s: connection from %s%s", session->id, session->peer_ip,
		 wd_conn_is_tls(conn) ? " (TLS)" : "");
	char greeting[512];
	snprintf(greeting, sizeof(greeting), "%s LMTP %s", server->set.name, server->set.banner);
	wd_lmtp_reply(session, 220, NULL, greeting);
	wd_conn_flush(conn);
	arm_timeout(session);
}

void wd_lmtp_session_ref(struct wd_lmtp_session *session)
{
	session->refcount++;
}

void wd_lmtp_session_unref(struct wd_lmtp_session **_session)
{
	struct wd_lmtp_session *session = *_session;
	*_session = NULL;
	if (session == NULL || --session->refcount > 0)
		return;
	wd_lmtp_txn_free(&session->txn);
	wd_lmtp_parser_destroy(&session->parser);
	free(session->lhlo);
	wd_conn_unref(&session->conn);
	free(session);
}
