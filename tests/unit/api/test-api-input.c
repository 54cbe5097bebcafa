/* wd-api's pure pieces without a server: the input checks of input.c
 * (types, bounds, unknown keys, hostile bodies), date parsing, JSON depth
 * counting, the router's choice between routes, cursors, the per-address
 * rate limit and the RFC 2047 decoding of display names. */
#include "api.h"
#include "input.h"
#include "message-json.h"
#include "rate.h"
#include "router.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void dummy_handler(struct api_request *req)
{
	(void)req;
}

static const char *const colours[] = { "red", "green", NULL };

static const struct api_field fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "user" },
	{ "name", API_T_STRING, API_F_TRIM, 2, 5, NULL, "name" },
	{ "count", API_T_INT, 0, 1, 10, NULL, "count" },
	{ "flag", API_T_BOOL, 0, 0, 0, NULL, "flag" },
	{ "tags", API_T_STRINGS, 0, 0, 3, NULL, "tags" },
	{ "colour", API_T_STRING, 0, 0, 0, colours, "colour" },
	{ "when", API_T_DATE, 0, 0, 0, NULL, "when" },
	{ "meta", API_T_OBJECT, 0, 0, 64, NULL, "meta" },
	{ "note", API_T_STRING, API_F_NULLABLE, 0, 10, NULL, "note" },
	API_FIELDS_END
};

static const struct api_route route = {
	API_POST, "/users/:user/things", dummy_handler, "users", API_CREATE, 0, fields, "T", "t", "t",
};

/* Runs the checks on a body (and path user); returns the details object
   (NULL on success, then *input_r holds the input). */
static json_t *check(const char *body, const char *user, json_t **input_r)
{
	struct api_request req = { .route = &route };
	json_t *path = json_pack("{s:s}", "user", user);
	json_t *query = json_object();
	json_t *details = NULL;
	int ret = api_input_check(&req, path, query, (const uint8_t *)body, strlen(body), &details);
	json_decref(path);
	json_decref(query);
	if (ret == 0) {
		assert_null(details);
		*input_r = req.input;
		return NULL;
	}
	assert_non_null(details);
	*input_r = NULL;
	return details;
}

#define USER "0123456789ABCDEF01234567"

static void test_valid_input_converted(void **state)
{
	json_t *input;
	json_t *details = check("{\"name\":\"  abc \",\"count\":\"7\",\"flag\":\"yes\","
				"\"tags\":[\"a\",\"b\"],\"colour\":\"red\","
				"\"when\":\"2024-01-31T12:00:00.250+01:00\",\"meta\":{\"a\":1},"
				"\"note\":\"\",\"sess\":\"s1\"}",
				USER, &input);
	assert_null(details);
	struct api_request req = { .input = input };
	assert_string_equal(api_str(&req, "user", NULL), "0123456789abcdef01234567");
	assert_string_equal(api_str(&req, "name", NULL), "abc");
	assert_int_equal(api_int(&req, "count", 0), 7);
	assert_true(api_bool(&req, "flag", false));
	assert_int_equal(json_array_size(api_json(&req, "tags")), 2);
	assert_int_equal(api_int(&req, "when", 0), 1706698800250LL);
	assert_true(json_is_null(api_json(&req, "note")));
	assert_string_equal(api_str(&req, "sess", NULL), "s1");
	json_decref(input);
}

static void expect_detail(const char *body, const char *user, const char *field)
{
	json_t *input;
	json_t *details = check(body, user, &input);
	assert_non_null(details);
	if (json_object_get(details, field) == NULL) {
		char *text = json_dumps(details, 0);
		fail_msg("no detail for %s in %s (body %s)", field, text, body);
	}
	json_decref(details);
}

static void test_refusals(void **state)
{
	expect_detail("{}", "nope", "user");
	expect_detail("{}", "0123456789abcdef0123456z", "user");
	expect_detail("{\"name\":\"a\"}", USER, "name");           /* too short */
	expect_detail("{\"name\":\"abcdef\"}", USER, "name");      /* too long */
	expect_detail("{\"name\":\"\"}", USER, "name");            /* empty */
	expect_detail("{\"name\":5}", USER, "name");               /* type */
	expect_detail("{\"count\":0}", USER, "count");             /* range */
	expect_detail("{\"count\":11}", USER, "count");
	expect_detail("{\"count\":\"7x\"}", USER, "count");
	expect_detail("{\"count\":1.5}", USER, "count");
	/* outside int64_t: refused without an undefined conversion (UBSan) */
	expect_detail("{\"count\":1e300}", USER, "count");
	expect_detail("{\"count\":-9.3e18}", USER, "count");
	expect_detail("{\"flag\":\"maybe\"}", USER, "flag");
	expect_detail("{\"tags\":[\"a\",\"b\",\"c\",\"d\"]}", USER, "tags");
	expect_detail("{\"tags\":[1]}", USER, "tags");
	expect_detail("{\"colour\":\"blue\"}", USER, "colour");
	expect_detail("{\"when\":\"yesterday\"}", USER, "when");
	expect_detail("{\"when\":\"2024-13-01\"}", USER, "when");
	expect_detail("{\"meta\":[1]}", USER, "meta");
	expect_detail("{\"meta\":{\"long\":\"0123456789012345678901234567890123456789012345678901234567890\"}}",
		      USER, "meta");
	expect_detail("{\"other\":1}", USER, "other");             /* unknown key */
	expect_detail("{\"$where\":1}", USER, "$where");
}

static void test_hostile_bodies(void **state)
{
	json_t *input;
	/* nesting is refused before the parser recurses */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 1);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	deep[2 * depth] = '\0';
	json_t *details = check(deep, USER, &input);
	assert_non_null(json_object_get(details, "body"));
	json_decref(details);
	free(deep);
	const char *bad[] = {
		"[1,2]", "\"text\"", "nul", "{\"a\":1,\"a\":2}", "{\"name\":\"\xff\xfe\"}", "{",
		"{\"name\":\"abc\"} trailing",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		details = check(bad[i], USER, &input);
		assert_non_null(details);
		json_decref(details);
	}
	assert_int_equal(api_json_depth((const uint8_t *)"{\"a\":\"[[[[\"}", 11, 32), 1);
	assert_int_equal(api_json_depth((const uint8_t *)"[[\"\\\"[\"]]", 9, 32), 2);
}

static void test_dates(void **state)
{
	assert_int_equal(api_parse_date("1970-01-01"), 0);
	assert_int_equal(api_parse_date("1970-01-01T00:00:01Z"), 1000);
	assert_int_equal(api_parse_date("1970-01-01T01:00:00+01:00"), 0);
	assert_int_equal(api_parse_date("2000-02-29T00:00:00.5Z"), 951782400500LL);
	assert_true(api_parse_date("2000-02-29T") < 0);
	assert_true(api_parse_date("") < 0);
	assert_true(api_parse_date("1970-01-01T00:00:00+25:00") < 0);
}

static void test_rate(void **state)
{
	struct api_rate *rate = api_rate_create(3, 3600);
	for (int i = 0; i < 3; i++)
		assert_true(api_rate_allow(rate, "192.0.2.1"));
	assert_false(api_rate_allow(rate, "192.0.2.1"));
	assert_true(api_rate_allow(rate, "192.0.2.2"));
	/* many clients: the table stays bounded and keeps answering */
	char ip[64];
	for (int i = 0; i < API_RATE_MAX_CLIENTS + 100; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		assert_true(api_rate_allow(rate, ip));
	}
	api_rate_destroy(&rate);
	struct api_rate *off = api_rate_create(0, 60);
	for (int i = 0; i < 10; i++)
		assert_true(api_rate_allow(off, "192.0.2.1"));
	api_rate_destroy(&off);
}

static void test_router(void **state)
{
	const struct api_route *r;
	json_t *params;
	assert_int_equal(api_router_match(API_GET, "/users/resolve/alice", &r, &params),
			 API_MATCH_OK);
	assert_string_equal(r->path, "/users/resolve/:username");
	assert_string_equal(json_string_value(json_object_get(params, "username")), "alice");
	json_decref(params);
	assert_int_equal(api_router_match(API_GET, "/users/" USER, &r, &params), API_MATCH_OK);
	assert_string_equal(r->path, "/users/:user");
	json_decref(params);
	assert_int_equal(api_router_match(API_GET, "/health/", &r, &params), API_MATCH_OK);
	json_decref(params);
	assert_int_equal(api_router_match(API_POST, "/health", &r, &params),
			 API_MATCH_OTHER_METHOD);
	assert_int_equal(api_router_match(API_GET, "/nope", &r, &params), API_MATCH_NONE);
	assert_int_equal(api_router_match(API_GET, "/users/\xff\xfe", &r, &params), API_MATCH_NONE);
	/* not 405 either: no method has a route for a path that is not UTF-8 */
	assert_int_equal(api_router_match(API_POST, "/users/\xff\xfe", &r, &params), API_MATCH_NONE);
	char deep[600];
	memset(deep, 0, sizeof(deep));
	for (int i = 0; i < 100; i++)
		strcat(deep, "/a");
	assert_int_equal(api_router_match(API_GET, deep, &r, &params), API_MATCH_NONE);
}

static void test_cursor(void **state)
{
	char *c = api_cursor_encode("users", "0123456789abcdef01234567");
	assert_non_null(c);
	assert_null(strpbrk(c, "+/="));
	char *v = api_cursor_decode("users", c);
	assert_string_equal(v, "0123456789abcdef01234567");
	free(v);
	assert_null(api_cursor_decode("messages", c));
	assert_null(api_cursor_decode("users", "!!!"));
	assert_null(api_cursor_decode("users", ""));
	free(c);
}

static void expect_decoded(const char *text, const char *expected)
{
	char *got = api_mime_decode_words(text);
	assert_non_null(got);
	assert_string_equal(got, expected);
	free(got);
}

static void test_encoded_words(void **state)
{
	expect_decoded("=?UTF-8?B?w6lsw6h2ZQ==?= =?utf-8?q?caf=C3=A9?= x", "\xc3\xa9l\xc3\xa8vecaf\xc3\xa9 x");
	expect_decoded("=?iso-8859-1?Q?Andr=E9?=", "Andr\xc3\xa9");
	expect_decoded("=?x-unknown?q?a?=", "=?x-unknown?q?a?=");
	/* what a word decodes to is UTF-8 a JSON string can hold (found by
	   fuzz-encoded-words: =FF made jansson refuse the name, =00 cut it) */
	expect_decoded("=?utf-8?q?a=FFb?=", "a\xef\xbf\xbd" "b");
	expect_decoded("=?utf-8?q?a=00b?=", "a\xef\xbf\xbd" "b");
	expect_decoded("=?utf-16be?b?AEEAAABC?=", "A\xef\xbf\xbd" "B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_input_converted),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_hostile_bodies),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_router),
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_encoded_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
