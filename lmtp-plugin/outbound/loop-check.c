/* Loop protection for forwards, as WildDuck's maildropper checkLoop():
 *
 *   - 30 or more Received: headers: a loop;
 *   - with sender.loopSecret, each of the first 100 X-WildDuck-Seen values
 *     is "<12 hex salt><hex HMAC-SHA256(secret, salt + deliveries)>", where
 *     deliveries is JSON.stringify() of the list of {to, forwardedFor}:
 *     a value that matches means this very forward passed here before;
 *   - otherwise a new value with a fresh salt is added at the top.
 * The header is shared with haraka-plugin-wildduck and WildDuck itself, so
 * the secret and the JSON text must be the same byte for byte. */
#include "outbound-private.h"
#include "wd-result.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECEIVED 30
#define MAX_SEEN_CHECKED 100
#define SALT_HEX 12

static int seen_hash(const char *secret, const char *salt, const char *json, char hex[65])
{
	size_t salt_len = strlen(salt), json_len = strlen(json);
	unsigned char *data = malloc(salt_len + json_len);
	if (data == NULL)
		return WD_ERROR;
	memcpy(data, salt, salt_len);
	memcpy(data + salt_len, json, json_len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	unsigned char *ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), data,
				 salt_len + json_len, md, &md_len);
	free(data);
	if (ok == NULL || md_len != 32)
		return WD_ERROR;
	for (unsigned i = 0; i < md_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return WD_OK;
}

int wd__loop_check(const char *secret, struct wd_headers *headers, const char *deliveries_json,
		   bool *looped_r)
{
	*looped_r = false;
	if (wd__headers_count(headers, "received") >= MAX_RECEIVED) {
		*looped_r = true;
		return WD_OK;
	}
	if (secret == NULL || secret[0] == '\0')
		return WD_OK;
	const struct wd_header_line *hl;
	for (size_t i = 0; i < MAX_SEEN_CHECKED &&
			   (hl = wd__headers_find(headers, "x-wildduck-seen", i)) != NULL; i++) {
		char *value = wd__header_value(hl);
		if (value == NULL)
			return WD_ERROR;
		for (char *p = value; *p != '\0'; p++) {
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		}
		bool match = false;
		if (strlen(value) > SALT_HEX) {
			char salt[SALT_HEX + 1], hex[65];
			memcpy(salt, value, SALT_HEX);
			salt[SALT_HEX] = '\0';
			if (seen_hash(secret, salt, deliveries_json, hex) < 0) {
				free(value);
				return WD_ERROR;
			}
			match = strcmp(value + SALT_HEX, hex) == 0;
		}
		free(value);
		if (match) {
			*looped_r = true;
			return WD_OK;
		}
	}
	unsigned char r[SALT_HEX / 2];
	if (RAND_bytes(r, sizeof(r)) != 1)
		return WD_ERROR;
	char value[SALT_HEX + 65];
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(value + 2 * i, 3, "%02x", r[i]);
	char salt[SALT_HEX + 1];
	memcpy(salt, value, SALT_HEX + 1);
	if (seen_hash(secret, salt, deliveries_json, value + SALT_HEX) < 0)
		return WD_ERROR;
	return wd__headers_prepend(headers, "X-WildDuck-Seen", value);
}
