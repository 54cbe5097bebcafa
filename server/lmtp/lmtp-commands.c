/* The LMTP command table (lmtp-commands.h): sorted by verb, searched with
 * bsearch. Verbs of SMTP that LMTP does not offer are listed so that they
 * get 502 "not implemented" rather than 500 "unrecognized". */
#include "lmtp-commands.h"
#include "lmtp-session.h"

#include <stdlib.h>
#include <string.h>

static const struct wd_lmtp_command_def commands[] = {
	{ "AUTH", wd_lmtp_cmd_not_implemented, 0 },
	{ "BDAT", wd_lmtp_cmd_not_implemented, 0 },
	{ "DATA", wd_lmtp_cmd_data, WD_LMTP_CMD_NEEDS_LHLO },
	{ "EHLO", wd_lmtp_cmd_helo, 0 },
	{ "ETRN", wd_lmtp_cmd_not_implemented, 0 },
	{ "EXPN", wd_lmtp_cmd_not_implemented, 0 },
	{ "HELO", wd_lmtp_cmd_helo, 0 },
	{ "HELP", wd_lmtp_cmd_help, 0 },
	{ "LHLO", wd_lmtp_cmd_lhlo, 0 },
	{ "MAIL", wd_lmtp_cmd_mail, WD_LMTP_CMD_NEEDS_LHLO },
	{ "NOOP", wd_lmtp_cmd_noop, 0 },
	{ "QUIT", wd_lmtp_cmd_quit, 0 },
	{ "RCPT", wd_lmtp_cmd_rcpt, WD_LMTP_CMD_NEEDS_LHLO },
	{ "RSET", wd_lmtp_cmd_rset, 0 },
	{ "STARTTLS", wd_lmtp_cmd_starttls, 0 },
	{ "TURN", wd_lmtp_cmd_not_implemented, 0 },
	{ "VRFY", wd_lmtp_cmd_vrfy, 0 },
};

static int compare(const void *key, const void *row)
{
	return strcmp(key, ((const struct wd_lmtp_command_def *)row)->verb);
}

const struct wd_lmtp_command_def *wd_lmtp_command_find(const char *verb)
{
	return bsearch(verb, commands, sizeof(commands) / sizeof(commands[0]), sizeof(commands[0]),
		       compare);
}

enum wd_lmtp_cmd_result wd_lmtp_cmd_not_implemented(struct wd_lmtp_cmd *cmd)
{
	wd_lmtp_reply(cmd->session, 502, "5.5.1", "Command not implemented");
	return WD_LMTP_CMD_DONE;
}
