/* NOOP (RFC 5321 §4.1.1.9): an argument is allowed and ignored. */
#include "lmtp-commands.h"
#include "lmtp-session.h"

enum wd_lmtp_cmd_result wd_lmtp_cmd_noop(struct wd_lmtp_cmd *cmd)
{
	wd_lmtp_reply(cmd->session, 250, "2.0.0", "OK");
	return WD_LMTP_CMD_DONE;
}
