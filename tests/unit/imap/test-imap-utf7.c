/* Unit tests: modified UTF-7 ⇄ UTF-8 (server/imap/imap-utf7.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-utf7.h"
#include "wd-result.h"

#include <stdio.h>
#include <string.h>

struct pair {
	const char *utf7, *utf8;
};

static const struct pair pairs[] = {
	{ "", "" },
	{ "INBOX", "INBOX" },
	/* RFC 3501 §5.1.3 example */
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "Entw&APw-rfe", "Entw\xc3\xbc" "rfe" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },              /* surrogate pair */
	{ "a&-b", "a&b" },
	{ "&-&-", "&&" },
	{ "&AMk-g &AOkA6Q-x", "\xc3\x89g \xc3\xa9\xc3\xa9x" }, /* two chars in one shift */
	{ "&AAE-", "\x01" },                             /* control characters are encoded */
};

static const char *const bad_utf7[] = {
	"&Jjo!-",                    /* not base64 */
	"&U,BTFw-&ZeVnLIqe-",        /* null shift: must be one shift */
	"&AGE-",                     /* encodes ASCII 'a' */
	"&ACA-",                     /* encodes a space */
	"&2D0-",                     /* unpaired high surrogate */
	"&3gA-",                     /* lone low surrogate */
	"&2D3YPQ-",                  /* high surrogate followed by high surrogate */
	"&AOQ",                      /* unterminated */
	"&AOR-",                     /* non-zero leftover bits */
	"&AOQA-",                    /* a whole extra base64 character */
	"&AAA-",                     /* U+0000 */
	"\xc3\xa4",                  /* raw 8-bit */
	"a\tb",                      /* control character */
	"&",
};

static const char *const bad_utf8[] = {
	"\xc0\xaf",         /* overlong */
	"\xe0\x80\xaf",     /* overlong */
	"\xed\xa0\x80",     /* surrogate */
	"\xf4\x90\x80\x80", /* above U+10FFFF */
	"\xe6\x97",         /* truncated */
	"\x80",             /* stray continuation */
	"\xff",
	"a\0b",             /* NUL (length 3 below) */
};

static void test_pairs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct wd_buffer out = WD_BUFFER_INIT;
		const char *error = NULL;
		const struct pair *p = &pairs[i];

		assert_int_equal(wd_imap_utf8_to_utf7(p->utf8, strlen(p->utf8), &out, &error), WD_OK);
		assert_int_equal(out.len, strlen(p->utf7));
		assert_memory_equal(wd_buffer_bytes(&out), p->utf7, out.len);
		wd_buffer_clear(&out);
		assert_int_equal(wd_imap_utf7_to_utf8(p->utf7, strlen(p->utf7), &out, &error), WD_OK);
		assert_int_equal(out.len, strlen(p->utf8));
		assert_memory_equal(wd_buffer_bytes(&out), p->utf8, out.len);
		assert_true(wd_imap_utf7_is_valid(p->utf7, strlen(p->utf7)));
		wd_buffer_release(&out);
	}
}

static void test_bad_utf7(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_utf7) / sizeof(bad_utf7[0]); i++) {
		struct wd_buffer out = WD_BUFFER_INIT;
		const char *error = NULL;

		wd_buffer_append_str(&out, "keep");
		if (wd_imap_utf7_to_utf8(bad_utf7[i], strlen(bad_utf7[i]), &out, &error) != WD_ERROR) {
			fprintf(stderr, "accepted %s\n", bad_utf7[i]);
			fail();
		}
		assert_non_null(error);
		assert_int_equal(out.len, 4); /* untouched on error */
		assert_false(wd_imap_utf7_is_valid(bad_utf7[i], strlen(bad_utf7[i])));
		wd_buffer_release(&out);
	}
}

static void test_bad_utf8(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		struct wd_buffer out = WD_BUFFER_INIT;
		const char *error = NULL;
		size_t len = i == sizeof(bad_utf8) / sizeof(bad_utf8[0]) - 1 ? 3 : strlen(bad_utf8[i]);

		assert_int_equal(wd_imap_utf8_to_utf7(bad_utf8[i], len, &out, &error), WD_ERROR);
		assert_int_equal(out.len, 0);
		if (len != 3)
			assert_false(wd_imap_utf8_is_valid((const uint8_t *)bad_utf8[i], len));
		wd_buffer_release(&out);
	}
}

static void test_utf8_decode_incomplete(void **state)
{
	(void)state;
	uint32_t cp;
	/* truncated but still possibly valid → 0; impossible prefix → -1 */
	assert_int_equal(wd_imap_utf8_decode((const uint8_t *)"\xf0\x9f", 2, &cp), 0);
	assert_int_equal(wd_imap_utf8_decode((const uint8_t *)"\xe6", 1, &cp), 0);
	assert_int_equal(wd_imap_utf8_decode((const uint8_t *)"\xed\xa0", 2, &cp), -1);
	assert_int_equal(wd_imap_utf8_decode((const uint8_t *)"\xf4\x90", 2, &cp), -1);
	assert_int_equal(wd_imap_utf8_decode((const uint8_t *)"\xe0\x9f", 2, &cp), -1);
	assert_int_equal(wd_imap_utf8_decode((const uint8_t *)"\xf0\x9f\x98\x80", 4, &cp), 4);
	assert_int_equal(cp, 0x1f600);
	assert_true(wd_imap_utf7_is_plain("INBOX/Sent", 10));
	assert_false(wd_imap_utf7_is_plain("a&b", 3));
}

/* Every BMP code point and a sample of astral ones round-trip. */
static void test_round_trip_all(void **state)
{
	(void)state;
	struct wd_buffer u7 = WD_BUFFER_INIT, u8 = WD_BUFFER_INIT;
	const char *error;

	for (uint32_t cp = 1; cp < 0x110000; cp += (cp < 0x10000 ? 1 : 97)) {
		char s[8];
		size_t n;
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		if (cp < 0x80) {
			s[0] = (char)cp; n = 1;
		} else if (cp < 0x800) {
			s[0] = (char)(0xc0 | (cp >> 6)); s[1] = (char)(0x80 | (cp & 0x3f)); n = 2;
		} else if (cp < 0x10000) {
			s[0] = (char)(0xe0 | (cp >> 12)); s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			s[2] = (char)(0x80 | (cp & 0x3f)); n = 3;
		} else {
			s[0] = (char)(0xf0 | (cp >> 18)); s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			s[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); s[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		s[n] = 'x'; /* a trailing ASCII character closes the shift */
		wd_buffer_clear(&u7);
		wd_buffer_clear(&u8);
		assert_int_equal(wd_imap_utf8_to_utf7(s, n + 1, &u7, &error), WD_OK);
		assert_int_equal(wd_imap_utf7_to_utf8((const char *)wd_buffer_bytes(&u7), u7.len, &u8,
						      &error), WD_OK);
		assert_int_equal(u8.len, n + 1);
		assert_memory_equal(wd_buffer_bytes(&u8), s, n + 1);
	}
	wd_buffer_release(&u7);
	wd_buffer_release(&u8);
}

static void test_mailbox_names(void **state)
{
	(void)state;
	struct wd_arena *arena = wd_arena_create(0);
	const char *name, *error;

	assert_int_equal(wd_imap_mailbox_name_decode(arena, "Entw&APw-rfe", 12, false, &name,
						     &error), WD_OK);
	assert_string_equal(name, "Entw\xc3\xbcrfe");
	assert_int_equal(wd_imap_mailbox_name_encode(arena, name, strlen(name), false, &name,
						     &error), WD_OK);
	assert_string_equal(name, "Entw&APw-rfe");
	/* UTF8=ACCEPT: taken as sent, "&" has no special meaning */
	assert_int_equal(wd_imap_mailbox_name_decode(arena, "Entw&APw-rfe", 12, true, &name,
						     &error), WD_OK);
	assert_string_equal(name, "Entw&APw-rfe");
	assert_int_equal(wd_imap_mailbox_name_encode(arena, "Entw\xc3\xbcrfe", 9, true, &name,
						     &error), WD_OK);
	assert_string_equal(name, "Entw\xc3\xbcrfe");
	assert_int_equal(wd_imap_mailbox_name_decode(arena, "\xc3\xbc", 2, false, &name, &error),
			 WD_ERROR);
	assert_int_equal(wd_imap_mailbox_name_decode(arena, "\xc3", 1, true, &name, &error),
			 WD_ERROR);
	assert_int_equal(wd_imap_mailbox_name_decode(arena, "a\0b", 3, true, &name, &error),
			 WD_ERROR);
	assert_int_equal(wd_imap_mailbox_name_encode(arena, "\xed\xa0\x80", 3, false, &name,
						     &error), WD_ERROR);
	wd_arena_destroy(&arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_bad_utf7),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_utf8_decode_incomplete),
		cmocka_unit_test(test_round_trip_all),
		cmocka_unit_test(test_mailbox_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
