/* Routes: application-specific passwords. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_asps[] = {
	API_ROUTES_END
};
