/* Address, domain and username normalisation (wd-store-user.h) against
 * WildDuck's lib/tools.js. The expected strings were produced by running
 * WildDuck's normalizeAddress/normalizeDomain/uview logic under Node 20 on
 * the same inputs (JavaScript NFC, toLowerCase, trim, punycode.toUnicode),
 * so they pin the exact addrview/unameview both implementations must agree
 * on. No database. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vector {
	const char *input;
	const char *plain;    /* normalizeAddress(input) */
	const char *resolved; /* normalizeAddress(input, {removeLabel, removeDots}) */
	const char *addrview; /* uview(normalizeAddress(input)) */
};

static const struct vector vectors[] = {
	{ "John.Doe@Example.COM", "john.doe@example.com", "johndoe@example.com",
	  "johndoe@example.com" },
	{ "  Andris@Kreata.EE ", "andris@kreata.ee", "andris@kreata.ee", "andris@kreata.ee" },
	{ "j.o.h.n+Tag.x@EXAMPLE.com", "j.o.h.n+tag.x@example.com", "john@example.com",
	  "john+tagx@example.com" },
	/* "ÕIE@Pöhi.EE" */
	{ "\xc3\x95IE@P\xc3\xb6hi.EE", "\xc3\xb5ie@p\xc3\xb6hi.ee", "\xc3\xb5ie@p\xc3\xb6hi.ee",
	  "\xc3\xb5ie@p\xc3\xb6hi.ee" },
	/* punycode domains become Unicode */
	{ "user@xn--mnchen-3ya.de", "user@m\xc3\xbcnchen.de", "user@m\xc3\xbcnchen.de",
	  "user@m\xc3\xbcnchen.de" },
	{ "user@XN--MNCHEN-3YA.DE", "user@m\xc3\xbcnchen.de", "user@m\xc3\xbcnchen.de",
	  "user@m\xc3\xbcnchen.de" },
	/* only a leading xn-- triggers the conversion, as in WildDuck */
	{ "user@mail.xn--mnchen-3ya.de", "user@mail.xn--mnchen-3ya.de",
	  "user@mail.xn--mnchen-3ya.de", "user@mail.xn--mnchen-3ya.de" },
	/* both labels of a leading-xn-- domain are decoded */
	{ "info@xn--bcher-kva.xn--tckwe", "info@b\u00fccher.\xe3\x82\xb3\xe3\x83\xa0",
	  "info@b\u00fccher.\xe3\x82\xb3\xe3\x83\xa0",
	  "info@b\u00fccher.\xe3\x82\xb3\xe3\x83\xa0" },
	/* invalid punycode: kept as it was */
	{ "user@xn--zz", "user@xn--zz", "user@xn--zz", "user@xn--zz" },
	/* NFC: o + COMBINING DIAERESIS becomes ö */
	{ "o\xcc\x88u@example.com", "\xc3\xb6u@example.com", "\xc3\xb6u@example.com",
	  "\xc3\xb6u@example.com" },
	/* full Unicode lower case, with final sigma: "ΣΑΣ" -> "σας" */
	{ "\xce\xa3\xce\x91\xce\xa3@example.gr", "\xcf\x83\xce\xb1\xcf\x82@example.gr",
	  "\xcf\x83\xce\xb1\xcf\x82@example.gr", "\xcf\x83\xce\xb1\xcf\x82@example.gr" },
	/* "İstanbul" -> "i̇stanbul" (i + COMBINING DOT ABOVE) */
	{ "\xc4\xb0stanbul@example.com", "i\xcc\x87stanbul@example.com",
	  "i\xcc\x87stanbul@example.com", "i\xcc\x87stanbul@example.com" },
	/* the first '+' starts the label */
	{ "a+b+c@x.org", "a+b+c@x.org", "a@x.org", "a+b+c@x.org" },
	/* JavaScript trim(): NBSP, ideographic space, BOM */
	{ "\xc2\xa0nbsp\xe3\x80\x80@example.com\xef\xbb\xbf", "nbsp@example.com",
	  "nbsp@example.com", "nbsp@example.com" },
	/* toLowerCase keeps ß */
	{ "Stra\u00dfe@Example.com", "stra\u00dfe@example.com",
	  "stra\u00dfe@example.com", "stra\u00dfe@example.com" },
	/* the last '@' splits */
	{ "x@y.z", "x@y.z", "x@y.z", "x@y.z" },
};

static void test_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];
		const char *error = NULL;
		char *plain, *resolved, *addrview;
		if (wd_address_normalize(v->input, 0, &plain, &error) != 0)
			fail_msg("normalize(%s): %s", v->input, error);
		assert_string_equal(plain, v->plain);
		assert_int_equal(wd_address_normalize(v->input,
						      WD_ADDRESS_REMOVE_LABEL |
							      WD_ADDRESS_REMOVE_DOTS,
						      &resolved, &error),
				 0);
		assert_string_equal(resolved, v->resolved);
		assert_int_equal(wd_address_addrview(v->input, &addrview, &error), 0);
		assert_string_equal(addrview, v->addrview);
		/* normalising is idempotent */
		char *again;
		assert_int_equal(wd_address_normalize(plain, 0, &again, &error), 0);
		assert_string_equal(again, plain);
		free(again);
		free(plain);
		free(resolved);
		free(addrview);
	}
}

static void test_flags_separately(void **state)
{
	(void)state;
	const char *error;
	char *out;
	assert_int_equal(wd_address_normalize("J.Doe+News@X.org", WD_ADDRESS_REMOVE_LABEL, &out,
					      &error),
			 0);
	assert_string_equal(out, "j.doe@x.org");
	free(out);
	assert_int_equal(wd_address_normalize("J.Doe+News.Letter@X.org", WD_ADDRESS_REMOVE_DOTS,
					      &out, &error),
			 0);
	assert_string_equal(out, "jdoe+newsletter@x.org");
	free(out);
	/* dots in the domain always stay */
	assert_int_equal(wd_address_normalize("a.b@c.d.e", WD_ADDRESS_REMOVE_DOTS, &out, &error),
			 0);
	assert_string_equal(out, "ab@c.d.e");
	free(out);
	/* wildcards pass through untouched */
	assert_int_equal(wd_address_normalize("*@Example.com", 0, &out, &error), 0);
	assert_string_equal(out, "*@example.com");
	free(out);
	assert_int_equal(wd_address_normalize("Postmaster@*", 0, &out, &error), 0);
	assert_string_equal(out, "postmaster@*");
	free(out);
}

static void test_uview(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "John.Doe", "johndoe" },
		{ "Some.User@Example.com", "someuser@example.com" },
		{ "a.b.c@d.e.f", "abc@d.e.f" },
		/* only before the first '@' */
		{ "a.b@c.d@e.f", "ab@c.d@e.f" },
		{ "", "" },
		{ "...", "" },
		{ "\xc3\x95.\xc3\x95", "\xc3\xb5\xc3\xb5" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *view = wd_uview(cases[i][0]);
		assert_non_null(view);
		assert_string_equal(view, cases[i][1]);
		free(view);
	}
	assert_null(wd_uview("bad\xff"));
}

static void test_domain(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "Example.COM", "example.com" },
		{ "  Example.com\t", "example.com" },
		{ "xn--mnchen-3ya.de", "m\xc3\xbcnchen.de" },
		{ "XN--80AK6AA92E.COM", "\xd0\xb0\xd1\x80\xd1\x80\xd3\x8f\xd0\xb5.com" },
		{ "xn--ls8h", "\xf0\x9f\x92\xa9" },
		{ "xn--zz", "xn--zz" },
		{ "sub.xn--mnchen-3ya.de", "sub.xn--mnchen-3ya.de" },
		{ "M\xc3\x9cNCHEN.de", "m\xc3\xbcnchen.de" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *d = wd_domain_normalize(cases[i][0]);
		assert_non_null(d);
		if (strcmp(d, cases[i][1]) != 0)
			fail_msg("domain(%s) = %s, want %s", cases[i][0], d, cases[i][1]);
		free(d);
	}
	assert_null(wd_domain_normalize("\xc3("));
}

static void test_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"no-at-sign",
		"@example.com",
		"user@",
		"user@   ",
		"   @example.com",
		"a b@example.com",
		"ab@exa mple.com",
		"a\tb@example.com",
		"a\x01@example.com",
		"a\x7f@example.com",
		"a@b@example.com",
		"\xff\xfe@example.com",
		"user@exa\xc3(mple.com",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error = NULL;
		char *out = (char *)"unchanged";
		if (wd_address_normalize(bad[i], 0, &out, &error) != WD_STORE_ERR_INVALID)
			fail_msg("accepted invalid address \"%s\"", bad[i]);
		assert_null(out);
		assert_non_null(error);
		char *view;
		assert_int_equal(wd_address_addrview(bad[i], &view, &error), WD_STORE_ERR_INVALID);
		assert_null(view);
	}
	/* a local part that is only a label or dots becomes empty */
	const char *error;
	char *out;
	assert_int_equal(wd_address_normalize("+tag@example.com", WD_ADDRESS_REMOVE_LABEL, &out,
					      &error),
			 WD_STORE_ERR_INVALID);
	assert_int_equal(wd_address_normalize("...@example.com", WD_ADDRESS_REMOVE_DOTS, &out,
					      &error),
			 WD_STORE_ERR_INVALID);
	/* but without the flags they are kept */
	assert_int_equal(wd_address_normalize("+tag@example.com", 0, &out, &error), 0);
	assert_string_equal(out, "+tag@example.com");
	free(out);
	/* length limit */
	char longer[600];
	memset(longer, 'a', sizeof(longer));
	memcpy(longer + 500, "@example.com", 13);
	assert_int_equal(wd_address_normalize(longer, 0, &out, &error), 0);
	free(out);
	memset(longer, 'a', sizeof(longer));
	memcpy(longer + 520, "@example.com", 13);
	assert_int_equal(wd_address_normalize(longer, 0, &out, &error), WD_STORE_ERR_INVALID);
}

static void test_username(void **state)
{
	(void)state;
	static const char *const good[] = {
		"john", "john.doe", "a-b_c=d:e", "user@example.com", "User", "0", "a.b@c_d",
		"--", "x@y=z:w",
	};
	static const char *const bad[] = {
		"", ".john", "john.", "a..b", "a@b@c", "a b", "a@", "@b", "\xc3\xbcser",
		"a+b", "a/b", "a._b",
	};
	const char *error;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (wd_username_validate(good[i], &error) != 0)
			fail_msg("refused username \"%s\": %s", good[i], error);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (wd_username_validate(bad[i], &error) != WD_STORE_ERR_INVALID)
			fail_msg("accepted username \"%s\"", bad[i]);
	}
	char name[200];
	memset(name, 'a', sizeof(name));
	name[128] = '\0';
	assert_int_equal(wd_username_validate(name, &error), 0);
	name[128] = 'a';
	name[129] = '\0';
	assert_int_equal(wd_username_validate(name, &error), WD_STORE_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_flags_separately),
		cmocka_unit_test(test_uview),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_username),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
