/* Routes: the message log (WildDuck 1.x GetMessageEvents). (Not written yet: an empty table.) */
#include "api.h"

const struct api_route api_routes_messagelog[] = {
	API_ROUTES_END
};
