/* NOOP (RFC 1939 §5). */
#include "pop3-commands.h"

enum wd_pop3_cmd_result wd_pop3_cmd_noop(struct wd_pop3_cmd *cmd)
{
	if (cmd->args_len > 0)
		return wd_pop3_cmd_err(cmd, NULL, "NOOP takes no arguments");
	return wd_pop3_cmd_ok(cmd, "%s", "");
}
