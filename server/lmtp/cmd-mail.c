/* MAIL FROM (RFC 5321 §4.1.1.2) with SIZE (RFC 1870), BODY (RFC 6152)
 * and SMTPUTF8 (RFC 6531): starts a transaction. A declared size past the
 * limit is refused here, before the message is sent (552 5.3.4). */
#include "lmtp-commands.h"
#include "lmtp-session.h"

enum wd_lmtp_cmd_result wd_lmtp_cmd_mail(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	if (session->txn != NULL) {
		wd_lmtp_reply(session, 503, "5.5.1", "Nested MAIL command");
		return WD_LMTP_CMD_DONE;
	}
	struct wd_lmtp_mail mail;
	struct wd_lmtp_error error;
	if (wd_lmtp_parse_mail(cmd->args, cmd->args_len, &mail, &error) < 0) {
		wd_lmtp_reply_error(session, &error);
		return WD_LMTP_CMD_DONE;
	}
	uint64_t max = session->server->set.max_message;
	if (mail.has_size && mail.size > max) {
		wd_lmtp_replyf(session, 552, "5.3.4",
			       "Message size exceeds fixed maximum message size (%llu bytes)",
			       (unsigned long long)max);
		return WD_LMTP_CMD_DONE;
	}
	if (wd_lmtp_txn_begin(session, &mail) == NULL) {
		wd_lmtp_reply(session, 451, "4.3.0", "Out of memory");
		return WD_LMTP_CMD_DONE;
	}
	wd_lmtp_reply(session, 250, "2.1.0", "Sender OK");
	return WD_LMTP_CMD_DONE;
}
