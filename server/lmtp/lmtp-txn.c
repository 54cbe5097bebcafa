/* The mail transaction of an LMTP session (lmtp-session.h): envelope,
 * accepted recipients with their wd_deliver_rcpt, the spooled message. */
#include "lmtp-session.h"

#include "wd-deliver.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-spool.h"

#include <bson/bson.h>
#include <stdlib.h>
#include <string.h>

struct wd_lmtp_txn *wd_lmtp_txn_begin(struct wd_lmtp_session *session,
				      const struct wd_lmtp_mail *mail)
{
	wd_assert(session->txn == NULL);
	struct wd_lmtp_txn *txn = calloc(1, sizeof(*txn));
	if (txn == NULL)
		return NULL;
	bson_oid_t oid;
	bson_oid_init(&oid, NULL);
	bson_oid_to_string(&oid, txn->id);
	txn->mail = *mail;
	session->txn = txn;
	session->transactions++;
	return txn;
}

int wd_lmtp_txn_add_rcpt(struct wd_lmtp_txn *txn, struct wd_deliver_rcpt *rcpt,
			 const char *address)
{
	if (txn->rcpt_count == txn->rcpt_cap) {
		size_t cap = txn->rcpt_cap == 0 ? 8 : txn->rcpt_cap * 2;
		struct wd_lmtp_txn_rcpt *grown = realloc(txn->rcpts, cap * sizeof(*grown));
		if (grown == NULL)
			return WD_ERROR;
		txn->rcpts = grown;
		txn->rcpt_cap = cap;
	}
	char *copy = strdup(address);
	if (copy == NULL)
		return WD_ERROR;
	txn->rcpts[txn->rcpt_count].rcpt = rcpt;
	txn->rcpts[txn->rcpt_count].address = copy;
	txn->rcpt_count++;
	return WD_OK;
}

void wd_lmtp_txn_free(struct wd_lmtp_txn **_txn)
{
	struct wd_lmtp_txn *txn = *_txn;
	*_txn = NULL;
	if (txn == NULL)
		return;
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		wd_deliver_rcpt_free(&txn->rcpts[i].rcpt);
		free(txn->rcpts[i].address);
	}
	free(txn->rcpts);
	wd_spool_destroy(&txn->spool);
	free(txn);
}

void wd_lmtp_txn_abort(struct wd_lmtp_session *session, const char *reason)
{
	struct wd_lmtp_txn *txn = session->txn;
	if (txn == NULL)
		return;
	if (txn->rcpt_count > 0 || txn->refused > 0)
		wd_info("lmtp", "%s: transaction %s from=<%s> rcpts=%zu refused=%u: not delivered (%s)",
			session->id, txn->id, txn->mail.address, txn->rcpt_count, txn->refused,
			reason);
	wd_lmtp_txn_free(&session->txn);
}
