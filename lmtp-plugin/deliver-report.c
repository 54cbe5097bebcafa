/* Replies and the message log: one line per recipient and transaction,
 * key=value pairs (values with spaces quoted) so that log tools can split
 * them:
 *
 *   deliver: txn=... queue=... from=<s@x> to=<r@y> user=... mailbox=...
 *            uid=17 size=533 action=stored reply="250 2.0.0 ..." [reason=...]
 *            [forwarded=2] [autoreply=yes] [notes="..."]
 *
 * action is one of stored, dropped, forwarded, refused (WildDuck logs the
 * same facts through gelf as separate [FRWRDOK] / AUTOREPLYOK entries). */
#include "deliver-private.h"
#include "wd-log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void wd__deliver_reply(struct wd_deliver_reply *reply, unsigned code, const char *status,
		       const char *fmt, ...)
{
	reply->code = code;
	snprintf(reply->status, sizeof(reply->status), "%s", status);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reply->text, sizeof(reply->text), fmt, ap);
	va_end(ap);
	/* one line: nothing from a message may break the reply */
	for (char *p = reply->text; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
}

void wd__deliver_reply_db(struct wd_deliver_reply *reply)
{
	wd__deliver_reply(reply, 451, "4.3.0", "Database error, try again later");
}

void wd__deliver_reply_over_quota(const struct wd_deliver *deliver, struct wd_deliver_reply *reply)
{
	if (deliver->settings.over_quota_defer)
		wd__deliver_reply(reply, 452, "4.2.2", "Mailbox full, try again later");
	else
		wd__deliver_reply(reply, 552, "5.2.2", "Mailbox full");
}

void wd__deliver_note(struct deliver_outcome *outcome, const char *fmt, ...)
{
	size_t used = strlen(outcome->notes);
	if (used + 3 >= sizeof(outcome->notes))
		return;
	if (used > 0) {
		outcome->notes[used++] = ';';
		outcome->notes[used++] = ' ';
		outcome->notes[used] = '\0';
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(outcome->notes + used, sizeof(outcome->notes) - used, fmt, ap);
	va_end(ap);
}

static const char *action_name(enum deliver_action action)
{
	switch (action) {
	case DELIVER_STORED: return "stored";
	case DELIVER_DROPPED: return "dropped";
	case DELIVER_FORWARDED: return "forwarded";
	case DELIVER_REFUSED: break;
	}
	return "refused";
}

/* Quotes for the log: printable, no quotes or backslashes inside. */
static void quoted(char *out, size_t size, const char *in)
{
	size_t n = 0;
	if (size < 3)
		return;
	out[n++] = '"';
	for (const char *p = in; *p != '\0' && n + 2 < size; p++) {
		unsigned char c = (unsigned char)*p;
		out[n++] = (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) ? '_' : (char)c;
	}
	out[n++] = '"';
	out[n] = '\0';
}

void wd__deliver_log(const struct deliver_txn *txn, const struct wd_deliver_rcpt *rcpt,
		     const struct wd_deliver_reply *reply, const struct deliver_outcome *outcome)
{
	const struct wd_deliver_envelope *env = txn->envelope;
	char reply_text[300], reply_q[320], reason_q[200], notes_q[200], from_q[600], to_q[600];
	snprintf(reply_text, sizeof(reply_text), "%u %s %s", reply->code, reply->status, reply->text);
	quoted(reply_q, sizeof(reply_q), reply_text);
	quoted(reason_q, sizeof(reason_q), outcome->reason);
	quoted(notes_q, sizeof(notes_q), outcome->notes);
	quoted(from_q, sizeof(from_q), txn->sender);
	quoted(to_q, sizeof(to_q), rcpt->address);
	wd_info(DELIVER_LOG,
		"txn=%s queue=%s from=%s to=%s user=%s mailbox=%s id=%s uid=%u size=%llu "
		"action=%s reply=%s%s%s%s%s%s%s",
		env->transaction_id != NULL ? env->transaction_id : "-",
		txn->received_id != NULL ? txn->received_id : "-", from_q, to_q,
		outcome->user[0] != '\0' ? outcome->user : "-",
		outcome->mailbox[0] != '\0' ? outcome->mailbox : "-",
		outcome->message_id[0] != '\0' ? outcome->message_id : "-", outcome->uid,
		(unsigned long long)outcome->size, action_name(outcome->action), reply_q,
		outcome->reason[0] != '\0' ? " reason=" : "",
		outcome->reason[0] != '\0' ? reason_q : "",
		outcome->forwarded > 0 ? " forwarded=yes" : "",
		outcome->autoreplied ? " autoreply=yes" : "",
		outcome->notes[0] != '\0' ? " notes=" : "",
		outcome->notes[0] != '\0' ? notes_q : "");
}
