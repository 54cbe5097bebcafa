/* Streamed Content-Transfer-Encoding decoders for FETCH BINARY (see
 * imap-cte.h). Each keeps its state in the decoder, so the caller may cut
 * the input anywhere; fuzz-imap-cte checks that the cuts do not matter. */
#include "imap-cte.h"

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "wd-str.h"

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Emit what a partial base64 quad holds ("QQ=" → 1 byte, "QUI=" → 2). */
static int b64_flush(struct wd_imap_cte_decoder *d, struct wd_buffer *out)
{
	uint8_t bytes[2];
	size_t n = 0;
	if (d->quad_n == 2) {
		bytes[n++] = (uint8_t)(d->quad >> 4);
	} else if (d->quad_n == 3) {
		bytes[n++] = (uint8_t)(d->quad >> 10);
		bytes[n++] = (uint8_t)(d->quad >> 2);
	}
	d->quad = 0;
	d->quad_n = 0;
	return n > 0 ? wd_buffer_append(out, bytes, n) : WD_OK;
}

static int b64_decode(struct wd_imap_cte_decoder *d, const uint8_t *in, size_t len,
		      struct wd_buffer *out)
{
	uint8_t *p = wd_buffer_reserve(out, len / 4 * 3 + 3);
	if (p == NULL)
		return WD_ERROR;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '=') {
			/* padding ends a quad; a concatenated block may follow */
			wd_buffer_commit(out, n);
			n = 0;
			if (b64_flush(d, out) < 0 || (p = wd_buffer_reserve(out, len / 4 * 3 + 3)) == NULL)
				return WD_ERROR;
			continue;
		}
		int v = wd_base64_value(in[i]);
		if (v < 0)
			continue; /* line breaks and garbage are skipped */
		d->quad = d->quad << 6 | (uint32_t)v;
		if (++d->quad_n == 4) {
			p[n++] = (uint8_t)(d->quad >> 16);
			p[n++] = (uint8_t)(d->quad >> 8);
			p[n++] = (uint8_t)d->quad;
			d->quad = 0;
			d->quad_n = 0;
		}
	}
	wd_buffer_commit(out, n);
	return WD_OK;
}

static int qp_flush_ws(struct wd_imap_cte_decoder *d, struct wd_buffer *out)
{
	int ret = d->ws_len > 0 ? wd_buffer_append(out, d->ws, d->ws_len) : WD_OK;
	d->ws_len = 0;
	return ret;
}

/* Quoted-printable (RFC 2045 §6.7): "=XX" is a byte, "=" at the end of a
   line (after optional whitespace) is a soft break, whitespace at the end
   of a line is dropped, hard line breaks are kept as they are. Malformed
   "=" sequences are kept literally, as most decoders do. */
static int qp_decode(struct wd_imap_cte_decoder *d, const uint8_t *in, size_t len,
		     struct wd_buffer *out)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		int ret = WD_OK;
		switch (d->qp) {
		case 0:
			if (c == ' ' || c == '\t') {
				if (d->ws_len == sizeof(d->ws))
					ret = qp_flush_ws(d, out);
				d->ws[d->ws_len++] = c;
			} else if (c == '\r' || c == '\n') {
				d->ws_len = 0; /* trailing whitespace */
				ret = wd_buffer_append(out, &c, 1);
			} else if (c == '=') {
				ret = qp_flush_ws(d, out);
				d->qp = 1;
			} else {
				ret = qp_flush_ws(d, out);
				if (ret == WD_OK)
					ret = wd_buffer_append(out, &c, 1);
			}
			break;
		case 1:
			if (hex_value(c) >= 0) {
				d->qp_c1 = c;
				d->qp = 2;
			} else if (c == '\r') {
				d->qp = 3;
			} else if (c == '\n') {
				d->qp = 0;
			} else if (c == ' ' || c == '\t') {
				d->qp = 4; /* ws is empty: flushed at the "=" */
				d->ws[d->ws_len++] = c;
			} else {
				d->qp = 0;
				ret = wd_buffer_append(out, "=", 1);
				i--; /* the character is text */
			}
			break;
		case 2:
			d->qp = 0;
			if (hex_value(c) >= 0) {
				uint8_t byte = (uint8_t)(hex_value(d->qp_c1) << 4 | hex_value(c));
				ret = wd_buffer_append(out, &byte, 1);
			} else {
				uint8_t two[2] = { '=', d->qp_c1 };
				ret = wd_buffer_append(out, two, 2);
				i--;
			}
			break;
		case 3:
			d->qp = 0;
			if (c != '\n')
				i--; /* "=" CR alone: a soft break all the same */
			break;
		case 4:
			/* "=" and blanks: a soft break when a line break follows;
			   else (or when more blanks come than ws holds) the "=" and
			   the blanks are text */
			if (c == '\r' || c == '\n') {
				d->ws_len = 0;
				d->qp = c == '\r' ? 3 : 0;
			} else if ((c == ' ' || c == '\t') && d->ws_len < sizeof(d->ws)) {
				d->ws[d->ws_len++] = c;
			} else {
				d->qp = 0;
				ret = wd_buffer_append(out, "=", 1);
				if (ret == WD_OK)
					ret = qp_flush_ws(d, out);
				i--;
			}
			break;
		}
		if (ret < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

int wd_imap_cte_decoder_feed(struct wd_imap_cte_decoder *d, const uint8_t *in, size_t len,
			     struct wd_buffer *out)
{
	switch (d->cte) {
	case WD_IMAP_CTE_BASE64:
		return b64_decode(d, in, len, out);
	case WD_IMAP_CTE_QP:
		return qp_decode(d, in, len, out);
	case WD_IMAP_CTE_IDENTITY:
		break;
	}
	return wd_buffer_append(out, in, len);
}

int wd_imap_cte_decoder_finish(struct wd_imap_cte_decoder *d, struct wd_buffer *out)
{
	if (d->cte == WD_IMAP_CTE_BASE64)
		return b64_flush(d, out);
	if (d->cte == WD_IMAP_CTE_QP) {
		/* "=" (and blanks) at the very end is a soft break: a body whose
		   last line ends in one stops there, the line break before the
		   next boundary belonging to the boundary */
		uint8_t two[2] = { '=', d->qp_c1 };
		int ret = d->qp == 2 ? wd_buffer_append(out, two, 2) : WD_OK;
		d->qp = 0;
		d->ws_len = 0; /* whitespace at the very end is trailing too */
		return ret;
	}
	return WD_OK;
}

int wd_imap_cte_from_name(const char *name, enum wd_imap_cte *cte_r)
{
	if (name == NULL || wd_str_eq_nocase(name, "7bit") || wd_str_eq_nocase(name, "8bit") ||
	    wd_str_eq_nocase(name, "binary"))
		*cte_r = WD_IMAP_CTE_IDENTITY;
	else if (wd_str_eq_nocase(name, "base64"))
		*cte_r = WD_IMAP_CTE_BASE64;
	else if (wd_str_eq_nocase(name, "quoted-printable"))
		*cte_r = WD_IMAP_CTE_QP;
	else
		return WD_ERROR;
	return WD_OK;
}

