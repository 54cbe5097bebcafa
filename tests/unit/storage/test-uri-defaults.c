/* Unit tests: the replica-set defaults the store adds to connection URLs
 * (wd__store_uri_defaults, store.c): w=majority with journal for a replica
 * set unless the URL chose a write concern; single servers untouched. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store-private.h"

static mongoc_uri_t *with_defaults(const char *text)
{
	mongoc_uri_t *uri = mongoc_uri_new(text);
	assert_non_null(uri);
	wd__store_uri_defaults(uri, text);
	return uri;
}

static void test_replica_set_gets_majority(void **state)
{
	(void)state;
	static const char *const urls[] = {
		"mongodb://db1/wildduck?replicaSet=rs0",
		"mongodb://db1,db2,db3/wildduck",
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		mongoc_uri_t *uri = with_defaults(urls[i]);
		const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern(uri);
		assert_int_equal(mongoc_write_concern_get_w(wc), MONGOC_WRITE_CONCERN_W_MAJORITY);
		assert_true(mongoc_write_concern_get_journal(wc));
		mongoc_uri_destroy(uri);
	}
}

static void test_given_concern_kept(void **state)
{
	(void)state;
	mongoc_uri_t *uri = with_defaults("mongodb://db1,db2/wildduck?w=1");
	assert_int_equal(mongoc_write_concern_get_w(mongoc_uri_get_write_concern(uri)), 1);
	mongoc_uri_destroy(uri);
	uri = with_defaults("mongodb://db1/wildduck?replicaSet=rs0&w=2");
	assert_int_equal(mongoc_write_concern_get_w(mongoc_uri_get_write_concern(uri)), 2);
	mongoc_uri_destroy(uri);
	/* journal=false is the operator's choice, kept with w=majority */
	uri = with_defaults("mongodb://db1/wildduck?replicaSet=rs0&journal=false");
	const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern(uri);
	assert_int_equal(mongoc_write_concern_get_w(wc), MONGOC_WRITE_CONCERN_W_MAJORITY);
	assert_false(mongoc_write_concern_get_journal(wc));
	mongoc_uri_destroy(uri);
}

static void test_single_server_untouched(void **state)
{
	(void)state;
	mongoc_uri_t *uri = with_defaults("mongodb://127.0.0.1:27017/wildduck");
	const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern(uri);
	assert_int_equal(mongoc_write_concern_get_w(wc), MONGOC_WRITE_CONCERN_W_DEFAULT);
	assert_false(mongoc_write_concern_journal_is_set(wc));
	mongoc_uri_destroy(uri);
}

int main(void)
{
	mongoc_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replica_set_gets_majority),
		cmocka_unit_test(test_given_concern_kept),
		cmocka_unit_test(test_single_server_untouched),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return failed;
}
