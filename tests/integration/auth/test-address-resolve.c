/* Integration test (suite auth): address resolution for delivery and login
 * (wd-auth-address.h) against a table of 50+ inputs — case, dots, labels,
 * domain aliases, wildcards and their precedence, user@*, forwarded
 * addresses, Unicode (NFC/NFD, IDN domains in Unicode and punycode,
 * internationalised local parts) and invalid input. Needs WD_MONGO_URL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth-test-stack.h"
#include "wd-auth-address.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W WD_RESOLVE_WILDCARD

static const struct {
	const char *input;
	unsigned flags;
	const char *expected; /* address found, NULL: none */
	const char *label;    /* NULL: no label */
} table[] = {
	/* exact, case, dots, white space */
	{ "alice@example.com", 0, "alice@example.com", NULL },
	{ "ALICE@EXAMPLE.COM", 0, "alice@example.com", NULL },
	{ "Alice@Example.Com", 0, "alice@example.com", NULL },
	{ "a.l.i.c.e@example.com", 0, "alice@example.com", NULL },
	{ "  alice@example.com  ", 0, "alice@example.com", NULL },
	{ "john.doe@example.com", 0, "john.doe@example.com", NULL },
	{ "johndoe@example.com", 0, "john.doe@example.com", NULL },
	{ "J.O.H.N.D.O.E@EXAMPLE.COM", 0, "john.doe@example.com", NULL },
	{ "jo.hn.do.e@example.com", W, "john.doe@example.com", NULL },
	/* labels are ignored for the match and handed back */
	{ "alice+news@example.com", 0, "alice@example.com", "news" },
	{ "Alice+News.Letter@example.com", 0, "alice@example.com", "News.Letter" },
	{ "alice+@example.com", 0, "alice@example.com", "" },
	{ "alice+a+b@example.com", 0, "alice@example.com", "a+b" },
	{ "john.doe+x@example.com", 0, "john.doe@example.com", "x" },
	{ "J.Doe.John+y@example.com", 0, NULL, NULL },
	/* Unicode local parts and IDN domains */
	{ "\xc3\xb5ie@p\xc3\xb6hi.ee", 0, "\xc3\xb5ie@p\xc3\xb6hi.ee", NULL },
	{ "\xc3\x95IE@P\xc3\x96HI.EE", 0, "\xc3\xb5ie@p\xc3\xb6hi.ee", NULL },
	/* an NFD local part is composed; the domain is kept as written unless
	   punycode, as WildDuck's normalizeDomain keeps it */
	{ "o\xcc\x83ie@p\xc3\xb6hi.ee", 0, "\xc3\xb5ie@p\xc3\xb6hi.ee", NULL },
	{ "\xc3\xb5ie@xn--phi-sna.ee", 0, "\xc3\xb5ie@p\xc3\xb6hi.ee", NULL },
	{ "\xc3\xb5.ie+t@XN--PHI-SNA.EE", 0, "\xc3\xb5ie@p\xc3\xb6hi.ee", "t" },
	{ "user@xn--mnchen-3ya.de", 0, "user@m\xc3\xbcnchen.de", NULL },
	{ "USER@XN--MNCHEN-3YA.DE", 0, "user@m\xc3\xbcnchen.de", NULL },
	{ "user@M\xc3\x9cNCHEN.DE", 0, "user@m\xc3\xbcnchen.de", NULL },
	{ "u.s.e.r@m\xc3\xbcnchen.de", 0, "user@m\xc3\xbcnchen.de", NULL },
	{ "user@xn--jgeva-dua.xn--ndaa", 0, "user@j\xc3\xb5geva.\xc3\xb6\xc3\xb6", NULL },
	{ "\xc3\xbcn\xc3\xaf""code@example.com", 0, "\xc3\xbcn\xc3\xaf""code@example.com", NULL },
	{ "\xc3\x9cN\xc3\x8f""CODE@example.com", 0, "\xc3\xbcn\xc3\xaf""code@example.com", NULL },
	{ "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80@example.com", 0,
	  "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80@example.com", NULL },
	{ "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x9c\xd0\x95\xd0\xa0+x@EXAMPLE.com", 0,
	  "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80@example.com", "x" },
	/* domain aliases */
	{ "alice@alias.example", 0, "alice@example.com", NULL },
	{ "John.Doe+tag@ALIAS.example", 0, "john.doe@example.com", "tag" },
	{ "nobody@alias.example", 0, NULL, NULL },
	/* wildcards: only when asked for, longest literal part first */
	{ "anything@wild.example", W, "*@wild.example", NULL },
	{ "anything@wild.example", 0, NULL, NULL },
	{ "any.thing+l@WILD.example", W, "*@wild.example", "l" },
	{ "x@aliaswild.example", W, "*@wild.example", NULL },
	{ "sales@example.org", W, "sales*@example.org", NULL },
	{ "sales-eu@example.org", W, "sales*@example.org", NULL },
	{ "team-support@example.org", W, "*-support@example.org", NULL },
	{ "sales-support@example.org", W, "*-support@example.org", NULL },
	{ "other@example.org", W, NULL, NULL },
	{ "carol@example.org", W, "carol@example.org", NULL },
	{ "info@example.net", W, "info@example.net", NULL },
	{ "random@example.net", W, "*@example.net", NULL },
	{ "random@example.net", 0, NULL, NULL },
	{ "postmaster@nowhere.test", W, "postmaster@*", NULL },
	{ "Post.Master+z@nowhere.test", W, "postmaster@*", "z" },
	{ "postmaster@nowhere.test", 0, NULL, NULL },
	/* forwarded address (no owner) and unknown ones */
	{ "fwd@example.com", 0, "fwd@example.com", NULL },
	{ "nobody@example.com", 0, NULL, NULL },
	{ "nobody@example.com", W, NULL, NULL },
	/* invalid input */
	{ "", 0, NULL, NULL },
	{ "@", 0, NULL, NULL },
	{ "no-at-sign", 0, NULL, NULL },
	{ "alice@", 0, NULL, NULL },
	{ "@example.com", 0, NULL, NULL },
	{ "al ice@example.com", 0, NULL, NULL },
	{ "\xff\xfe@example.com", 0, NULL, NULL },
	{ "alice@example.com\r\nRCPT TO:<x@y>", 0, NULL, NULL },
	{ "alice\x01@example.com", W, NULL, NULL },
};

static bson_oid_t alice, bob, carol;

static void add(const bson_oid_t *user, const char *address, bool wildcard)
{
	struct wd_address_add opts = { .allow_wildcard = wildcard };
	char *error = NULL;
	if (wd_store_address_add(test_store, user, address, &opts, NULL, &error) < 0)
		fail_msg("add %s: %s", address, error);
}

static bson_oid_t user_with(const char *name, const char *address)
{
	struct wd_user_create req = { .username = name, .address = address,
				      .spam_level = WD_DEFAULT_SPAM_LEVEL };
	bson_oid_t id;
	char *error = NULL;
	if (wd_store_user_create(test_store, &req, &id, &error) < 0)
		fail_msg("user %s: %s", name, error);
	return id;
}

static void populate(void)
{
	alice = user_with("alice", "alice@example.com");
	bob = user_with("bob", "bob@example.com");
	carol = user_with("carol", "carol@example.org");
	add(&alice, "john.doe@example.com", false);
	add(&alice, "\xc3\xb5ie@p\xc3\xb6hi.ee", false);
	add(&alice, "user@m\xc3\xbcnchen.de", false);
	add(&alice, "user@j\xc3\xb5geva.\xc3\xb6\xc3\xb6", false);
	add(&alice, "\xc3\xbcn\xc3\xaf""code@example.com", false);
	add(&alice, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80@example.com", false);
	add(&alice, "info@example.net", false);
	add(&bob, "*@wild.example", true);
	add(&bob, "sales*@example.org", true);
	add(&bob, "*-support@example.org", true);
	add(&bob, "postmaster@*", true);
	add(&carol, "*@example.net", true);
	char *error = NULL;
	assert_int_equal(wd_store_domainalias_add(test_store, "alias.example", "example.com", NULL,
						  &error), 0);
	assert_int_equal(wd_store_domainalias_add(test_store, "aliaswild.example", "wild.example",
						  NULL, &error), 0);
	/* a forwarded address, written as WildDuck writes one (no `user`) */
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_USERS);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_USERS,
							"addresses");
	bson_t *doc = BCON_NEW("address", BCON_UTF8("fwd@example.com"), "addrview",
			       BCON_UTF8("fwd@example.com"), "targets", "[", "{", "type",
			       BCON_UTF8("mail"), "value", BCON_UTF8("elsewhere@example.net"), "}",
			       "]", "forwards", BCON_INT32(0), "created", BCON_DATE_TIME(0));
	bson_error_t berror;
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &berror));
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_USERS, client);
}

static void test_resolution_table(void **state)
{
	(void)state;
	populate();
	size_t n = sizeof(table) / sizeof(table[0]);
	assert_true(n >= 40);
	unsigned failures = 0;
	for (size_t i = 0; i < n; i++) {
		struct wd_auth_resolved r;
		char *error = NULL;
		int ret = wd_auth_address_resolve(test_store, table[i].input, table[i].flags, &r,
						  &error);
		const char *got = ret == 0 ? r.address->address : NULL;
		bool ok = (got == NULL) == (table[i].expected == NULL) &&
			  (got == NULL || strcmp(got, table[i].expected) == 0);
		if (ok && got != NULL)
			ok = (r.label == NULL) == (table[i].label == NULL) &&
			     (r.label == NULL || strcmp(r.label, table[i].label) == 0);
		if (ok && got == NULL)
			ok = ret == WD_AUTH_ERR_NOT_FOUND || ret == WD_AUTH_ERR_INVALID;
		if (!ok) {
			fprintf(stderr, "row %zu \"%s\": got %s (label %s, ret %d), want %s (label %s)\n",
				i, table[i].input, got != NULL ? got : "nothing",
				ret == 0 && r.label != NULL ? r.label : "-", ret,
				table[i].expected != NULL ? table[i].expected : "nothing",
				table[i].label != NULL ? table[i].label : "-");
			failures++;
		}
		if (ret == 0)
			wd_auth_resolved_free(&r);
		free(error);
	}
	/* the owners behind the matches */
	struct wd_auth_resolved r;
	char *error = NULL;
	assert_int_equal(wd_auth_address_resolve(test_store, "x@wild.example", W, &r, &error), 0);
	assert_true(r.address->has_user && bson_oid_equal(&r.address->user, &bob));
	wd_auth_resolved_free(&r);
	assert_int_equal(wd_auth_address_resolve(test_store, "fwd@example.com", 0, &r, &error), 0);
	assert_false(r.address->has_user);
	wd_auth_resolved_free(&r);
	/* hostile length */
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[500] = '@';
	assert_int_equal(wd_auth_address_resolve(test_store, big, W, &r, &error), WD_AUTH_ERR_INVALID);
	free(error);
	assert_int_equal(failures, 0);
}

static void test_login_lookup(void **state)
{
	(void)state;
	static const struct {
		const char *login;
		const bson_oid_t *user;  /* NULL: none */
		const char *counter;     /* unameview counted when unknown */
	} rows[] = {
		{ "alice", &alice, NULL },
		{ "ALICE", &alice, NULL },
		{ "a.lice", &alice, NULL },
		{ "alice@example.com", &alice, NULL },
		{ "A.Lice+imap@Example.COM", &alice, NULL },
		{ "john.doe@alias.example", &alice, NULL },
		{ "\xc3\x95IE@xn--phi-sna.ee", &alice, NULL },
		{ "bob", &bob, NULL },
		/* login never uses wildcards */
		{ "x@wild.example", NULL, "x@wild.example" },
		{ "postmaster@nowhere.test", NULL, "postmaster@nowhere.test" },
		/* a forwarded address cannot log in, and is not counted */
		{ "fwd@example.com", NULL, NULL },
		{ "Nobody.Here+x@Example.com", NULL, "nobodyhere@example.com" },
		{ "No.Body", NULL, "nobody" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct wd_user *user = NULL;
		char *counter = NULL, *error = NULL;
		int ret = wd_auth_login_lookup(test_store, rows[i].login, &user, &counter, &error);
		if (rows[i].user != NULL) {
			if (ret != 0)
				fail_msg("%s: %s", rows[i].login, error);
			assert_true(bson_oid_equal(&user->id, rows[i].user));
		} else {
			assert_int_equal(ret, WD_AUTH_ERR_NOT_FOUND);
			if (rows[i].counter == NULL)
				assert_null(counter);
			else
				assert_string_equal(counter, rows[i].counter);
		}
		wd_user_free(&user);
		free(counter);
		free(error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolution_table),
		cmocka_unit_test(test_login_lookup),
	};
	return test_stack_run("test-address-resolve", tests, sizeof(tests) / sizeof(tests[0]),
			      "wdtest_resolve", NULL);
}
