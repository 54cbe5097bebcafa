#ifndef WD_DELIVER_H
#define WD_DELIVER_H

/* libwddeliver: one incoming message to its recipients, as WildDuck's LMTP
 * and MX delivery do it (reference §4.15), shared by wd-server's LMTP
 * engine (server/lmtp) and the Dovecot LMTP plugin.
 *
 * A transaction is two blocking steps, each run on a worker thread:
 *
 *   RCPT TO   wd_deliver_check_rcpt(): resolve the address (reference
 *             §4.13: dots, +labels, domain aliases, IDN, and wildcard
 *             addresses unless lmtp.wildcard is false), refuse unknown /
 *             disabled / suspended users and users already over quota, keep
 *             what DATA needs. A forwarded address (no owner) is accepted
 *             when it forwards (as WildDuck's MX plugin does; WildDuck's own
 *             lmtp.js refuses it) and the message is only forwarded.
 *   DATA      wd_deliver_message(): the message is parsed once
 *             (wd-message-summary.h); then for each accepted recipient: add
 *             the trace headers (Delivered-To, Return-Path), run the user's
 *             filters, the domain access lists and the spam decision, check
 *             quota with the real size, queue forwards and the autoreply in
 *             the outbound queue, pick the mailbox (Junk, a filter's target,
 *             INBOX), store through libwdstore, update the address register,
 *             and write one message-log line. Each recipient gets its own
 *             reply; one recipient's failure never changes another's.
 *
 * Replies are SMTP replies with enhanced status codes (RFC 3463) that the
 * LMTP engine sends as they are. Temporary trouble (database or Redis down)
 * is a 4xx so the MTA retries; nothing is ever half-stored and then
 * reported as failed (a recipient is 250 exactly when its message is
 * stored, forwarded (forwarded addresses), or dropped by a filter's delete
 * action, which WildDuck also answers with 250).
 *
 * docs/DELIVERY.md describes the pipeline, every setting, and where we
 * differ from WildDuck.
 *
 * Thread safety: a wd_deliver is shared by all worker threads; the calls
 * keep no state between them except in the wd_deliver_rcpt objects (and a
 * settings cache of their own). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wd_store;
struct wd_auth;
struct wd_config;
struct wd_deliver;
struct wd_deliver_rcpt;

/* Settings come from the configuration (WildDuck's keys where it has them):
   lmtp.maxMB (25), lmtp.overQuota ("reject": 552, "defer": 452),
   lmtp.wildcard, lmtp.forwardedAddresses, lmtp.spamHeader,
   lmtp.spamHeaderScore, lmtp.rspamdHeader, maxStorage,
   attachments.decodeBase64; every key is in docs/DELIVERY.md. A value of
   the wrong type is an error (NULL, malloc'd *error_r). */
struct wd_deliver *wd_deliver_create(struct wd_store *store, struct wd_auth *auth,
				     const struct wd_config *config, char **error_r);
void wd_deliver_destroy(struct wd_deliver **deliver);

/* Where forwards and autoreplies go. Without a queue (the default) they
   are not sent, and each message-log line says so. set_outbound uses the
   outbound queue (wd-outbound.h, wd_outbound_queue()); set_queue takes any
   function with its contract (another queue, or a test double). Call
   before the first delivery; the queue must outlive the wd_deliver. */
struct wd_outbound;
struct wd_outbound_message;
typedef int wd_deliver_queue_cb(void *context, const struct wd_outbound_message *message,
				char queue_id_r[19], char **error_r);
void wd_deliver_set_outbound(struct wd_deliver *deliver, struct wd_outbound *outbound);
void wd_deliver_set_queue(struct wd_deliver *deliver, wd_deliver_queue_cb *queue,
			  void *context);

/* One SMTP reply: "<code> <status> <text>". */
struct wd_deliver_reply {
	unsigned code;          /* 250, 450, 451, 452, 550, 552, 554 ... */
	char status[12];        /* enhanced status code, e.g. "5.1.1" */
	char text[256];         /* one line of text, no CR/LF */
};

/* What an LMTP server sends for `reply` (wd-server's engine and Dovecot's
   LMTP plugin alike): a code outside 200..599 becomes 451 4.3.0, a missing
   or unterminated status or text a generic one. The strings point into
   `reply` or are static. Inline: engines tested with a fake pipeline use it. */
static inline void wd_deliver_reply_checked(const struct wd_deliver_reply *reply,
					    unsigned *code_r, const char **status_r,
					    const char **text_r)
{
	unsigned code = reply->code;
	if (code < 200 || code > 599) {
		*code_r = 451;
		*status_r = "4.3.0";
		*text_r = "Temporary local problem, try again later";
		return;
	}
	*code_r = code;
	if (reply->status[0] != '\0' && memchr(reply->status, '\0', sizeof(reply->status)) != NULL)
		*status_r = reply->status;
	else
		*status_r = code >= 500 ? "5.0.0" : code >= 400 ? "4.0.0" : "2.0.0";
	if (reply->text[0] != '\0' && memchr(reply->text, '\0', sizeof(reply->text)) != NULL)
		*text_r = reply->text;
	else
		*text_r = code >= 400 ? "Not delivered" : "OK";
}

/* RCPT TO. `address` is the forward-path without angle brackets (UTF-8 for
   SMTPUTF8, IDN domains in either form). Returns a recipient object on
   acceptance (reply 250), NULL otherwise with the refusal in *reply_r. */
struct wd_deliver_rcpt *wd_deliver_check_rcpt(struct wd_deliver *deliver, const char *address,
					      struct wd_deliver_reply *reply_r);
void wd_deliver_rcpt_free(struct wd_deliver_rcpt **rcpt);
/* The address as given in RCPT TO (for logs). */
const char *wd_deliver_rcpt_address(const struct wd_deliver_rcpt *rcpt);
/* The recipient as delivery writes it in Delivered-To and meta.to:
   WildDuck's normalizeAddress() of the RCPT address (lower case, NFC,
   Unicode domain, dots and "+label" kept). */
const char *wd_deliver_rcpt_recipient(const struct wd_deliver_rcpt *rcpt);

/* What the transaction knew before DATA. */
struct wd_deliver_envelope {
	const char *mail_from;      /* reverse-path without <>, "" for the null sender */
	const char *helo;           /* LHLO name */
	const char *remote_ip;      /* the client that handed us the message */
	const char *transaction_id; /* our id for the transaction, in logs and meta
				       (meta.transactionId: an ObjectId when it is 24 hex digits) */
	const char *protocol;       /* "LMTP" (meta.transtype unless Received says otherwise) */
};

/* DATA. `raw` is the message as received (dot-unstuffed, CRLF line ends as
   sent). replies[i] answers rcpts[i]. WD_OK when every recipient got a
   reply (some may be refusals); WD_ERROR only on misuse (NULL arguments).
   Recipients that resolve to the same user (or forwarded address) get one
   delivery, and the later ones the first one's reply. */
int wd_deliver_message(struct wd_deliver *deliver, const struct wd_deliver_envelope *envelope,
		       struct wd_deliver_rcpt *const *rcpts, size_t count, const uint8_t *raw,
		       size_t len, struct wd_deliver_reply *replies);

/* The largest message accepted (SIZE in LHLO, 552 past it). */
uint64_t wd_deliver_max_size(const struct wd_deliver *deliver);

const char *wd_deliver_version(void);

#endif
