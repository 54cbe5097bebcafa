/* Secrets at rest ($wd01$ AES-256-GCM with an scrypt key, and the legacy
 * createDecipher format), byte-compatible with WildDuck's lib/encrypt.js so
 * TOTP seeds written by either side can be read by the other.
 *
 * Legacy values are only read: EVP_BytesToKey(MD5, no salt, 1 round) is
 * what Node's createDecipher did and is too weak to write anew. */
#include "wd-auth-secret.h"
#include "auth-b64.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEN 16
#define IV_LEN 12
#define SALT_LEN 16
#define KEY_LEN 32

static int scrypt_key(const char *secret, const uint8_t *salt, uint8_t *key)
{
	/* Node's crypto.scrypt defaults: N=16384, r=8, p=1, maxmem 32 MiB */
	return EVP_PBE_scrypt(secret, strlen(secret), salt, SALT_LEN, 16384, 8, 1,
			      32 * 1024 * 1024, key, KEY_LEN) == 1 ? 0 : -1;
}

int wd_auth_secret_encrypt(const char *cleartext, const char *secret, char **result_r,
			   const char **error_r)
{
	*result_r = NULL;
	if (secret == NULL || secret[0] == '\0') {
		*result_r = strdup(cleartext);
		if (*result_r == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		return 0;
	}
	size_t len = strlen(cleartext);
	if (len > WD_AUTH_MAX_SECRET_VALUE) {
		*error_r = "value too long";
		return -1;
	}
	uint8_t iv[IV_LEN], salt[SALT_LEN], key[KEY_LEN], tag[TAG_LEN];
	uint8_t *ct = malloc(len + 16);
	char *out = malloc(2 * (TAG_LEN + IV_LEN + SALT_LEN + len) + 40);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, final = 0;
	bool ok = ct != NULL && out != NULL && ctx != NULL && RAND_bytes(iv, IV_LEN) == 1 &&
		  RAND_bytes(salt, SALT_LEN) == 1 && scrypt_key(secret, salt, key) == 0 &&
		  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) == 1 &&
		  EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) == 1 &&
		  EVP_EncryptUpdate(ctx, ct, &n, (const uint8_t *)cleartext, (int)len) == 1 &&
		  EVP_EncryptFinal_ex(ctx, ct + n, &final) == 1 &&
		  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
	OPENSSL_cleanse(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	if (!ok) {
		free(ct);
		free(out);
		*error_r = "encryption failed";
		return -1;
	}
	char *p = out;
	p += sprintf(p, "$wd01$aes-256-gcm$");
	wd__auth_hex_encode(tag, TAG_LEN, p);
	p += 2 * TAG_LEN;
	*p++ = '$';
	wd__auth_hex_encode(iv, IV_LEN, p);
	p += 2 * IV_LEN;
	*p++ = '$';
	wd__auth_hex_encode(salt, SALT_LEN, p);
	p += 2 * SALT_LEN;
	*p++ = '$';
	wd__auth_hex_encode(ct, (size_t)(n + final), p);
	free(ct);
	*result_r = out;
	return 0;
}

/* The bytes of a hex field between two '$' (or the end), into a malloc'd
   buffer; -1 on bad hex. */
static int hex_field(const char *start, const char *end, uint8_t **data_r, size_t *len_r)
{
	size_t len = (size_t)(end - start);
	*data_r = malloc(len / 2 + 1);
	if (*data_r == NULL)
		return -1;
	int n = wd__auth_hex_decode(start, len, *data_r, len / 2 + 1);
	if (n < 0) {
		free(*data_r);
		*data_r = NULL;
		return -1;
	}
	*len_r = (size_t)n;
	return 0;
}

static int finish_plaintext(uint8_t *plain, size_t len, char **result_r, const char **error_r)
{
	char *text = malloc(len + 1);
	if (text == NULL || memchr(plain, '\0', len) != NULL) {
		free(text);
		*error_r = "decrypted value is not text";
		return -1;
	}
	memcpy(text, plain, len);
	text[len] = '\0';
	*result_r = text;
	return 0;
}

static int decrypt_legacy(const char *hex, const char *secret, const char *cipher_name,
			  char **result_r, const char **error_r)
{
	const EVP_CIPHER *cipher = EVP_get_cipherbyname(cipher_name != NULL ? cipher_name :
							"aes192");
	uint8_t *data = NULL;
	size_t len = 0;
	if (cipher == NULL) {
		*error_r = "unknown legacy cipher";
		return -1;
	}
	if (hex_field(hex, hex + strlen(hex), &data, &len) < 0) {
		*error_r = "malformed legacy value";
		return -1;
	}
	uint8_t key[EVP_MAX_KEY_LENGTH], iv[EVP_MAX_IV_LENGTH];
	uint8_t *plain = malloc(len + EVP_MAX_BLOCK_LENGTH);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, final = 0;
	bool ok = plain != NULL && ctx != NULL &&
		  EVP_BytesToKey(cipher, EVP_md5(), NULL, (const uint8_t *)secret,
				 (int)strlen(secret), 1, key, iv) > 0 &&
		  EVP_DecryptInit_ex(ctx, cipher, NULL, key, iv) == 1 &&
		  EVP_DecryptUpdate(ctx, plain, &n, data, (int)len) == 1 &&
		  EVP_DecryptFinal_ex(ctx, plain + n, &final) == 1;
	OPENSSL_cleanse(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	free(data);
	int ret = -1;
	if (ok)
		ret = finish_plaintext(plain, (size_t)(n + final), result_r, error_r);
	else
		*error_r = "legacy decryption failed (wrong secret?)";
	if (plain != NULL)
		OPENSSL_cleanse(plain, len + EVP_MAX_BLOCK_LENGTH);
	free(plain);
	return ret;
}

static int decrypt_wd01(const char *value, const char *secret, char **result_r,
			const char **error_r)
{
	/* $wd01$aes-256-gcm$tag$iv$salt$ct: six '$' */
	const char *fields[6];
	int count = 0;
	for (const char *p = value; p != NULL && count < 6; p = strchr(p + 1, '$'))
		fields[count++] = p;
	if (count != 6 || strchr(fields[5] + 1, '$') != NULL ||
	    strncmp(value, "$wd01$aes-256-gcm$", 18) != 0) {
		*error_r = "unknown encryption format";
		return -1;
	}
	uint8_t *parts[4] = { NULL };
	size_t lens[4];
	int ret = -1;
	for (int i = 0; i < 4; i++) {
		const char *end = i < 3 ? fields[3 + i] : fields[5] + strlen(fields[5]);
		if (hex_field(fields[2 + i] + 1, end, &parts[i], &lens[i]) < 0)
			goto out;
	}
	if (lens[0] != TAG_LEN || lens[1] != IV_LEN || lens[2] != SALT_LEN) {
		*error_r = "bad tag, iv or salt length";
		goto out;
	}
	uint8_t key[KEY_LEN];
	uint8_t *plain = malloc(lens[3] + 16);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, final = 0;
	bool ok = plain != NULL && ctx != NULL && scrypt_key(secret, parts[2], key) == 0 &&
		  EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) == 1 &&
		  EVP_DecryptInit_ex(ctx, NULL, NULL, key, parts[1]) == 1 &&
		  EVP_DecryptUpdate(ctx, plain, &n, parts[3], (int)lens[3]) == 1 &&
		  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, parts[0]) == 1 &&
		  EVP_DecryptFinal_ex(ctx, plain + n, &final) == 1;
	OPENSSL_cleanse(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	if (ok)
		ret = finish_plaintext(plain, (size_t)(n + final), result_r, error_r);
	else
		*error_r = "decryption failed (wrong secret?)";
	if (plain != NULL)
		OPENSSL_cleanse(plain, lens[3] + 16);
	free(plain);
out:
	if (ret < 0 && *error_r == NULL)
		*error_r = "malformed encrypted value";
	for (int i = 0; i < 4; i++)
		free(parts[i]);
	return ret;
}

int wd_auth_secret_decrypt(const char *value, const char *secret, const char *legacy_cipher,
			   char **result_r, const char **error_r)
{
	*result_r = NULL;
	*error_r = NULL;
	if (value[0] != '$') {
		*result_r = strdup(value);
		if (*result_r == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		return 0;
	}
	if (strlen(value) > WD_AUTH_MAX_SECRET_VALUE) {
		*error_r = "encrypted value too long";
		return -1;
	}
	if (secret == NULL || secret[0] == '\0') {
		*error_r = "value is encrypted and no secret is configured";
		return -1;
	}
	if (strchr(value + 1, '$') == NULL)
		return decrypt_legacy(value + 1, secret, legacy_cipher, result_r, error_r);
	return decrypt_wd01(value, secret, result_r, error_r);
}
