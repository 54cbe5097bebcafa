/* HELP (RFC 5321 §4.1.1.8): the commands there are. */
#include "lmtp-commands.h"
#include "lmtp-session.h"

enum wd_lmtp_cmd_result wd_lmtp_cmd_help(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	wd_lmtp_reply_line(session, 214, "This is an LMTP server (RFC 2033). Commands:");
	wd_lmtp_reply_line(session, 214, "  LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS");
	wd_lmtp_reply(session, 214, "2.0.0", "End of HELP");
	return WD_LMTP_CMD_DONE;
}
