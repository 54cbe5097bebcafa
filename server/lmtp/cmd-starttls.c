/* STARTTLS (RFC 3207). Offered on plain listeners when lmtp.disableSTARTTLS
 * is false and a certificate is configured. Plaintext the client pipelined
 * after the command is thrown away, never read as if it had come through
 * TLS (the CVE-2011-0411 class of bug; Postfix does the same). The session
 * starts over: the client must send LHLO again (RFC 3207 §4.2). */
#include "lmtp-commands.h"
#include "lmtp-session.h"

#include "wd-conn.h"
#include "wd-log.h"

#include <stdlib.h>

enum wd_lmtp_cmd_result wd_lmtp_cmd_starttls(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	struct wd_lmtp_server *server = session->server;
	if (cmd->args_len > 0) {
		wd_lmtp_reply(session, 501, "5.5.4", "Syntax: STARTTLS");
		return WD_LMTP_CMD_DONE;
	}
	if (wd_conn_is_tls(session->conn)) {
		wd_lmtp_reply(session, 503, "5.5.1", "TLS already active");
		return WD_LMTP_CMD_DONE;
	}
	if (server->tls == NULL || !server->set.starttls) {
		wd_lmtp_reply(session, 502, "5.5.1", "STARTTLS not available");
		return WD_LMTP_CMD_DONE;
	}
	size_t pending;
	wd_conn_input(session->conn, &pending);
	if (pending > 0) {
		wd_info("lmtp", "%s: %zu bytes pipelined after STARTTLS dropped", session->id,
			pending);
		wd_conn_consume(session->conn, pending);
	}
	wd_lmtp_reply(session, 220, "2.0.0", "Ready to start TLS");
	const char *error;
	if (wd_conn_start_tls(session->conn, server->tls, &error) < 0) {
		wd_warning("lmtp", "%s: STARTTLS failed: %s", session->id, error);
		session->close_after = true;
	}
	wd_lmtp_txn_abort(session, "STARTTLS");
	free(session->lhlo);
	session->lhlo = NULL;
	return WD_LMTP_CMD_DONE;
}
