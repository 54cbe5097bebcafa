#ifndef WD_DELIVER_H
#define WD_DELIVER_H

/* libwddeliver: one incoming message to its recipients, as WildDuck's LMTP
 * and MX delivery do it (reference §4.15), shared by wd-server's LMTP
 * engine (server/lmtp) and the Dovecot LMTP plugin.
 *
 * A transaction is two blocking steps, each run on a worker thread:
 *
 *   RCPT TO   wd_deliver_check_rcpt(): resolve the address as WildDuck's
 *             LMTP does (reference §4.13: dots, +labels, domain aliases,
 *             IDN), refuse unknown / disabled users and users already over
 *             quota, keep what DATA needs. Forwarded addresses (no user)
 *             are accepted when they forward and are only forwarded.
 *   DATA      wd_deliver_message(): for each accepted recipient, add the
 *             trace headers (Return-Path, Delivered-To), run the user's
 *             filters, the domain access lists and the spam decision, pick
 *             the mailbox (Junk, a filter's target, INBOX), check quota
 *             again with the real size, store through libwdstore, queue
 *             forwards and the autoreply in the outbound queue
 *             (wd-outbound.h), and write one message-log line. Each
 *             recipient gets its own reply; one recipient's failure never
 *             changes another's.
 *
 * Replies are SMTP replies with enhanced status codes (RFC 3463) that the
 * LMTP engine sends as they are. Temporary trouble (database or Redis down)
 * is a 4xx so the MTA retries; nothing is ever half-stored and then
 * reported as failed (a recipient is 250 exactly when its message is
 * stored, or dropped by a filter's delete action, which WildDuck also
 * answers with 250).
 *
 * Thread safety: a wd_deliver is shared by all worker threads; the calls
 * keep no state between them except in the wd_deliver_rcpt objects. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_store;
struct wd_auth;
struct wd_config;
struct wd_deliver;
struct wd_deliver_rcpt;

/* Settings come from the configuration (WildDuck's keys where it has them):
   lmtp.maxMB (25), spam header (e.g. "X-Spam-Status: Yes" / Rspamd's),
   quota answer 552 or 452 (lmtp.overQuota), sender.* for the outbound
   queue, attachments.decodeBase64, and so on; documented in docs/. */
struct wd_deliver *wd_deliver_create(struct wd_store *store, struct wd_auth *auth,
				     const struct wd_config *config, char **error_r);
void wd_deliver_destroy(struct wd_deliver **deliver);

/* One SMTP reply: "<code> <status> <text>". */
struct wd_deliver_reply {
	unsigned code;          /* 250, 450, 451, 452, 550, 552, 554 ... */
	char status[12];        /* enhanced status code, e.g. "5.1.1" */
	char text[256];         /* one line of text, no CR/LF */
};

/* RCPT TO. `address` is the forward-path without angle brackets (UTF-8 for
   SMTPUTF8, IDN domains in either form). Returns a recipient object on
   acceptance (reply 250), NULL otherwise with the refusal in *reply_r. */
struct wd_deliver_rcpt *wd_deliver_check_rcpt(struct wd_deliver *deliver, const char *address,
					      struct wd_deliver_reply *reply_r);
void wd_deliver_rcpt_free(struct wd_deliver_rcpt **rcpt);
/* The address as given in RCPT TO (for logs). */
const char *wd_deliver_rcpt_address(const struct wd_deliver_rcpt *rcpt);

/* What the transaction knew before DATA. */
struct wd_deliver_envelope {
	const char *mail_from;      /* reverse-path without <>, "" for the null sender */
	const char *helo;           /* LHLO name */
	const char *remote_ip;      /* the client that handed us the message */
	const char *transaction_id; /* our id for the transaction, in logs and meta */
	const char *protocol;       /* "LMTP" (meta.transtype) */
};

/* DATA. `raw` is the message as received (dot-unstuffed, CRLF line ends as
   sent). replies[i] answers rcpts[i]. WD_OK when every recipient got a
   reply (some may be refusals); WD_ERROR only on misuse. */
int wd_deliver_message(struct wd_deliver *deliver, const struct wd_deliver_envelope *envelope,
		       struct wd_deliver_rcpt *const *rcpts, size_t count, const uint8_t *raw,
		       size_t len, struct wd_deliver_reply *replies);

/* The largest message accepted (SIZE in LHLO, 552 past it). */
uint64_t wd_deliver_max_size(const struct wd_deliver *deliver);

const char *wd_deliver_version(void);

#endif
