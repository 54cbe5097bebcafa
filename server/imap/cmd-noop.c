/* NOOP and CHECK (RFC 3501 §6.1.2, §6.4.1): nothing to do beyond the
 * untagged updates the session sends at its safe points. */
#include "imap-commands.h"
#include "imap-session.h"

enum wd_imap_cmd_result wd_imap_cmd_noop(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	return wd_imap_cmd_reply(cmd, "OK", NULL, "NOOP completed");
}

enum wd_imap_cmd_result wd_imap_cmd_check(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	return wd_imap_cmd_reply(cmd, "OK", NULL, "CHECK completed");
}
