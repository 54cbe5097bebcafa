/* LHLO (RFC 2033 §4.1) and the SMTP greetings LMTP replaces.
 *
 * LHLO starts the session over (like EHLO, RFC 5321 §4.1.4: a transaction
 * in progress is dropped) and lists the extensions. SIZE carries the
 * largest message (RFC 1870); ENHANCEDSTATUSCODES makes every later reply
 * carry its enhanced code (RFC 2034). */
#include "lmtp-commands.h"
#include "lmtp-session.h"

#include "wd-conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A domain or address literal, one word; UTF-8 allowed (SMTPUTF8). */
static bool lhlo_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c <= ' ' || c == 0x7f)
			return false;
	}
	return wd_lmtp_utf8_valid((const uint8_t *)name, len);
}

enum wd_lmtp_cmd_result wd_lmtp_cmd_lhlo(struct wd_lmtp_cmd *cmd)
{
	struct wd_lmtp_session *session = cmd->session;
	const struct wd_lmtp_settings *set = &session->server->set;
	if (!lhlo_name_valid(cmd->args, cmd->args_len)) {
		wd_lmtp_reply(session, 501, "5.5.4", "Syntax: LHLO <domain>");
		return WD_LMTP_CMD_DONE;
	}
	char *name = strdup(cmd->args);
	if (name == NULL) {
		wd_lmtp_reply(session, 451, "4.3.0", "Out of memory");
		return WD_LMTP_CMD_DONE;
	}
	wd_lmtp_txn_abort(session, "LHLO");
	free(session->lhlo);
	session->lhlo = name;

	char line[320];
	snprintf(line, sizeof(line), "%s", set->name);
	wd_lmtp_reply_line(session, 250, line);
	wd_lmtp_reply_line(session, 250, "PIPELINING");
	snprintf(line, sizeof(line), "SIZE %llu", (unsigned long long)set->max_message);
	wd_lmtp_reply_line(session, 250, line);
	wd_lmtp_reply_line(session, 250, "8BITMIME");
	wd_lmtp_reply_line(session, 250, "SMTPUTF8");
	if (session->server->tls != NULL && set->starttls && !wd_conn_is_tls(session->conn))
		wd_lmtp_reply_line(session, 250, "STARTTLS");
	wd_lmtp_reply(session, 250, NULL, "ENHANCEDSTATUSCODES");
	return WD_LMTP_CMD_DONE;
}

enum wd_lmtp_cmd_result wd_lmtp_cmd_helo(struct wd_lmtp_cmd *cmd)
{
	wd_lmtp_reply(cmd->session, 500, "5.5.1", "This is LMTP: use LHLO (RFC 2033)");
	return WD_LMTP_CMD_DONE;
}
