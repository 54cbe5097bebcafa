/* String helpers; see wd-str.h. */
#include "wd-str.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

bool wd_str_eq_nocase(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		if (wd_ascii_lower(*a) != wd_ascii_lower(*b))
			return false;
	}
	return *a == *b;
}

bool wd_mem_eq_nocase(const void *_a, const void *_b, size_t len)
{
	const char *a = _a, *b = _b;
	for (size_t i = 0; i < len; i++) {
		if (wd_ascii_lower(a[i]) != wd_ascii_lower(b[i]))
			return false;
	}
	return true;
}

bool wd_str_has_prefix(const char *str, const char *prefix)
{
	return strncmp(str, prefix, strlen(prefix)) == 0;
}

bool wd_str_has_prefix_nocase(const char *str, const char *prefix)
{
	size_t len = strlen(prefix);
	return strnlen(str, len) == len && wd_mem_eq_nocase(str, prefix, len);
}

size_t wd_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

int wd_str_to_uint64(const char *str, size_t len, uint64_t *value_r)
{
	if (len == 0)
		return WD_ERROR;
	uint64_t value = 0;
	for (size_t i = 0; i < len; i++) {
		if (str[i] < '0' || str[i] > '9')
			return WD_ERROR;
		unsigned digit = (unsigned)(str[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return WD_ERROR;
		value = value * 10 + digit;
	}
	*value_r = value;
	return WD_OK;
}

int wd_str_to_int64(const char *str, size_t len, int64_t *value_r)
{
	bool negative = len > 0 && str[0] == '-';
	uint64_t magnitude;
	if (wd_str_to_uint64(str + negative, len - negative, &magnitude) < 0)
		return WD_ERROR;
	if (negative) {
		if (magnitude > (uint64_t)INT64_MAX + 1)
			return WD_ERROR;
		*value_r = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
	} else {
		if (magnitude > (uint64_t)INT64_MAX)
			return WD_ERROR;
		*value_r = (int64_t)magnitude;
	}
	return WD_OK;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

char *wd_str_trim(char *str)
{
	while (is_space(*str))
		str++;
	size_t len = strlen(str);
	while (len > 0 && is_space(str[len - 1]))
		str[--len] = '\0';
	return str;
}

int wd_str_replace(char **dst, const char *src)
{
	char *copy = NULL;
	if (src != NULL && (copy = strdup(src)) == NULL)
		return WD_ERROR;
	free(*dst);
	*dst = copy;
	return WD_OK;
}

size_t wd_utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}
