/* Unit tests: Redis URLs as dbs.redis writes them (wd-redis-url.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-redis-url.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

static void test_good(void **state)
{
	(void)state;
	static const struct {
		const char *url, *host, *user, *password;
		int port, db;
	} cases[] = {
		{ "redis://127.0.0.1:6379/3", "127.0.0.1", "", "", 6379, 3 },
		{ "redis://localhost", "localhost", "", "", 6379, 0 },
		{ "redis://", "127.0.0.1", "", "", 6379, 0 },
		{ "redis://:secret@redis.example:6380/0", "redis.example", "", "secret", 6380, 0 },
		{ "redis://alice:pw@h/12", "h", "alice", "pw", 6379, 12 },
		{ "redis://[::1]:7000/1", "::1", "", "", 7000, 1 },
		{ "redis://h:1/", "h", "", "", 1, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wd_redis_url u;
		char *error = NULL;
		assert_int_equal(wd_redis_url_parse(cases[i].url, &u, &error), WD_OK);
		assert_string_equal(u.host, cases[i].host);
		assert_string_equal(u.user, cases[i].user);
		assert_string_equal(u.password, cases[i].password);
		assert_int_equal(u.port, cases[i].port);
		assert_int_equal(u.db, cases[i].db);
	}
}

static void test_bad(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"http://h", "redis//h", "redis://h:0", "redis://h:65536", "redis://h:12x",
		"redis://h:", "redis://[::1", "redis://[::1]x", "redis://h/1x", "redis://h/-1",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wd_redis_url u;
		char *error = NULL;
		assert_int_equal(wd_redis_url_parse(cases[i], &u, &error), WD_ERROR);
		assert_non_null(error);
		free(error);
	}
	/* a host name longer than the buffer is refused, not cut */
	char url[600] = "redis://";
	memset(url + 8, 'a', 400);
	struct wd_redis_url u;
	char *error = NULL;
	assert_int_equal(wd_redis_url_parse(url, &u, &error), WD_ERROR);
	free(error);
}

static void test_sentinel(void **state)
{
	(void)state;
	struct wd_redis_url u;
	char *error = NULL;
	assert_int_equal(wd_redis_url_parse("redis-sentinel://:pw@s1:26380,[::1],s3/mymaster/4",
					    &u, &error), WD_OK);
	assert_int_equal(u.sentinel_count, 3);
	assert_string_equal(u.sentinels[0].host, "s1");
	assert_int_equal(u.sentinels[0].port, 26380);
	assert_string_equal(u.sentinels[1].host, "::1");
	assert_int_equal(u.sentinels[1].port, 26379);
	assert_string_equal(u.sentinels[2].host, "s3");
	assert_string_equal(u.master_name, "mymaster");
	assert_string_equal(u.password, "pw");
	assert_int_equal(u.db, 4);
	assert_string_equal(u.host, ""); /* asked of the sentinels */
	assert_int_equal(wd_redis_url_parse("redis-sentinel://127.0.0.1:26379/m", &u, &error), WD_OK);
	assert_int_equal(u.sentinel_count, 1);
	assert_int_equal(u.db, 0);
	/* a plain URL is not in sentinel mode */
	assert_int_equal(wd_redis_url_parse("redis://h/1", &u, &error), WD_OK);
	assert_int_equal(u.sentinel_count, 0);

	static const char *const bad[] = {
		"redis-sentinel://",            /* no sentinel */
		"redis-sentinel://s1",          /* no master name */
		"redis-sentinel://s1/",         /* empty master name */
		"redis-sentinel://s1,,s2/m",    /* empty address */
		"redis-sentinel://s1:0/m",      /* port */
		"redis-sentinel://s1/m/x",      /* database */
		"redis-sentinel://a,b,c,d,e,f,g,h,i/m", /* more than 8 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		assert_int_equal(wd_redis_url_parse(bad[i], &u, &error), WD_ERROR);
		assert_non_null(error);
		free(error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_sentinel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
