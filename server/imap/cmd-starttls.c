/* STARTTLS (RFC 3501 §6.2.1, RFC 2595). Offered on plain listeners with a
 * TLS context. Anything the client pipelined after the command was sent in
 * clear and must not be read as if it came through TLS (CVE-2011-0411
 * class): such a session is refused and closed. */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-conn.h"
#include "wd-log.h"

enum wd_imap_cmd_result wd_imap_cmd_starttls(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	struct wd_imap_server *server = session->server;
	if (!wd_imap_cmd_want_args(cmd, 0))
		return WD_IMAP_CMD_DONE;
	if (wd_conn_is_tls(session->conn))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "TLS is already active");
	if (server->tls == NULL || server->set.secure || !server->set.starttls)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "STARTTLS is not available");
	size_t pending;
	wd_conn_input(session->conn, &pending);
	if (pending > 0) {
		session->close_after = true;
		return wd_imap_cmd_reply(cmd, "BAD", NULL,
					 "Commands pipelined after STARTTLS; closing");
	}
	wd_imap_cmd_reply(cmd, "OK", NULL, "Begin TLS negotiation now");
	const char *error;
	if (wd_conn_start_tls(session->conn, server->tls, &error) < 0) {
		wd_warning("imap", "%s: STARTTLS failed: %s", session->id, error);
		session->close_after = true;
	}
	return WD_IMAP_CMD_DONE;
}
