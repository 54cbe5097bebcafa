/* Integration tests (suite auth): the whole authentication flow against the
 * stack's FerretDB and Redis — legacy hashes upgraded on login, the auth log
 * documents, app-password scopes and selector, TOTP enrolment and the 2FA
 * rule for IMAP/POP3, failure limits per user and per IP with their release,
 * account states, temporary passwords. Needs WD_MONGO_URL and WD_REDIS_URL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth-test-stack.h"
#include "wd-auth-asp.h"
#include "wd-auth-log.h"
#include "wd-auth-login.h"
#include "wd-auth-password.h"
#include "wd-auth-ratelimit.h"
#include "wd-auth-totp.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* mkpasswd -m md5crypt secretpass (tests/unit/auth/password-vectors.txt) */
#define MD5_SECRETPASS "$1$FfU/pZ6Q$yxXZZ8ZH4qMl3X6.1v0kF1"
#define BCRYPT_SECRETPASS "$2b$05$ZmA5wYx254PYdEySpBOOxedo4rnqErjl/kS8xLoVNnSm2W/g2w8re"

static char ip_a[32], ip_b[32];

static enum wd_auth_status login_as(struct wd_auth *auth, const char *user, const char *password,
				    enum wd_auth_scope scope, const char *ip,
				    struct wd_auth_result *result)
{
	struct wd_auth_request req = {
		.username = user, .password = password, .password_len = strlen(password),
		.scope = scope, .meta = { .protocol = scope == WD_AUTH_SCOPE_POP3 ? "POP3" :
						      scope == WD_AUTH_SCOPE_MASTER ? "API" : "IMAP",
					  .ip = ip, .sess = "sess-1" },
	};
	return wd_auth_authenticate(auth, &req, result);
}

static enum wd_auth_status login(const char *user, const char *password, enum wd_auth_scope scope,
				 struct wd_auth_result *result)
{
	return login_as(test_auth, user, password, scope, ip_a, result);
}

static const char *name_of(const bson_oid_t *id, char *buf)
{
	struct wd_user *user = NULL;
	char *error = NULL;
	assert_int_equal(wd_store_user_get(test_store, id, &user, &error), 0);
	snprintf(buf, 128, "%s", user->username);
	wd_user_free(&user);
	return buf;
}

static const char *user_string(const bson_oid_t *id, const char *key, char *buf, size_t size)
{
	bson_t *q = BCON_NEW("_id", BCON_OID(id));
	bson_t *doc = test_find_one(WD_STORE_DB_USERS, "users", q);
	bson_iter_t it;
	buf[0] = '\0';
	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		snprintf(buf, size, "%s", bson_iter_utf8(&it, NULL));
	bson_destroy(doc);
	bson_destroy(q);
	return buf;
}

static void test_master_login_and_rehash(void **state)
{
	(void)state;
	bson_oid_t id = test_user("legacy", MD5_SECRETPASS);
	char name[128], buf[512];
	name_of(&id, name);
	struct wd_auth_result r;
	assert_int_equal(login(name, "wrongpass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_true(r.has_user);
	assert_string_equal(user_string(&id, "password", buf, sizeof(buf)), MD5_SECRETPASS);
	assert_int_equal(login(name, "secretpass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	assert_true(bson_oid_equal(&r.user, &id));
	assert_int_equal(r.source, WD_AUTH_SOURCE_MASTER);
	assert_true(r.rehashed);
	assert_string_equal(r.username, name);
	user_string(&id, "password", buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "$pbkdf2-sha256$i=100000$", 24), 0);
	/* the new hash works; no second rehash */
	assert_int_equal(login(name, "secretpass", WD_AUTH_SCOPE_POP3, &r), WD_AUTH_ACCEPTED);
	assert_false(r.rehashed);
	/* the same account by address: case, dots and labels do not matter */
	char address[200];
	snprintf(address, sizeof(address), "L.E.G.A.C.Y%s+imap@EXAMPLE.com", name + 6);
	assert_int_equal(login(address, "secretpass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	assert_true(bson_oid_equal(&r.user, &id));
	/* lastLogin recorded */
	bson_t *q = BCON_NEW("_id", BCON_OID(&id));
	bson_t *doc = test_find_one(WD_STORE_DB_USERS, "users", q);
	bson_iter_t it;
	assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "lastLogin.time", &it));
	assert_true(BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "lastLogin.ip", &it));
	assert_string_equal(bson_iter_utf8(&it, NULL), ip_a);
	assert_true(bson_iter_init(&it, doc) &&
		    bson_iter_find_descendant(&it, "lastLogin.authEvent", &it));
	assert_true(BSON_ITER_HOLDS_OID(&it));
	bson_destroy(doc);
	bson_destroy(q);
	/* bcrypt is legacy too */
	bson_oid_t b = test_user("bcrypt", BCRYPT_SECRETPASS);
	name_of(&b, name);
	assert_int_equal(login(name, "secretpass", WD_AUTH_SCOPE_MASTER, &r), WD_AUTH_ACCEPTED);
	assert_true(r.rehashed);
	/* hostile input: empty, overlong, unknown */
	assert_int_equal(login(name, "", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	char big[WD_AUTH_MAX_PASSWORD + 10];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(login(name, big, WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login(big, "x", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login("", "x", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login("nobody-at-all", "x", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_false(r.has_user);
	assert_int_equal(login("\xff\xfe@\x01", "x", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	/* a user without a password cannot log in with one */
	bson_oid_t none = test_user("nopass", NULL);
	name_of(&none, name);
	assert_int_equal(login(name, "anything", WD_AUTH_SCOPE_MASTER, &r), WD_AUTH_REFUSED);
}

static bson_t *authlog_of(const bson_oid_t *user, const char *result, const char *action)
{
	bson_t *q = BCON_NEW("user", BCON_OID(user), "result", BCON_UTF8(result), "action",
			     BCON_UTF8(action));
	bson_t *doc = test_find_one(WD_STORE_DB_USERS, "authlog", q);
	bson_destroy(q);
	return doc;
}

static const char *str_field(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it))
		fail_msg("no string %s", key);
	return bson_iter_utf8(&it, NULL);
}

static void test_authlog(void **state)
{
	(void)state;
	char *error = NULL;
	const char *herr;
	char *hash = wd_auth_password_hash("logpass", 7, &herr);
	bson_oid_t id = test_user("logged", hash);
	free(hash);
	char name[128];
	name_of(&id, name);
	struct wd_auth_result r;
	int64_t before = test_now_ms();
	assert_int_equal(login(name, "bad1", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login(name, "bad2", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login(name, "logpass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	/* two failures from one IP and protocol share a bucket */
	bson_t *doc = authlog_of(&id, "fail", "authentication");
	assert_non_null(doc);
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, doc, "events"));
	assert_int_equal(bson_iter_as_int64(&it), 2);
	assert_string_equal(str_field(doc, "protocol"), "IMAP");
	assert_string_equal(str_field(doc, "ip"), ip_a);
	assert_string_equal(str_field(doc, "sess"), "sess-1");
	assert_string_equal(str_field(doc, "requiredScope"), "imap");
	assert_string_equal(str_field(doc, "source"), "master");
	assert_true(bson_iter_init_find(&it, doc, "key") && BSON_ITER_HOLDS_BINARY(&it));
	uint32_t len;
	const uint8_t *bin;
	bson_subtype_t subtype;
	bson_iter_binary(&it, &subtype, &len, &bin);
	assert_int_equal(len, 16);
	assert_int_equal(subtype, BSON_SUBTYPE_BINARY);
	assert_true(bson_iter_init_find(&it, doc, "created") && BSON_ITER_HOLDS_DATE_TIME(&it));
	int64_t created = bson_iter_date_time(&it);
	assert_true(created >= before - 1000 && created <= test_now_ms() + 1000);
	assert_true(bson_iter_init_find(&it, doc, "expires") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(llabs((long long)(bson_iter_date_time(&it) - created - WD_AUTH_AUTHLOG_TIME_MS)) <
		    5000);
	assert_true(bson_iter_init_find(&it, doc, "last") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init_find(&it, doc, "user") && BSON_ITER_HOLDS_OID(&it));
	bson_destroy(doc);
	doc = authlog_of(&id, "success", "authentication");
	assert_non_null(doc);
	assert_string_equal(str_field(doc, "source"), "master");
	assert_true(bson_iter_init_find(&it, doc, "events"));
	assert_int_equal(bson_iter_as_int64(&it), 1);
	bson_destroy(doc);
	/* another IP is another bucket */
	assert_int_equal(login_as(test_auth, name, "bad3", WD_AUTH_SCOPE_IMAP, ip_b, &r),
			 WD_AUTH_REFUSED);
	bson_t *q = BCON_NEW("user", BCON_OID(&id), "result", BCON_UTF8("fail"));
	assert_int_equal(test_count(WD_STORE_DB_USERS, "authlog", q), 2);
	bson_destroy(q);
	/* expiry: our own, as FerretDB does not enforce TTL */
	q = BCON_NEW("user", BCON_OID(&id), "ip", BCON_UTF8(ip_b));
	bson_t *u = BCON_NEW("$set", "{", "expires", BCON_DATE_TIME(test_now_ms() - 1000), "}");
	test_update(WD_STORE_DB_USERS, "authlog", q, u);
	int64_t expired = 0, asps = 0;
	assert_int_equal(wd_auth_log_expire(test_auth, &expired, &asps, &error), 0);
	assert_true(expired >= 1);
	assert_int_equal(test_count(WD_STORE_DB_USERS, "authlog", q), 0);
	bson_destroy(u);
	bson_destroy(q);
}

static void test_asp_scopes(void **state)
{
	(void)state;
	const char *herr;
	char *hash = wd_auth_password_hash("mainpass", 8, &herr);
	bson_oid_t id = test_user("asp", hash);
	free(hash);
	char name[128], *error = NULL;
	name_of(&id, name);
	char imap_pw[17], all_pw[17], ttl_pw[17];
	bson_oid_t imap_id, all_id, ttl_id;
	struct wd_asp_create req = { .description = "Thunderbird", .scopes = WD_SCOPE_IMAP };
	struct wd_auth_meta meta = { .protocol = "API", .ip = ip_a };
	assert_int_equal(wd_auth_asp_create(test_auth, &id, &req, &meta, &imap_id, imap_pw, &error), 0);
	assert_int_equal(strlen(imap_pw), 16);
	for (int i = 0; i < 16; i++)
		assert_true(imap_pw[i] >= 'a' && imap_pw[i] <= 'z');
	req = (struct wd_asp_create){ .description = "Phone",
				      .scopes = WD_SCOPE_IMAP | WD_SCOPE_POP3 | WD_SCOPE_SMTP };
	assert_int_equal(wd_auth_asp_create(test_auth, &id, &req, &meta, &all_id, all_pw, &error), 0);
	req = (struct wd_asp_create){ .description = "Temp", .scopes = WD_SCOPE_POP3 | WD_SCOPE_SMTP,
				      .ttl = 3600 };
	assert_int_equal(wd_auth_asp_create(test_auth, &id, &req, &meta, &ttl_id, ttl_pw, &error), 0);
	/* stored as WildDuck stores them */
	bson_t *q = BCON_NEW("_id", BCON_OID(&imap_id));
	bson_t *doc = test_find_one(WD_STORE_DB_USERS, "asps", q);
	char sel[3];
	wd_auth_asp_selector(imap_pw, 16, sel);
	assert_string_equal(str_field(doc, "selector"), sel);
	assert_string_equal(str_field(doc, "description"), "Thunderbird");
	assert_int_equal(strncmp(str_field(doc, "password"), "$pbkdf2-sha256$", 15), 0);
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, doc, "used") && BSON_ITER_HOLDS_BOOL(&it));
	assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "scopes.0", &it));
	assert_string_equal(bson_iter_utf8(&it, NULL), "imap");
	assert_false(bson_iter_init_find(&it, doc, "expires"));
	bson_destroy(doc);
	bson_destroy(q);
	q = BCON_NEW("_id", BCON_OID(&all_id));
	doc = test_find_one(WD_STORE_DB_USERS, "asps", q);
	assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "scopes.0", &it));
	assert_string_equal(bson_iter_utf8(&it, NULL), "*");
	bson_destroy(doc);
	bson_destroy(q);
	q = BCON_NEW("_id", BCON_OID(&ttl_id));
	doc = test_find_one(WD_STORE_DB_USERS, "asps", q);
	assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "scopes.1", &it));
	assert_string_equal(bson_iter_utf8(&it, NULL), "smtp");
	assert_true(bson_iter_init_find(&it, doc, "expires") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init_find(&it, doc, "ttl"));
	assert_int_equal(bson_iter_as_int64(&it), 3600);
	bson_destroy(doc);
	bson_destroy(q);

	struct wd_auth_result r;
	assert_int_equal(login(name, imap_pw, WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	assert_int_equal(r.source, WD_AUTH_SOURCE_ASP);
	assert_true(bson_oid_equal(&r.asp, &imap_id));
	assert_int_equal(login(name, imap_pw, WD_AUTH_SCOPE_POP3, &r), WD_AUTH_SCOPE_REFUSED);
	assert_int_equal(login(name, imap_pw, WD_AUTH_SCOPE_MASTER, &r), WD_AUTH_REFUSED);
	/* typed with spaces and capitals, as phones show them */
	char spaced[40];
	snprintf(spaced, sizeof(spaced), "%.4s %.4s %.4s %.4s", all_pw, all_pw + 4, all_pw + 8,
		 all_pw + 12);
	for (char *p = spaced; *p != '\0'; p += 2)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	assert_int_equal(login(name, spaced, WD_AUTH_SCOPE_SMTP, &r), WD_AUTH_ACCEPTED);
	assert_true(bson_oid_equal(&r.asp, &all_id));
	assert_int_equal(login(name, all_pw, WD_AUTH_SCOPE_POP3, &r), WD_AUTH_ACCEPTED);
	assert_int_equal(login(name, ttl_pw, WD_AUTH_SCOPE_POP3, &r), WD_AUTH_ACCEPTED);
	assert_int_equal(login(name, ttl_pw, WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_SCOPE_REFUSED);
	/* a wrong 16-letter password */
	assert_int_equal(login(name, "abcdefghijklmnop", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	/* the account password still works for IMAP (no 2FA) */
	assert_int_equal(login(name, "mainpass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	assert_int_equal(r.source, WD_AUTH_SOURCE_MASTER);
	/* last use recorded; the auth log names the app password */
	q = BCON_NEW("_id", BCON_OID(&imap_id));
	doc = test_find_one(WD_STORE_DB_USERS, "asps", q);
	assert_true(bson_iter_init_find(&it, doc, "used") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_string_equal(str_field(doc, "authIp"), ip_a);
	bson_destroy(doc);
	bson_destroy(q);
	doc = authlog_of(&id, "success", "authentication");
	bson_destroy(doc);
	q = BCON_NEW("user", BCON_OID(&id), "source", BCON_UTF8("asp"), "result",
		     BCON_UTF8("success"));
	doc = test_find_one(WD_STORE_DB_USERS, "authlog", q);
	assert_non_null(doc);
	assert_true(bson_iter_init_find(&it, doc, "asp") && BSON_ITER_HOLDS_OID(&it));
	bson_destroy(doc);
	bson_destroy(q);
	q = BCON_NEW("user", BCON_OID(&id), "action", BCON_UTF8("create asp"));
	assert_int_equal(test_count(WD_STORE_DB_USERS, "authlog", q), 1); /* merged: same key */
	bson_destroy(q);
	/* list, expire, delete */
	struct wd_asp_list list;
	assert_int_equal(wd_auth_asp_list(test_auth, &id, &list, &error), 0);
	assert_int_equal(list.count, 3);
	assert_string_equal(list.items[0].description, "Thunderbird");
	assert_string_equal(list.items[0].scopes, "imap");
	assert_true(list.items[0].used_ms > 0);
	assert_string_equal(list.items[1].scopes, "*");
	assert_string_equal(list.items[2].scopes, "pop3,smtp");
	wd_asp_list_free(&list);
	q = BCON_NEW("_id", BCON_OID(&ttl_id));
	bson_t *u = BCON_NEW("$set", "{", "expires", BCON_DATE_TIME(test_now_ms() - 1000), "}");
	test_update(WD_STORE_DB_USERS, "asps", q, u);
	bson_destroy(u);
	bson_destroy(q);
	assert_int_equal(login(name, ttl_pw, WD_AUTH_SCOPE_POP3, &r), WD_AUTH_REFUSED);
	assert_int_equal(wd_auth_asp_delete(test_auth, &id, &imap_id, &meta, &error), 0);
	assert_int_equal(login(name, imap_pw, WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(wd_auth_asp_delete(test_auth, &id, &imap_id, &meta, &error),
			 WD_AUTH_ERR_NOT_FOUND);
	free(error);
	error = NULL;
	/* no description; unknown user */
	req = (struct wd_asp_create){ .description = "" };
	assert_int_equal(wd_auth_asp_create(test_auth, &id, &req, &meta, NULL, imap_pw, &error),
			 WD_AUTH_ERR_INVALID);
	free(error);
	error = NULL;
	bson_oid_t nobody;
	bson_oid_init(&nobody, NULL);
	req.description = "x";
	assert_int_equal(wd_auth_asp_create(test_auth, &nobody, &req, &meta, NULL, imap_pw, &error),
			 WD_AUTH_ERR_NOT_FOUND);
	free(error);
}

static void test_two_factor(void **state)
{
	(void)state;
	const char *herr;
	char *hash = wd_auth_password_hash("twofactor", 9, &herr);
	bson_oid_t id = test_user("totp", hash);
	free(hash);
	char name[128], buf[512], *error = NULL;
	name_of(&id, name);
	struct wd_auth_meta meta = { .protocol = "API", .ip = ip_a };
	struct wd_auth_totp_setup setup;
	assert_int_equal(wd_auth_totp_setup(test_auth, &id, NULL, "Example", &setup, &error), 0);
	assert_int_equal(strlen(setup.seed), 32);
	assert_non_null(strstr(setup.url, "issuer=Example"));
	free(setup.url);
	/* the pending seed is encrypted with totp.secret */
	user_string(&id, "pendingSeed", buf, sizeof(buf));
	assert_int_equal(strncmp(buf, "$wd01$aes-256-gcm$", 18), 0);
	bool ok = true;
	assert_int_equal(wd_auth_totp_enable(test_auth, &id, "000000", &meta, &ok, &error), 0);
	char code[7];
	const char *cerr;
	if (!ok) { /* "000000" may be right by chance once in a million; then skip this check */
		bson_t *q = BCON_NEW("user", BCON_OID(&id), "action", BCON_UTF8("enable 2fa totp"),
				     "result", BCON_UTF8("fail"));
		assert_int_equal(test_count(WD_STORE_DB_USERS, "authlog", q), 1);
		bson_destroy(q);
		assert_int_equal(wd_auth_totp_code(setup.seed, time(NULL), code, &cerr), 0);
		assert_int_equal(wd_auth_totp_enable(test_auth, &id, code, &meta, &ok, &error), 0);
		assert_true(ok);
	}
	bson_t *q = BCON_NEW("_id", BCON_OID(&id));
	bson_t *doc = test_find_one(WD_STORE_DB_USERS, "users", q);
	bson_iter_t it;
	assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "enabled2fa.0", &it));
	assert_string_equal(bson_iter_utf8(&it, NULL), "totp");
	assert_true(bson_iter_init_find(&it, doc, "authVersion"));
	assert_int_equal(bson_iter_as_int64(&it), 2);
	assert_int_equal(strncmp(str_field(doc, "seed"), "$wd01$", 6), 0);
	assert_string_equal(str_field(doc, "pendingSeed"), "");
	bson_destroy(doc);
	bson_destroy(q);
	/* enabling twice, setting up again: refused */
	assert_int_equal(wd_auth_totp_enable(test_auth, &id, "123456", &meta, &ok, &error),
			 WD_AUTH_ERR_STATE);
	free(error);
	error = NULL;
	struct wd_auth_totp_setup again;
	assert_int_equal(wd_auth_totp_setup(test_auth, &id, NULL, NULL, &again, &error),
			 WD_AUTH_ERR_STATE);
	assert_null(again.url);
	free(error);
	error = NULL;

	/* the 2FA rule: the account password is master-only now */
	struct wd_auth_result r;
	assert_int_equal(login(name, "twofactor", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_SCOPE_REFUSED);
	assert_non_null(strstr(r.message, "application-specific password"));
	assert_int_equal(login(name, "twofactor", WD_AUTH_SCOPE_POP3, &r), WD_AUTH_SCOPE_REFUSED);
	q = BCON_NEW("user", BCON_OID(&id), "result", BCON_UTF8("fail"), "protocol",
		     BCON_UTF8("POP3"));
	doc = test_find_one(WD_STORE_DB_USERS, "authlog", q);
	assert_non_null(doc);
	assert_string_equal(str_field(doc, "require2fa"), "totp");
	assert_string_equal(str_field(doc, "source"), "master");
	bson_destroy(doc);
	bson_destroy(q);
	assert_int_equal(login(name, "twofactor", WD_AUTH_SCOPE_MASTER, &r), WD_AUTH_ACCEPTED);
	assert_string_equal(r.require2fa, "totp");
	char asp[17];
	struct wd_asp_create req = { .description = "Mail app" };
	assert_int_equal(wd_auth_asp_create(test_auth, &id, &req, &meta, NULL, asp, &error), 0);
	assert_int_equal(login(name, asp, WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	assert_string_equal(r.require2fa, "");
	assert_int_equal(login(name, asp, WD_AUTH_SCOPE_POP3, &r), WD_AUTH_ACCEPTED);

	/* checking codes: right once, then "already used" */
	int64_t retry;
	assert_int_equal(wd_auth_totp_code(setup.seed, time(NULL) - 90, code, &cerr), 0);
	bool valid = false;
	int ret = wd_auth_totp_check(test_auth, &id, code, &meta, &valid, &retry, &error);
	if (ret == WD_AUTH_ERR_RATELIMITED) { /* the enable code of the same step */
		free(error);
		error = NULL;
		assert_int_equal(wd_auth_totp_code(setup.seed, time(NULL) + 120, code, &cerr), 0);
		ret = wd_auth_totp_check(test_auth, &id, code, &meta, &valid, &retry, &error);
	}
	assert_int_equal(ret, 0);
	assert_true(valid);
	assert_int_equal(wd_auth_totp_check(test_auth, &id, code, &meta, &valid, &retry, &error),
			 WD_AUTH_ERR_RATELIMITED);
	free(error);
	error = NULL;
	assert_int_equal(wd_auth_totp_code(setup.seed, time(NULL) + 3600, code, &cerr), 0);
	assert_int_equal(wd_auth_totp_check(test_auth, &id, code, &meta, &valid, &retry, &error), 0);
	assert_false(valid);
	char hex[25];
	bson_oid_to_string(&id, hex);
	if (getenv("WD_REDIS_URL") != NULL)
		assert_int_equal(test_redis_int("GET auth_user:totp:%s", hex), 1);

	/* off again: the password works for IMAP */
	assert_int_equal(wd_auth_totp_disable(test_auth, &id, &meta, &error), 0);
	assert_int_equal(wd_auth_totp_disable(test_auth, &id, &meta, &error), WD_AUTH_ERR_STATE);
	free(error);
	error = NULL;
	assert_int_equal(login(name, "twofactor", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	assert_int_equal(wd_auth_totp_check(test_auth, &id, "123456", &meta, &valid, &retry, &error),
			 WD_AUTH_ERR_STATE);
	free(error);
	/* legacy enabled2fa: true means TOTP */
	q = BCON_NEW("_id", BCON_OID(&id));
	bson_t *u = BCON_NEW("$set", "{", "enabled2fa", BCON_BOOL(true), "}");
	test_update(WD_STORE_DB_USERS, "users", q, u);
	assert_int_equal(login(name, "twofactor", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_SCOPE_REFUSED);
	bson_destroy(u);
	bson_destroy(q);
}

static void test_rate_limit(void **state)
{
	(void)state;
	if (getenv("WD_REDIS_URL") == NULL)
		skip();
	const char *herr;
	char *hash = wd_auth_password_hash("limited", 7, &herr);
	bson_oid_t id = test_user("limit", hash);
	free(hash);
	char name[128], hex[25];
	name_of(&id, name);
	bson_oid_to_string(&id, hex);
	struct wd_auth_result r;
	for (int i = 0; i < WD_AUTH_USER_FAILURES; i++)
		assert_int_equal(login(name, "wrong", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(test_redis_int("GET auth_user:%s", hex), WD_AUTH_USER_FAILURES);
	long long ttl = test_redis_int("TTL auth_user:%s", hex);
	assert_true(ttl > 0 && ttl <= WD_AUTH_USER_WINDOW);
	/* locked: even the right password, with a message that says so */
	assert_int_equal(login(name, "limited", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_RATE_LIMITED);
	assert_true(r.retry_after > 0 && r.retry_after <= WD_AUTH_USER_WINDOW);
	assert_non_null(strstr(r.message, "rate limited. Try again in"));
	/* the window ends: released */
	test_redis_int("EXPIRE auth_user:%s 1", hex);
	sleep(2);
	assert_int_equal(login(name, "limited", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	/* a success clears the count */
	assert_int_equal(login(name, "wrong", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login(name, "limited", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	assert_int_equal(test_redis_int("EXISTS auth_user:%s", hex), 0);

	/* unknown users are counted under their unameview */
	char ghost[64];
	snprintf(ghost, sizeof(ghost), "Gh.ost%s", test_tag);
	for (int i = 0; i < WD_AUTH_USER_FAILURES; i++)
		assert_int_equal(login(ghost, "x", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login(ghost, "x", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_RATE_LIMITED);
	/* blocked attempts are not counted further (WildDuck's ttlcounter) */
	assert_int_equal(test_redis_int("GET auth_user:ghost%s", test_tag), WD_AUTH_USER_FAILURES);

	/* whitelisted IPs are never limited */
	test_redis_int("SADD rl-wl %s", ip_b);
	struct wd_auth_limit limit;
	test_redis_int("SET auth_user:%s 99", hex);
	assert_int_equal(login_as(test_auth, name, "limited", WD_AUTH_SCOPE_IMAP, ip_b, &r),
			 WD_AUTH_ACCEPTED);
	test_redis_int("SREM rl-wl %s", ip_b);

	/* per-IP limit, when configured */
	struct wd_auth *strict = test_auth_open("[auth]\nipFailures = 3\n");
	assert_non_null(strict);
	char ip_c[32];
	snprintf(ip_c, sizeof(ip_c), "10.9.%d.%d", (int)(getpid() % 250), rand() % 250);
	for (int i = 0; i < 3; i++)
		assert_int_equal(login_as(strict, name, "wrong", WD_AUTH_SCOPE_IMAP, ip_c, &r),
				 WD_AUTH_REFUSED);
	test_redis_int("DEL auth_user:%s", hex);
	assert_int_equal(login_as(strict, name, "limited", WD_AUTH_SCOPE_IMAP, ip_c, &r),
			 WD_AUTH_RATE_LIMITED);
	assert_int_equal(test_redis_int("GET auth_ip:%s", ip_c), 3);
	ttl = test_redis_int("TTL auth_ip:%s", ip_c);
	assert_true(ttl > 0 && ttl <= WD_AUTH_IP_WINDOW);
	assert_int_equal(login_as(strict, name, "limited", WD_AUTH_SCOPE_IMAP, ip_b, &r),
			 WD_AUTH_ACCEPTED);
	wd_auth_limit_ip(strict, ip_c, 0, &limit);
	assert_false(limit.allowed);
	test_redis_int("DEL auth_ip:%s", ip_c);
	assert_int_equal(login_as(strict, name, "limited", WD_AUTH_SCOPE_IMAP, ip_c, &r),
			 WD_AUTH_ACCEPTED);
	wd_auth_destroy(&strict);
}

static void set_field(const bson_oid_t *id, bson_t *update)
{
	bson_t *q = BCON_NEW("_id", BCON_OID(id));
	test_update(WD_STORE_DB_USERS, "users", q, update);
	bson_destroy(q);
	bson_destroy(update);
}

static void test_account_state(void **state)
{
	(void)state;
	const char *herr;
	char *hash = wd_auth_password_hash("statepass", 9, &herr);
	bson_oid_t id = test_user("state", hash);
	free(hash);
	char name[128], *error = NULL;
	name_of(&id, name);
	struct wd_auth_result r;
	set_field(&id, BCON_NEW("$set", "{", "disabled", BCON_BOOL(true), "}"));
	assert_int_equal(login(name, "statepass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_DISABLED);
	bson_t *doc = authlog_of(&id, "disabled", "authentication");
	assert_non_null(doc);
	bson_destroy(doc);
	set_field(&id, BCON_NEW("$set", "{", "disabled", BCON_BOOL(false), "suspended",
				BCON_BOOL(true), "}"));
	assert_int_equal(login(name, "statepass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_SUSPENDED);
	doc = authlog_of(&id, "suspended", "authentication");
	assert_non_null(doc);
	bson_destroy(doc);
	set_field(&id, BCON_NEW("$set", "{", "suspended", BCON_BOOL(false), "disabledScopes", "[",
				BCON_UTF8("pop3"), "]", "}"));
	assert_int_equal(login(name, "statepass", WD_AUTH_SCOPE_POP3, &r), WD_AUTH_SCOPE_DISABLED);
	assert_int_equal(login(name, "statepass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);

	/* a temporary password: master scope only, and it asks for a change */
	struct wd_auth_password_change change = { .password = "temporary1", .len = 10,
						   .temporary = true };
	struct wd_auth_meta meta = { .protocol = "API", .ip = ip_a };
	assert_int_equal(wd_auth_password_set(test_auth, &id, &change, &meta, &error), 0);
	assert_int_equal(login(name, "temporary1", WD_AUTH_SCOPE_MASTER, &r), WD_AUTH_ACCEPTED);
	assert_int_equal(r.source, WD_AUTH_SOURCE_TEMPORARY);
	assert_true(r.require_password_change);
	assert_int_equal(login(name, "temporary1", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_SCOPE_REFUSED);
	assert_int_equal(login(name, "statepass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	set_field(&id, BCON_NEW("$set", "{", "tempPassword.validAfter",
				BCON_DATE_TIME(test_now_ms() + 3600000), "}"));
	assert_int_equal(login(name, "temporary1", WD_AUTH_SCOPE_MASTER, &r),
			 WD_AUTH_TEMP_NOT_YET_VALID);
	/* older than 24 h: ignored */
	set_field(&id, BCON_NEW("$set", "{", "tempPassword.validAfter", BCON_DATE_TIME(0),
				"tempPassword.created", BCON_DATE_TIME(test_now_ms() - 25 * 3600000LL),
				"}"));
	assert_int_equal(login(name, "temporary1", WD_AUTH_SCOPE_MASTER, &r), WD_AUTH_REFUSED);

	/* a real change: old hash kept, authVersion bumped, temp cleared */
	change = (struct wd_auth_password_change){ .password = "newpass", .len = 7,
						   .existing = "wrong", .existing_len = 5 };
	assert_int_equal(wd_auth_password_set(test_auth, &id, &change, &meta, &error),
			 WD_AUTH_ERR_INVALID);
	free(error);
	error = NULL;
	change.existing = "statepass";
	change.existing_len = 9;
	assert_int_equal(wd_auth_password_set(test_auth, &id, &change, &meta, &error), 0);
	assert_int_equal(login(name, "statepass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_REFUSED);
	assert_int_equal(login(name, "newpass", WD_AUTH_SCOPE_IMAP, &r), WD_AUTH_ACCEPTED);
	bson_t *q = BCON_NEW("_id", BCON_OID(&id));
	doc = test_find_one(WD_STORE_DB_USERS, "users", q);
	bson_iter_t it;
	assert_true(bson_iter_init_find(&it, doc, "tempPassword") && BSON_ITER_HOLDS_BOOL(&it));
	assert_true(bson_iter_init_find(&it, doc, "passwordChange") && BSON_ITER_HOLDS_DATE_TIME(&it));
	assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "oldPasswords.0.hash", &it));
	assert_int_equal(strncmp(bson_iter_utf8(&it, NULL), "$pbkdf2-sha256$", 15), 0);
	assert_true(bson_iter_init_find(&it, doc, "authVersion"));
	assert_int_equal(bson_iter_as_int64(&it), 2);
	bson_destroy(doc);
	bson_destroy(q);
	doc = authlog_of(&id, "success", "password change");
	assert_non_null(doc);
	bson_destroy(doc);
}

/* Redis unreachable: logins still work (failure counting is off, logged),
   nothing hangs or crashes. */
static void test_redis_down(void **state)
{
	(void)state;
	static const char text[] = "[dbs]\nredis = \"redis://127.0.0.1:1/3\"\n";
	char *error = NULL;
	struct wd_config *config = wd_config_parse("down.toml", text, sizeof(text) - 1, &error);
	assert_non_null(config);
	struct wd_auth *auth = wd_auth_create(test_store, config, &error);
	wd_config_free(&config);
	assert_non_null(auth);
	const char *herr;
	char *hash = wd_auth_password_hash("noredis", 7, &herr);
	bson_oid_t id = test_user("noredis", hash);
	free(hash);
	char name[128];
	name_of(&id, name);
	struct wd_auth_result r;
	for (int i = 0; i < WD_AUTH_USER_FAILURES + 2; i++)
		assert_int_equal(login_as(auth, name, "wrong", WD_AUTH_SCOPE_IMAP, ip_a, &r),
				 WD_AUTH_REFUSED);
	assert_int_equal(login_as(auth, name, "noredis", WD_AUTH_SCOPE_IMAP, ip_a, &r),
			 WD_AUTH_ACCEPTED);
	wd_auth_destroy(&auth);
}

static void put_setting(const char *key, const char *json)
{
	bson_t *q = BCON_NEW("key", BCON_UTF8(key));
	bson_t *u = BCON_NEW("$set", "{", "value", BCON_UTF8(json), "}");
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_MAIN,
							"settings");
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	bson_error_t error;
	assert_true(mongoc_collection_update_one(coll, q, u, opts, NULL, &error));
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
	bson_destroy(u);
	bson_destroy(q);
}

/* WildDuck's settings collection: const:asp:limit caps app passwords,
   a falsy const:authlog:time turns the auth log off; an enrolment older
   than 6 h cannot be confirmed. Fresh contexts: settings are cached. */
static void test_settings_and_enrolment_age(void **state)
{
	(void)state;
	put_setting("const:asp:limit", "2");
	put_setting("const:authlog:time", "false");
	struct wd_auth *auth = test_auth_open("[totp]\nsecret = \"test totp secret\"\n");
	bson_oid_t id = test_user("settings", NULL);
	char pw[17], *error = NULL;
	struct wd_asp_create req = { .description = "one" };
	assert_int_equal(wd_auth_asp_create(auth, &id, &req, NULL, NULL, pw, &error), 0);
	assert_int_equal(wd_auth_asp_create(auth, &id, &req, NULL, NULL, pw, &error), 0);
	assert_int_equal(wd_auth_asp_create(auth, &id, &req, NULL, NULL, pw, &error),
			 WD_AUTH_ERR_LIMIT);
	assert_string_equal(pw, "");
	free(error);
	error = NULL;
	bson_t *q = BCON_NEW("user", BCON_OID(&id));
	assert_int_equal(test_count(WD_STORE_DB_USERS, "authlog", q), 0);
	bson_destroy(q);

	struct wd_auth_totp_setup setup;
	assert_int_equal(wd_auth_totp_setup(auth, &id, NULL, NULL, &setup, &error), 0);
	free(setup.url);
	q = BCON_NEW("_id", BCON_OID(&id));
	bson_t *u = BCON_NEW("$set", "{", "pendingSeedChanged",
			     BCON_DATE_TIME(test_now_ms() - 7 * 3600 * 1000LL), "}");
	test_update(WD_STORE_DB_USERS, "users", q, u);
	bson_destroy(u);
	bson_destroy(q);
	char code[7];
	const char *cerr;
	assert_int_equal(wd_auth_totp_code(setup.seed, time(NULL), code, &cerr), 0);
	bool ok;
	assert_int_equal(wd_auth_totp_enable(auth, &id, code, NULL, &ok, &error), WD_AUTH_ERR_STATE);
	free(error);
	wd_auth_destroy(&auth);
	put_setting("const:asp:limit", "50");
	put_setting("const:authlog:time", "2592000000");
}

int main(void)
{
	snprintf(ip_a, sizeof(ip_a), "192.0.2.%d", (int)(getpid() % 250));
	snprintf(ip_b, sizeof(ip_b), "198.51.100.%d", (int)(getpid() % 250));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_master_login_and_rehash),
		cmocka_unit_test(test_authlog),
		cmocka_unit_test(test_asp_scopes),
		cmocka_unit_test(test_two_factor),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_account_state),
		cmocka_unit_test(test_redis_down),
		cmocka_unit_test(test_settings_and_enrolment_age),
	};
	return test_stack_run("test-auth-login", tests, sizeof(tests) / sizeof(tests[0]),
			      "wdtest_auth", "[totp]\nsecret = \"test totp secret\"\n");
}
