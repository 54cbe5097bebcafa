/* The attachment download decoder (attachment-decode.h). */
#include "attachment-decode.h"

#include "wd-base64.h"

#include <ctype.h>
#include <strings.h>

/* Lenient base64: characters outside the alphabet are skipped (line
   breaks, padding, stray white space), as libbase64's decoder does. */
static void decode_base64(struct api_decoder *d, bool eof, struct wd_buffer *out)
{
	const uint8_t *p = wd_buffer_bytes(&d->raw);
	for (size_t i = 0; i < d->raw.len; i++) {
		int v = wd_base64_value(p[i]);
		if (v < 0)
			continue;
		d->quad = (d->quad << 6) | (uint32_t)v;
		if (++d->quad_n == 4) {
			uint8_t b[3] = { (uint8_t)(d->quad >> 16), (uint8_t)(d->quad >> 8),
					 (uint8_t)d->quad };
			wd_buffer_append(out, b, 3);
			d->quad = 0;
			d->quad_n = 0;
		}
	}
	wd_buffer_clear(&d->raw);
	if (eof && d->quad_n >= 2) {
		uint8_t b[2];
		if (d->quad_n == 2) {
			b[0] = (uint8_t)(d->quad >> 4);
			wd_buffer_append(out, b, 1);
		} else {
			b[0] = (uint8_t)(d->quad >> 10);
			b[1] = (uint8_t)(d->quad >> 2);
			wd_buffer_append(out, b, 2);
		}
		d->quad_n = 0;
	}
}

static int hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (uint8_t)tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Quoted-printable; an '=' sequence cut by a chunk boundary waits in raw. */
static void decode_qp(struct api_decoder *d, bool eof, struct wd_buffer *out)
{
	const uint8_t *p = wd_buffer_bytes(&d->raw);
	size_t len = d->raw.len, i = 0;
	while (i < len) {
		uint8_t c = p[i];
		if (c != '=') {
			wd_buffer_append(out, &c, 1);
			i++;
			continue;
		}
		size_t left = len - i;
		if (left >= 3 && hex_digit(p[i + 1]) >= 0 && hex_digit(p[i + 2]) >= 0) {
			uint8_t b = (uint8_t)(hex_digit(p[i + 1]) * 16 + hex_digit(p[i + 2]));
			wd_buffer_append(out, &b, 1);
			i += 3;
		} else if (left >= 2 && p[i + 1] == '\n') {
			i += 2;
		} else if (left >= 3 && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 3;
		} else if (!eof && left < 3) {
			break; /* wait for the rest */
		} else {
			wd_buffer_append(out, &c, 1);
			i++;
		}
	}
	wd_buffer_consume(&d->raw, i);
}

enum api_decode_kind api_decode_kind_of(const char *encoding)
{
	if (strcasecmp(encoding, "base64") == 0)
		return API_DECODE_BASE64;
	if (strcasecmp(encoding, "quoted-printable") == 0)
		return API_DECODE_QP;
	return API_DECODE_NONE;
}

void api_decoder_run(struct api_decoder *d, bool eof, struct wd_buffer *out)
{
	switch (d->kind) {
	case API_DECODE_BASE64:
		decode_base64(d, eof, out);
		break;
	case API_DECODE_QP:
		decode_qp(d, eof, out);
		break;
	case API_DECODE_NONE:
		if (out->len == 0) { /* hand the bytes over without a copy */
			struct wd_buffer swap = *out;
			*out = d->raw;
			d->raw = swap;
		} else {
			wd_buffer_append(out, wd_buffer_bytes(&d->raw), d->raw.len);
			wd_buffer_clear(&d->raw);
		}
		break;
	}
}

void api_decoder_release(struct api_decoder *d)
{
	wd_buffer_release(&d->raw);
}
