#ifndef API_ROUTER_H
#define API_ROUTER_H

/* Which route a method and path mean (router.c). */

#include "api.h"

enum api_match {
	API_MATCH_NONE,         /* no route has this path: 404 */
	API_MATCH_OTHER_METHOD, /* the path exists with other methods: 405 */
	API_MATCH_OK,
};

/* On API_MATCH_OK, *route_r is the route and *params_r a new JSON object of
   the path parameters (strings, as decoded by libmicrohttpd). Where several
   routes match, the one with literal segments earlier wins
   ("/users/resolve/:username" before "/users/:user"). */
enum api_match api_router_match(enum api_method method, const char *path,
				const struct api_route **route_r, json_t **params_r);

#endif
