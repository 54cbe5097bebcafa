/* Route matching over the tables of routes.c: paths are split into
 * segments; a route segment ":name" takes any non-empty segment. With a few
 * hundred routes a linear scan per request costs microseconds, far below
 * one database round trip, so there is no index. */
#include "router.h"

#include <string.h>

#define MAX_SEGMENTS 16

/* Splits `path` in place ("/a/b/" → "a", "b"); -1 when too deep. */
static int split(char *path, char **segments)
{
	int count = 0;
	char *save = NULL;
	for (char *s = strtok_r(path, "/", &save); s != NULL; s = strtok_r(NULL, "/", &save)) {
		if (count == MAX_SEGMENTS)
			return -1;
		segments[count++] = s;
	}
	return count;
}

/* A score when `route_path` matches the segments (higher: more literal
   segments, earlier), -1 otherwise. */
static long match_score(const char *route_path, char *const *segments, int count)
{
	char buf[256];
	size_t len = strlen(route_path);
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, route_path, len + 1);
	char *parts[MAX_SEGMENTS];
	int n = split(buf, parts);
	if (n != count)
		return -1;
	long score = 0;
	for (int i = 0; i < n; i++) {
		if (parts[i][0] == ':')
			continue;
		if (strcmp(parts[i], segments[i]) != 0)
			return -1;
		score |= 1L << (MAX_SEGMENTS - i);
	}
	return score;
}

static json_t *capture(const char *route_path, char *const *segments, int count)
{
	json_t *params = json_object();
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", route_path);
	char *parts[MAX_SEGMENTS];
	int n = split(buf, parts);
	for (int i = 0; i < n && i < count; i++)
		if (parts[i][0] == ':')
			json_object_set_new(params, parts[i] + 1, json_string(segments[i]));
	return params;
}

enum api_match api_router_match(enum api_method method, const char *path,
				const struct api_route **route_r, json_t **params_r)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len >= sizeof(buf))
		return API_MATCH_NONE;
	/* A path that is not UTF-8 matches nothing, whatever the method: its
	   bad bytes can only sit where a parameter is (literal segments are
	   ASCII), and a parameter must be a JSON string. Tested first, so such
	   a path is a 404 and never a 405 (found by fuzz-api-input). */
	json_t *probe = json_string(path);
	if (probe == NULL)
		return API_MATCH_NONE;
	json_decref(probe);
	memcpy(buf, path, len + 1);
	char *segments[MAX_SEGMENTS];
	int count = split(buf, segments);
	if (count < 0)
		return API_MATCH_NONE;

	size_t route_count;
	const struct api_route *const *routes = api_routes_all(&route_count);
	const struct api_route *best = NULL;
	long best_score = -1;
	bool path_exists = false;
	for (size_t i = 0; i < route_count; i++) {
		long score = match_score(routes[i]->path, segments, count);
		if (score < 0)
			continue;
		path_exists = true;
		if (routes[i]->method == method && score > best_score) {
			best = routes[i];
			best_score = score;
		}
	}
	if (best == NULL)
		return path_exists ? API_MATCH_OTHER_METHOD : API_MATCH_NONE;
	json_t *params = capture(best->path, segments, count);
	size_t expected = 0;
	for (const char *p = best->path; *p != '\0'; p++)
		expected += *p == ':';
	if (params == NULL || json_object_size(params) != expected) {
		json_decref(params);
		return API_MATCH_NONE;
	}
	*route_r = best;
	*params_r = params;
	return API_MATCH_OK;
}
