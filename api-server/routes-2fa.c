/* Routes: TOTP two-factor authentication. (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_2fa[] = {
	API_ROUTES_END
};
