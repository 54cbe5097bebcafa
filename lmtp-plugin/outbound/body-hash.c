/* The DKIM body hash ZoneMTA signs with (envelope dkim.bodyHash): SHA-256
 * of the body in relaxed canonicalization, RFC 6376 §3.4.4:
 *   - a line ends at LF (a CR before it belongs to the line end; a bare CR
 *     is an ordinary character), and every line end becomes CRLF;
 *   - runs of SP/TAB become one SP, and SP/TAB at the end of a line go;
 *   - empty lines at the end of the body are ignored;
 *   - a non-empty body that does not end with a line end gets one.
 * nodemailer's RelaxedBody leaves out the last rule; a verifier applies it
 * (the SMTP transfer adds that CRLF anyway), so we follow the RFC. */
#include "outbound-private.h"
#include "wd-result.h"

#include <openssl/evp.h>

struct canon {
	EVP_MD_CTX *sha;
	size_t empty_lines;  /* held back until a non-empty line follows */
};

static void put_line(struct canon *c, const uint8_t *line, size_t len)
{
	/* trailing white space goes */
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0) {
		c->empty_lines++;
		return;
	}
	for (; c->empty_lines > 0; c->empty_lines--)
		EVP_DigestUpdate(c->sha, "\r\n", 2);
	size_t i = 0;
	while (i < len) {
		if (line[i] == ' ' || line[i] == '\t') {
			while (i < len && (line[i] == ' ' || line[i] == '\t'))
				i++;
			EVP_DigestUpdate(c->sha, " ", 1);
			continue;
		}
		size_t run = i;
		while (run < len && line[run] != ' ' && line[run] != '\t')
			run++;
		EVP_DigestUpdate(c->sha, line + i, run - i);
		i = run;
	}
	EVP_DigestUpdate(c->sha, "\r\n", 2);
}

int wd__body_hash_relaxed(const uint8_t *body, size_t len, char out[45])
{
	struct canon c = { .sha = EVP_MD_CTX_new(), .empty_lines = 0 };
	if (c.sha == NULL || EVP_DigestInit_ex(c.sha, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c.sha);
		return WD_ERROR;
	}
	size_t pos = 0;
	while (pos < len) {
		size_t end = pos;
		while (end < len && body[end] != '\n')
			end++;
		size_t line_len = end - pos;
		if (end < len && line_len > 0 && body[end - 1] == '\r')
			line_len--;
		put_line(&c, body + pos, line_len);
		pos = end < len ? end + 1 : len;
	}
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_DigestFinal_ex(c.sha, digest, &digest_len);
	EVP_MD_CTX_free(c.sha);
	EVP_EncodeBlock((unsigned char *)out, digest, (int)digest_len);
	return WD_OK;
}
