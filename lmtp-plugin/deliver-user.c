/* One recipient user, in WildDuck's order (reference §4.15, filter-handler
 * storeMessage()):
 *
 *   1. the user as it is now (a fresh read: storageUsed, filters, targets);
 *      gone → 550 5.1.1, disabled/suspended → 550 5.2.1
 *   2. trace headers "Delivered-To: <recipient>" and "Return-Path: <sender>"
 *      prepended, CRLF-terminated, exactly as WildDuck writes them; the rest
 *      of the stored message is the input byte for byte
 *   3. domain access lists and filters, then the spam decision
 *   4. quota with the real size: storageUsed + size > quota → 552 5.2.2
 *      (452 4.2.2 with lmtp.overQuota = "defer"); exactly at quota is
 *      accepted. Checked before anything leaves (WildDuck's LMTP checks no
 *      quota at all; its MX plugin checks at RCPT only), so a refused
 *      message is neither forwarded nor answered and a retry does not
 *      repeat those
 *   5. forwards, then the autoreply (not for spam)
 *   6. delete action → 250, not stored ("Message dropped by policy")
 *   7. the mailbox: \Junk for spam, a filter's mailbox, INBOX otherwise or
 *      when the chosen one is missing; of spam and mailbox the action set
 *      later wins, as WildDuck applies its action map in insertion order
 *   8. store (flags \Seen / \Flagged from the actions; meta and the filters,
 *      outbound and forwardTargets fields), then the address register.
 * Database trouble anywhere before the message is stored → 451 4.3.0. */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-mime-tree.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_oid_hex(char out[25], const bson_oid_t *id)
{
	bson_oid_to_string(id, out);
}

/* "Delivered-To: r\r\nReturn-Path: <s>\r\n" + raw, in one malloc'd block. */
static uint8_t *with_trace(const struct deliver_txn *txn, const char *recipient, size_t *len_r)
{
	size_t head = strlen("Delivered-To: \r\nReturn-Path: <>\r\n") + strlen(recipient) +
		      strlen(txn->sender);
	uint8_t *out = malloc(head + txn->len + 1);
	if (out == NULL)
		return NULL;
	int n = snprintf((char *)out, head + 1, "Delivered-To: %s\r\nReturn-Path: <%s>\r\n",
			 recipient, txn->sender);
	if (n < 0 || (size_t)n != head) {
		free(out);
		return NULL;
	}
	memcpy(out + head, txn->raw, txn->len);
	*len_r = head + txn->len;
	return out;
}

static size_t trace_size(const struct deliver_txn *txn, const char *recipient)
{
	return strlen("Delivered-To: \r\nReturn-Path: <>\r\n") + strlen(recipient) +
	       strlen(txn->sender);
}

/* Which mailbox the actions choose (step 7). */
static int choose_mailbox(const struct deliver_txn *txn, const bson_oid_t *user,
			  const struct deliver_actions *actions, struct wd_mailbox **mailbox_r)
{
	struct wd_store *store = txn->deliver->store;
	bool spam = actions->set[ACTION_SPAM] && actions->value[ACTION_SPAM];
	bool target = actions->set[ACTION_MAILBOX] && actions->value[ACTION_MAILBOX] &&
		      actions->has_mailbox_id;
	if (spam && target)
		spam = actions->order[ACTION_SPAM] > actions->order[ACTION_MAILBOX];
	char *error = NULL;
	int ret = WD_STORE_ERR_NOT_FOUND;
	*mailbox_r = NULL;
	if (spam)
		ret = wd_store_mailbox_get_by_special_use(store, user, "\\Junk", mailbox_r, &error);
	else if (target)
		ret = wd_store_mailbox_get_by_id(store, user, &actions->mailbox_id, mailbox_r, &error);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(error);
		error = NULL;
		ret = wd_store_mailbox_get_by_path(store, user, "INBOX", mailbox_r, &error);
	}
	if (ret < 0) {
		wd_error(DELIVER_LOG, "cannot find a mailbox: %s", error != NULL ? error : "");
		free(error);
		return WD_ERROR;
	}
	return WD_OK;
}

static void append_oid_or_string(bson_t *doc, const char *key, const char *value)
{
	if (bson_oid_is_valid(value, strlen(value)) && strlen(value) == 24) {
		bson_oid_t id;
		bson_oid_init_from_string(&id, value);
		BSON_APPEND_OID(doc, key, &id);
	} else {
		BSON_APPEND_UTF8(doc, key, value);
	}
}

static void build_meta(const struct deliver_txn *txn, const char *recipient, bson_t *meta)
{
	const struct wd_deliver_envelope *env = txn->envelope;
	bson_t to;
	if (env->transaction_id != NULL && env->transaction_id[0] != '\0')
		append_oid_or_string(meta, "transactionId", env->transaction_id);
	BSON_APPEND_UTF8(meta, "from", txn->sender);
	BSON_APPEND_ARRAY_BEGIN(meta, "to", &to);
	BSON_APPEND_UTF8(&to, "0", recipient);
	bson_append_array_end(meta, &to);
	const char *origin = txn->received_from != NULL ? txn->received_from : env->remote_ip;
	if (origin != NULL && bson_utf8_validate(origin, strlen(origin), false))
		BSON_APPEND_UTF8(meta, "origin", origin);
	if (env->helo != NULL && bson_utf8_validate(env->helo, strlen(env->helo), false))
		BSON_APPEND_UTF8(meta, "transhost", env->helo);
	const char *transtype = txn->received_with != NULL ? txn->received_with : env->protocol;
	if (transtype != NULL && bson_utf8_validate(transtype, strlen(transtype), false))
		BSON_APPEND_UTF8(meta, "transtype", transtype);
	if (txn->received_id != NULL && bson_utf8_validate(txn->received_id,
							    strlen(txn->received_id), false))
		BSON_APPEND_UTF8(meta, "queueId", txn->received_id);
	if (txn->spam_action != NULL)
		BSON_APPEND_UTF8(meta, "spamAction", txn->spam_action);
}

static void build_fields(const struct deliver_actions *actions, const bson_t *outbound,
			 unsigned outbound_count, bson_t *fields)
{
	BSON_APPEND_ARRAY(fields, "filters", &actions->matched);
	if (outbound_count > 0)
		BSON_APPEND_ARRAY(fields, "outbound", outbound);
	if (actions->target_count > 0) {
		bson_t list;
		BSON_APPEND_ARRAY_BEGIN(fields, "forwardTargets", &list);
		for (size_t i = 0; i < actions->target_count; i++) {
			bson_t entry;
			char key[16];
			const char *key_str;
			bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
			BSON_APPEND_DOCUMENT_BEGIN(&list, key_str, &entry);
			BSON_APPEND_UTF8(&entry, "type", actions->targets[i].type);
			BSON_APPEND_UTF8(&entry, "value", actions->targets[i].value);
			bson_append_document_end(&list, &entry);
		}
		bson_append_array_end(fields, &list);
	}
}

/* Step 8: store and register. Fills the reply. */
static void store(const struct deliver_txn *txn, const struct wd_user *user,
		  const char *recipient, const struct deliver_actions *actions,
		  const bson_t *outbound, unsigned outbound_count, struct wd_deliver_reply *reply,
		  struct deliver_outcome *outcome)
{
	struct wd_mailbox *mailbox = NULL;
	if (choose_mailbox(txn, &user->id, actions, &mailbox) < 0) {
		snprintf(outcome->reason, sizeof(outcome->reason), "mailbox lookup failed");
		wd__deliver_reply_db(reply);
		return;
	}
	copy_oid_hex(outcome->mailbox, &mailbox->id);
	const char *flags[2];
	size_t flag_count = 0;
	if (actions->set[ACTION_SEEN] && actions->value[ACTION_SEEN])
		flags[flag_count++] = "\\Seen";
	if (actions->set[ACTION_FLAG] && actions->value[ACTION_FLAG])
		flags[flag_count++] = "\\Flagged";
	size_t len = 0;
	uint8_t *raw = with_trace(txn, recipient, &len);
	bson_t meta = BSON_INITIALIZER, fields = BSON_INITIALIZER;
	build_meta(txn, recipient, &meta);
	build_fields(actions, outbound, outbound_count, &fields);
	struct wd_message_add req = {
		.raw = raw,
		.len = len,
		.flags = flags,
		.flag_count = flag_count,
		.source = "LMTP",
		.decode_base64 = txn->deliver->settings.decode_base64,
		.meta = &meta,
		.fields = &fields,
	};
	struct wd_message_added added;
	char *error = NULL;
	int ret = raw != NULL ? wd_store_message_add(txn->deliver->store, &mailbox->id, &req, &added,
						     &error) :
				WD_ERROR;
	if (ret < 0) {
		wd_error(DELIVER_LOG, "cannot store for <%s>: %s", recipient,
			 error != NULL ? error : "out of memory");
		snprintf(outcome->reason, sizeof(outcome->reason), "store failed");
		if (ret == WD_STORE_ERR_LIMIT) /* the message's fault: retrying cannot help */
			wd__deliver_reply(reply, 552, "5.3.4", "Message headers too large to store");
		else
			wd__deliver_reply_db(reply);
	} else {
		outcome->action = DELIVER_STORED;
		outcome->uid = added.uid;
		outcome->size = added.size;
		copy_oid_hex(outcome->message_id, &added.id);
		wd__deliver_reply(reply, 250, "2.0.0", "Message stored as %s", outcome->message_id);
		wd__deliver_messagelog_store(txn, recipient, &added.id);
		const char *special = mailbox->special_use;
		if (special == NULL || strcmp(special, "\\Junk") != 0)
			wd__deliver_register(txn, &user->id, special);
	}
	free(error);
	free(raw);
	bson_destroy(&meta);
	bson_destroy(&fields);
	wd_mailbox_free(&mailbox);
}

/* The message log entries of what was queued, after the store so that they
   point at the stored copy: the forward's queue id is the first of
   `outbound` (deliver-forward.c appends it first), the autoreply's the last. */
static void log_queued(const struct deliver_txn *txn, const char *recipient,
		       const struct deliver_actions *actions, const bson_t *outbound,
		       const struct deliver_outcome *outcome)
{
	bson_oid_t stored;
	const bson_oid_t *parent = NULL;
	if (outcome->action == DELIVER_STORED && outcome->message_id[0] != '\0') {
		bson_oid_init_from_string(&stored, outcome->message_id);
		parent = &stored;
	}
	bson_iter_t iter;
	const char *last = NULL;
	bool first = true;
	if (!bson_iter_init(&iter, outbound))
		return;
	while (bson_iter_next(&iter)) {
		if (!BSON_ITER_HOLDS_UTF8(&iter))
			continue;
		const char *queue_id = bson_iter_utf8(&iter, NULL);
		if (first && outcome->forwarded > 0)
			wd__deliver_messagelog_forward(txn, queue_id, parent, recipient, actions);
		first = false;
		last = queue_id;
	}
	if (outcome->autoreplied && last != NULL)
		wd__deliver_messagelog_autoreply(txn, last, parent);
}

void wd__deliver_user(const struct deliver_txn *txn, const struct wd_deliver_rcpt *rcpt,
		      struct wd_deliver_reply *reply, struct deliver_outcome *outcome)
{
	struct wd_deliver *deliver = txn->deliver;
	const char *recipient = rcpt->recipient;
	copy_oid_hex(outcome->user, &rcpt->user);
	struct wd_user *user = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(deliver->store, &rcpt->user, &user, &error);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		wd__deliver_reply(reply, 550, "5.1.1", "Unknown recipient");
		snprintf(outcome->reason, sizeof(outcome->reason), "user gone");
		free(error);
		return;
	}
	if (ret < 0) {
		wd_error(DELIVER_LOG, "cannot read user for <%s>: %s", recipient, error);
		snprintf(outcome->reason, sizeof(outcome->reason), "user read failed");
		free(error);
		wd__deliver_reply_db(reply);
		return;
	}
	if (user->disabled || user->suspended) {
		wd__deliver_reply(reply, 550, "5.2.1", "Mailbox disabled, not accepting messages");
		snprintf(outcome->reason, sizeof(outcome->reason), "user disabled");
		wd_user_free(&user);
		return;
	}
	uint64_t size = trace_size(txn, recipient) + txn->len;
	outcome->size = size;
	if (size > WD_MIME_MAX_MESSAGE_SIZE) {
		/* only with an envelope longer than any LMTP line */
		wd__deliver_reply(reply, 552, "5.3.4", "Message too large");
		snprintf(outcome->reason, sizeof(outcome->reason), "too large with trace headers");
		wd_user_free(&user);
		return;
	}
	struct deliver_actions actions;
	wd__deliver_actions_init(&actions);
	wd__deliver_filters_run(txn, user->doc, recipient, size, &actions);
	wd__deliver_spam_decide(txn, user->doc, &actions);
	bool deleted = actions.set[ACTION_DELETE] && actions.value[ACTION_DELETE];
	bool spam = actions.set[ACTION_SPAM] && actions.value[ACTION_SPAM];
	int64_t quota = wd__deliver_user_quota(deliver, user->doc);
	if (!deleted && user->storage_used + (int64_t)size > quota) {
		snprintf(outcome->reason, sizeof(outcome->reason), "over quota: %lld + %llu > %lld",
			 (long long)user->storage_used, (unsigned long long)size, (long long)quota);
		wd__deliver_reply_over_quota(deliver, reply);
		goto out;
	}
	if (wd__deliver_doc_bool(user->doc, "encryptMessages") ||
	    wd__deliver_doc_bool(user->doc, "encryptForwarded"))
		wd__deliver_note(outcome, "not encrypted: PGP is not supported");

	bson_t outbound = BSON_INITIALIZER;
	unsigned outbound_count = 0;
	wd__deliver_forward_user(txn, user->doc, recipient, &actions, &outbound, &outbound_count,
				 outcome);
	char queue_id[19];
	if (!spam && wd__deliver_autoreply_user(txn, user->doc, recipient, queue_id, outcome)) {
		outcome->autoreplied = true;
		char key[16];
		const char *key_str;
		bson_uint32_to_string(outbound_count++, &key_str, key, sizeof(key));
		BSON_APPEND_UTF8(&outbound, key_str, queue_id);
	}
	if (deleted) {
		outcome->action = DELIVER_DROPPED;
		snprintf(outcome->reason, sizeof(outcome->reason), "delete action");
		wd__deliver_reply(reply, 250, "2.0.0", "Message dropped by policy");
	} else {
		store(txn, user, recipient, &actions, &outbound, outbound_count, reply, outcome);
	}
	log_queued(txn, recipient, &actions, &outbound, outcome);
	bson_destroy(&outbound);
out:
	wd__deliver_actions_clear(&actions);
	wd_user_free(&user);
}
