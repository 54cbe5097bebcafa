/* RSET (RFC 5321 §4.1.1.5): the transaction is dropped, LHLO stays. */
#include "lmtp-commands.h"
#include "lmtp-session.h"

enum wd_lmtp_cmd_result wd_lmtp_cmd_rset(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	if (cmd->args_len > 0) {
		wd_lmtp_reply(session, 501, "5.5.4", "Syntax: RSET");
		return WD_LMTP_CMD_DONE;
	}
	wd_lmtp_txn_abort(session, "RSET");
	wd_lmtp_reply(session, 250, "2.0.0", "OK");
	return WD_LMTP_CMD_DONE;
}
