/* STLS (RFC 2595 §4). Offered on plain connections with a TLS context, in
 * AUTHORIZATION only. Anything the client pipelined after the command was
 * sent in clear and must not be read as if it came through TLS
 * (CVE-2011-0411 class): such a session is refused and closed. A USER name
 * given before is forgotten. */
#include "pop3-commands.h"
#include "pop3-session.h"

#include "wd-conn.h"
#include "wd-log.h"

#include <stdlib.h>

enum wd_pop3_cmd_result wd_pop3_cmd_stls(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	if (cmd->args_len > 0)
		return wd_pop3_cmd_err(cmd, NULL, "STLS takes no arguments");
	if (wd_conn_is_tls(session->conn))
		return wd_pop3_cmd_err(cmd, NULL, "Command not permitted when TLS active");
	if (!wd_pop3_session_stls_allowed(session))
		return wd_pop3_cmd_err(cmd, NULL, "STLS is not available");
	size_t pending;
	wd_conn_input(session->conn, &pending);
	if (pending > 0) {
		session->close_after = true;
		return wd_pop3_cmd_err(cmd, NULL, "Commands pipelined after STLS; closing");
	}
	free(session->user_arg);
	session->user_arg = NULL;
	wd_pop3_cmd_ok(cmd, "Begin TLS negotiation");
	const char *error;
	if (wd_conn_start_tls(session->conn, session->server->tls, &error) < 0) {
		wd_warning("pop3", "%s: STLS failed: %s", session->id, error);
		session->close_after = true;
	}
	return WD_POP3_CMD_DONE;
}
