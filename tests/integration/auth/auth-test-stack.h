#ifndef AUTH_TEST_STACK_H
#define AUTH_TEST_STACK_H

/* Shared setup of the libwdauth integration tests: a fresh database per
 * process (random name derived from WD_MONGO_URL, dropped at the end), the
 * stack's Redis, and helpers to read documents back. */

#include "wd-auth.h"
#include "wd-store.h"

#include <stdint.h>

extern struct wd_store *test_store;
extern struct wd_auth *test_auth;
extern char test_tag[32];  /* unique per process: usernames, IPs, keys */

struct CMUnitTest;
/* main() of a test file: exit 77 without WD_MONGO_URL, else runs the tests
   as one group around test_stack_open(db_prefix, extra_toml) / close. */
int test_stack_run(const char *ident, const struct CMUnitTest *tests, size_t count,
		   const char *db_prefix, const char *extra_toml);

/* Opens store and auth with extra TOML lines appended to the config. */
int test_stack_open(const char *db_prefix, const char *extra_toml);
void test_stack_close(void);
/* A second auth context on the same store with other settings. */
struct wd_auth *test_auth_open(const char *extra_toml);

bson_t *test_find_one(enum wd_store_db db, const char *name, const bson_t *query);
int64_t test_count(enum wd_store_db db, const char *name, const bson_t *query);
void test_update(enum wd_store_db db, const char *name, const bson_t *query, const bson_t *update);
/* A user with a password hash (NULL: none); returns its id. */
bson_oid_t test_user(const char *name, const char *password_hash);
/* A Redis command on the test's own connection (NULL when no Redis). */
long long test_redis_int(const char *fmt, ...);
int64_t test_now_ms(void);

#endif
