/* The command table (imap-commands.h): sorted by name, looked up by binary
 * search. Adding a command is adding a row here and a cmd-*.c file. */
#include "imap-commands.h"

#include <stdlib.h>
#include <string.h>

#define ANY WD_IMAP_STATES_ANY
#define AUTHED WD_IMAP_STATES_AUTHED
#define NOT_AUTH WD_IMAP_STATE_NOT_AUTH
#define SELECTED WD_IMAP_STATE_SELECTED

/* Keep sorted (strcmp order); the unit test checks it. */
static const struct wd_imap_command_def commands[] = {
	{ "APPEND", wd_imap_cmd_append, AUTHED, 0 },
	{ "AUTHENTICATE", wd_imap_cmd_authenticate, NOT_AUTH, WD_IMAP_CMD_BARRIER },
	{ "CAPABILITY", wd_imap_cmd_capability, ANY, 0 },
	{ "CHECK", wd_imap_cmd_check, SELECTED, 0 },
	{ "CLOSE", wd_imap_cmd_close, SELECTED, WD_IMAP_CMD_BREAKS_SEQS },
	{ "COMPRESS", wd_imap_cmd_compress, AUTHED, WD_IMAP_CMD_BARRIER },
	{ "COPY", wd_imap_cmd_copy, SELECTED, WD_IMAP_CMD_USES_SEQS | WD_IMAP_CMD_UID },
	{ "CREATE", wd_imap_cmd_create, AUTHED, 0 },
	{ "DELETE", wd_imap_cmd_delete, AUTHED, 0 },
	{ "ENABLE", wd_imap_cmd_enable, AUTHED, WD_IMAP_CMD_BARRIER },
	{ "EXAMINE", wd_imap_cmd_examine, AUTHED, WD_IMAP_CMD_BREAKS_SEQS },
	{ "EXPUNGE", wd_imap_cmd_expunge, SELECTED, WD_IMAP_CMD_BREAKS_SEQS | WD_IMAP_CMD_UID },
	{ "FETCH", wd_imap_cmd_fetch, SELECTED, WD_IMAP_CMD_USES_SEQS | WD_IMAP_CMD_UID },
	{ "GETQUOTA", wd_imap_cmd_getquota, AUTHED, 0 },
	{ "GETQUOTAROOT", wd_imap_cmd_getquotaroot, AUTHED, 0 },
	{ "ID", wd_imap_cmd_id, ANY, 0 },
	{ "IDLE", wd_imap_cmd_idle, AUTHED, WD_IMAP_CMD_BARRIER },
	{ "LIST", wd_imap_cmd_list, AUTHED, 0 },
	{ "LOGIN", wd_imap_cmd_login, NOT_AUTH, 0 },
	{ "LOGOUT", wd_imap_cmd_logout, ANY, WD_IMAP_CMD_BARRIER },
	{ "LSUB", wd_imap_cmd_lsub, AUTHED, 0 },
	{ "MOVE", wd_imap_cmd_move, SELECTED, WD_IMAP_CMD_BREAKS_SEQS | WD_IMAP_CMD_UID },
	{ "NAMESPACE", wd_imap_cmd_namespace, AUTHED, 0 },
	{ "NOOP", wd_imap_cmd_noop, ANY, 0 },
	{ "RENAME", wd_imap_cmd_rename, AUTHED, 0 },
	{ "SEARCH", wd_imap_cmd_search, SELECTED, WD_IMAP_CMD_USES_SEQS | WD_IMAP_CMD_UID },
	{ "SELECT", wd_imap_cmd_select, AUTHED, WD_IMAP_CMD_BREAKS_SEQS },
	{ "STARTTLS", wd_imap_cmd_starttls, NOT_AUTH, WD_IMAP_CMD_BARRIER },
	{ "STATUS", wd_imap_cmd_status, AUTHED, 0 },
	{ "STORE", wd_imap_cmd_store, SELECTED, WD_IMAP_CMD_USES_SEQS | WD_IMAP_CMD_UID },
	{ "SUBSCRIBE", wd_imap_cmd_subscribe, AUTHED, 0 },
	{ "UNSELECT", wd_imap_cmd_unselect, SELECTED, WD_IMAP_CMD_BREAKS_SEQS },
	{ "UNSUBSCRIBE", wd_imap_cmd_unsubscribe, AUTHED, 0 },
};

static int compare_name(const void *key, const void *row)
{
	return strcmp(key, ((const struct wd_imap_command_def *)row)->name);
}

const struct wd_imap_command_def *wd_imap_command_table(size_t *count_r)
{
	*count_r = sizeof(commands) / sizeof(commands[0]);
	return commands;
}

const struct wd_imap_command_def *wd_imap_command_find(const char *name)
{
	return bsearch(name, commands, sizeof(commands) / sizeof(commands[0]), sizeof(commands[0]),
		       compare_name);
}
