/* Helpers shared by the POP3 handlers (pop3-commands.h): status lines,
 * the command's context, the message number argument. */
#include "pop3-commands.h"
#include "pop3-session.h"

#include "wd-buffer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One status line; CR, LF and NUL in the text become spaces, since it may
   carry storage errors. */
static void status_line(struct wd_pop3_session *session, const char *status, const char *code,
			const char *fmt, va_list ap)
{
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	for (char *p = text; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	}
	struct wd_buffer *out = &session->out;
	wd_buffer_append_str(out, status);
	if (code != NULL)
		wd_buffer_printf(out, " [%s]", code);
	if (text[0] != '\0')
		wd_buffer_printf(out, " %s", text);
	wd_buffer_append(out, "\r\n", 2);
	wd_pop3_session_send(session);
}

enum wd_pop3_cmd_result wd_pop3_cmd_ok(struct wd_pop3_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	status_line(cmd->session, "+OK", NULL, fmt, ap);
	va_end(ap);
	return WD_POP3_CMD_DONE;
}

enum wd_pop3_cmd_result wd_pop3_cmd_err(struct wd_pop3_cmd *cmd, const char *code,
					const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	status_line(cmd->session, "-ERR", code, fmt, ap);
	va_end(ap);
	return WD_POP3_CMD_DONE;
}

void *wd_pop3_cmd_context_new(struct wd_pop3_cmd *cmd, size_t size,
			      void (*context_free)(void *context))
{
	void *context = calloc(1, size);
	if (context == NULL) {
		wd_pop3_cmd_err(cmd, "SYS/TEMP", "Out of memory");
		return NULL;
	}
	cmd->context = context;
	cmd->context_free = context_free;
	return context;
}

long wd_pop3_cmd_message_arg(struct wd_pop3_cmd *cmd, const struct wd_pop3_arg *arg)
{
	struct wd_pop3_session *session = cmd->session;
	uint32_t number;
	if (!wd_pop3_arg_number(arg, &number) || number == 0) {
		wd_pop3_cmd_err(cmd, NULL, "Invalid message number");
		return -1;
	}
	if (number > session->maildrop.count) {
		wd_pop3_cmd_err(cmd, NULL, "No such message, only %zu messages in maildrop",
				session->maildrop.count);
		return -1;
	}
	if (session->marks[number - 1] & WD_POP3_MARK_DELETED) {
		wd_pop3_cmd_err(cmd, NULL, "Message %u already deleted", number);
		return -1;
	}
	return (long)number - 1;
}
