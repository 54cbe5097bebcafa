/* The command table (pop3-commands.h): sorted by name, looked up by binary
 * search. Adding a command is adding a row here and a handler in a cmd-*.c
 * file. APOP is deliberately absent: it needs the password in clear on the
 * server, which WildDuck's hashes do not allow. */
#include "pop3-commands.h"

#include <stdlib.h>
#include <string.h>

#define ANY WD_POP3_STATES_ANY
#define AUTHZ WD_POP3_STATE_AUTHORIZATION
#define TRANS WD_POP3_STATE_TRANSACTION
#define BARRIER WD_POP3_CMD_BARRIER

/* Keep sorted (strcmp order); the unit test checks it. */
static const struct wd_pop3_command_def commands[] = {
	{ "AUTH", wd_pop3_cmd_auth, AUTHZ, BARRIER },
	{ "CAPA", wd_pop3_cmd_capa, ANY, 0 },
	{ "DELE", wd_pop3_cmd_dele, TRANS, 0 },
	{ "LIST", wd_pop3_cmd_list, TRANS, 0 },
	{ "NOOP", wd_pop3_cmd_noop, TRANS, 0 },
	{ "PASS", wd_pop3_cmd_pass, AUTHZ, 0 },
	{ "QUIT", wd_pop3_cmd_quit, ANY, BARRIER },
	{ "RETR", wd_pop3_cmd_retr, TRANS, 0 },
	{ "RSET", wd_pop3_cmd_rset, TRANS, 0 },
	{ "STAT", wd_pop3_cmd_stat, TRANS, 0 },
	{ "STLS", wd_pop3_cmd_stls, AUTHZ, BARRIER },
	{ "TOP", wd_pop3_cmd_top, TRANS, 0 },
	{ "UIDL", wd_pop3_cmd_uidl, TRANS, 0 },
	{ "USER", wd_pop3_cmd_user, AUTHZ, 0 },
};

static int compare_name(const void *key, const void *row)
{
	return strcmp(key, ((const struct wd_pop3_command_def *)row)->name);
}

const struct wd_pop3_command_def *wd_pop3_command_table(size_t *count_r)
{
	*count_r = sizeof(commands) / sizeof(commands[0]);
	return commands;
}

const struct wd_pop3_command_def *wd_pop3_command_find(const char *name)
{
	return bsearch(name, commands, sizeof(commands) / sizeof(commands[0]), sizeof(commands[0]),
		       compare_name);
}
