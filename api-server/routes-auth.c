/* Routes: POST /preauth, POST/DELETE /authenticate, GET /users/:user/authlog. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_auth[] = {
	API_ROUTES_END
};
