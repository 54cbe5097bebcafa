/* Routes: messages: list, search, parsed JSON, message.eml, attachments, upload, update, delete. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_messages[] = {
	API_ROUTES_END
};
