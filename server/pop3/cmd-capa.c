/* CAPA (RFC 2449 §5). The list depends on the connection as WildDuck's
 * does: USER and SASL PLAIN only where a login is allowed now (TLS, or
 * pop3.insecureAuth) and not after it, STLS only on a plain connection
 * before login. APOP is never offered. */
#include "pop3-commands.h"
#include "pop3-session.h"

#include "wd-buffer.h"

enum wd_pop3_cmd_result wd_pop3_cmd_capa(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	const struct wd_pop3_settings *set = &session->server->set;
	if (cmd->args_len > 0)
		return wd_pop3_cmd_err(cmd, NULL, "CAPA takes no arguments");
	bool login = session->state == WD_POP3_STATE_AUTHORIZATION &&
		     wd_pop3_session_auth_allowed(session);
	struct wd_buffer *out = &session->out;
	wd_buffer_append_str(out, "+OK Capability list follows\r\n"
				  "TOP\r\nUIDL\r\n");
	if (login)
		wd_buffer_append_str(out, "USER\r\n");
	wd_buffer_append_str(out, "RESP-CODES\r\nAUTH-RESP-CODE\r\n");
	if (login)
		wd_buffer_append_str(out, "SASL PLAIN\r\n");
	wd_buffer_append_str(out, "PIPELINING\r\n");
	if (wd_pop3_session_stls_allowed(session))
		wd_buffer_append_str(out, "STLS\r\n");
	if (set->version_string)
		wd_buffer_printf(out, "IMPLEMENTATION %s\r\n", set->version);
	wd_buffer_append_str(out, ".\r\n");
	wd_pop3_session_send(session);
	return WD_POP3_CMD_DONE;
}
