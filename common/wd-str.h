#ifndef WD_STR_H
#define WD_STR_H

/* Small string helpers shared by every part of wildduck-c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ASCII-only case folding: protocol keywords are ASCII, and locale-dependent
   tolower() must not decide what a command is. */
static inline char wd_ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

bool wd_str_eq_nocase(const char *a, const char *b);
bool wd_mem_eq_nocase(const void *a, const void *b, size_t len);
bool wd_str_has_prefix(const char *str, const char *prefix);
bool wd_str_has_prefix_nocase(const char *str, const char *prefix);

/* Copy with truncation; always NUL-terminates when size > 0. Returns strlen(src). */
size_t wd_strlcpy(char *dst, const char *src, size_t size);

/* Strict decimal parses: the whole of [str, str+len) must be digits (an optional
   leading '-' for signed), no overflow. Return WD_OK or WD_ERROR. */
int wd_str_to_uint64(const char *str, size_t len, uint64_t *value_r);
int wd_str_to_int64(const char *str, size_t len, int64_t *value_r);

/* Trim ASCII whitespace in place (returns the start inside str). */
char *wd_str_trim(char *str);

/* Write code point cp (≤ 0x10FFFF) as UTF-8 into out (4 bytes of room);
   returns the bytes written. */
size_t wd_utf8_encode(uint32_t cp, char *out);

/* Replace the contents of *dst with a strdup of src (NULL allowed); frees the old. */
int wd_str_replace(char **dst, const char *src);

#endif
