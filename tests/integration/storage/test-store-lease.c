/* Session leases in Redis (wd-store-lease.h) against the real Redis: the
 * limit, re-claims by the same holder, release, expiry of a dead holder's
 * lease, renewal keeping a lease alive past its first term, and Redis down
 * reported as unavailable. */
#include "stack-fixture.h"
#include "wd-store-lease.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <time.h>

#define KIND "test"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_limit_and_release(void **state)
{
	bson_oid_t u;
	bson_oid_init(&u, NULL);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "a:1", 2, 60000), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "b:1", 2, 60000), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "b:2", 2, 60000), WD_LEASE_REFUSED);
	/* a holder renewing its own claim is never refused */
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "a:1", 2, 60000), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_count(store, KIND, &u), 2);
	wd_store_lease_release(store, KIND, &u, "a:1");
	assert_int_equal(wd_store_lease_count(store, KIND, &u), 1);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "b:2", 2, 60000), WD_LEASE_GRANTED);
	/* no limit: recorded, never refused */
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "c:1", 0, 60000), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_count(store, KIND, &u), 3);
	/* another user is counted apart */
	bson_oid_t v;
	bson_oid_init(&v, NULL);
	assert_int_equal(wd_store_lease_claim(store, KIND, &v, "a:1", 1, 60000), WD_LEASE_GRANTED);
}

static void test_expiry_and_renewal(void **state)
{
	bson_oid_t u;
	bson_oid_init(&u, NULL);
	/* "dead" is never renewed; "live" is, past its first term */
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "dead", 2, 300), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "live", 2, 300), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "new", 2, 300), WD_LEASE_REFUSED);
	const char *holders[] = { "live" };
	for (int i = 0; i < 4; i++) {
		sleep_ms(150);
		assert_int_equal(wd_store_lease_renew(store, KIND, &u, holders, 1, 300),
				 WD_LEASE_GRANTED);
	}
	/* 600 ms later: the dead holder's lease ran out, the renewed one did not */
	assert_int_equal(wd_store_lease_count(store, KIND, &u), 1);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "new", 2, 300), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_claim(store, KIND, &u, "newer", 2, 300), WD_LEASE_REFUSED);
	/* renewing many at once, in batches */
	bson_oid_t m;
	bson_oid_init(&m, NULL);
	static char names[600][16];
	const char *many[600];
	for (int i = 0; i < 600; i++) {
		snprintf(names[i], sizeof(names[i]), "h%d", i);
		many[i] = names[i];
	}
	assert_int_equal(wd_store_lease_renew(store, KIND, &m, many, 600, 60000), WD_LEASE_GRANTED);
	assert_int_equal(wd_store_lease_count(store, KIND, &m), 600);
}

static void test_redis_down(void **state)
{
	char text[512];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s-lease-down\"\nredis = \"redis://127.0.0.1:1/0\"\n",
		 getenv("WD_MONGO_URL"));
	char *error = NULL;
	struct wd_config *config = wd_config_parse("down.toml", text, strlen(text), &error);
	struct wd_store *down = wd_store_open(config, &error);
	wd_config_free(&config);
	assert_non_null(down);
	bson_oid_t u;
	bson_oid_init(&u, NULL);
	assert_int_equal(wd_store_lease_claim(down, KIND, &u, "a", 1, 1000), WD_LEASE_UNAVAILABLE);
	const char *holders[] = { "a" };
	assert_int_equal(wd_store_lease_renew(down, KIND, &u, holders, 1, 1000),
			 WD_LEASE_UNAVAILABLE);
	assert_int_equal(wd_store_lease_count(down, KIND, &u), -1);
	wd_store_lease_release(down, KIND, &u, "a"); /* no crash, no hang */
	wd_store_close(&down);
}

int main(void)
{
	int ret = test_stack_open("lease");
	if (ret != 0)
		return ret;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_and_release),
		cmocka_unit_test(test_expiry_and_renewal),
		cmocka_unit_test(test_redis_down),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	test_stack_drop();
	return failed;
}
