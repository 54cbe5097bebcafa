#ifndef WD_IMAP_CTE_H
#define WD_IMAP_CTE_H

/* Content-Transfer-Encoding decoding for FETCH BINARY (RFC 3516), streamed:
 * the part's bytes arrive a storage chunk at a time and the decoder keeps
 * its state between chunks, so the output does not depend on where the
 * chunks were cut.
 *
 * Base64: characters outside the alphabet (line breaks, garbage) are
 * skipped; "=" ends a quad, so concatenated padded blocks decode as each
 * would alone. Quoted-printable (RFC 2045 §6.7): "=XX" is a byte, "="
 * before a line break or the end of the data (after optional blanks) is a
 * soft break, blanks at the end of a line are dropped, hard line breaks are
 * kept as they are, malformed "=" sequences are kept literally (with the
 * blanks after them). Identity copies. */

#include <stddef.h>
#include <stdint.h>

struct wd_buffer;

enum wd_imap_cte {
	WD_IMAP_CTE_IDENTITY,
	WD_IMAP_CTE_BASE64,
	WD_IMAP_CTE_QP,
};

/* Zero-initialise with the encoding set: { .cte = cte }. */
struct wd_imap_cte_decoder {
	enum wd_imap_cte cte;
	uint32_t quad;    /* base64: bits of the pending characters */
	unsigned quad_n;  /* base64: characters pending (0..3) */
	unsigned qp;      /* QP state: 0 text, 1 "=", 2 "=H", 3 "=CR", 4 "= " */
	uint8_t qp_c1;    /* the H of "=H" */
	uint8_t ws[64];   /* QP: whitespace held until we know it is not trailing */
	size_t ws_len;
};

/* The encoding a Content-Transfer-Encoding value names (NULL: none, which
   is identity); WD_ERROR for one we cannot decode (NO [UNKNOWN-CTE]). */
int wd_imap_cte_from_name(const char *name, enum wd_imap_cte *cte_r);
/* Append what in[0..len) decodes to; WD_ERROR only when `out` cannot grow. */
int wd_imap_cte_decoder_feed(struct wd_imap_cte_decoder *d, const uint8_t *in, size_t len,
			     struct wd_buffer *out);
/* The input has ended: append what is still held (a partial quad, a
   dangling "=" sequence). The decoder may then be reused from the start. */
int wd_imap_cte_decoder_finish(struct wd_imap_cte_decoder *d, struct wd_buffer *out);

#endif
