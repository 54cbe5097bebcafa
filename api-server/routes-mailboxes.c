/* Routes: mailboxes. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_mailboxes[] = {
	API_ROUTES_END
};
