/* QUIT (RFC 5321 §4.1.1.10): 221, then the connection closes once the
 * reply is sent; an unfinished transaction is dropped. */
#include "lmtp-commands.h"
#include "lmtp-session.h"

enum wd_lmtp_cmd_result wd_lmtp_cmd_quit(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	if (cmd->args_len > 0) {
		wd_lmtp_reply(session, 501, "5.5.4", "Syntax: QUIT");
		return WD_LMTP_CMD_DONE;
	}
	wd_lmtp_txn_abort(session, "QUIT");
	wd_lmtp_replyf(session, 221, "2.0.0", "%s closing connection", session->server->set.name);
	session->close_after = true;
	return WD_LMTP_CMD_DONE;
}
