/* RCPT TO: who the address means, and whether it may receive now.
 *
 * Resolution is libwdauth's (wd_auth_address_resolve over libwdstore: dots
 * and "+label" ignored, domain aliases, IDN in either form; wildcard
 * addresses and "local@*" unless lmtp.wildcard is false). Then, as
 * WildDuck's MX plugin decides at RCPT time:
 *   unknown address, or an owner that no longer exists   550 5.1.1
 *   forwarded address: forwarding disabled                 550 5.2.1
 *                      daily forward limit reached         450 4.2.1
 *   disabled or suspended user                             550 5.2.1
 *   storageUsed already at or over the quota               552 5.2.2 / 452 4.2.2
 *   database trouble                                       451 4.3.0
 * WildDuck's own lmtp.js refuses forwarded addresses and resolves without
 * wildcards; lmtp.forwardedAddresses / lmtp.wildcard = false restore that.
 * Suspended users are refused too (WildDuck's plugin only checks disabled;
 * a suspended account cannot log in to read what arrives). */
#include "deliver-private.h"
#include "wd-auth-address.h"
#include "wd-auth.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

const char *wd_deliver_rcpt_address(const struct wd_deliver_rcpt *rcpt)
{
	return rcpt->address;
}

const char *wd_deliver_rcpt_recipient(const struct wd_deliver_rcpt *rcpt)
{
	return rcpt->recipient;
}

void wd_deliver_rcpt_free(struct wd_deliver_rcpt **rcpt_p)
{
	struct wd_deliver_rcpt *rcpt = *rcpt_p;
	if (rcpt == NULL)
		return;
	*rcpt_p = NULL;
	free(rcpt->address);
	free(rcpt->recipient);
	free(rcpt->matched);
	if (rcpt->address_doc != NULL)
		bson_destroy(rcpt->address_doc);
	free(rcpt);
}

int64_t wd__deliver_user_quota(struct wd_deliver *deliver, const bson_t *user)
{
	int64_t quota = wd__deliver_doc_int(user, "quota", 0);
	return quota > 0 ? quota : wd__deliver_setting_max_storage(deliver);
}

/* The whole addresses document of a forwarded address. */
static int load_address(struct wd_deliver *deliver, const bson_oid_t *id, bson_t **doc_r)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	int ret = wd__deliver_find_one(deliver->store, WD_STORE_DB_USERS, "addresses", query, doc_r);
	bson_destroy(query);
	return ret;
}

static bool check_forwarded(struct wd_deliver *deliver, struct wd_deliver_rcpt *rcpt,
			    struct wd_deliver_reply *reply)
{
	if (!deliver->settings.forwarded_addresses) {
		wd__deliver_reply(reply, 550, "5.1.1", "Unknown recipient");
		return false;
	}
	int ret = load_address(deliver, &rcpt->address_id, &rcpt->address_doc);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		wd__deliver_reply(reply, 550, "5.1.1", "Unknown recipient");
		return false;
	}
	if (ret < 0) {
		wd__deliver_reply_db(reply);
		return false;
	}
	if (wd__deliver_doc_bool(rcpt->address_doc, "forwardedDisabled")) {
		wd__deliver_reply(reply, 550, "5.2.1", "Mailbox disabled, not accepting messages");
		return false;
	}
	char key[64], hex[25];
	bson_oid_to_string(&rcpt->address_id, hex);
	snprintf(key, sizeof(key), "wdf:%s", hex);
	int64_t limit = wd__deliver_doc_int(rcpt->address_doc, "forwards", 0);
	if (limit <= 0)
		limit = wd__deliver_setting_max_forwards(deliver);
	if (!wd__deliver_forward_allowed(deliver, key, 0, limit)) {
		wd__deliver_reply(reply, 450, "4.2.1",
				  "The recipient is receiving mail at a rate that prevents "
				  "additional messages from being delivered, try again later");
		return false;
	}
	return true;
}

static bool check_user(struct wd_deliver *deliver, struct wd_deliver_rcpt *rcpt,
		       struct wd_deliver_reply *reply)
{
	struct wd_user *user = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(deliver->store, &rcpt->user, &user, &error);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(error);
		wd__deliver_reply(reply, 550, "5.1.1", "Unknown recipient");
		return false;
	}
	if (ret < 0) {
		wd_error(DELIVER_LOG, "cannot read user for <%s>: %s", rcpt->address, error);
		free(error);
		wd__deliver_reply_db(reply);
		return false;
	}
	bool ok = false;
	if (user->disabled || user->suspended) {
		wd__deliver_reply(reply, 550, "5.2.1", "Mailbox disabled, not accepting messages");
	} else if (user->storage_used > 0 &&
		   user->storage_used >= wd__deliver_user_quota(deliver, user->doc)) {
		wd__deliver_reply_over_quota(deliver, reply);
	} else {
		ok = true;
	}
	wd_user_free(&user);
	return ok;
}

struct wd_deliver_rcpt *wd_deliver_check_rcpt(struct wd_deliver *deliver, const char *address,
					      struct wd_deliver_reply *reply_r)
{
	if (deliver == NULL || address == NULL || reply_r == NULL) {
		if (reply_r != NULL)
			wd__deliver_reply(reply_r, 501, "5.5.4", "Invalid recipient");
		return NULL;
	}
	struct wd_auth_resolved resolved;
	char *error = NULL;
	int ret = wd_auth_address_resolve(deliver->store, address,
					  deliver->settings.wildcard ? WD_RESOLVE_WILDCARD : 0,
					  &resolved, &error);
	if (ret == WD_AUTH_ERR_NOT_FOUND || ret == WD_AUTH_ERR_INVALID) {
		free(error);
		wd__deliver_reply(reply_r, 550, "5.1.1", "Unknown recipient");
		return NULL;
	}
	if (ret < 0) {
		wd_error(DELIVER_LOG, "cannot resolve <%s>: %s", address, error);
		free(error);
		wd__deliver_reply_db(reply_r);
		return NULL;
	}
	struct wd_deliver_rcpt *rcpt = calloc(1, sizeof(*rcpt));
	const char *norm_error;
	if (rcpt == NULL || (rcpt->address = strdup(address)) == NULL ||
	    (rcpt->matched = strdup(resolved.address->address)) == NULL ||
	    wd_address_normalize(address, 0, &rcpt->recipient, &norm_error) < 0) {
		/* resolvable input always normalises; only memory can fail here */
		wd_auth_resolved_free(&resolved);
		wd_deliver_rcpt_free(&rcpt);
		wd__deliver_reply(reply_r, 451, "4.3.0", "Cannot accept the recipient now");
		return NULL;
	}
	rcpt->address_id = resolved.address->id;
	rcpt->forwarded = !resolved.address->has_user;
	rcpt->user = resolved.address->user;
	wd_auth_resolved_free(&resolved);
	bool ok = rcpt->forwarded ? check_forwarded(deliver, rcpt, reply_r) :
				    check_user(deliver, rcpt, reply_r);
	if (!ok) {
		wd_info(DELIVER_LOG, "rcpt=<%s> refused: %u %s %s", address, reply_r->code,
			reply_r->status, reply_r->text);
		wd_deliver_rcpt_free(&rcpt);
		return NULL;
	}
	wd__deliver_reply(reply_r, 250, "2.1.5", "Recipient ok");
	return rcpt;
}
