/* ID (RFC 2971): the client's field list is checked against the RFC's limits
 * (30 pairs, keys of 30 bytes, values of 1024) and logged; we answer with
 * our name and version. */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-writer.h"
#include "wd-log.h"

#include <string.h>

#define ID_MAX_PAIRS 30
#define ID_MAX_KEY 30
#define ID_MAX_VALUE 1024

enum wd_imap_cmd_result wd_imap_cmd_id(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	if (!wd_imap_cmd_want_args(cmd, 1))
		return WD_IMAP_CMD_DONE;
	const struct wd_imap_arg *arg = &cmd->parsed->args[0];
	const struct wd_imap_arg *list = NULL;
	size_t count = 0;
	if (arg->type != WD_IMAP_ARG_NIL && !wd_imap_arg_get_list(arg, &list, &count))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "ID expects a list or NIL");
	if (count % 2 != 0 || count / 2 > ID_MAX_PAIRS)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid ID field list");
	const char *name = NULL, *version = NULL;
	for (size_t i = 0; i < count; i += 2) {
		const char *key, *value;
		size_t key_len, value_len;
		if (!wd_imap_arg_get_string(&list[i], &key, &key_len) || key_len > ID_MAX_KEY ||
		    !wd_imap_arg_get_nstring(&list[i + 1], &value, &value_len) ||
		    value_len > ID_MAX_VALUE)
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid ID field");
		if (strcasecmp(key, "name") == 0)
			name = value;
		else if (strcasecmp(key, "version") == 0)
			version = value;
	}
	if (name != NULL)
		wd_info("imap", "%s: client %s %s", session->id, name,
			version != NULL ? version : "");
	wd_imap_session_untagged(session, "ID (\"name\" \"%s\" \"vendor\" \"wildduck-c\")",
				 session->server->set.greeting);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "ID completed");
}
