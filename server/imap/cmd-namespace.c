/* NAMESPACE (RFC 2342): one personal namespace, "" with "/" as separator. */
#include "imap-commands.h"
#include "imap-session.h"

enum wd_imap_cmd_result wd_imap_cmd_namespace(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	wd_imap_session_untagged(cmd->session, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	return wd_imap_cmd_reply(cmd, "OK", NULL, "NAMESPACE completed");
}
