/* Pure tests (suite imap, no stack needed): the streaming transfer decoders
 * of BINARY (server/imap/imap-cte.h). Chunks arrive as
 * storage cuts them, anywhere inside "=C3" or a base64 quad, so every
 * vector is decoded whole, one byte at a time, and split at every offset,
 * and all must give the same bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-cte.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "wd-str.h"

#include <string.h>

struct vector {
	enum wd_imap_cte cte;
	const char *in;
	const char *out;
	size_t out_len;
};

#define V(cte, in, out) { cte, in, out, sizeof(out) - 1 }

static const struct vector vectors[] = {
	V(WD_IMAP_CTE_QP, "Caf=C3=A9 soft=\r\nbreak  \r\nend=3D", "Caf\xc3\xa9 softbreak\r\nend="),
	V(WD_IMAP_CTE_QP, "a=\nb", "ab"),
	V(WD_IMAP_CTE_QP, "a= \t\r\nb", "ab"),           /* padding after a soft break */
	V(WD_IMAP_CTE_QP, "a=\rb", "ab"),
	V(WD_IMAP_CTE_QP, "x \t\r\ny \n", "x\r\ny\n"),   /* trailing whitespace dropped */
	V(WD_IMAP_CTE_QP, "abc  ", "abc"),                /* also at the very end */
	V(WD_IMAP_CTE_QP, "in  between", "in  between"),
	V(WD_IMAP_CTE_QP, "=3d=3D=4", "==" "=4"),         /* lower-case hex; a cut escape */
	V(WD_IMAP_CTE_QP, "=ZZ=", "=ZZ"),                 /* malformed: kept; "=" at the end: soft break */
	V(WD_IMAP_CTE_QP, "= x", "= x"),                  /* malformed "= ": kept with its blank */
	V(WD_IMAP_CTE_QP, "=00", "\0"),
	V(WD_IMAP_CTE_BASE64, "AAECAwRoZWxsbw==", "\0\1\2\3\4hello"),
	V(WD_IMAP_CTE_BASE64, "QQ==QQ==", "AA"),          /* concatenated blocks */
	V(WD_IMAP_CTE_BASE64, "aGVs\r\nbG8g\r\nd29y\r\nbGQ=\r\n", "hello world"),
	V(WD_IMAP_CTE_BASE64, "aGV s!bG8", "hello"),       /* garbage skipped */
	V(WD_IMAP_CTE_BASE64, "QUI", "AB"),                /* unpadded end */
	V(WD_IMAP_CTE_BASE64, "", ""),
	V(WD_IMAP_CTE_IDENTITY, "as\r\nis=3D", "as\r\nis=3D"),
};

/* Decode in[0..len) cut at the given offsets (ascending, then len). */
static void decode_cuts(enum wd_imap_cte cte, const char *in, size_t len, const size_t *cuts,
			size_t cut_count, struct wd_buffer *out)
{
	struct wd_imap_cte_decoder d = { .cte = cte };
	size_t pos = 0;
	for (size_t i = 0; i <= cut_count; i++) {
		size_t end = i < cut_count ? cuts[i] : len;
		assert_int_equal(wd_imap_cte_decoder_feed(&d, (const uint8_t *)in + pos, end - pos, out), WD_OK);
		pos = end;
	}
	assert_int_equal(wd_imap_cte_decoder_finish(&d, out), WD_OK);
}

static void check(const struct vector *v, const struct wd_buffer *out, const char *how)
{
	if (out->len != v->out_len || memcmp(wd_buffer_bytes(out), v->out, v->out_len) != 0)
		fail_msg("%s of [%s]: %zu bytes [%.*s]", how, v->in, out->len, (int)out->len,
			 (const char *)wd_buffer_bytes(out));
}

static void test_vectors(void **state)
{
	(void)state;
	struct wd_buffer out = WD_BUFFER_INIT;
	size_t cuts[256];
	for (size_t i = 0; i < WD_N_ELEMENTS(vectors); i++) {
		const struct vector *v = &vectors[i];
		size_t len = strlen(v->in);
		assert_true(len < 256);
		wd_buffer_clear(&out);
		decode_cuts(v->cte, v->in, len, NULL, 0, &out);
		check(v, &out, "whole");
		for (size_t k = 0; k + 1 < len; k++)
			cuts[k] = k + 1;
		wd_buffer_clear(&out);
		decode_cuts(v->cte, v->in, len, cuts, len > 0 ? len - 1 : 0, &out);
		check(v, &out, "byte by byte");
		for (size_t at = 0; at <= len; at++) {
			wd_buffer_clear(&out);
			decode_cuts(v->cte, v->in, len, &at, 1, &out);
			check(v, &out, "split");
		}
	}
	wd_buffer_release(&out);
}

static void test_cte_names(void **state)
{
	(void)state;
	enum wd_imap_cte cte;
	assert_int_equal(wd_imap_cte_from_name(NULL, &cte), WD_OK);
	assert_int_equal(cte, WD_IMAP_CTE_IDENTITY);
	assert_int_equal(wd_imap_cte_from_name("8BIT", &cte), WD_OK);
	assert_int_equal(cte, WD_IMAP_CTE_IDENTITY);
	assert_int_equal(wd_imap_cte_from_name("Base64", &cte), WD_OK);
	assert_int_equal(cte, WD_IMAP_CTE_BASE64);
	assert_int_equal(wd_imap_cte_from_name("quoted-printable", &cte), WD_OK);
	assert_int_equal(cte, WD_IMAP_CTE_QP);
	assert_int_equal(wd_imap_cte_from_name("x-uuencode", &cte), WD_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_cte_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
