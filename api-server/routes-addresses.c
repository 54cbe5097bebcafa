/* Routes: addresses, forwarded addresses, resolve, address register. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_addresses[] = {
	API_ROUTES_END
};
