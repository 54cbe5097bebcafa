/* ENABLE (RFC 5161) for CONDSTORE, QRESYNC (implies CONDSTORE, RFC 7162
 * §3.2.3) and UTF8=ACCEPT (RFC 6855). Each is enabled only when the engine
 * advertises it; `* ENABLED` lists what this command newly enabled
 * (client-quirks.md: some clients break without it). Unknown names are
 * ignored, as the RFC says. */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-buffer.h"

#include <strings.h>

static void enable_one(struct wd_imap_session *session, const char *name, struct wd_buffer *out)
{
	if (strcasecmp(name, "CONDSTORE") == 0 && wd_imap_capability_enabled("CONDSTORE")) {
		if (session->condstore)
			return;
		session->condstore = true;
		wd_buffer_append_str(out, " CONDSTORE");
	} else if (strcasecmp(name, "QRESYNC") == 0 && wd_imap_capability_enabled("QRESYNC")) {
		if (session->qresync)
			return;
		session->qresync = true;
		session->condstore = true;
		wd_buffer_append_str(out, " QRESYNC");
	} else if (strcasecmp(name, "UTF8=ACCEPT") == 0 &&
		   wd_imap_capability_enabled("UTF8=ACCEPT")) {
		if (session->utf8_accept)
			return;
		session->utf8_accept = true;
		wd_imap_session_update_limits(session);
		wd_buffer_append_str(out, " UTF8=ACCEPT");
	}
}

enum wd_imap_cmd_result wd_imap_cmd_enable(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	size_t count = cmd->parsed->arg_count;
	if (count == 0)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "ENABLE expects capability names");
	struct wd_buffer *out = &session->out;
	wd_buffer_append_str(out, "* ENABLED");
	for (size_t i = 0; i < count; i++) {
		const char *name;
		if (!wd_imap_arg_get_atom(&cmd->parsed->args[i], &name)) {
			wd_buffer_clear(out);
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "ENABLE expects capability names");
		}
		enable_one(session, name, out);
	}
	wd_buffer_append_str(out, "\r\n");
	wd_imap_session_send(session);
	return wd_imap_cmd_reply(cmd, "OK", NULL, "ENABLE completed");
}
