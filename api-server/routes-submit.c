/* Routes: submit, forward, outbound queue. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_submit[] = {
	API_ROUTES_END
};
