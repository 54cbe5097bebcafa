/* Routes: filters. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_filters[] = {
	API_ROUTES_END
};
