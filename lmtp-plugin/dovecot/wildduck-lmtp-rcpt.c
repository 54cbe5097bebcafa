/* RCPT TO through the pipeline, as wd-server's engine (server/lmtp/cmd-rcpt.c):
 *
 *   past lmtp.maxRecipients accepted   452 4.5.3 Too many recipients
 *   pipeline not open (database down)  451 4.3.0
 *   wd_deliver_check_rcpt() refuses    its reply as it is (550 5.1.1 unknown,
 *                                      550 5.2.1 disabled, 552 5.2.2 or
 *                                      452 4.2.2 over quota, 451 4.3.0 ...)
 *   accepted                           250 2.1.5 Recipient OK
 *
 * Dovecot's smtp-server has already parsed the path and its parameters
 * (syntax errors get its own 501/555). The address handed to the pipeline
 * is the path as Dovecot encodes it (local part quoted when it must be).
 * The accepted recipient keeps the pipeline's object in a module context of
 * Dovecot's lmtp_recipient; the SMTP recipient's destroy hook frees it
 * (after DATA, RSET, or a lost connection). Dovecot's userdb is never asked. */
#include "wildduck-lmtp.h"

#include "smtp-address.h"

#include "wd-deliver.h"

void wildduck_lmtp_recipient_reply(struct smtp_server_recipient *rcpt, unsigned int code,
				   const char *status, const char *text)
{
	i_assert(rcpt->cmd != NULL);
	smtp_server_reply_index(rcpt->cmd, rcpt->index, code, status, "%s", text);
}

static void recipient_destroyed(struct smtp_server_recipient *rcpt ATTR_UNUSED,
				struct wildduck_lmtp_recipient *wrcpt)
{
	wd_deliver_rcpt_free(&wrcpt->rcpt);
}

int wildduck_lmtp_cmd_rcpt(struct client *client, struct smtp_server_cmd_ctx *cmd ATTR_UNUSED,
			   struct lmtp_recipient *lrcpt)
{
	struct wildduck_lmtp_client *wclient = WILDDUCK_LMTP_CLIENT(client);
	struct smtp_server_recipient *rcpt = lrcpt->rcpt;
	struct wd_deliver_reply reply;
	const char *error;

	if (wclient->pipeline == NULL) {
		wclient->pipeline = wildduck_lmtp_pipeline_get(client, &error);
		if (wclient->pipeline == NULL) {
			e_error(rcpt->event, "wildduck: the delivery pipeline is not available: %s",
				error);
			wclient->refused++;
			wildduck_lmtp_recipient_reply(rcpt, 451, "4.3.0",
						      "Temporary local problem, try again later");
			return -1;
		}
	}
	if (wclient->accepted >= wclient->pipeline->max_recipients) {
		wclient->refused++;
		wildduck_lmtp_recipient_reply(rcpt, 452, "4.5.3", "Too many recipients");
		return -1;
	}

	const char *address = smtp_address_encode(rcpt->path);
	struct wd_deliver_rcpt *drcpt =
		wd_deliver_check_rcpt(wclient->pipeline->deliver, address, &reply);
	if (drcpt == NULL) {
		unsigned int code;
		const char *status, *text;
		wd_deliver_reply_checked(&reply, &code, &status, &text);
		wclient->refused++;
		wildduck_lmtp_recipient_reply(rcpt, code, status, text);
		return -1;
	}

	struct wildduck_lmtp_recipient *wrcpt = p_new(rcpt->pool, struct wildduck_lmtp_recipient, 1);
	wrcpt->rcpt = drcpt;
	wrcpt->address = p_strdup(rcpt->pool, address);
	MODULE_CONTEXT_SET(lrcpt, wildduck_lmtp_recipient_module, wrcpt);
	smtp_server_recipient_add_hook(rcpt, SMTP_SERVER_RECIPIENT_HOOK_DESTROY,
				       recipient_destroyed, wrcpt);
	wclient->accepted++;
	wildduck_lmtp_recipient_reply(rcpt, 250, "2.1.5", "Recipient OK");
	return 1;
}
