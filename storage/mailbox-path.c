/* Mailbox paths as WildDuck stores them (reference §2.8): Unicode, "/" as
 * the hierarchy separator, flat storage (parents need not exist), "INBOX"
 * always upper-case. Normalisation follows imap-core's normalizeMailbox();
 * the limits follow lib/consts.js, counting a level's length in UTF-16 code
 * units as JavaScript's String length does. Pure functions. */
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

/* One character of a first level that JavaScript's toUpperCase() turns
   into `upper` (the letters of INBOX; "ı" U+0131 also upper-cases to "I").
   Returns the bytes consumed, or 0. */
static size_t inbox_char(const char *p, char upper)
{
	if (*p == upper || *p == upper + 32)
		return 1;
	if (upper == 'I' && (unsigned char)p[0] == 0xC4 && (unsigned char)p[1] == 0xB1)
		return 2;
	return 0;
}

/* Length of a first level (ending at '/' or NUL) that upper-cases to INBOX. */
static size_t inbox_prefix(const char *p)
{
	const char *start = p;
	for (const char *letter = "INBOX"; *letter != '\0'; letter++) {
		size_t n = inbox_char(p, *letter);
		if (n == 0)
			return 0;
		p += n;
	}
	return (*p == '/' || *p == '\0') ? (size_t)(p - start) : 0;
}

char *wd_mailbox_path_normalize(const char *path)
{
	size_t len = strlen(path);
	/* /^\/|\/$/g: a leading and, in what remains, a trailing slash */
	if (len > 0 && path[0] == '/') {
		path++;
		len--;
	}
	if (len > 0 && path[len - 1] == '/')
		len--;
	size_t inbox = inbox_prefix(path);
	if (inbox > len)
		inbox = 0;
	size_t out_len = inbox > 0 ? len - inbox + 5 : len;
	char *out = malloc(out_len + 1);
	if (out == NULL)
		return NULL;
	if (inbox > 0) {
		memcpy(out, "INBOX", 5);
		memcpy(out + 5, path + inbox, len - inbox);
	} else {
		memcpy(out, path, len);
	}
	out[out_len] = '\0';
	return out;
}

int wd_mailbox_path_validate(const char *path, const char **error_r)
{
	size_t len = strlen(path);
	if (len == 0) {
		*error_r = "mailbox path is empty";
		return WD_STORE_ERR_INVALID;
	}
	if (!bson_utf8_validate(path, len, false)) {
		*error_r = "mailbox path is not valid UTF-8";
		return WD_STORE_ERR_INVALID;
	}
	unsigned levels = 1;
	for (const char *p = path; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7F) {
			*error_r = "mailbox path contains control characters";
			return WD_STORE_ERR_INVALID;
		}
		if (c == '/')
			levels++;
	}
	if (levels > WD_MAX_SUB_MAILBOXES) {
		*error_r = "mailbox path cannot be more than 128 levels deep";
		return WD_STORE_ERR_LIMIT;
	}
	size_t units = 0;
	for (const char *p = path;; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '/' || c == '\0') {
			if (units == 0) {
				*error_r = "mailbox path has an empty level";
				return WD_STORE_ERR_INVALID;
			}
			if (c == '\0')
				break;
			units = 0;
		} else if ((c & 0xC0) != 0x80) {
			/* a lead byte: 4-byte sequences are two UTF-16 units */
			units += c >= 0xF0 ? 2 : 1;
			if (units > WD_MAX_MAILBOX_NAME_LENGTH) {
				*error_r = "a level of the mailbox path cannot be longer than 512 "
					   "characters";
				return WD_STORE_ERR_LIMIT;
			}
		}
	}
	return WD_STORE_OK;
}
