/* Routes: the message log (WildDuck 1.x GetMessageEvents,
 * GET /users/:user/mailboxes/:mailbox/messages/:message/events).
 *
 * The events of one message: how it arrived (STORE, written by delivery)
 * and what left because of it (FORWARD, AUTOREPLY, and whatever an MTA's
 * plugins add about those), read from the `messagelog` collection by
 * libwdstore (wd-store-messagelog.h). Each entry is shown with WildDuck's
 * names: stored = parentId, origin = origin or source, src = ip, dst =
 * host, messageId = "message-id", to always as a list, time = created.
 * Fields an entry lacks are left out, as WildDuck's JSON leaves out
 * undefined values.
 *
 * A message of another user, or in another mailbox, is 404 NoSuchMessage,
 * WildDuck 1.x's code for this route (the newer message routes say
 * MessageNotFound). */
#include "api.h"

#include "wd-result.h"
#include "wd-store-messagelog.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

/* {entry field, answer field} copied as they are. */
static const char *const copied_fields[][2] = {
	{ "id", "id" },
	{ "seq", "seq" },
	{ "parentId", "stored" },
	{ "action", "action" },
	{ NULL, "origin" }, /* origin, else source */
	{ "ip", "src" },
	{ "host", "dst" },
	{ "mx", "mx" },
	{ "targets", "targets" },
	{ "reason", "reason" },
	{ "error", "error" },
	{ "response", "response" },
	{ "message-id", "messageId" },
	{ "from", "from" },
	{ NULL, "to" },     /* a list; "a, b" strings split */
	{ "transtype", "transtype" },
	{ "created", "time" },
};

static void copy_field(const bson_t *entry, const char *from, const char *to, json_t *out)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, entry, from))
		return;
	json_t *value = api_json_from_bson_iter(&iter);
	json_object_set_new(out, to, value != NULL ? value : json_null());
}

/* WildDuck: [].concat(to) for a list, "a, b" split at commas. */
static json_t *to_list(const bson_t *entry)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, entry, "to"))
		return NULL;
	if (BSON_ITER_HOLDS_UTF8(&iter)) {
		json_t *list = json_array();
		const char *p = bson_iter_utf8(&iter, NULL);
		for (;;) {
			while (*p == ' ' || *p == '\t')
				p++;
			const char *comma = strchr(p, ',');
			const char *end = comma != NULL ? comma : p + strlen(p);
			const char *last = end;
			while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
				last--;
			json_array_append_new(list, json_stringn(p, (size_t)(last - p)));
			if (comma == NULL)
				break;
			p = comma + 1;
		}
		return list;
	}
	json_t *value = api_json_from_bson_iter(&iter);
	if (value == NULL || json_is_array(value))
		return value;
	if (json_is_null(value) || json_is_false(value))
		return value; /* falsy: shown as it is */
	json_t *list = json_array();
	json_array_append_new(list, value);
	return list;
}

static bool add_event(const bson_t *entry, void *context)
{
	json_t *events = context;
	json_t *event = json_object();
	for (size_t i = 0; i < WD_N_ELEMENTS(copied_fields); i++) {
		const char *from = copied_fields[i][0], *to = copied_fields[i][1];
		if (from != NULL) {
			copy_field(entry, from, to, event);
		} else if (strcmp(to, "origin") == 0) {
			bson_iter_t iter;
			bool has_origin = bson_iter_init_find(&iter, entry, "origin") &&
					  !(BSON_ITER_HOLDS_UTF8(&iter) &&
					    bson_iter_utf8(&iter, NULL)[0] == '\0') &&
					  !BSON_ITER_HOLDS_NULL(&iter);
			copy_field(entry, has_origin ? "origin" : "source", "origin", event);
		} else {
			json_t *list = to_list(entry);
			if (list != NULL)
				json_object_set_new(event, "to", list);
		}
	}
	json_array_append_new(events, event);
	return true;
}

static void get_message_events(struct api_request *req)
{
	bson_oid_t user, mailbox, message;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "mailbox", &mailbox);
	uint32_t uid = (uint32_t)api_int(req, "message", 0);
	json_t *events = json_array();
	char *error = NULL;
	int ret = wd_store_messagelog_for_message(req->ctx->store, &user, &mailbox, uid, &message,
						  add_event, events, &error);
	if (ret < 0) {
		json_decref(events);
		api_reply_store_error(req, ret,
				      ret == WD_STORE_ERR_NOT_FOUND ? "This message does not exist" :
								      error,
				      "NoSuchMessage");
		free(error);
		return;
	}
	free(error);
	api_reply_ok(req, json_pack("{s:b,s:o,s:o}", "success", 1, "id", api_json_oid(&message),
				    "events", events));
}

static const struct api_field events_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the User" },
	{ "mailbox", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the Mailbox" },
	{ "message", API_T_INT, API_F_REQUIRED | API_F_PATH, 1, UINT32_MAX, NULL,
	  "Message ID (its UID in the mailbox)" },
	API_FIELDS_END
};

const struct api_route api_routes_messagelog[] = {
	{ API_GET, "/users/:user/mailboxes/:mailbox/messages/:message/events", get_message_events,
	  "messages", API_READ, 0, events_fields, "Messages",
	  "Events of a Message: how it was received (STORE) and what was sent because of it "
	  "(FORWARD, AUTOREPLY), from the message log",
	  "getMessageEvents" },
	API_ROUTES_END
};
