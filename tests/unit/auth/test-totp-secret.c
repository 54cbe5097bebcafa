/* TOTP codes and secrets at rest (wd-auth-totp.h, wd-auth-secret.h), pure.
 * TOTP vectors: RFC 6238 appendix B (SHA-1) and codes printed by oathtool
 * (`oathtool --totp -b SEED -N @TIME`). Secret vectors: $wd01$ values made
 * with Node 20's crypto (scrypt + AES-256-GCM, the §4.21 recipe) and legacy
 * values from Node's createCipher and `openssl enc -nosalt -md md5`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-auth-secret.h"
#include "wd-auth-totp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *seed;
	time_t when;
	const char *code;
} totp_vectors[] = {
	/* RFC 6238: secret "12345678901234567890", last 6 of the 8 digits */
	{ "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59, "287082" },
	{ "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1111111109, "081804" },
	{ "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1111111111, "050471" },
	{ "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1234567890, "005924" },
	{ "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 2000000000, "279037" },
	{ "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 20000000000, "353130" },
	/* oathtool */
	{ "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 1000000000, "832818" },
	{ "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 1700000000, "406058" },
	{ "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 1893456000, "233128" },
	{ "KRUGS4ZANFZSAYJAONSWG4TFOQQQ6UQA", 1000000000, "376549" },
	{ "KRUGS4ZANFZSAYJAONSWG4TFOQQQ6UQA", 1700000000, "117032" },
	{ "KRUGS4ZANFZSAYJAONSWG4TFOQQQ6UQA", 1893456000, "360360" },
	{ "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U", 1000000000, "546978" },
	{ "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U", 1700000000, "526458" },
	{ "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U", 1893456000, "762579" },
};

static void test_totp_codes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(totp_vectors) / sizeof(totp_vectors[0]); i++) {
		char code[7];
		const char *error;
		assert_int_equal(wd_auth_totp_code(totp_vectors[i].seed, totp_vectors[i].when, code,
						   &error), 0);
		assert_string_equal(code, totp_vectors[i].code);
		bool valid = false;
		assert_int_equal(wd_auth_totp_verify(totp_vectors[i].seed, totp_vectors[i].code,
						     totp_vectors[i].when, 0, &valid, &error), 0);
		assert_true(valid);
	}
}

static void test_totp_window(void **state)
{
	(void)state;
	const char *seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", *error;
	time_t now = 1700000000;
	char code[7];
	bool valid;
	/* WildDuck's window: six 30 s steps either side, not seven */
	for (int step = -8; step <= 8; step++) {
		assert_int_equal(wd_auth_totp_code(seed, now + step * 30, code, &error), 0);
		assert_int_equal(wd_auth_totp_verify(seed, code, now, WD_AUTH_TOTP_WINDOW_SIZE, &valid,
						     &error), 0);
		assert_int_equal(valid, step >= -6 && step <= 6);
	}
	/* spaces and lower-case seeds are tolerated; junk codes are just wrong */
	assert_int_equal(wd_auth_totp_code(seed, now, code, &error), 0);
	char spaced[9] = { code[0], code[1], code[2], ' ', code[3], code[4], code[5], 0 };
	assert_int_equal(wd_auth_totp_verify("jbswy3dpehpk3pxp jbswy3dpehpk3pxp", spaced, now, 0,
					     &valid, &error), 0);
	assert_true(valid);
	static const char *const junk[] = { "", "12345", "1234567", "12a456", "-12345",
					    "123456\n", "\xff\xfe" };
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		assert_int_equal(wd_auth_totp_verify(seed, junk[i], now, 6, &valid, &error), 0);
		assert_false(valid);
	}
	/* an unusable seed is an error */
	assert_int_equal(wd_auth_totp_verify("!!!", "123456", now, 6, &valid, &error), -1);
	assert_int_equal(wd_auth_totp_verify("", "123456", now, 6, &valid, &error), -1);
}

static void test_totp_seed_and_url(void **state)
{
	(void)state;
	char a[WD_AUTH_TOTP_SEED_LEN + 1], b[WD_AUTH_TOTP_SEED_LEN + 1];
	const char *error;
	assert_int_equal(wd_auth_totp_seed_new(a, &error), 0);
	assert_int_equal(wd_auth_totp_seed_new(b, &error), 0);
	assert_int_equal(strlen(a), 32);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < 32; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", a[i]));
	char code[7];
	assert_int_equal(wd_auth_totp_code(a, 1700000000, code, &error), 0);
	char *url = wd_auth_totp_url("JBSWY3DPEHPK3PXP", "john@example.com", NULL);
	assert_string_equal(url,
			    "otpauth://totp/john%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=WildDuck");
	free(url);
	url = wd_auth_totp_url("JBSWY3DPEHPK3PXP", "a b&c", "My Org");
	assert_string_equal(url, "otpauth://totp/a%20b%26c?secret=JBSWY3DPEHPK3PXP&issuer=My%20Org");
	free(url);
}

static void test_enabled_2fa(void **state)
{
	(void)state;
	char buf[64];
	bson_t *doc = BCON_NEW("enabled2fa", "[", BCON_UTF8("totp"), BCON_UTF8("u2f"),
			       BCON_UTF8("webauthn"), "]");
	assert_int_equal(wd_auth_enabled_2fa(doc, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "totp,webauthn");
	bson_destroy(doc);
	doc = BCON_NEW("enabled2fa", BCON_BOOL(true)); /* legacy */
	assert_int_equal(wd_auth_enabled_2fa(doc, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "totp");
	bson_destroy(doc);
	doc = BCON_NEW("enabled2fa", BCON_BOOL(false));
	assert_int_equal(wd_auth_enabled_2fa(doc, buf, sizeof(buf)), 0);
	bson_destroy(doc);
	doc = BCON_NEW("x", BCON_INT32(1));
	assert_int_equal(wd_auth_enabled_2fa(doc, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	bson_destroy(doc);
}

static void test_secret_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *value, *secret, *cipher, *plain;
	} vectors[] = {
		/* Node 20: scrypt(secret, salt, 32) + aes-256-gcm */
		{ "$wd01$aes-256-gcm$938f83a517a54d3a14cef4a2283d34c5$94b674305e071c95ff697b36$"
		  "179041d65a56718b2e4757334964934e$"
		  "81f3ce0906c966037bb5a6cabf08633a1f12bed5c9e7ca920ac5534672a715f7",
		  "a secret cat", NULL, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" },
		{ "$wd01$aes-256-gcm$0935e6a4c4e77a80d3c997f954346371$2edd6c55740b5fb82f1c3153$"
		  "0aef7b8f4363d5c21aec04954777d085$"
		  "4204ecbe6170d17feb32a88edc76b399ed289ff6c0da507ffa1f4e87f3d305bd",
		  "p\xc3\xa4ssw\xc3\xb6rd", NULL, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" },
		/* Node 20: crypto.createCipher('aes192', secret) */
		{ "$11110480784afbf8ab8eac4e4d85bf2ba5634edfc24a522a80c9aa5d492c8a33b95ec5dfc5d8c057"
		  "d4950faa60ddaf9b",
		  "legacy secret", NULL, "KRUGS4ZANFZSAYJAONSWG4TFOQ======" },
		/* openssl enc -aes-192-cbc -nosalt -md md5 -pass pass:'other secret' */
		{ "$aa093f7bc0b46438d9d8bd52f779ac97a0bd5a077bd1e26123a5a5131ed38639",
		  "other secret", "aes-192-cbc", "MFRGGZDFMZTWQ2LK" },
		/* cleartext passes through, with or without a secret */
		{ "JBSWY3DPEHPK3PXP", "x", NULL, "JBSWY3DPEHPK3PXP" },
		{ "JBSWY3DPEHPK3PXP", NULL, NULL, "JBSWY3DPEHPK3PXP" },
	};
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char *plain = NULL;
		const char *error = NULL;
		int ret = wd_auth_secret_decrypt(vectors[i].value, vectors[i].secret,
						 vectors[i].cipher, &plain, &error);
		if (ret < 0)
			fail_msg("vector %zu: %s", i, error);
		assert_string_equal(plain, vectors[i].plain);
		free(plain);
	}
	/* wrong secret, no secret, tampering, malformed: errors, never garbage */
	const struct {
		const char *value, *secret;
	} bad[] = {
		{ vectors[0].value, "a secret dog" },
		{ vectors[0].value, NULL },
		{ vectors[0].value, "" },
		{ "$wd01$aes-256-gcm$938f83a517a54d3a14cef4a2283d34c5$94b674305e071c95ff697b36$"
		  "179041d65a56718b2e4757334964934e$"
		  "81f3ce0906c966037bb5a6cabf08633a1f12bed5c9e7ca920ac5534672a715f8",
		  "a secret cat" },
		{ "$wd01$aes-256-gcm$938f$94b6$1790$81f3", "a secret cat" },
		{ "$wd01$aes-256-gcm$zz$94b674305e071c95ff697b36$179041d65a56718b2e4757334964934e$81",
		  "x" },
		{ "$wd02$aes-256-gcm$a$b$c$d", "x" },
		{ "$wd01$aes-128-cbc$a$b$c$d", "x" },
		{ "$wd01$aes-256-gcm$a$b$c$d$e", "x" },
		{ "$wd01$", "x" },
		{ "$", "x" },
		{ "$abc", "x" },
		{ "$11110480784afbf8", "legacy secret" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *plain = NULL;
		const char *error = NULL;
		if (wd_auth_secret_decrypt(bad[i].value, bad[i].secret, NULL, &plain, &error) == 0)
			fail_msg("bad %zu decrypted to \"%s\"", i, plain);
		assert_non_null(error);
		assert_null(plain);
	}
}

static void test_secret_round_trip(void **state)
{
	(void)state;
	char *enc = NULL, *dec = NULL;
	const char *error;
	assert_int_equal(wd_auth_secret_encrypt("JBSWY3DPEHPK3PXP", "s3cret", &enc, &error), 0);
	assert_int_equal(strncmp(enc, "$wd01$aes-256-gcm$", 18), 0);
	/* tag 32 + iv 24 + salt 32 hex chars, then 2 per plaintext byte */
	assert_int_equal(strlen(enc), 18 + 32 + 1 + 24 + 1 + 32 + 1 + 32);
	assert_int_equal(wd_auth_secret_decrypt(enc, "s3cret", NULL, &dec, &error), 0);
	assert_string_equal(dec, "JBSWY3DPEHPK3PXP");
	free(dec);
	char *again = NULL;
	assert_int_equal(wd_auth_secret_encrypt("JBSWY3DPEHPK3PXP", "s3cret", &again, &error), 0);
	assert_string_not_equal(enc, again);
	free(again);
	free(enc);
	/* without a secret the value stays clear, as WildDuck stores it */
	assert_int_equal(wd_auth_secret_encrypt("JBSWY3DPEHPK3PXP", NULL, &enc, &error), 0);
	assert_string_equal(enc, "JBSWY3DPEHPK3PXP");
	free(enc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_totp_codes),
		cmocka_unit_test(test_totp_window),
		cmocka_unit_test(test_totp_seed_and_url),
		cmocka_unit_test(test_enabled_2fa),
		cmocka_unit_test(test_secret_vectors),
		cmocka_unit_test(test_secret_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
