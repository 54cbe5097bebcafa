#ifndef AUTH_B64_H
#define AUTH_B64_H

/* Unpadded standard base64 (RFC 4648 §4 alphabet) as PHC strings write it,
 * and lower-case hex as WildDuck's secrets do. Private to libwdauth. */

#include <stddef.h>
#include <stdint.h>

/* Writes the encoding plus a NUL into out (room for 4*ceil(len/3)+1). */
void wd__auth_b64_encode(const uint8_t *data, size_t len, char *out);
/* Decodes text (trailing '=' tolerated) into out (room for len*3/4+3); -1 on
   a bad character or length, else the number of bytes. */
int wd__auth_b64_decode(const char *text, size_t len, uint8_t *out, size_t out_size);
/* Lower-case hex plus a NUL into out (room for 2*len+1). */
void wd__auth_hex_encode(const uint8_t *data, size_t len, char *out);
/* Even-length hex (either case); -1 on bad input or too little room. */
int wd__auth_hex_decode(const char *text, size_t len, uint8_t *out, size_t out_size);

#endif
