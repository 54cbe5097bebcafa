/* Routes: user file storage (GridFS storage bucket). (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_storage[] = {
	API_ROUTES_END
};
