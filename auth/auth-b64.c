/* Base64 without padding (over common's base64) and hex, the two text forms
 * of binary data inside PHC hash strings and $wd01$ secrets. */
#include "auth-b64.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

void wd__auth_b64_encode(const uint8_t *data, size_t len, char *out)
{
	struct wd_buffer buf = WD_BUFFER_INIT;
	size_t n = 0;
	if (wd_base64_encode(data, len, 0, &buf) == WD_OK) {
		const uint8_t *text = wd_buffer_bytes(&buf);
		n = buf.len;
		while (n > 0 && text[n - 1] == '=')
			n--;
		memcpy(out, text, n);
	}
	out[n] = '\0';
	wd_buffer_release(&buf);
}

int wd__auth_b64_decode(const char *text, size_t len, uint8_t *out, size_t out_size)
{
	/* common's decoder wants the padding PHC leaves out */
	while (len > 0 && text[len - 1] == '=')
		len--;
	if (len % 4 == 1 || len > 4096 || memchr(text, '\n', len) != NULL ||
	    memchr(text, '\r', len) != NULL)
		return -1;
	char padded[4100];
	memcpy(padded, text, len);
	while (len % 4 != 0)
		padded[len++] = '=';
	struct wd_buffer buf = WD_BUFFER_INIT;
	int ret = -1;
	if (wd_base64_decode((const uint8_t *)padded, len, &buf) == WD_OK && buf.len <= out_size) {
		memcpy(out, wd_buffer_bytes(&buf), buf.len);
		ret = (int)buf.len;
	}
	wd_buffer_release(&buf);
	return ret;
}

void wd__auth_hex_encode(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int wd__auth_hex_decode(const char *text, size_t len, uint8_t *out, size_t out_size)
{
	if (len % 2 != 0 || len / 2 > out_size)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(len / 2);
}
