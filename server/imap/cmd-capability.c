/* CAPABILITY (RFC 3501 §6.1.1) and the capability list itself.
 *
 * The list is data: each entry names the command that implements it, and is
 * advertised only when that command is in the table, so the list never
 * promises what the engine cannot do. Before login it carries what a client
 * needs to log in (STARTTLS or LOGINDISABLED, AUTH=, SASL-IR); after login
 * the extensions (UTF8=ACCEPT only then, RFC 6855 §3). */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-conn.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>

enum cap_when {
	CAP_PRE = 1,
	CAP_POST = 2,
	CAP_ALWAYS = 3,
};

struct capability {
	const char *name;
	unsigned when;
	const char *command; /* advertised only when this command exists */
	const char *command2;
};

static const struct capability capabilities[] = {
	{ "IMAP4rev1", CAP_ALWAYS, NULL, NULL },
	{ "ID", CAP_ALWAYS, "ID", NULL },
	{ "ENABLE", CAP_POST, "ENABLE", NULL },
	{ "IDLE", CAP_POST, "IDLE", NULL },
	{ "NAMESPACE", CAP_POST, "NAMESPACE", NULL },
	{ "UNSELECT", CAP_POST, "UNSELECT", NULL },
	{ "UIDPLUS", CAP_POST, "APPEND", "EXPUNGE" },
	{ "MOVE", CAP_POST, "MOVE", NULL },
	{ "SPECIAL-USE", CAP_POST, "LIST", NULL },
	{ "CREATE-SPECIAL-USE", CAP_POST, "CREATE", NULL },
	{ "LIST-EXTENDED", CAP_POST, "LIST", NULL },
	{ "LIST-STATUS", CAP_POST, "LIST", "STATUS" },
	{ "CHILDREN", CAP_POST, "LIST", NULL },
	{ "CONDSTORE", CAP_POST, "FETCH", "STORE" },
	{ "QRESYNC", CAP_POST, "FETCH", "STORE" },
	{ "ESEARCH", CAP_POST, "SEARCH", NULL },
	{ "SEARCHRES", CAP_POST, "SEARCH", NULL },
	{ "UTF8=ACCEPT", CAP_POST, "ENABLE", NULL },
	{ "QUOTA", CAP_POST, "GETQUOTA", NULL },
	{ "QUOTA=RES-STORAGE", CAP_POST, "GETQUOTA", NULL },
	{ "BINARY", CAP_POST, "FETCH", NULL },
};

static bool cap_available(const struct capability *cap)
{
	return (cap->command == NULL || wd_imap_command_find(cap->command) != NULL) &&
	       (cap->command2 == NULL || wd_imap_command_find(cap->command2) != NULL);
}

bool wd_imap_capability_enabled(const char *name)
{
	for (size_t i = 0; i < sizeof(capabilities) / sizeof(capabilities[0]); i++) {
		if (strcmp(capabilities[i].name, name) == 0)
			return cap_available(&capabilities[i]);
	}
	return false;
}

int wd_imap_session_capabilities(struct wd_imap_session *session)
{
	const struct wd_imap_settings *set = &session->server->set;
	struct wd_buffer *out = &session->out;
	bool authed = session->state != WD_IMAP_STATE_NOT_AUTH;
	unsigned when = authed ? CAP_POST : CAP_PRE;
	int ret = 0;
	for (size_t i = 0; i < sizeof(capabilities) / sizeof(capabilities[0]); i++) {
		const struct capability *cap = &capabilities[i];
		if ((cap->when & when) && cap_available(cap))
			ret |= wd_buffer_printf(out, "%s%s", i == 0 ? "" : " ", cap->name);
	}
	ret |= wd_buffer_append_str(out, set->literal_plus ? " LITERAL+" : " LITERAL-");
	if (!authed) {
		if (!set->secure && set->starttls && session->server->tls != NULL &&
		    !wd_conn_is_tls(session->conn))
			ret |= wd_buffer_append_str(out, " STARTTLS");
		if (wd_imap_session_auth_allowed(session))
			ret |= wd_buffer_append_str(out, " SASL-IR AUTH=PLAIN AUTH=LOGIN");
		else
			ret |= wd_buffer_append_str(out, " LOGINDISABLED");
	} else {
		if (set->compression && !wd_conn_is_compressed(session->conn))
			ret |= wd_buffer_append_str(out, " COMPRESS=DEFLATE");
		if (wd_imap_command_find("APPEND") != NULL)
			ret |= wd_buffer_printf(out, " APPENDLIMIT=%llu",
						(unsigned long long)set->max_message);
	}
	return ret < 0 ? WD_ERROR : WD_OK;
}

enum wd_imap_cmd_result wd_imap_cmd_capability(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	struct wd_imap_session *session = cmd->session;
	wd_buffer_append_str(&session->out, "* CAPABILITY ");
	wd_imap_session_capabilities(session);
	wd_buffer_append_str(&session->out, "\r\n");
	wd_imap_session_send(session);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "Capability completed");
}
