#ifndef API_INPUT_H
#define API_INPUT_H

/* Input checks (input.c): path parameters, query arguments and the JSON
 * body merged into one object (path over query over body, as restify maps
 * them) and checked against the route's field list, the way WildDuck's Joi
 * schemas check them with `convert: true`:
 *
 *   - a required field that is absent: "\"x\" is required";
 *   - a key no field names: "\"x\" is not allowed" (except `sess` and `ip`,
 *     which every WildDuck route takes for its logs);
 *   - wrong types, lengths, ranges, choices, malformed ObjectIds, dates and
 *     addresses: one message per field in `details`.
 *
 * Hostile JSON never reaches a handler: bodies nest at most
 * API_INPUT_MAX_DEPTH levels (counted before parsing, so the parser's own
 * recursion stays shallow), must be one object, with no duplicate keys and
 * valid UTF-8; strings have a length bound even when the field gives none. */

#include "api.h"

#define API_INPUT_MAX_DEPTH 32
#define API_INPUT_DEFAULT_STRING_MAX 65536   /* characters, when a field gives no max */
#define API_INPUT_DEFAULT_OBJECT_MAX 65536   /* bytes of JSON for OBJECT / ANY */
#define API_INPUT_DEFAULT_ARRAY_MAX 1000     /* items of STRINGS */
#define API_INPUT_ARRAY_ITEM_MAX 1024        /* characters per STRINGS item */

/* 0 with req->input set; -1 with *details_r (a new object: field → message)
   for a 400, or with *details_r NULL when an answer was already sent. */
int api_input_check(struct api_request *req, json_t *path_params, json_t *query,
		    const uint8_t *body, size_t body_len, json_t **details_r);

/* Milliseconds since the epoch for an ISO 8601 date ("2024-01-31",
   "2024-01-31T12:00:00Z", with fractions and ±hh:mm offsets); -1 when it
   is not one. */
int64_t api_parse_date(const char *text);

/* Nesting depth of JSON text (brackets outside strings); stops counting at
   limit + 1. */
unsigned api_json_depth(const uint8_t *text, size_t len, unsigned limit);

#endif
