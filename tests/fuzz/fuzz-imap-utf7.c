/* Fuzz target for modified UTF-7 (server/imap/imap-utf7.h).
 *
 * Checks both round trips on every input: if the bytes decode as mUTF-7,
 * encoding the result gives the same bytes back (only canonical forms are
 * accepted); if they are UTF-8 that the encoder takes, decoding gives them
 * back. The validity checks must agree with the converters, and mailbox
 * names decoded with or without UTF8=ACCEPT encode back to the input. */
#include "imap-utf7.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "fuzz-check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wd_buffer a = WD_BUFFER_INIT, b = WD_BUFFER_INIT;
	const char *s = (const char *)data, *error;

	/* mUTF-7 → UTF-8 → mUTF-7 */
	int ret = wd_imap_utf7_to_utf8(s, size, &a, &error);
	CHECK((ret == WD_OK) == wd_imap_utf7_is_valid(s, size));
	if (ret == WD_OK) {
		CHECK(wd_imap_utf8_is_valid(wd_buffer_bytes(&a), a.len));
		CHECK(wd_imap_utf8_to_utf7((const char *)wd_buffer_bytes(&a), a.len, &b, &error) ==
		      WD_OK);
		CHECK(b.len == size && memcmp(wd_buffer_bytes(&b), data, size) == 0);
		CHECK(wd_imap_utf7_is_plain(s, size) == (a.len == size &&
			memcmp(wd_buffer_bytes(&a), data, size) == 0 && memchr(data, '&', size) == NULL));
	} else {
		CHECK(a.len == 0);
	}
	wd_buffer_clear(&a);
	wd_buffer_clear(&b);

	/* UTF-8 → mUTF-7 → UTF-8 */
	ret = wd_imap_utf8_to_utf7(s, size, &a, &error);
	CHECK((ret == WD_OK) == (wd_imap_utf8_is_valid(data, size) && memchr(data, 0, size) == NULL));
	if (ret == WD_OK) {
		CHECK(wd_imap_utf7_is_valid((const char *)wd_buffer_bytes(&a), a.len));
		CHECK(wd_imap_utf7_to_utf8((const char *)wd_buffer_bytes(&a), a.len, &b, &error) ==
		      WD_OK);
		CHECK(b.len == size && memcmp(wd_buffer_bytes(&b), data, size) == 0);
	}
	wd_buffer_release(&a);
	wd_buffer_release(&b);

	/* mailbox names: decode then encode gives the input back, in both modes */
	struct wd_arena *arena = wd_arena_create(0);
	for (int utf8 = 0; utf8 < 2; utf8++) {
		const char *name, *wire;
		if (wd_imap_mailbox_name_decode(arena, s, size, utf8, &name, &error) < 0)
			continue;
		CHECK(wd_imap_mailbox_name_encode(arena, name, strlen(name), utf8, &wire,
						  &error) == WD_OK);
		CHECK(strlen(wire) == size && memcmp(wire, data, size) == 0);
	}
	wd_arena_destroy(&arena);
	return 0;
}
