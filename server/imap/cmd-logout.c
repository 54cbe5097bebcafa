/* LOGOUT (RFC 3501 §6.1.3): BYE, tagged OK, close. */
#include "imap-commands.h"
#include "imap-session.h"

enum wd_imap_cmd_result wd_imap_cmd_logout(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	struct wd_imap_session *session = cmd->session;
	wd_imap_session_status(session, NULL, "BYE", NULL, "Logging out");
	session->state = WD_IMAP_STATE_LOGOUT;
	session->close_after = true;
	return wd_imap_cmd_reply(cmd, "OK", NULL, "LOGOUT completed");
}
