#ifndef WD_BASE64_H
#define WD_BASE64_H

/* Base64 (RFC 4648 alphabet, '=' padding) for MIME bodies, SASL and storage.
 *
 * Encoding can fold the output into lines of `line_len` characters joined by
 * CRLF, as MIME bodies are (no line break after the last line). Decoding is
 * strict: only alphabet characters, padding at the end, and CRLF (or LF) line
 * breaks are accepted; anything else fails, so a caller can tell a clean
 * base64 body from one it must keep as it is. */

#include <stddef.h>
#include <stdint.h>

struct wd_buffer;

/* Encoded length for `len` bytes folded at `line_len` (0 = one line). */
size_t wd_base64_encoded_size(size_t len, size_t line_len);
int wd_base64_encode(const uint8_t *data, size_t len, size_t line_len, struct wd_buffer *out);
/* Appends the decoded bytes; WD_ERROR (and out unchanged) on anything but
   clean base64 with optional CRLF/LF line breaks. */
int wd_base64_decode(const uint8_t *data, size_t len, struct wd_buffer *out);
/* The 6-bit value of an alphabet character, -1 for any other byte (for
   decoders with their own rules: streamed, lenient). */
int wd_base64_value(uint8_t c);

#endif
