/* USER and PASS (RFC 1939 §7). USER only remembers the name (the answer
 * says nothing about whether it exists); PASS takes the rest of its line as
 * the password, spaces included, and runs the login (pop3-login.h). After a
 * PASS, successful or not, the name is forgotten. Without TLS (and without
 * pop3.insecureAuth) both are refused and CAPA does not list USER. */
#include "pop3-commands.h"
#include "pop3-login.h"
#include "pop3-session.h"

#include "wd-auth.h"

#include <stdlib.h>
#include <string.h>

static enum wd_pop3_cmd_result refuse_plaintext(struct wd_pop3_cmd *cmd)
{
	return wd_pop3_cmd_err(cmd, "AUTH",
			       "Plaintext authentication is disabled on this connection, use STLS");
}

enum wd_pop3_cmd_result wd_pop3_cmd_user(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	if (!wd_pop3_session_auth_allowed(session))
		return refuse_plaintext(cmd);
	if (cmd->args_len == 0)
		return wd_pop3_cmd_err(cmd, NULL, "USER who?");
	if (cmd->args_len > WD_AUTH_MAX_USERNAME)
		return wd_pop3_cmd_err(cmd, NULL, "User name too long");
	char *name = strndup(cmd->args, cmd->args_len);
	if (name == NULL)
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Out of memory");
	free(session->user_arg);
	session->user_arg = name;
	return wd_pop3_cmd_ok(cmd, "Send PASS");
}

enum wd_pop3_cmd_result wd_pop3_cmd_pass(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	if (!wd_pop3_session_auth_allowed(session))
		return refuse_plaintext(cmd);
	if (session->user_arg == NULL)
		return wd_pop3_cmd_err(cmd, NULL, "Send USER first");
	char *user = session->user_arg;
	session->user_arg = NULL;
	enum wd_pop3_cmd_result result =
		wd_pop3_login_start(cmd, user, strlen(user), cmd->args, cmd->args_len);
	free(user);
	return result;
}
