/* IDLE (RFC 2177).
 *
 * "+ idling", then the session reads raw lines until DONE. While idling,
 * the selected mailbox's changes are read on the worker pool when a
 * wd_events notification names the user (imap-server.c wakes the session)
 * and every poll interval regardless (Redis down, a missed message), and
 * what changed is sent at once: EXISTS, RECENT, FETCH, EXPUNGE or VANISHED
 * (IDLE is a safe point for expunges). Each read is the journal, or the
 * whole mailbox when the sync policy asks for it (a gap longer than the
 * journal's reach, Redis back after an outage, hourly):
 * wd_imap_selected_read_prepare().
 *
 * The idle state is malloc'd and reference counted apart from the command:
 * the command (until DONE or the session ends), a journal job in flight and
 * the poll timer's handle (until its close callback) each hold one, so a
 * job completing after DONE, or a timer closing after the session is gone,
 * touches only this state. */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-sync.h"
#include "wd-arena.h"
#include "wd-conn.h"
#include "wd-log.h"
#include "wd-notify.h"
#include "wd-result.h"
#include "wd-worker-pool.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

struct wd__imap_idle {
	int refs;
	struct wd_imap_session *session; /* NULL once ended (the command holds the session) */
	uv_timer_t timer;
	bool job_pending;
	bool dirty; /* woken while a job was running */
	/* uv_hrtime() of the wake that the job in flight serves, of the job's
	   start on a worker and of the end of its read (the debug log) */
	uint64_t woken_ns, started_ns, read_ns;
	uint64_t dirty_ns; /* the first wake while a job ran */

	struct wd_work work;
	struct wd_store *store;
	struct wd_imap_selected_read read;
};

static void idle_unref(struct wd__imap_idle *idle)
{
	if (--idle->refs > 0)
		return;
	wd_imap_selected_read_clear(&idle->read);
	free(idle);
}

static void idle_work(struct wd_work *work)
{
	struct wd__imap_idle *idle = work->context;
	idle->started_ns = uv_hrtime();
	wd_imap_selected_read_run(idle->store, &idle->read, NULL);
	idle->read_ns = uv_hrtime();
}

/* Where the time from the wake to the written responses went. */
static void idle_log_timing(const struct wd__imap_idle *idle, const char *session_id,
			    uint64_t database_ns, uint64_t redis_ns)
{
	uint64_t now = uv_hrtime();
	wd_debug("imap", "%s: IDLE %s read: queued %.2f ms, database %.2f ms, Redis %.2f ms, "
		 "read %.2f ms, sent %.2f ms after the wake", session_id,
		 idle->read.kind == WD_IMAP_SYNC_FULL ? "mailbox" : "journal",
		 (double)(idle->started_ns - idle->woken_ns) / 1e6,
		 (double)database_ns / 1e6, (double)redis_ns / 1e6,
		 (double)(idle->read_ns - idle->started_ns) / 1e6,
		 (double)(now - idle->woken_ns) / 1e6);
}

static void idle_read(struct wd__imap_idle *idle);

static void idle_work_done(struct wd_work *work, int status)
{
	struct wd__imap_idle *idle = work->context;
	struct wd_imap_session *session = idle->session;
	idle->job_pending = false;
	if (status == WD_OK && session != NULL && !session->closed &&
	    session->selected != NULL &&
	    bson_oid_equal(&session->selected->mailbox, &idle->read.mailbox)) {
		uint64_t database_ns = 0, redis_ns = 0;
		if (idle->read.changes != NULL) { /* finish takes the changes */
			database_ns = idle->read.changes->database_ns;
			redis_ns = idle->read.changes->redis_ns;
		}
		wd_imap_selected_read_finish(session, &idle->read, true);
		wd_conn_flush(session->conn);
		idle_log_timing(idle, session->id, database_ns, redis_ns);
	}
	/* before a new read may be submitted into the same struct */
	wd_imap_selected_read_clear(&idle->read);
	if (session != NULL && !session->closed && idle->dirty)
		idle_read(idle);
	idle_unref(idle);
}

static void idle_read(struct wd__imap_idle *idle)
{
	struct wd_imap_session *session = idle->session;
	if (session == NULL || session->closed || session->selected == NULL)
		return;
	if (idle->job_pending) {
		if (!idle->dirty)
			idle->dirty_ns = uv_hrtime();
		idle->dirty = true;
		return;
	}
	idle->woken_ns = idle->dirty ? idle->dirty_ns : uv_hrtime();
	idle->dirty = false;
	wd_imap_selected_read_clear(&idle->read);
	wd_imap_selected_read_prepare(session, &idle->read);
	memset(&idle->work, 0, sizeof(idle->work));
	idle->work.work = idle_work;
	idle->work.done = idle_work_done;
	idle->work.context = idle;
	const char *error;
	idle->refs++;
	idle->job_pending = true;
	struct wd_imap_server *server = session->server;
	if (wd_worker_pool_submit(server->deps.pool, server->deps.queue, &idle->work, &error) < 0) {
		idle->job_pending = false;
		idle->refs--;
		wd_warning("imap", "%s: IDLE journal read refused: %s", session->id, error);
	}
}

static void idle_timer(uv_timer_t *timer)
{
	idle_read(timer->data);
}

static void idle_timer_closed(uv_handle_t *handle)
{
	idle_unref(handle->data);
}

void wd_imap_idle_wake(struct wd_imap_session *session)
{
	if (session->idle != NULL)
		idle_read(session->idle);
}

/* The command's reference: dropped on DONE or when the command goes. */
static void idle_end(void *context)
{
	struct wd_imap_cmd *cmd = context;
	struct wd_imap_session *session = cmd->session;
	struct wd__imap_idle *idle = session->idle;
	if (idle == NULL)
		return;
	session->idle = NULL;
	idle->session = NULL;
	uv_timer_stop(&idle->timer);
	uv_close((uv_handle_t *)&idle->timer, idle_timer_closed);
	idle_unref(idle);
}

static enum wd_imap_cmd_result idle_line(struct wd_imap_cmd *cmd, const uint8_t *line,
					 size_t len)
{
	idle_end(cmd);
	if (len == 4 && strncasecmp((const char *)line, "DONE", 4) == 0)
		return wd_imap_cmd_reply(cmd, "OK", NULL, "IDLE terminated");
	return wd_imap_cmd_reply(cmd, "BAD", NULL, "Expected DONE");
}

enum wd_imap_cmd_result wd_imap_cmd_idle(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	wd_imap_cmd_sync_emit(cmd, true);
	wd_buffer_append_str(&session->out, "+ idling\r\n");
	wd_imap_session_send(session);
	wd_buffer_release(&session->out); /* an idle session holds no output memory */
	cmd->on_line = idle_line;
	if (session->selected == NULL || session->idle != NULL)
		return WD_IMAP_CMD_WAIT_INPUT;

	struct wd__imap_idle *idle = calloc(1, sizeof(*idle));
	if (idle == NULL)
		return WD_IMAP_CMD_WAIT_INPUT; /* DONE still ends it */
	idle->refs = 2; /* the command's and the timer handle's */
	idle->store = session->server->deps.store;
	uv_timer_init(session->server->deps.loop, &idle->timer);
	idle->timer.data = idle;
	uint64_t poll_ms = (uint64_t)session->server->sync_policy.poll_ms;
	uv_timer_start(&idle->timer, idle_timer, poll_ms, poll_ms);
	idle->session = session;
	session->idle = idle;
	wd_arena_add_cleanup(cmd->arena, idle_end, cmd);
	/* changes between the last read and now */
	idle_read(idle);
	return WD_IMAP_CMD_WAIT_INPUT;
}
