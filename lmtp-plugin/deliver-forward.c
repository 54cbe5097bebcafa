/* Forwarding (reference §4.15 step 6, WildDuck's filter-handler.js
 * forwardMessage() and the MX plugin's forwarded addresses).
 *
 * A user's message is forwarded to the targets of its matching filters
 * plus users.targets, the latter only when no filter deleted the message
 * (so delete + a filter target is a redirect). Never when the message is
 * spam. At most users.forwards (else const:max:forwards, 2000) per day,
 * counted in wdf:<user id> before queueing as WildDuck does. The message
 * goes out as it arrived, without our trace headers; the outbound queue
 * (wd_outbound_queue) adds X-WildDuck-Seen when sender.loopSecret is set and
 * refuses a loop (our own X-WildDuck-Seen for the same deliveries, or 30
 * Received: headers or more), exactly as WildDuck's maildropper. A failure
 * to forward never stops the delivery to the mailbox; it is a note in the
 * log line.
 *
 * A forwarded address (an address without a user) is only forwarded: its
 * targets, its own wdf:<address id> counter (addresses.forwards or the
 * setting), the autoreply it may have. Its reply reflects the forward: 250
 * once queued, 554 5.4.6 for a loop, 450 4.2.1 at the daily limit, 451
 * 4.3.0 when the queue cannot take it. A message that is spam by the
 * default spam level (50) is not forwarded and answered 250: forwarding
 * spam spoils the reputation of our relay, and a bounce would go to a forged
 * sender.
 *
 * Targets of type "relay" and "http" need the queue to route one delivery
 * through another MX or to a URL, which wd_outbound_queue() cannot express;
 * they are skipped with a note (docs/DELIVERY.md). */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-outbound.h"
#include "wd-result.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORWARD_WINDOW 86400

bool wd__deliver_forward_allowed(struct wd_deliver *deliver, const char *key, unsigned count,
				 int64_t limit)
{
	return wd__deliver_ttlcounter(deliver, key, count, limit, FORWARD_WINDOW);
}

/* users.targets / addresses.targets; a relay's key carries the recipient
   (`relay_recipient`) as WildDuck's does. */
static void add_doc_targets(struct deliver_actions *actions, const bson_t *doc,
			    const char *relay_recipient)
{
	bson_t list;
	if (wd__deliver_doc_sub(doc, "targets", true, &list))
		wd__deliver_actions_add_targets(actions, &list, relay_recipient);
}

/* The mail targets as the recipient list; the others counted aside. */
static size_t mail_targets(const struct deliver_actions *actions, const char **to,
			   size_t *other_r)
{
	size_t n = 0;
	*other_r = 0;
	for (size_t i = 0; i < actions->target_count; i++) {
		if (strcmp(actions->targets[i].type, "mail") == 0)
			to[n++] = actions->targets[i].value;
		else
			(*other_r)++;
	}
	return n;
}

/* Queues the original message to `to`. WD_OK with queue_id_r,
   WD_OUTBOUND_LOOP, or WD_ERROR (no queue, or the queue failed). */
static int queue_forward(const struct deliver_txn *txn, const char *const *to, size_t to_count,
			 const bson_oid_t *user, const char *user_email, const char *recipient,
			 char queue_id_r[19], char **error_r)
{
	struct wd_deliver *deliver = txn->deliver;
	*error_r = NULL;
	if (deliver->queue == NULL) {
		*error_r = strdup("no outbound queue");
		return WD_ERROR;
	}
	struct wd_outbound_message msg = {
		.from = txn->sender,
		.to = to,
		.to_count = to_count,
		.raw = txn->raw,
		.len = txn->len,
		.reason = "forward",
		.interface = "forwarder",
		.user = user,
		.parent_id = txn->envelope->transaction_id,
		.origin = txn->envelope->remote_ip,
		.user_email = user_email,
		.forwarded_for = recipient,
	};
	return deliver->queue(deliver->queue_context, &msg, queue_id_r, error_r);
}

static void append_queue_id(bson_t *outbound, unsigned *count, const char *queue_id)
{
	char key[16];
	const char *key_str;
	bson_uint32_to_string((*count)++, &key_str, key, sizeof(key));
	BSON_APPEND_UTF8(outbound, key_str, queue_id);
}

void wd__deliver_forward_user(const struct deliver_txn *txn, const bson_t *user,
			      const char *recipient, struct deliver_actions *actions,
			      bson_t *outbound, unsigned *outbound_count,
			      struct deliver_outcome *outcome)
{
	const char *address = wd__deliver_doc_str(user, "address");
	if (!(actions->set[ACTION_DELETE] && actions->value[ACTION_DELETE]))
		add_doc_targets(actions, user, address != NULL ? address : "");
	if (actions->target_count == 0)
		return;
	if (actions->set[ACTION_SPAM] && actions->value[ACTION_SPAM]) {
		wd__deliver_note(outcome, "forward skipped: spam");
		return;
	}
	const char **to = calloc(actions->target_count, sizeof(*to));
	if (to == NULL)
		return;
	size_t others;
	size_t count = mail_targets(actions, to, &others);
	if (others > 0)
		wd__deliver_note(outcome, "forward: %zu relay/http target(s) not supported", others);
	bson_iter_t iter;
	if (count == 0 || !bson_iter_init_find(&iter, user, "_id") || !BSON_ITER_HOLDS_OID(&iter)) {
		free(to);
		return;
	}
	const bson_oid_t *user_id = bson_iter_oid(&iter);
	char key[64], hex[25], queue_id[19];
	bson_oid_to_string(user_id, hex);
	snprintf(key, sizeof(key), "wdf:%s", hex);
	int64_t limit = wd__deliver_doc_int(user, "forwards", 0);
	if (limit <= 0)
		limit = wd__deliver_setting_max_forwards(txn->deliver);
	if (!wd__deliver_forward_allowed(txn->deliver, key, (unsigned)count, limit)) {
		wd__deliver_note(outcome, "forward skipped: daily limit %lld reached", (long long)limit);
		free(to);
		return;
	}
	char *error = NULL;
	int ret = queue_forward(txn, to, count, user_id, address, recipient, queue_id, &error);
	if (ret == WD_OK) {
		append_queue_id(outbound, outbound_count, queue_id);
		outcome->forwarded = (unsigned)count;
		wd__deliver_note(outcome, "forwarded to %zu target(s) as %s", count, queue_id);
	} else if (ret == WD_OUTBOUND_LOOP) {
		wd__deliver_note(outcome, "forward skipped: loop (%s)", error != NULL ? error : "");
	} else {
		wd__deliver_note(outcome, "forward failed: %s", error != NULL ? error : "unknown");
	}
	free(error);
	free(to);
}

/* ---- forwarded addresses ---- */

static void autoreply_forwarded(const struct deliver_txn *txn, const struct wd_deliver_rcpt *rcpt,
				const char *from_address, struct deliver_outcome *outcome)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, rcpt->address_doc, "autoreply") ||
	    !BSON_ITER_HOLDS_DOCUMENT(&iter))
		return;
	uint32_t len;
	const uint8_t *data;
	bson_iter_document(&iter, &len, &data);
	bson_t autoreply;
	if (!bson_init_static(&autoreply, data, len))
		return;
	char queue_id[19];
	if (wd__deliver_autoreply(txn, &autoreply, &rcpt->address_id, NULL, NULL, from_address,
				  queue_id, outcome)) {
		outcome->autoreplied = true;
		wd__deliver_messagelog_autoreply(txn, queue_id, NULL);
	}
}

void wd__deliver_forwarded_address(const struct deliver_txn *txn,
				   const struct wd_deliver_rcpt *rcpt,
				   struct wd_deliver_reply *reply, struct deliver_outcome *outcome)
{
	struct wd_deliver *deliver = txn->deliver;
	const char *address = wd__deliver_doc_str(rcpt->address_doc, "address");
	/* a wildcard's own address is no address to write from */
	const char *own = address != NULL && strchr(address, '*') == NULL ? address : rcpt->recipient;
	outcome->size = txn->len;
	struct deliver_actions actions;
	wd__deliver_actions_init(&actions);
	add_doc_targets(&actions, rcpt->address_doc, own);
	const char **to = calloc(actions.target_count > 0 ? actions.target_count : 1, sizeof(*to));
	size_t others = 0;
	size_t count = to != NULL ? mail_targets(&actions, to, &others) : 0;
	if (others > 0)
		wd__deliver_note(outcome, "forward: %zu relay/http target(s) not supported", others);
	char key[64], hex[25], queue_id[19];
	bson_oid_to_string(&rcpt->address_id, hex);
	snprintf(key, sizeof(key), "wdf:%s", hex);
	int64_t limit = wd__deliver_doc_int(rcpt->address_doc, "forwards", 0);
	if (limit <= 0)
		limit = wd__deliver_setting_max_forwards(deliver);
	bool spam = txn->spam_score >= WD_DEFAULT_SPAM_LEVEL;
	if (to == NULL) {
		wd__deliver_reply(reply, 451, "4.3.0", "Cannot forward now, try again later");
	} else if (spam) {
		outcome->action = DELIVER_DROPPED;
		snprintf(outcome->reason, sizeof(outcome->reason), "spam is not forwarded");
		wd__deliver_reply(reply, 250, "2.0.0", "Message accepted");
	} else if (count == 0) {
		outcome->action = DELIVER_DROPPED;
		snprintf(outcome->reason, sizeof(outcome->reason), "no forward target");
		wd__deliver_reply(reply, 250, "2.0.0", "Message accepted");
	} else if (!wd__deliver_forward_allowed(deliver, key, (unsigned)count, limit)) {
		snprintf(outcome->reason, sizeof(outcome->reason), "daily forward limit reached");
		wd__deliver_reply(reply, 450, "4.2.1",
				  "The recipient is receiving mail at a rate that prevents "
				  "additional messages from being delivered, try again later");
	} else {
		char *error = NULL;
		int ret = queue_forward(txn, to, count, NULL, NULL, rcpt->recipient, queue_id, &error);
		if (ret == WD_OK) {
			outcome->action = DELIVER_FORWARDED;
			outcome->forwarded = (unsigned)count;
			wd__deliver_reply(reply, 250, "2.0.0", "Message forwarded as %s", queue_id);
			wd__deliver_messagelog_forward(txn, queue_id, NULL, rcpt->recipient, &actions);
		} else if (ret == WD_OUTBOUND_LOOP) {
			snprintf(outcome->reason, sizeof(outcome->reason), "loop: %s",
				 error != NULL ? error : "");
			wd__deliver_reply(reply, 554, "5.4.6", "Message loop detected");
		} else {
			snprintf(outcome->reason, sizeof(outcome->reason), "forward failed: %s",
				 error != NULL ? error : "unknown");
			wd__deliver_reply(reply, 451, "4.3.0", "Cannot forward now, try again later");
		}
		free(error);
	}
	if (reply->code == 250 && !spam)
		autoreply_forwarded(txn, rcpt, own, outcome);
	free(to);
	wd__deliver_actions_clear(&actions);
}
