#ifndef WILDDUCK_LMTP_H
#define WILDDUCK_LMTP_H

/* The Dovecot 2.3.19 LMTP plugin `wildduck_lmtp`
 * (lib95_wildduck_lmtp_plugin.so): delivery through Dovecot's LMTP service
 * runs libwddeliver (lmtp-plugin/wd-deliver.h, docs/DELIVERY.md), the same
 * pipeline wd-server's LMTP engine calls, so both answer every recipient
 * alike and store identical documents.
 *
 *   protocol lmtp {
 *     mail_plugins = $mail_plugins wildduck_lmtp
 *   }
 *
 * Where we hook in, and why (Dovecot's src/lmtp, reference §3.1):
 *
 *   Dovecot offers three levels: the LMTP client vfuncs (lmtp-client.h:
 *   cmd_mail, cmd_rcpt, cmd_data, local_deliver, trans_start/free,
 *   destroy), the delivery decision hook of mail-deliver.h (what Sieve
 *   uses), and the mail storage hooks. The two lower levels run only after
 *   Dovecot has looked the recipient up in its userdb, created a mail user
 *   for it, and (for the deliver hook) parsed the message into a raw mail
 *   per recipient; what they decide is saved through Dovecot's mail
 *   storage. None of that fits: libwddeliver resolves recipients itself
 *   (dots, +labels, domain aliases, wildcards, forwarded addresses that
 *   have no user at all), delivers a transaction's recipients together
 *   (one parse, recipients of the same user delivered once) and stores
 *   through libwdstore.
 *
 *   So the plugin takes the recipients over at the client level, from
 *   lmtp_client_created_hook_set():
 *     cmd_rcpt   wd_deliver_check_rcpt(): its refusal is the RCPT reply;
 *                an accepted recipient keeps the pipeline's object in a
 *                recipient module context and gets "250 2.1.5". The default
 *                cmd_rcpt (userdb lookup, lmtp_local_rcpt, proxy) never
 *                runs, so client->local and client->proxy stay NULL.
 *     cmd_data   the message as received (no Dovecot trace headers) goes
 *                to wd_deliver_message() once for all recipients; each
 *                recipient gets its reply through
 *                smtp_server_recipient_reply(). The default cmd_data, and
 *                with it lmtp_local_data() / local_deliver() and every
 *                mail_deliver_save(), never runs: Dovecot's mail storage
 *                never sees the message, whatever mail_location says, and
 *                nothing is delivered twice.
 *     trans_start / trans_free  per-transaction state (id, counters, the
 *                "not delivered" log line).
 *   and adjusts the SMTP connection before it starts (LHLO's SIZE, the
 *   absolute data limit), which smtp-server-private.h exposes.
 *
 * Blocking: wd_deliver_check_rcpt() and wd_deliver_message() block on
 * MongoDB and Redis in the LMTP process's only thread. Dovecot's lmtp
 * service runs one client per process (client_limit = 1), so nothing else
 * waits; every MongoDB URL gets connect/socket/server-selection timeouts
 * (wildduck_lmtp_db_timeout) and Redis has libwdstore's own.
 *
 * Files:
 *   wildduck-lmtp-plugin.c    entry points, ABI, log routing, the client hook
 *   wildduck-lmtp-pipeline.c  the process's pipeline from plugin { } settings
 *   wildduck-lmtp-rcpt.c      RCPT
 *   wildduck-lmtp-data.c      DATA: the message, the delivery, the replies
 *
 * The ABI pin: the plugin reads private Dovecot structures (struct client,
 * the SMTP connection's settings), so it is built for exactly one Dovecot;
 * meson.build checks DOVECOT_ABI_VERSION and the #if below the version. */

#include "lib.h"
#if DOVECOT_VERSION_MAJOR != 2 || DOVECOT_VERSION_MINOR != 3 || DOVECOT_VERSION_MICRO != 19
#  error "wildduck_lmtp is written for Dovecot 2.3.19 (ABI 2.3.ABIv19)"
#endif
#include "module-context.h"
#include "lmtp-common.h"
#include "lmtp-recipient.h"

#include <stdint.h>

struct wd_deliver;
struct wd_deliver_rcpt;
struct wd_deliver_reply;

/* The largest message libwdstore stores at all (WD_MIME_MAX_MESSAGE_SIZE):
   the DATA spool's bound before the pipeline's own limit is known. */
#define WILDDUCK_LMTP_ABSOLUTE_MAX (64ULL * 1024 * 1024)

/* ---- the pipeline (wildduck-lmtp-pipeline.c) ---- */

/* What one set of plugin settings opens: the configuration, libwdstore,
   libwdauth, the outbound queue and libwddeliver over them. Kept for the
   life of the process (Dovecot reuses an lmtp process for many
   connections) and shared by its clients. */
struct wildduck_lmtp_pipeline {
	struct wd_deliver *deliver;
	uint64_t max_size;           /* wd_deliver_max_size() */
	unsigned int max_recipients; /* lmtp.maxRecipients */
};

/* The pipeline for the client's settings, opened on first use; NULL (with
   *error_r, a data-stack string) when the database cannot be reached or
   the settings are wrong. Another call tries again. */
struct wildduck_lmtp_pipeline *
wildduck_lmtp_pipeline_get(struct client *client, const char **error_r);
void wildduck_lmtp_pipelines_close(void);

/* ---- per client and per recipient ---- */

struct wildduck_lmtp_client {
	union lmtp_module_context module_ctx;
	struct client *client;
	struct wildduck_lmtp_pipeline *pipeline;
	uint64_t max_size;           /* advertised in LHLO; 0: none */

	/* the current transaction */
	char transaction_id[25];     /* ObjectId hex, as wd-server's LMTP */
	unsigned int accepted;       /* recipients accepted at RCPT */
	unsigned int refused;        /* ... and refused */
	bool delivered;              /* DATA reached the pipeline */
};

struct wildduck_lmtp_recipient {
	union lmtp_recipient_module_context module_ctx;
	struct wd_deliver_rcpt *rcpt; /* freed with the SMTP recipient */
	const char *address;          /* as given to the pipeline */
};

#define WILDDUCK_LMTP_CLIENT(obj) \
	MODULE_CONTEXT_REQUIRE(obj, wildduck_lmtp_client_module)
#define WILDDUCK_LMTP_RECIPIENT(obj) \
	MODULE_CONTEXT(obj, wildduck_lmtp_recipient_module)
extern MODULE_CONTEXT_DEFINE(wildduck_lmtp_client_module, &lmtp_module_register);
extern MODULE_CONTEXT_DEFINE(wildduck_lmtp_recipient_module, &lmtp_recipient_module_register);

/* cmd_rcpt / cmd_data of struct lmtp_client_vfuncs. */
int wildduck_lmtp_cmd_rcpt(struct client *client, struct smtp_server_cmd_ctx *cmd,
			   struct lmtp_recipient *lrcpt);
int wildduck_lmtp_cmd_data(struct client *client, struct smtp_server_cmd_ctx *cmd,
			   struct smtp_server_transaction *trans, struct istream *data_input,
			   uoff_t data_size);

/* Sends `text` as the recipient's reply to its current command (RCPT or
   DATA) as it is: smtp_server_recipient_reply() would put "<address> " in
   front of it, which wd-server's LMTP does not. */
void wildduck_lmtp_recipient_reply(struct smtp_server_recipient *rcpt, unsigned int code,
				   const char *status, const char *text);

#endif
