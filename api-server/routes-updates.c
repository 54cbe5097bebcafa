/* Routes: GET /users/:user/updates, the EventSource stream (updates.c). */
#include "api.h"
#include "updates.h"

#include <string.h>

static void get_updates(struct api_request *req)
{
	bson_oid_t user, last;
	if (!api_require_user(req, &user))
		return;
	bool has_last = api_oid(req, "Last-Event-ID", &last);
	const char *header = api_header(req, "Last-Event-ID");
	if (!has_last && header != NULL && header[0] != '\0') {
		if (!bson_oid_is_valid(header, strlen(header)) || strlen(header) != 24) {
			api_reply_error(req, 400, "InputValidationError",
					"\"Last-Event-ID\" must be 24 hexadecimal characters");
			return;
		}
		bson_oid_init_from_string(&last, header);
		has_last = true;
	}
	api_updates_open(req, &user, has_last ? &last : NULL);
}

static const struct api_field updates_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "Last-Event-ID", API_T_OID, API_F_QUERY, 0, 0, NULL,
	  "Last event ID (also as the Last-Event-ID header): resume after it" },
	API_FIELDS_END
};

const struct api_route api_routes_updates[] = {
	{ API_GET, "/users/:user/updates", get_updates, "users", API_READ, API_R_STREAM,
	  updates_fields, "Users", "Open change stream (EventSource of journal entries)",
	  "getUpdates" },
	API_ROUTES_END
};
