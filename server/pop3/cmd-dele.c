/* DELE and RSET (RFC 1939 §5). Both only change the session's marks: a
 * deleted message leaves STAT and the listings and cannot be retrieved;
 * the database changes at QUIT (cmd-quit.c), and not at all when the
 * session ends without it. */
#include "pop3-commands.h"
#include "pop3-session.h"

enum wd_pop3_cmd_result wd_pop3_cmd_dele(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	struct wd_pop3_arg argv[1];
	size_t argc = wd_pop3_args_split((const uint8_t *)cmd->args, cmd->args_len, argv, 1);
	if (argc != 1)
		return wd_pop3_cmd_err(cmd, NULL, "DELE expects a message number");
	long i = wd_pop3_cmd_message_arg(cmd, &argv[0]);
	if (i < 0)
		return WD_POP3_CMD_DONE;
	session->marks[i] |= WD_POP3_MARK_DELETED;
	session->live_count--;
	session->live_size -= session->maildrop.messages[i].size;
	return wd_pop3_cmd_ok(cmd, "Message %ld deleted", i + 1);
}

enum wd_pop3_cmd_result wd_pop3_cmd_rset(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	if (cmd->args_len > 0)
		return wd_pop3_cmd_err(cmd, NULL, "RSET takes no arguments");
	for (size_t i = 0; i < session->maildrop.count; i++)
		session->marks[i] &= (uint8_t)~WD_POP3_MARK_DELETED;
	session->live_count = session->maildrop.count;
	session->live_size = session->maildrop.size;
	return wd_pop3_cmd_ok(cmd, "maildrop has %zu message%s (%llu octets)", session->live_count,
			      session->live_count == 1 ? "" : "s",
			      (unsigned long long)session->live_size);
}
