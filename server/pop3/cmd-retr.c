/* RETR and TOP (RFC 1939 §5, §7): the message streamed from libwdstore.
 *
 * A worker-pool step opens the message by id (the first time) and pulls it
 * through the reader, byte-stuffing it (pop3-dotstuff.h) into a buffer of
 * about STEP_BYTES; the loop thread sends that buffer and, while the
 * connection's output is above its high watermark, waits for it to drain
 * before the next step. Memory per RETR is therefore a step's buffer plus
 * one read of the reader (a GridFS chunk at most), whatever the size of the
 * message. TOP stops reading once the header and the lines asked for went
 * out.
 *
 * The status line waits for the first step, so a message that cannot be
 * opened (deleted by another session meanwhile, database trouble) gets an
 * -ERR; a failure after the status line can only end the connection (the
 * client then sees a truncated response, never a wrong one). A message
 * RETR sent whole is marked retrieved: it gets \Seen at QUIT.
 *
 * The daily download limit (WildDuck's pdw:<user>, wd-store-pop3.h) is
 * checked in the first step, before anything is read, and the bytes sent
 * are added in the last; a refused retrieval leaves the session as it was. */
#include "pop3-commands.h"
#include "pop3-dotstuff.h"
#include "pop3-session.h"

#include "wd-buffer.h"
#include "wd-conn.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-message.h"

#include <stdlib.h>
#include <string.h>

#define STEP_BYTES (64 * 1024)

struct retrieval {
	struct wd_store *store;
	bson_oid_t user;
	int64_t limit;         /* daily download limit (pdw:), 0 = none */
	uint64_t sent;         /* bytes produced so far */
	bool limited;          /* refused by the limit; retry_after says how long */
	int64_t retry_after;
	bson_oid_t id;
	size_t index;
	uint64_t size;
	bool top;
	struct wd_message_reader *reader;
	struct wd_pop3_dotstuff ds;
	struct wd_buffer raw;  /* one read of the reader */
	struct wd_buffer out;  /* stuffed bytes for the loop thread to send */
	bool finished;         /* the terminator is in `out` */
	bool started;          /* the status line went out */
	int ret;
	bool gone;             /* the message no longer exists */
	char *error;
};

static void retrieval_free(void *context)
{
	struct retrieval *r = context;
	wd_message_reader_close(&r->reader);
	wd_buffer_release(&r->raw);
	wd_buffer_release(&r->out);
	free(r->error);
}

/* Worker thread: fill `out` with the next part of the response. */
static void retrieval_work(void *context)
{
	struct retrieval *r = context;
	r->ret = WD_OK;
	if (r->reader == NULL && r->sent == 0 &&
	    !wd_store_pop3_download_allowed(r->store, &r->user, r->limit, &r->retry_after)) {
		r->limited = true;
		return;
	}
	if (r->reader == NULL) {
		r->reader = wd_store_message_open_id(r->store, &r->id, &r->error);
		if (r->reader == NULL) {
			r->ret = WD_ERROR;
			r->gone = r->error != NULL && strncmp(r->error, "no message", 10) == 0;
			return;
		}
	}
	while (!r->finished && r->out.len < STEP_BYTES) {
		bool eof = false;
		if (!r->ds.done &&
		    wd_message_reader_read(r->reader, &r->raw, &eof, &r->error) < 0) {
			r->ret = WD_ERROR;
			break;
		}
		if (wd_pop3_dotstuff_feed(&r->ds, wd_buffer_bytes(&r->raw), r->raw.len, &r->out) < 0)
			r->ret = WD_ERROR;
		wd_buffer_clear(&r->raw);
		if (r->ret < 0)
			break;
		if (eof || r->ds.done) {
			wd_message_reader_close(&r->reader);
			r->ret = wd_pop3_dotstuff_finish(&r->ds, &r->out);
			r->finished = true;
		}
	}
	r->sent += r->out.len;
	if (r->finished)
		wd_store_pop3_download_add(r->store, &r->user, r->limit, r->sent);
	wd_buffer_release(&r->raw);
}

static enum wd_pop3_cmd_result retrieval_sent(struct wd_pop3_cmd *cmd);

static enum wd_pop3_cmd_result retrieval_next(struct wd_pop3_cmd *cmd)
{
	return wd_pop3_cmd_job(cmd, retrieval_work, cmd->context, retrieval_sent);
}

/* Loop thread: send what the step produced. */
static enum wd_pop3_cmd_result retrieval_sent(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	struct retrieval *r = cmd->context;
	if (r->limited)
		return wd_pop3_cmd_err(cmd, NULL, "Download was rate limited, try again in %lld seconds",
				       (long long)r->retry_after);
	if (r->ret < 0) {
		wd_warning("pop3", "%s: %s of message %zu: %s", session->id, cmd->name,
			   r->index + 1, r->error != NULL ? r->error : "?");
		if (!r->started && r->gone)
			return wd_pop3_cmd_err(cmd, NULL, "Message %zu no longer exists",
					       r->index + 1);
		if (!r->started)
			return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Cannot read message %zu",
					       r->index + 1);
		session->close_after = true;
		return WD_POP3_CMD_DONE;
	}
	if (!r->started) {
		r->started = true;
		cmd->in_response = true;
		if (r->top)
			wd_pop3_cmd_ok(cmd, "Top of message follows");
		else
			wd_pop3_cmd_ok(cmd, "%llu octets", (unsigned long long)r->size);
	}
	if (r->out.len > 0 && wd_conn_write(session->conn, wd_buffer_bytes(&r->out), r->out.len) < 0)
		return WD_POP3_CMD_DONE; /* the connection is being closed */
	wd_buffer_clear(&r->out);
	if (r->finished) {
		if (!r->top)
			session->marks[r->index] |= WD_POP3_MARK_RETRIEVED;
		wd_buffer_release(&r->out);
		return WD_POP3_CMD_DONE;
	}
	cmd->step = retrieval_next;
	if (wd_pop3_session_output_full(session))
		return WD_POP3_CMD_WAIT_OUTPUT;
	return retrieval_next(cmd);
}

static enum wd_pop3_cmd_result retrieval_start(struct wd_pop3_cmd *cmd, bool top)
{
	struct wd_pop3_session *session = cmd->session;
	struct wd_pop3_arg argv[2];
	size_t want = top ? 2 : 1;
	size_t argc = wd_pop3_args_split((const uint8_t *)cmd->args, cmd->args_len, argv, 2);
	if (argc != want)
		return wd_pop3_cmd_err(cmd, NULL, top ? "TOP expects a message number and a line count"
						      : "RETR expects a message number");
	uint32_t lines = 0;
	if (top && !wd_pop3_arg_number(&argv[1], &lines))
		return wd_pop3_cmd_err(cmd, NULL, "Invalid line count");
	long i = wd_pop3_cmd_message_arg(cmd, &argv[0]);
	if (i < 0)
		return WD_POP3_CMD_DONE;
	struct retrieval *r = wd_pop3_cmd_context_new(cmd, sizeof(*r), retrieval_free);
	if (r == NULL)
		return WD_POP3_CMD_DONE;
	r->store = session->server->deps.store;
	r->user = session->user;
	r->limit = session->download_limit;
	r->index = (size_t)i;
	r->id = session->maildrop.messages[i].id;
	r->size = session->maildrop.messages[i].size;
	r->top = top;
	wd_pop3_dotstuff_init(&r->ds, top, lines);
	return retrieval_next(cmd);
}

enum wd_pop3_cmd_result wd_pop3_cmd_retr(struct wd_pop3_cmd *cmd)
{
	return retrieval_start(cmd, false);
}

enum wd_pop3_cmd_result wd_pop3_cmd_top(struct wd_pop3_cmd *cmd)
{
	return retrieval_start(cmd, true);
}
