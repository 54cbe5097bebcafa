/* Fuzz target for wd-api's request handling before a handler runs: the
 * router on arbitrary paths (router.c) and the input checks (input.c:
 * JSON body depth prescan, parse, merge with path and query arguments,
 * check against a real route's field list).
 *
 * Input: method byte, route byte, flags byte, then "path\nquery\nbody".
 * The query is split at '&' and '=' into the key/value strings
 * libmicrohttpd hands over (a value that is not UTF-8 is refused before
 * the checks, as http-daemon.c does). The route checked is the one the
 * router matched, or else the route byte's entry of the route table with
 * no path parameters. Contracts checked, aborting on any breach:
 *   - router: a match names a route of that method whose path has as many
 *     segments as the request's, literal segments equal, and one non-empty
 *     UTF-8 parameter per ":name" holding that segment; OTHER_METHOD only
 *     when some other method has a route that matches;
 *   - input accepted: only the route's fields and sess/ip, every required
 *     field present, each value converted to its type within its bounds
 *     (string lengths in characters, integer ranges, 24 lower-case hex
 *     digits for ObjectIds, item counts, dates as integers);
 *   - input refused: an object of field → message strings, never empty
 *     (nothing was answered: there is no connection); a body nesting
 *     deeper than API_INPUT_MAX_DEPTH is always refused. */
#include "api.h"
#include "fuzz-check.h"
#include "input.h"
#include "router.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t split_segments(const char *path, char segments[][512], size_t max)
{
	size_t count = 0;
	const char *p = path;
	while (*p != '\0') {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		size_t n = strcspn(p, "/");
		if (count == max)
			return max + 1;
		snprintf(segments[count++], 512, "%.*s", (int)(n < 511 ? n : 511), p);
		p += n;
	}
	return count;
}

static void check_match(enum api_method method, const char *path)
{
	const struct api_route *route = NULL;
	json_t *params = NULL;
	enum api_match m = api_router_match(method, path, &route, &params);
	if (m != API_MATCH_OK) {
		if (m == API_MATCH_OTHER_METHOD) {
			bool found = false;
			for (int other = 0; other < API_METHOD_COUNT && !found; other++) {
				const struct api_route *r;
				json_t *p;
				if ((enum api_method)other == method)
					continue;
				enum api_match om = api_router_match((enum api_method)other, path, &r, &p);
				/* a match whose parameter is not UTF-8 counts as none */
				found = om == API_MATCH_OK || om == API_MATCH_OTHER_METHOD;
				if (om == API_MATCH_OK)
					json_decref(p);
			}
			CHECK(found);
		}
		return;
	}
	CHECK(route != NULL && route->method == method && json_is_object(params));
	static char want[20][512], have[20][512];
	size_t nw = split_segments(route->path, want, 16);
	size_t nh = split_segments(path, have, 16);
	CHECK(nw == nh && nw <= 16);
	size_t colons = 0;
	for (size_t i = 0; i < nw; i++) {
		if (want[i][0] == ':') {
			colons++;
			const char *value = json_string_value(json_object_get(params, want[i] + 1));
			CHECK(value != NULL && value[0] != '\0' && strchr(value, '/') == NULL);
			CHECK(strlen(have[i]) >= 511 || strcmp(value, have[i]) == 0);
		} else {
			CHECK(strcmp(want[i], have[i]) == 0);
		}
	}
	CHECK(json_object_size(params) == colons);
	json_decref(params);
}

static const struct api_field *find_field(const struct api_field *fields, const char *name)
{
	for (const struct api_field *f = fields; f != NULL && f->name != NULL; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static const struct api_field sess_field = { "sess", API_T_STRING, API_F_EMPTY_OK, 0, 255, NULL, "" };
static const struct api_field ip_field = { "ip", API_T_STRING, API_F_EMPTY_OK, 0, 64, NULL, "" };

static void check_value(const struct api_field *f, json_t *value)
{
	if ((f->flags & API_F_NULLABLE) != 0 && json_is_null(value))
		return;
	switch (f->type) {
	case API_T_STRING:
	case API_T_EMAIL: {
		CHECK(json_is_string(value));
		size_t chars = utf8_chars(json_string_value(value));
		int64_t max = f->max > 0 ? f->max : API_INPUT_DEFAULT_STRING_MAX;
		CHECK((int64_t)chars <= max);
		CHECK(chars == 0 || (int64_t)chars >= f->min);
		if (f->type == API_T_EMAIL && chars > 0)
			CHECK(strchr(json_string_value(value), '@') != NULL);
		break;
	}
	case API_T_INT:
		CHECK(json_is_integer(value));
		if (f->min != 0 || f->max != 0)
			CHECK(json_integer_value(value) >= f->min && json_integer_value(value) <= f->max);
		break;
	case API_T_BOOL:
		CHECK(json_is_boolean(value));
		break;
	case API_T_OID:
	case API_T_USER: {
		const char *s = json_string_value(value);
		CHECK(s != NULL && strlen(s) == 24);
		for (int i = 0; i < 24; i++)
			CHECK(isxdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]));
		break;
	}
	case API_T_STRINGS: {
		CHECK(json_is_array(value));
		int64_t max = f->max > 0 ? f->max : API_INPUT_DEFAULT_ARRAY_MAX;
		CHECK((int64_t)json_array_size(value) <= max &&
		      (int64_t)json_array_size(value) >= f->min);
		size_t i;
		json_t *item;
		json_array_foreach(value, i, item)
			CHECK(json_is_string(item) &&
			      utf8_chars(json_string_value(item)) <= API_INPUT_ARRAY_ITEM_MAX);
		break;
	}
	case API_T_OBJECT:
		CHECK(json_is_object(value));
		break;
	case API_T_ANY:
		break;
	case API_T_DATE:
		CHECK(json_is_integer(value));
		break;
	}
}

static json_t *parse_query(char *query)
{
	json_t *args = json_object();
	char *save = NULL;
	for (char *pair = strtok_r(query, "&", &save); pair != NULL;
	     pair = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(pair, '=');
		const char *value = "";
		if (eq != NULL) {
			*eq = '\0';
			value = eq + 1;
		}
		json_t *text = json_string(value);
		if (text == NULL) { /* http-daemon.c answers 400 */
			json_decref(args);
			return NULL;
		}
		json_object_set_new(args, pair, text); /* a non-UTF-8 key is dropped */
	}
	return args;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3 || size > 65536)
		return 0;
	enum api_method method = (enum api_method)(data[0] % API_METHOD_COUNT);
	uint8_t route_pick = data[1], flags = data[2];
	char *text = malloc(size - 3 + 1);
	CHECK(text != NULL);
	memcpy(text, data + 3, size - 3);
	text[size - 3] = '\0';
	size_t text_len = size - 3;
	char *path = text;
	char *query = memchr(text, '\n', text_len);
	const uint8_t *body = (const uint8_t *)"";
	size_t body_len = 0;
	if (query != NULL) {
		*query++ = '\0';
		char *nl = memchr(query, '\n', text_len - (size_t)(query - text));
		if (nl != NULL) {
			*nl = '\0';
			body = (const uint8_t *)nl + 1;
			body_len = text_len - (size_t)(body - (const uint8_t *)text);
		}
	} else {
		query = path + strlen(path);
	}
	/* the path may hold NUL bytes: the router sees it up to the first */
	check_match(method, path);

	const struct api_route *route = NULL;
	json_t *params = NULL;
	if (api_router_match(method, path, &route, &params) != API_MATCH_OK) {
		size_t count;
		const struct api_route *const *routes = api_routes_all(&count);
		CHECK(count > 0);
		route = routes[route_pick % count];
		params = json_object();
	}
	json_t *args = parse_query(query);
	if (args == NULL) {
		json_decref(params);
		free(text);
		return 0;
	}
	struct api_request req = { .route = route, .method = route->method,
				   .content_type = (flags & 1) ? "application/json" : NULL };
	json_t *details = NULL;
	int ret = api_input_check(&req, params, args, body, body_len, &details);
	bool json_body = body_len > 0 && (route->flags & API_R_RAW_BODY) == 0 &&
			 !((route->flags & API_R_JSON_OR_RAW) != 0 && req.content_type == NULL);
	if (json_body && api_json_depth(body, body_len, API_INPUT_MAX_DEPTH) > API_INPUT_MAX_DEPTH)
		CHECK(ret < 0);
	if (ret == 0) {
		CHECK(details == NULL && json_is_object(req.input));
		const char *key;
		json_t *value;
		json_object_foreach(req.input, key, value) {
			const struct api_field *f = find_field(route->fields, key);
			if (f == NULL)
				f = strcmp(key, "sess") == 0 ? &sess_field :
				    strcmp(key, "ip") == 0   ? &ip_field :
							       NULL;
			CHECK(f != NULL);
			check_value(f, value);
		}
		for (const struct api_field *f = route->fields; f != NULL && f->name != NULL; f++)
			if ((f->flags & API_F_REQUIRED) != 0)
				CHECK(json_object_get(req.input, f->name) != NULL);
		json_decref(req.input);
	} else {
		CHECK(ret == -1 && json_is_object(details) && json_object_size(details) > 0);
		const char *key;
		json_t *value;
		json_object_foreach(details, key, value)
			CHECK(json_is_string(value) && json_string_length(value) > 0);
		json_decref(details);
	}
	json_decref(args);
	json_decref(params);
	free(text);
	return 0;
}
