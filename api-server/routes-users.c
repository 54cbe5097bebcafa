/* Routes: users, quota, password reset, logout. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_users[] = {
	API_ROUTES_END
};
