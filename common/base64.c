/* Base64 codec; see wd-base64.h. */
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t wd_base64_encoded_size(size_t len, size_t line_len)
{
	size_t chars = (len + 2) / 3 * 4;
	if (line_len == 0 || chars == 0)
		return chars;
	return chars + 2 * ((chars - 1) / line_len);
}

int wd_base64_encode(const uint8_t *data, size_t len, size_t line_len, struct wd_buffer *out)
{
	size_t total = wd_base64_encoded_size(len, line_len);
	uint8_t *dst = wd_buffer_reserve(out, total);
	if (dst == NULL)
		return WD_ERROR;
	size_t column = 0, n = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		char quad[4] = {
			alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63],
			i + 1 < len ? alphabet[(v >> 6) & 63] : '=',
			i + 2 < len ? alphabet[v & 63] : '=',
		};
		for (int k = 0; k < 4; k++) {
			if (line_len != 0 && column == line_len) {
				dst[n++] = '\r';
				dst[n++] = '\n';
				column = 0;
			}
			dst[n++] = (uint8_t)quad[k];
			column++;
		}
	}
	wd_buffer_commit(out, n);
	return WD_OK;
}

int wd_base64_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int wd_base64_decode(const uint8_t *data, size_t len, struct wd_buffer *out)
{
	uint8_t *dst = wd_buffer_reserve(out, len / 4 * 3 + 3);
	if (dst == NULL)
		return WD_ERROR;
	size_t n = 0;
	uint32_t acc = 0;
	int count = 0, padding = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];
		if (c == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;
		if (c == '\n')
			continue;
		if (c == '=') {
			padding++;
			if (padding > 2 || count < 2)
				return WD_ERROR;
			continue;
		}
		int v = wd_base64_value(c);
		if (v < 0 || padding > 0)
			return WD_ERROR;
		acc = acc << 6 | (uint32_t)v;
		if (++count == 4) {
			dst[n++] = (uint8_t)(acc >> 16);
			dst[n++] = (uint8_t)(acc >> 8);
			dst[n++] = (uint8_t)acc;
			acc = 0;
			count = 0;
		}
	}
	/* quads must be complete: padded, as MIME and SASL require */
	if (count != 0 && count + padding != 4)
		return WD_ERROR;
	if (count == 2) {
		dst[n++] = (uint8_t)(acc >> 4);
	} else if (count == 3) {
		dst[n++] = (uint8_t)(acc >> 10);
		dst[n++] = (uint8_t)(acc >> 2);
	}
	wd_buffer_commit(out, n);
	return WD_OK;
}
