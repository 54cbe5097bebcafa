/* Routes: sending mail, as WildDuck's lib/api/submit.js and the sending
 * parts of lib/api/messages.js answer them: compose and send
 * (submitMessage), forward a stored message (forwardStoredMessage), send a
 * stored draft (submitStoredMessage) and take a queued message back
 * (deleteOutboundMessage).
 *
 * Mail leaves through the outbound queue (libwdoutbound, ZoneMTA's format
 * in the sender database); the sender service or a ZoneMTA instance
 * delivers it. Recipients come only from the authenticated request, and
 * each user's daily recipient count is WildDuck's ttlcounter `wdr:<user>`
 * (users.recipients, else 2000 a day), so the API cannot become an open
 * relay. The envelope sender is the user's address unless the given one
 * resolves to the same user, as WildDuck's validateFromAddress.
 *
 * The sent copy goes to \Sent (or the given mailbox, or \Drafts for
 * isDraft) through wd_store_message_add with `outbound: [queueId]`; a
 * stored draft is queued byte for byte and then moved to \Sent. */
#include "api.h"
#include "message-compose.h"
#include "message-json.h"

#include "wd-buffer.h"
#include "wd-outbound.h"
#include "wd-result.h"
#include "wd-store-counter.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_RECIPIENTS 2000          /* const:max:recipients */
#define RECIPIENT_WINDOW (24 * 3600)
#define MAX_RCPT_TO 400                      /* const:max:rcpt_to */
#define MESSAGE_MAX_BYTES (64u * 1024 * 1024)

/* The user, refused with WildDuck's answers when missing or disabled. */
static struct wd_user *active_user(struct api_request *req, const bson_oid_t *id)
{
	struct wd_user *u = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(req->ctx->store, id, &u, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret,
				      ret == WD_STORE_ERR_NOT_FOUND ? "This user does not exist" : error,
				      "UserNotFound");
		free(error);
		return NULL;
	}
	if (u->disabled || u->suspended) {
		wd_user_free(&u);
		api_reply_error(req, 403, "UserDisabled", "User account is disabled");
		return NULL;
	}
	return u;
}

/* The address the user may send as: `address` when it resolves to the
   user, else the user's main address. malloc'd. */
static char *allowed_from(struct api_request *req, const struct wd_user *u, const char *address)
{
	if (address == NULL || address[0] == '\0' || strcasecmp(address, u->address) == 0)
		return strdup(u->address);
	struct wd_address *found = NULL;
	char *error = NULL;
	bool own = wd_store_address_resolve(req->ctx->store, address, 0, &found, &error) == 0 &&
		   found->has_user && bson_oid_equal(&found->user, &u->id);
	wd_address_free(&found);
	free(error);
	return strdup(own ? address : u->address);
}

/* WildDuck's daily recipient limit; answers 403 and returns false past it. */
static bool recipients_allowed(struct api_request *req, const struct wd_user *u, size_t count)
{
	if (count > MAX_RCPT_TO) {
		api_reply_error(req, 403, "TooMany", "Your email has too many recipients");
		return false;
	}
	int64_t limit = api_bson_int(u->doc, "recipients", 0);
	if (limit <= 0)
		limit = DEFAULT_MAX_RECIPIENTS;
	char key[40] = "wdr:";
	bson_oid_to_string(&u->id, key + 4);
	struct wd_ttlcounter r;
	wd_store_ttlcounter(req->ctx->store, key, (int64_t)count, limit, RECIPIENT_WINDOW, &r);
	if (!r.allowed) {
		api_reply_error(req, 403, "RateLimitedError",
				"You reached a daily sending limit for your account");
		return false;
	}
	return true;
}

static int queue_message(struct api_request *req, const struct wd_user *u, const char *from,
			 json_t *to, const uint8_t *raw, size_t len, const char *reason,
			 const char *interface, const char *parent, char queue_id_r[19],
			 char **error_r)
{
	size_t n = json_array_size(to);
	const char **rcpt = calloc(n + 1, sizeof(*rcpt));
	if (rcpt == NULL) {
		*error_r = strdup("out of memory");
		return WD_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		rcpt[i] = json_string_value(json_array_get(to, i));
	const char *ip = api_str(req, "ip", NULL);
	struct wd_outbound_message msg = {
		.from = from, .to = rcpt, .to_count = n, .raw = raw, .len = len, .reason = reason,
		.interface = interface, .user = &u->id, .parent_id = parent,
		.origin = ip != NULL && ip[0] != '\0' ? ip : req->remote_ip,
		.user_email = u->address,
	};
	int ret = wd_outbound_queue(req->ctx->outbound, &msg, queue_id_r, error_r);
	free(rcpt);
	if (ret == WD_OK)
		wd_outbound_sender_wake(req->ctx->outbound);
	return ret;
}

static void reply_queue_error(struct api_request *req, int ret, char *error)
{
	if (ret == WD_OUTBOUND_LOOP)
		api_reply_error(req, 400, "MessageRejected", "%s", error != NULL ? error : "loop");
	else
		api_reply_error(req, 500, "ERRCOMPOSE", "%s", error != NULL ? error : "cannot queue");
	free(error);
}

/* $addToSet outbound: queueId on one message, under its mailbox's lock. */
static void add_outbound(struct api_request *req, const bson_oid_t *mailbox, uint32_t uid,
			 const char *queue_id)
{
	bson_t *filter = BCON_NEW("mailbox", BCON_OID(mailbox), "uid", BCON_INT64(uid));
	bson_t *update = BCON_NEW("$addToSet", "{", "outbound", BCON_UTF8(queue_id), "}");
	char *error = NULL;
	api_update_locked(req, mailbox, "messages", filter, update, false, NULL, &error);
	free(error);
	bson_destroy(update);
	bson_destroy(filter);
}

static int set_flags(struct api_request *req, const bson_oid_t *mailbox, uint32_t uid,
		     enum wd_flags_op op, const char *const *flags, size_t count)
{
	char *error = NULL;
	int ret = api_message_flags(req, mailbox, &uid, 1, op, flags, count, &error);
	free(error);
	return ret;
}

/* A reply or forward marks the message it refers to (\Answered, and
   $Forwarded for a forward). Only a message of the user's own: a reference
   into a mailbox of someone else is ignored, as WildDuck's lookup by user
   ignores it. */
static void flag_reference(struct api_request *req, const bson_oid_t *user,
			   const json_t *reference)
{
	const char *mailbox_hex = json_string_value(json_object_get(reference, "mailbox"));
	json_t *id = json_object_get(reference, "id");
	const char *action = json_string_value(json_object_get(reference, "action"));
	if (mailbox_hex == NULL || strlen(mailbox_hex) != 24 || !bson_oid_is_valid(mailbox_hex, 24) ||
	    !json_is_integer(id) || json_integer_value(id) <= 0 ||
	    json_integer_value(id) > UINT32_MAX || action == NULL)
		return;
	bson_oid_t mailbox;
	bson_oid_init_from_string(&mailbox, mailbox_hex);
	struct wd_mailbox *mb = NULL;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_id(req->ctx->store, user, &mailbox, &mb, &error);
	wd_mailbox_free(&mb);
	free(error);
	if (ret < 0)
		return;
	const char *flags[] = { "\\Answered", "$Forwarded" };
	size_t count = strcmp(action, "forward") == 0 ? 2 :
		       strcmp(action, "reply") == 0 || strcmp(action, "replyAll") == 0 ? 1 : 0;
	if (count > 0)
		set_flags(req, &mailbox, (uint32_t)json_integer_value(id), WD_FLAGS_ADD, flags, count);
}

/* ------------------------------------------------------------ submitMessage */

static bool target_mailbox(struct api_request *req, const bson_oid_t *user, bool draft,
			   bson_oid_t *mailbox_r)
{
	if (api_oid(req, "mailbox", mailbox_r))
		return api_mailbox_require(req, user, mailbox_r);
	struct wd_mailbox *mb = NULL;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_special_use(req->ctx->store, user,
						      draft ? "\\Drafts" : "\\Sent", &mb, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, error, "NoSuchMailbox");
		free(error);
		return false;
	}
	bson_oid_copy(&mb->id, mailbox_r);
	wd_mailbox_free(&mb);
	return true;
}

static void submit_message(struct api_request *req)
{
	bson_oid_t user, mailbox;
	if (!api_require_user(req, &user))
		return;
	struct wd_user *u = active_user(req, &user);
	if (u == NULL)
		return;
	bool upload_only = api_bool(req, "uploadOnly", false);
	bool is_draft = api_bool(req, "isDraft", false);
	if (!target_mailbox(req, &user, is_draft, &mailbox)) {
		wd_user_free(&u);
		return;
	}
	struct api_compose compose;
	api_compose_from_request(req, &compose);
	char *from = NULL;
	if (compose.from_address == NULL || compose.from_address[0] == '\0') {
		compose.from_name = u->name;
		compose.from_address = u->address;
	} else if (!upload_only) {
		from = allowed_from(req, u, compose.from_address);
		compose.from_address = from;
	}
	compose.keep_bcc = is_draft;
	json_t *to = json_array();
	json_t *envelope = api_json(req, "envelope");
	json_t *env_to = json_object_get(envelope, "to");
	const json_t *env_from = json_object_get(envelope, "from");
	if (json_is_array(env_to) && json_array_size(env_to) > 0) {
		struct api_compose env = { .to = env_to };
		api_compose_recipients(&env, to);
	} else {
		api_compose_recipients(&compose, to);
	}
	const char *env_from_address = json_string_value(json_object_get(env_from, "address"));
	char *envelope_from = upload_only ? strdup(env_from_address != NULL ? env_from_address :
						   compose.from_address) :
					    allowed_from(req, u, env_from_address != NULL ?
									 env_from_address :
									 compose.from_address);
	struct wd_buffer raw = WD_BUFFER_INIT;
	char *error = NULL;
	int ret = api_compose_build(&compose, &raw, &error);
	if (ret < 0) {
		api_reply_error(req, 400, "InputValidationError", "%s", error);
		goto out;
	}
	char queue_id[19] = "";
	bool queued = false;
	if (!upload_only && json_array_size(to) > 0) {
		if (!recipients_allowed(req, u, json_array_size(to)))
			goto out;
		ret = queue_message(req, u, envelope_from, to, wd_buffer_bytes(&raw), raw.len,
				    "submit", "maildrop", compose.message_id, queue_id, &error);
		if (ret < 0) {
			reply_queue_error(req, ret, error);
			error = NULL;
			goto out;
		}
		queued = true;
	}
	json_t *reference = api_json(req, "reference");
	if (json_is_object(reference))
		flag_reference(req, &user, reference);
	int64_t quota = u->quota > 0 ? u->quota : WD_DEFAULT_MAX_STORAGE;
	if (quota - u->storage_used <= 0) {
		api_reply_ok(req, json_pack("{s:b,s:{s:b,s:b,s:o,s:b}}", "success", 1, "message",
					    "id", 0, "mailbox", 0, "queueId",
					    queued ? json_string(queue_id) : json_false(),
					    "overQuota", 1));
		goto out;
	}
	const char *flags[] = { "\\Seen", "\\Draft" };
	bson_t meta = BSON_INITIALIZER, fields = BSON_INITIALIZER, list;
	BSON_APPEND_UTF8(&meta, "from", envelope_from);
	bson_append_array_begin(&meta, "to", -1, &list);
	for (size_t i = 0; i < json_array_size(to); i++) {
		char key[16];
		const char *k;
		bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
		BSON_APPEND_UTF8(&list, k, json_string_value(json_array_get(to, i)));
	}
	bson_append_array_end(&meta, &list);
	const char *ip = api_str(req, "ip", NULL);
	BSON_APPEND_UTF8(&meta, "origin", ip != NULL && ip[0] != '\0' ? ip : req->remote_ip);
	if (queued) {
		bson_append_array_begin(&fields, "outbound", -1, &list);
		BSON_APPEND_UTF8(&list, "0", queue_id);
		bson_append_array_end(&fields, &list);
	}
	struct wd_message_add add = {
		.raw = wd_buffer_bytes(&raw), .len = raw.len, .flags = flags,
		.flag_count = is_draft ? 2 : 1, .source = "API", .meta = &meta, .fields = &fields,
	};
	struct wd_message_added added;
	ret = wd_store_message_add(req->ctx->store, &mailbox, &add, &added, &error);
	bson_destroy(&meta);
	bson_destroy(&fields);
	if (ret < 0) {
		api_reply_store_error(req, ret, error, "NoSuchMailbox");
		goto out;
	}
	/* a draft this message replaces */
	json_t *draft = api_json(req, "draft");
	const char *dm = json_string_value(json_object_get(draft, "mailbox"));
	json_t *did = json_object_get(draft, "id");
	if (dm != NULL && strlen(dm) == 24 && bson_oid_is_valid(dm, 24) && json_is_integer(did) &&
	    json_integer_value(did) > 0 && json_integer_value(did) <= UINT32_MAX) {
		bson_oid_t draft_mailbox;
		bson_oid_init_from_string(&draft_mailbox, dm);
		uint32_t duid = (uint32_t)json_integer_value(did);
		size_t deleted;
		char *derr = NULL;
		struct wd_mailbox *dmb = NULL;
		if (wd_store_mailbox_get_by_id(req->ctx->store, &user, &draft_mailbox, &dmb,
					       &derr) == 0)
			api_messages_delete(req, &draft_mailbox, &duid, 1, &deleted, &derr);
		wd_mailbox_free(&dmb);
		free(derr);
	}
	api_reply_ok(req, json_pack("{s:b,s:{s:I,s:o,s:o}}", "success", 1, "message", "id",
				    (json_int_t)added.uid, "mailbox", api_json_oid(&mailbox),
				    "queueId", queued ? json_string(queue_id) : json_false()));
out:
	free(error);
	free(from);
	free(envelope_from);
	json_decref(to);
	wd_buffer_release(&raw);
	wd_user_free(&u);
}

/* ------------------------------------------------------------ forwardStoredMessage */

static void forward_stored(struct api_request *req)
{
	bson_oid_t user, mailbox, id;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	uint32_t uid = (uint32_t)api_int(req, "message", 0);
	bson_t *proj = BCON_NEW("_id", BCON_INT32(1), "user", BCON_INT32(1), "uid", BCON_INT32(1),
				"meta.from", BCON_INT32(1), "meta.to", BCON_INT32(1),
				"forwardTargets", BCON_INT32(1));
	bson_t doc;
	bool found = api_message_find(req, &mailbox, uid, &user, proj, NULL, &doc);
	bson_destroy(proj);
	if (!found)
		return;
	json_t *targets = json_array();
	json_t *addresses = api_json(req, "addresses");
	size_t i;
	json_t *a;
	json_array_foreach(addresses, i, a)
		json_array_append_new(targets, json_pack("{s:s,s:O}", "type", "mail", "value", a));
	bson_iter_t iter;
	json_t *stored = bson_iter_init_find(&iter, &doc, "forwardTargets") ?
				 api_json_from_bson_iter(&iter) : NULL;
	if (json_is_array(stored)) {
		if (api_has(req, "target")) {
			json_t *t = json_array_get(stored, (size_t)api_int(req, "target", 1) - 1);
			if (t != NULL)
				json_array_append(targets, t);
		} else if (json_array_size(targets) == 0) {
			json_array_extend(targets, stored);
		}
	}
	json_decref(stored);
	bson_oid_copy(bson_iter_init_find(&iter, &doc, "_id") ? bson_iter_oid(&iter) : &mailbox, &id);
	const char *meta_from = api_bson_str(&doc, "meta.from");
	char *sender = strdup(meta_from != NULL ? meta_from : "");
	bson_destroy(&doc);
	/* only mail targets: relays and URLs are delivery-time targets */
	json_t *to = json_array();
	json_array_foreach(targets, i, a) {
		const char *type = json_string_value(json_object_get(a, "type"));
		const char *value = json_string_value(json_object_get(a, "value"));
		if (type != NULL && strcmp(type, "mail") == 0 && value != NULL)
			json_array_append_new(to, json_string(value));
	}
	if (json_array_size(targets) == 0 || json_array_size(to) == 0) {
		json_decref(targets);
		json_decref(to);
		free(sender);
		api_reply_ok(req, json_pack("{s:b,s:[]}", "success", 1, "forwarded"));
		return;
	}
	struct wd_user *u = active_user(req, &user);
	struct wd_buffer raw = WD_BUFFER_INIT;
	char *error = NULL;
	char queue_id[19] = "";
	if (u == NULL)
		goto out;
	if (api_message_read_all(req, &id, MESSAGE_MAX_BYTES, &raw, &error) < 0) {
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error, "MessageNotFound");
		goto out;
	}
	if (!recipients_allowed(req, u, json_array_size(to)))
		goto out;
	char parent[25];
	bson_oid_to_string(&id, parent);
	int ret = queue_message(req, u, sender, to, wd_buffer_bytes(&raw), raw.len, "forward",
				"forwarder", parent, queue_id, &error);
	if (ret < 0) {
		reply_queue_error(req, ret, error);
		error = NULL;
		goto out;
	}
	add_outbound(req, &mailbox, uid, queue_id);
	json_t *forwarded = json_array();
	json_array_foreach(targets, i, a) {
		char seq[24];
		snprintf(seq, sizeof(seq), "%03zx", i + 1);
		json_array_append_new(forwarded, json_pack("{s:s,s:O,s:O}", "seq", seq, "type",
							   json_object_get(a, "type"), "value",
							   json_object_get(a, "value")));
	}
	api_reply_ok(req, json_pack("{s:b,s:s,s:o}", "success", 1, "queueId", queue_id, "forwarded",
				    forwarded));
out:
	free(error);
	free(sender);
	json_decref(targets);
	json_decref(to);
	wd_buffer_release(&raw);
	wd_user_free(&u);
}

/* ------------------------------------------------------------ submitStoredMessage */

/* Envelope recipients of a stored message: meta.envelope.to, else the
   addresses of its To, Cc and Bcc headers. */
static json_t *stored_recipients(const bson_t *doc)
{
	json_t *to = json_array();
	bson_iter_t iter, found, child;
	if (bson_iter_init(&iter, doc) &&
	    bson_iter_find_descendant(&iter, "meta.envelope.to", &found) &&
	    BSON_ITER_HOLDS_ARRAY(&found) && bson_iter_recurse(&found, &child)) {
		while (bson_iter_next(&child))
			if (BSON_ITER_HOLDS_UTF8(&child))
				json_array_append_new(to, json_string(bson_iter_utf8(&child, NULL)));
		if (json_array_size(to) > 0)
			return to;
	}
	bson_t ph;
	if (!api_parsed_header(doc, &ph))
		return to;
	json_t *lists[3] = { api_addresses_json(&ph, "to"), api_addresses_json(&ph, "cc"),
			     api_addresses_json(&ph, "bcc") };
	struct api_compose c = { .to = lists[0], .cc = lists[1], .bcc = lists[2] };
	api_compose_recipients(&c, to);
	for (int i = 0; i < 3; i++)
		json_decref(lists[i]);
	return to;
}

static void submit_stored(struct api_request *req)
{
	bson_oid_t user, mailbox, id;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	uint32_t uid = (uint32_t)api_int(req, "message", 0);
	struct wd_user *u = active_user(req, &user);
	if (u == NULL)
		return;
	bson_t *proj = BCON_NEW("_id", BCON_INT32(1), "user", BCON_INT32(1), "draft", BCON_INT32(1),
				"size", BCON_INT32(1), "meta", BCON_INT32(1),
				"mimeTree.parsedHeader", BCON_INT32(1), "msgid", BCON_INT32(1));
	bson_t doc;
	bool found = api_message_find(req, &mailbox, uid, &user, proj, NULL, &doc);
	bson_destroy(proj);
	if (!found) {
		wd_user_free(&u);
		return;
	}
	json_t *to = NULL, *reference = NULL;
	char *envelope_from = NULL, *error = NULL;
	struct wd_buffer raw = WD_BUFFER_INIT;
	bson_iter_t iter;
	if (!(bson_iter_init_find(&iter, &doc, "draft") && bson_iter_as_bool(&iter))) {
		api_reply_error(req, 400, "MessageNotDraft", "This message is not a draft");
		goto out;
	}
	bson_oid_copy(bson_iter_init_find(&iter, &doc, "_id") ? bson_iter_oid(&iter) : &mailbox, &id);
	int64_t size = api_bson_int(&doc, "size", 0);
	to = stored_recipients(&doc);
	const char *env_from = api_bson_str(&doc, "meta.envelope.from");
	bson_t ph;
	json_t *from_list = api_parsed_header(&doc, &ph) ? api_addresses_json(&ph, "from") : NULL;
	const char *header_from = json_string_value(
		json_object_get(json_array_get(from_list, 0), "address"));
	envelope_from = allowed_from(req, u, env_from != NULL ? env_from : header_from);
	json_decref(from_list);
	bson_iter_t ref;
	if (bson_iter_init(&iter, &doc) && bson_iter_find_descendant(&iter, "meta.reference", &ref) &&
	    BSON_ITER_HOLDS_DOCUMENT(&ref))
		reference = api_json_from_bson_iter(&ref);
	if (json_array_size(to) == 0) {
		api_reply_success(req);
		goto out;
	}
	if (!recipients_allowed(req, u, json_array_size(to)))
		goto out;
	if (api_message_read_all(req, &id, MESSAGE_MAX_BYTES, &raw, &error) < 0) {
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error, "MessageNotFound");
		goto out;
	}
	const char *msgid = api_bson_str(&doc, "msgid");
	char queue_id[19];
	int ret = queue_message(req, u, envelope_from, to, wd_buffer_bytes(&raw), raw.len, "submit",
				"maildrop", msgid, queue_id, &error);
	if (ret < 0) {
		reply_queue_error(req, ret, error);
		error = NULL;
		goto out;
	}
	/* the draft becomes the sent copy */
	const char *seen[] = { "\\Seen" }, *draft[] = { "\\Draft" };
	set_flags(req, &mailbox, uid, WD_FLAGS_REMOVE, draft, 1);
	set_flags(req, &mailbox, uid, WD_FLAGS_ADD, seen, 1);
	struct wd_mailbox *sent = NULL;
	json_t *message = json_null();
	if (wd_store_mailbox_get_by_special_use(req->ctx->store, &user, "\\Sent", &sent, &error) == 0) {
		uint32_t *map = NULL;
		size_t pairs = 0;
		if (bson_oid_equal(&sent->id, &mailbox)) {
			add_outbound(req, &mailbox, uid, queue_id);
			message = json_pack("{s:I,s:o,s:I}", "id", (json_int_t)uid, "mailbox",
					    api_json_oid(&mailbox), "size", (json_int_t)size);
		} else if (wd_store_message_copy(req->ctx->store, &mailbox, &uid, 1, &sent->id, true,
						 NULL, &map, &pairs, &error) == 0 && pairs == 1) {
			add_outbound(req, &sent->id, map[1], queue_id);
			message = json_pack("{s:I,s:o,s:I}", "id", (json_int_t)map[1], "mailbox",
					    api_json_oid(&sent->id), "size", (json_int_t)size);
		}
		free(map);
		wd_mailbox_free(&sent);
	}
	if (reference != NULL)
		flag_reference(req, &user, reference);
	api_reply_ok(req, json_pack("{s:b,s:s,s:o}", "success", 1, "queueId", queue_id, "message",
				    message));
out:
	bson_destroy(&doc);
	free(error);
	free(envelope_from);
	json_decref(to);
	json_decref(reference);
	wd_buffer_release(&raw);
	wd_user_free(&u);
}

/* ------------------------------------------------------------ deleteOutboundMessage */

static void delete_outbound(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	const char *queue_id = api_str(req, "queueId", "");
	if (strspn(queue_id, "0123456789abcdef") != strlen(queue_id)) {
		api_reply_error(req, 400, "InputValidationError",
				"\"queueId\" must only contain hexadecimal characters");
		return;
	}
	int64_t deleted = 0;
	char *error = NULL;
	int ret = wd_outbound_remove(req->ctx->outbound, queue_id, &user, &deleted, &error);
	if (ret == WD_OUTBOUND_NO_SUCH_ENTRY || ret == WD_OUTBOUND_NOT_OWNER) {
		/* WildDuck answers these with 200 and success false */
		api_reply_ok(req, json_pack("{s:b,s:s}", "success", 0, "code",
					    ret == WD_OUTBOUND_NO_SUCH_ENTRY ? "NoSuchQueueEntry" :
									      "NotEnoughPrivileges"));
	} else if (ret < 0) {
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error, "NoSuchQueueEntry");
	} else {
		api_reply_ok(req, json_pack("{s:b,s:s,s:I}", "success", 1, "queueId", queue_id,
					    "deleted", (json_int_t)deleted));
	}
	free(error);
}

/* ------------------------------------------------------------ tables */

#define F_USER { "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" }
#define F_MAILBOX_PATH { "mailbox", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, \
			 "ID of the Mailbox" }
#define F_MESSAGE { "message", API_T_INT, API_F_REQUIRED | API_F_PATH, 1, UINT32_MAX, NULL, \
		    "Message ID (its UID in the mailbox)" }

static const struct api_field submit_fields[] = {
	F_USER,
	{ "mailbox", API_T_OID, 0, 0, 0, NULL,
	  "Mailbox for the stored copy (default: Sent Mail, or Drafts for isDraft)" },
	API_COMPOSE_FIELDS,
	{ "attachments", API_T_ANY, 0, 0, 65536, NULL,
	  "Accepted for compatibility; attachments are not composed (an empty list)" },
	{ "meta", API_T_ANY, 0, 0, 65536, NULL, "Accepted for compatibility" },
	{ "reference", API_T_OBJECT, 0, 0, 1024, NULL,
	  "{mailbox, id, action}: the message replied to (reply, replyAll) or forwarded" },
	{ "isDraft", API_T_BOOL, 0, 0, 0, NULL, "Store as a draft in Drafts" },
	{ "draft", API_T_OBJECT, 0, 0, 1024, NULL,
	  "{mailbox, id}: a draft to delete once this message is stored" },
	{ "sendTime", API_T_DATE, 0, 0, 0, NULL,
	  "Accepted for compatibility; the message is queued for now" },
	{ "uploadOnly", API_T_BOOL, 0, 0, 0, NULL, "Only store the message, do not send it" },
	{ "envelope", API_T_OBJECT, 0, 0, 262144, NULL,
	  "SMTP envelope {from: {address}, to: [{address}]} instead of the headers' addresses" },
	API_FIELDS_END
};

static const struct api_field forward_fields[] = {
	F_USER, F_MAILBOX_PATH, F_MESSAGE,
	{ "target", API_T_INT, 0, 1, 1000, NULL, "Number of an original forwarding target" },
	{ "addresses", API_T_STRINGS, 0, 0, 1000, NULL, "Addresses to forward the message to" },
	API_FIELDS_END
};

static const struct api_field submit_stored_fields[] = {
	F_USER, F_MAILBOX_PATH, F_MESSAGE,
	{ "deleteFiles", API_T_BOOL, 0, 0, 0, NULL,
	  "Accepted for compatibility; draft files are not stored by this server" },
	{ "sendTime", API_T_DATE, 0, 0, 0, NULL,
	  "Accepted for compatibility; the message is queued for now" },
	API_FIELDS_END
};

static const struct api_field outbound_fields[] = {
	F_USER,
	{ "queueId", API_T_STRING, API_F_REQUIRED | API_F_PATH | API_F_LOWERCASE, 18, 24, NULL,
	  "Outbound queue ID of the message" },
	API_FIELDS_END
};

const struct api_route api_routes_submit[] = {
	{ API_POST, "/users/:user/submit", submit_message, "messages", API_CREATE, 0,
	  submit_fields, "Submission", "Submit a Message for Delivery", "submitMessage" },
	{ API_POST, "/users/:user/mailboxes/:mailbox/messages/:message/forward", forward_stored,
	  "messages", API_CREATE, 0, forward_fields, "Messages", "Forward stored Message",
	  "forwardStoredMessage" },
	{ API_POST, "/users/:user/mailboxes/:mailbox/messages/:message/submit", submit_stored,
	  "messages", API_CREATE, 0, submit_stored_fields, "Messages", "Submit Draft for delivery",
	  "submitStoredMessage" },
	{ API_DELETE, "/users/:user/outbound/:queueId", delete_outbound, "messages",
	  API_DELETE_ACTION, 0, outbound_fields, "Messages", "Delete an Outbound Message",
	  "deleteOutboundMessage" },
	API_ROUTES_END
};
