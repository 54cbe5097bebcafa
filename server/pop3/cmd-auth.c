/* AUTH (RFC 5034) with the PLAIN mechanism (RFC 4616), with or without an
 * initial response ("=" is the empty one), "*" to cancel. "AUTH" alone
 * lists the mechanisms as a multi-line response, as WildDuck and most
 * servers answer the pre-RFC 5034 form. The decoded message is
 * authzid NUL authcid NUL passwd; an authzid other than the authcid is
 * refused (no logging in as someone else). The login itself is
 * pop3-login.h's. */
#include "pop3-commands.h"
#include "pop3-login.h"
#include "pop3-session.h"

#include "wd-base64.h"
#include "wd-buffer.h"

#include <string.h>
#include <strings.h>

static enum wd_pop3_cmd_result sasl_plain(struct wd_pop3_cmd *cmd, const uint8_t *data,
					  size_t len)
{
	if (len == 1 && data[0] == '*')
		return wd_pop3_cmd_err(cmd, NULL, "Authentication cancelled");
	struct wd_buffer msg = WD_BUFFER_INIT;
	msg.limit = WD_POP3_LINE_MAX;
	bool empty = len == 0 || (len == 1 && data[0] == '=');
	if (!empty && wd_base64_decode(data, len, &msg) < 0) {
		wd_buffer_release(&msg);
		return wd_pop3_cmd_err(cmd, NULL, "Invalid base64 in SASL response");
	}
	const char *m = (const char *)wd_buffer_bytes(&msg);
	size_t mlen = msg.len;
	const char *nul1 = memchr(m, '\0', mlen);
	const char *nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', mlen - (size_t)(nul1 + 1 - m))
					: NULL;
	enum wd_pop3_cmd_result result;
	if (nul2 == NULL) {
		result = wd_pop3_cmd_err(cmd, NULL, "Invalid SASL PLAIN response");
	} else {
		const char *authcid = nul1 + 1;
		size_t authcid_len = (size_t)(nul2 - authcid), authzid_len = (size_t)(nul1 - m);
		if (authzid_len > 0 &&
		    (authzid_len != authcid_len || memcmp(m, authcid, authcid_len) != 0))
			result = wd_pop3_cmd_err(cmd, "AUTH",
						 "Logging in as another user is not supported");
		else
			result = wd_pop3_login_start(cmd, authcid, authcid_len, nul2 + 1,
						     mlen - (size_t)(nul2 + 1 - m));
	}
	if (msg.data != NULL)
		explicit_bzero(msg.data, msg.cap);
	wd_buffer_release(&msg);
	return result;
}

enum wd_pop3_cmd_result wd_pop3_cmd_auth(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	struct wd_pop3_arg argv[2];
	size_t argc = wd_pop3_args_split((const uint8_t *)cmd->args, cmd->args_len, argv, 2);
	if (argc == 0) {
		wd_buffer_append_str(&session->out, "+OK Supported mechanisms\r\nPLAIN\r\n.\r\n");
		wd_pop3_session_send(session);
		return WD_POP3_CMD_DONE;
	}
	if (argc > 2)
		return wd_pop3_cmd_err(cmd, NULL, "AUTH expects a mechanism and an initial response");
	if (argv[0].len != 5 || strncasecmp(argv[0].str, "PLAIN", 5) != 0)
		return wd_pop3_cmd_err(cmd, NULL, "Unsupported authentication mechanism");
	if (!wd_pop3_session_auth_allowed(session))
		return wd_pop3_cmd_err(cmd, "AUTH",
				       "Plaintext authentication is disabled on this connection, "
				       "use STLS");
	if (argc == 2)
		return sasl_plain(cmd, (const uint8_t *)argv[1].str, argv[1].len);
	cmd->on_line = sasl_plain;
	wd_buffer_append_str(&session->out, "+ \r\n");
	wd_pop3_session_send(session);
	return WD_POP3_CMD_WAIT_INPUT;
}
