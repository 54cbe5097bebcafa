#ifndef API_ATTACHMENT_DECODE_H
#define API_ATTACHMENT_DECODE_H

/* The decoder behind "Download Attachment (decoded)" (routes-messages.c):
 * an attachment's stored body streams through it a GridFS chunk at a time.
 *
 * Base64 is lenient the way libbase64's decoder is (WildDuck's): characters
 * outside the alphabet are skipped, line breaks, padding and stray blanks
 * alike. Quoted-printable: "=XX" is a byte, "=" before CRLF or LF a soft
 * break, anything else is kept; an "=" sequence cut by the end of a chunk
 * waits for the next one. Other encodings pass through. */

#include "wd-buffer.h"

#include <stdbool.h>
#include <stdint.h>

enum api_decode_kind {
	API_DECODE_NONE,
	API_DECODE_BASE64,
	API_DECODE_QP,
};

struct api_decoder {
	enum api_decode_kind kind;
	struct wd_buffer raw; /* encoded bytes not decoded yet: append to it */
	uint32_t quad;        /* base64: bits collected */
	unsigned quad_n;
};

/* The kind for a Content-Transfer-Encoding value (any case). */
enum api_decode_kind api_decode_kind_of(const char *encoding);
/* Decode what `raw` holds into `out`; `eof`: no more input will come, so
   nothing is kept back. */
void api_decoder_run(struct api_decoder *d, bool eof, struct wd_buffer *out);
void api_decoder_release(struct api_decoder *d);

#endif
