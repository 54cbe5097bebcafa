/* RCPT TO (RFC 5321 §4.1.1.3, RFC 2033 §4.2): each address is checked by
 * the delivery pipeline (wd_deliver_check_rcpt: resolution, disabled and
 * over-quota users) on the worker pool; its answer goes to the client as
 * it is. An accepted recipient keeps the pipeline's recipient object for
 * DATA. At most lmtp.maxRecipients are accepted per transaction; more get
 * 452 4.5.3 and the MTA sends them in another transaction (RFC 5321
 * §4.5.3.1.10). */
#include "lmtp-commands.h"
#include "lmtp-session.h"

#include "wd-deliver.h"

#include <stdlib.h>
#include <string.h>

struct rcpt_job {
	struct wd_deliver *deliver;
	struct wd_lmtp_rcpt parsed;
	struct wd_deliver_rcpt *result;
	struct wd_deliver_reply reply;
};

static void rcpt_job_free(void *context)
{
	struct rcpt_job *job = context;
	wd_deliver_rcpt_free(&job->result);
	free(job);
}

static void rcpt_check(void *context)
{
	struct rcpt_job *job = context;
	job->result = wd_deliver_check_rcpt(job->deliver, job->parsed.address, &job->reply);
}

static enum wd_lmtp_cmd_result rcpt_checked(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	struct rcpt_job *job = cmd->context;
	struct wd_lmtp_txn *txn = session->txn;
	if (session->closed || txn == NULL)
		return WD_LMTP_CMD_DONE; /* the recipient object goes with the job */
	if (job->result == NULL) {
		txn->refused++;
		wd_lmtp_reply_deliver(session, &job->reply);
		return WD_LMTP_CMD_DONE;
	}
	if (wd_lmtp_txn_add_rcpt(txn, job->result, job->parsed.address) < 0) {
		wd_lmtp_reply(session, 451, "4.3.0", "Out of memory");
		return WD_LMTP_CMD_DONE;
	}
	job->result = NULL; /* the transaction's now */
	wd_lmtp_reply(session, 250, "2.1.5", "Recipient OK");
	return WD_LMTP_CMD_DONE;
}

enum wd_lmtp_cmd_result wd_lmtp_cmd_rcpt(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	struct wd_lmtp_txn *txn = session->txn;
	if (txn == NULL) {
		wd_lmtp_reply(session, 503, "5.5.1", "Send MAIL first");
		return WD_LMTP_CMD_DONE;
	}
	struct rcpt_job *job = calloc(1, sizeof(*job));
	if (job == NULL) {
		wd_lmtp_reply(session, 451, "4.3.0", "Out of memory");
		return WD_LMTP_CMD_DONE;
	}
	cmd->context = job;
	cmd->context_free = rcpt_job_free;
	struct wd_lmtp_error error;
	if (wd_lmtp_parse_rcpt(cmd->args, cmd->args_len, txn->mail.smtputf8, &job->parsed,
			       &error) < 0) {
		wd_lmtp_reply_error(session, &error);
		return WD_LMTP_CMD_DONE;
	}
	if (txn->rcpt_count >= session->server->set.max_recipients) {
		wd_lmtp_reply(session, 452, "4.5.3", "Too many recipients");
		return WD_LMTP_CMD_DONE;
	}
	job->deliver = session->server->deliver;
	if (!wd_lmtp_cmd_job(cmd, rcpt_check, job, rcpt_checked)) {
		wd_lmtp_reply(session, 451, "4.3.2", "Server busy, try again later");
		return WD_LMTP_CMD_DONE;
	}
	return WD_LMTP_CMD_WAIT_STORAGE;
}
