/* STAT, LIST and UIDL (RFC 1939 §5, §7). Messages are numbered from 1 in
 * the order of the maildrop (oldest first) for the whole session; deleted
 * ones keep their numbers and are left out of the listings. The UIDL value
 * is the message's _id in hex, as WildDuck's, so clients that keep UIDs
 * see the same ones on both servers.
 *
 * The multi-line forms are written in slices: a maildrop can be as long as
 * WD_POP3_MAILDROP_MAX, so the listing parks at the output watermark and
 * continues from its cursor once the client read what was sent. */
#include "pop3-commands.h"
#include "pop3-session.h"

#include "wd-buffer.h"

#define SLICE_BYTES (16 * 1024)

struct listing {
	size_t next;  /* index of the next message to list */
	bool uidl;
};

static void write_entry(struct wd_buffer *out, const struct wd_pop3_session *session, size_t i,
			bool uidl)
{
	const struct wd_pop3_message *msg = &session->maildrop.messages[i];
	if (uidl) {
		char hex[25];
		bson_oid_to_string(&msg->id, hex);
		wd_buffer_printf(out, "%zu %s", i + 1, hex);
	} else {
		wd_buffer_printf(out, "%zu %llu", i + 1, (unsigned long long)msg->size);
	}
}

static enum wd_pop3_cmd_result listing_step(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	struct listing *l = cmd->context;
	struct wd_buffer *out = &session->out;
	while (l->next < session->maildrop.count) {
		if (!(session->marks[l->next] & WD_POP3_MARK_DELETED)) {
			write_entry(out, session, l->next, l->uidl);
			wd_buffer_append(out, "\r\n", 2);
		}
		l->next++;
		if (out->len >= SLICE_BYTES) {
			wd_pop3_session_send(session);
			if (wd_pop3_session_output_full(session))
				return WD_POP3_CMD_WAIT_OUTPUT;
		}
	}
	wd_buffer_append(out, ".\r\n", 3);
	wd_pop3_session_send(session);
	return WD_POP3_CMD_DONE;
}

static enum wd_pop3_cmd_result listing(struct wd_pop3_cmd *cmd, bool uidl)
{
	struct wd_pop3_session *session = cmd->session;
	struct wd_pop3_arg argv[1];
	size_t argc = wd_pop3_args_split((const uint8_t *)cmd->args, cmd->args_len, argv, 1);
	if (argc > 1)
		return wd_pop3_cmd_err(cmd, NULL, "Too many arguments");
	if (argc == 1) {
		long i = wd_pop3_cmd_message_arg(cmd, &argv[0]);
		if (i < 0)
			return WD_POP3_CMD_DONE;
		wd_buffer_append_str(&session->out, "+OK ");
		write_entry(&session->out, session, (size_t)i, uidl);
		wd_buffer_append(&session->out, "\r\n", 2);
		wd_pop3_session_send(session);
		return WD_POP3_CMD_DONE;
	}
	struct listing *l = wd_pop3_cmd_context_new(cmd, sizeof(*l), NULL);
	if (l == NULL)
		return WD_POP3_CMD_DONE;
	l->uidl = uidl;
	if (uidl)
		wd_buffer_append_str(&session->out, "+OK\r\n");
	else
		wd_buffer_printf(&session->out, "+OK %zu messages (%llu octets)\r\n",
				 session->live_count, (unsigned long long)session->live_size);
	cmd->step = listing_step;
	return listing_step(cmd);
}

enum wd_pop3_cmd_result wd_pop3_cmd_list(struct wd_pop3_cmd *cmd)
{
	return listing(cmd, false);
}

enum wd_pop3_cmd_result wd_pop3_cmd_uidl(struct wd_pop3_cmd *cmd)
{
	return listing(cmd, true);
}

enum wd_pop3_cmd_result wd_pop3_cmd_stat(struct wd_pop3_cmd *cmd)
{
	struct wd_pop3_session *session = cmd->session;
	if (cmd->args_len > 0)
		return wd_pop3_cmd_err(cmd, NULL, "STAT takes no arguments");
	return wd_pop3_cmd_ok(cmd, "%zu %llu", session->live_count,
			      (unsigned long long)session->live_size);
}
