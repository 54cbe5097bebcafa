/* VRFY (RFC 5321 §3.5.3): not answered; 252 says "send it and see", as
 * the RFC recommends for servers that do not verify. */
#include "lmtp-commands.h"
#include "lmtp-session.h"

enum wd_lmtp_cmd_result wd_lmtp_cmd_vrfy(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	if (cmd->args_len == 0) {
		wd_lmtp_reply(session, 501, "5.5.4", "Syntax: VRFY <address>");
		return WD_LMTP_CMD_DONE;
	}
	wd_lmtp_reply(session, 252, "2.0.0",
		      "Cannot VRFY user, but will accept message and attempt delivery");
	return WD_LMTP_CMD_DONE;
}
