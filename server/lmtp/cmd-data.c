/* DATA (RFC 5321 §4.1.1.4, RFC 2033 §4.2): the message, then one reply
 * per accepted recipient, in RCPT order.
 *
 *   DATA      checks the transaction, opens a spool, answers 354 and
 *             returns WAIT_DATA: the session feeds the unstuffed message
 *             to data_chunk() (memory up to 1 MiB, then a temporary file)
 *   end       data_received(): a message refused while it was read (too
 *             big, a line too long, NUL) gets the same refusal for every
 *             recipient; otherwise the delivery job maps the spool and
 *             calls wd_deliver_message() on a worker thread
 *   replies   data_delivered(): the pipeline's reply for each recipient,
 *             one log line for the transaction, and the transaction ends.
 *
 * While the delivery runs the session owns no transaction of its own
 * (session->delivering): if the connection drops meanwhile, the delivery
 * still finishes, is logged, and then frees the transaction. */
#include "lmtp-commands.h"
#include "lmtp-session.h"

#include "wd-deliver.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_LINE_MAX 1800

struct data_job {
	struct wd_deliver *deliver;
	struct wd_deliver_envelope envelope;
	struct wd_deliver_rcpt **rcpts;
	size_t count;
	struct wd_spool *spool;
	struct wd_deliver_reply *replies;
	int ret;
	uint64_t started;
};

static void data_job_free(void *context)
{
	struct data_job *job = context;
	free(job->rcpts);
	free(job->replies);
	free(job);
}

/* One line per transaction: envelope, size, time and each recipient's answer. */
static void log_transaction(struct wd_lmtp_session *session, const struct wd_lmtp_txn *txn,
			    uint64_t size, uint64_t ms, const struct wd_deliver_reply *replies,
			    unsigned code, const char *status)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	int w = snprintf(line, sizeof(line), "%s: transaction %s from=<%s> ip=%s size=%llu ms=%llu "
			 "rcpts=%zu refused=%u%s:",
			 session->id, txn->id, txn->mail.address, session->peer_ip,
			 (unsigned long long)size, (unsigned long long)ms, txn->rcpt_count,
			 txn->refused, session->closed ? " (client gone)" : "");
	n = w > 0 ? (size_t)w : 0;
	for (size_t i = 0; i < txn->rcpt_count && n < sizeof(line); i++) {
		unsigned c = code;
		const char *st = status, *text;
		if (replies != NULL)
			wd_deliver_reply_checked(&replies[i], &c, &st, &text);
		w = snprintf(line + n, sizeof(line) - n, "%s <%s> %u %s", i > 0 ? "," : "",
			     txn->rcpts[i].address, c, st);
		if (w < 0 || (size_t)w >= sizeof(line) - n) {
			snprintf(line + n, sizeof(line) - n, " ... (+%zu more)", txn->rcpt_count - i);
			break;
		}
		n += (size_t)w;
	}
	wd_info("lmtp", "%s", line);
}

/* The same reply for every recipient, then the transaction ends. */
static enum wd_lmtp_cmd_result reply_all(struct wd_lmtp_cmd *cmd, unsigned code,
					 const char *status, const char *text)
{
	struct wd_lmtp_session *session = cmd->session;
	struct wd_lmtp_txn *txn = session->txn;
	for (size_t i = 0; i < txn->rcpt_count; i++)
		wd_lmtp_reply(session, code, status, text);
	log_transaction(session, txn, cmd->data_size, 0, NULL, code, status);
	wd_lmtp_txn_free(&session->txn);
	return WD_LMTP_CMD_DONE;
}

static void data_chunk(struct wd_lmtp_cmd *cmd, const uint8_t *data, size_t len)
{
	struct wd_lmtp_txn *txn = cmd->session->txn;
	if (txn->spool_failed)
		return;
	if (wd_spool_write(txn->spool, data, len) < 0) {
		wd_warning("lmtp", "%s: cannot spool the message", cmd->session->id);
		txn->spool_failed = true;
	}
}

static void deliver_job(void *context)
{
	struct data_job *job = context;
	const uint8_t *raw;
	size_t len;
	if (wd_spool_map(job->spool, &raw, &len) < 0) {
		job->ret = WD_ERROR;
		return;
	}
	job->ret = wd_deliver_message(job->deliver, &job->envelope, job->rcpts, job->count, raw,
				      len, job->replies);
}

static enum wd_lmtp_cmd_result data_delivered(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	struct data_job *job = cmd->context;
	struct wd_lmtp_txn *txn = session->txn;
	session->delivering = false;
	if (job->ret < 0) {
		wd_warning("lmtp", "%s: delivery of %s failed", session->id, txn->id);
		for (size_t i = 0; i < job->count; i++) {
			job->replies[i] = (struct wd_deliver_reply){ .code = 451 };
			strcpy(job->replies[i].status, "4.3.0");
			strcpy(job->replies[i].text, "Temporary local problem, try again later");
		}
	}
	for (size_t i = 0; i < job->count; i++)
		wd_lmtp_reply_deliver(session, &job->replies[i]);
	uint64_t ms = uv_now(session->server->deps.loop) - job->started;
	log_transaction(session, txn, cmd->data_size, ms, job->replies, 0, NULL);
	wd_lmtp_txn_free(&session->txn);
	return WD_LMTP_CMD_DONE;
}

static enum wd_lmtp_cmd_result data_received(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	struct wd_lmtp_txn *txn = session->txn;
	const struct wd_lmtp_settings *set = &session->server->set;
	char text[128];
	if (cmd->data_aborted)
		session->close_after = true; /* the rest of the message is still coming */
	switch (cmd->data_status) {
	case WD_LMTP_DATA_OK:
		break;
	case WD_LMTP_DATA_TOO_BIG:
		snprintf(text, sizeof(text), "Message too big (the limit is %llu bytes)",
			 (unsigned long long)set->max_message);
		return reply_all(cmd, 552, "5.3.4", text);
	case WD_LMTP_DATA_LINE_TOO_LONG:
		return reply_all(cmd, 554, "5.6.0", "Message has a line that is too long");
	case WD_LMTP_DATA_NUL:
		return reply_all(cmd, 554, "5.6.0",
				 "Message contains NUL bytes (BINARYMIME is not supported)");
	}
	if (txn->spool_failed)
		return reply_all(cmd, 451, "4.3.0", "Temporary failure storing the message");

	struct data_job *job = calloc(1, sizeof(*job));
	if (job != NULL) {
		job->rcpts = calloc(txn->rcpt_count, sizeof(*job->rcpts));
		job->replies = calloc(txn->rcpt_count, sizeof(*job->replies));
	}
	if (job == NULL || job->rcpts == NULL || job->replies == NULL) {
		if (job != NULL)
			data_job_free(job);
		return reply_all(cmd, 451, "4.3.0", "Out of memory");
	}
	cmd->context = job;
	cmd->context_free = data_job_free;
	job->deliver = session->server->deliver;
	job->count = txn->rcpt_count;
	for (size_t i = 0; i < txn->rcpt_count; i++)
		job->rcpts[i] = txn->rcpts[i].rcpt;
	job->spool = txn->spool;
	/* the strings stay with the session and the transaction, which nothing
	   changes while the job runs */
	job->envelope = (struct wd_deliver_envelope){
		.mail_from = txn->mail.address,
		.helo = session->lhlo != NULL ? session->lhlo : "",
		.remote_ip = session->peer_ip,
		.transaction_id = txn->id,
		.protocol = "LMTP",
	};
	job->started = uv_now(session->server->deps.loop);
	if (!wd_lmtp_cmd_job(cmd, deliver_job, job, data_delivered))
		return reply_all(cmd, 451, "4.3.2", "Server busy, try again later");
	session->delivering = true;
	return WD_LMTP_CMD_WAIT_STORAGE;
}

enum wd_lmtp_cmd_result wd_lmtp_cmd_data(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	struct wd_lmtp_txn *txn = session->txn;
	if (txn == NULL) {
		wd_lmtp_reply(session, 503, "5.5.1", "Send MAIL first");
		return WD_LMTP_CMD_DONE;
	}
	if (txn->rcpt_count == 0) {
		/* RFC 2033 §4.2 */
		wd_lmtp_reply(session, 503, "5.5.1", "No valid recipients");
		return WD_LMTP_CMD_DONE;
	}
	if (cmd->args_len > 0) {
		wd_lmtp_reply(session, 501, "5.5.4", "Syntax: DATA");
		return WD_LMTP_CMD_DONE;
	}
	wd_spool_destroy(&txn->spool);
	txn->spool = wd_spool_create(WD_SPOOL_MEMORY);
	txn->spool_failed = txn->spool == NULL;
	cmd->on_data = data_chunk;
	cmd->step = data_received;
	wd_lmtp_reply(session, 354, NULL, "Start mail input; end with <CRLF>.<CRLF>");
	return WD_LMTP_CMD_WAIT_DATA;
}
