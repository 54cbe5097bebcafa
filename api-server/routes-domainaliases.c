/* Routes: domain aliases. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_domainaliases[] = {
	API_ROUTES_END
};
