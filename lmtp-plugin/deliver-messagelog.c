/* The message log entries delivery writes (wd-store-messagelog.h), as
 * WildDuck 1.x's LMTP did: STORE when a recipient's copy is stored, FORWARD
 * for each queued forward and AUTOREPLY for a queued autoreply, each keyed
 * by its queue id and pointing at the stored copy (parentId) when there is
 * one. Forwards and the autoreply are queued before the store (the store's
 * fields list their queue ids), so deliver-user.c writes their entries
 * after it, once parentId is known.
 *
 * The log is a record, not part of the delivery: a failed write is a
 * warning and the recipient's reply stays what the store made it. */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-store-messagelog.h"

#include <stdlib.h>
#include <string.h>

static void add(const struct deliver_txn *txn, const struct wd_messagelog_entry *entry)
{
	char *error = NULL;
	if (wd_store_messagelog_add(txn->deliver->store, entry, &error) < 0)
		wd_warning(DELIVER_LOG, "message log: cannot write %s %s: %s", entry->action,
			   entry->id, error != NULL ? error : "");
	free(error);
}

void wd__deliver_messagelog_store(const struct deliver_txn *txn, const char *recipient,
				  const bson_oid_t *message)
{
	const struct wd_deliver_envelope *env = txn->envelope;
	char hex[25];
	bson_oid_to_string(message, hex);
	char *message_id = wd__deliver_header_first(txn->summary.parsed_header, "message-id");
	const char *to[] = { recipient };
	/* the same facts meta gets (deliver-user.c build_meta) */
	struct wd_messagelog_entry entry = {
		.id = txn->received_id != NULL ? txn->received_id : hex,
		.action = "STORE",
		.parent_id = message,
		.message_id = message_id,
		.source = "LMTP",
		.origin = txn->received_from != NULL ? txn->received_from : env->remote_ip,
		.from = txn->sender,
		.to = to,
		.to_count = 1,
		.transtype = txn->received_with != NULL ? txn->received_with : env->protocol,
	};
	add(txn, &entry);
	free(message_id);
}

void wd__deliver_messagelog_forward(const struct deliver_txn *txn, const char *queue_id,
				    const bson_oid_t *parent, const char *recipient,
				    const struct deliver_actions *actions)
{
	struct wd_messagelog_target *targets =
		calloc(actions->target_count > 0 ? actions->target_count : 1, sizeof(*targets));
	if (targets == NULL)
		return;
	size_t count = 0;
	/* the targets queued: relay and http targets are not sent (deliver-forward.c) */
	for (size_t i = 0; i < actions->target_count; i++) {
		if (strcmp(actions->targets[i].type, "mail") != 0)
			continue;
		targets[count].type = actions->targets[i].type;
		targets[count++].value = actions->targets[i].value;
	}
	char *message_id = wd__deliver_header_first(txn->summary.parsed_header, "message-id");
	const char *to[] = { recipient };
	struct wd_messagelog_entry entry = {
		.id = queue_id,
		.action = "FORWARD",
		.parent_id = parent,
		.message_id = message_id,
		.from = txn->sender,
		.to = to,
		.to_count = 1,
		.targets = targets,
		.target_count = count,
	};
	add(txn, &entry);
	free(message_id);
	free(targets);
}

void wd__deliver_messagelog_autoreply(const struct deliver_txn *txn, const char *queue_id,
				      const bson_oid_t *parent)
{
	const char *to[] = { txn->sender };
	struct wd_messagelog_entry entry = {
		.id = queue_id,
		.action = "AUTOREPLY",
		.parent_id = parent,
		.from = "",
		.to = to,
		.to_count = 1,
	};
	add(txn, &entry);
}
