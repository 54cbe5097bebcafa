/* Address, domain and username normalisation exactly as WildDuck computes it
 * (lib/tools.js normalizeAddress, normalizeDomain, uview; reference §4.13),
 * because `addrview` and `unameview` are unique keys that Node and C
 * processes must derive identically from the same input.
 *
 * JavaScript semantics reproduced here:
 *  - String.prototype.normalize('NFC') and toLowerCase() (full Unicode case
 *    mapping, e.g. "İ" -> "i̇", final sigma): GLib's g_utf8_normalize and
 *    g_utf8_strdown; pure ASCII (the common case) takes a fast path.
 *  - trim(): JavaScript's white space set (ASCII, NBSP, U+FEFF, the Zs
 *    spaces, LS/PS), not just ASCII.
 *  - punycode.toUnicode(): libidn2 without IDNA2008 checks, on the
 *    lower-cased domain, and only when the domain starts with "xn--" as in
 *    WildDuck (a later "xn--" label alone is left in ASCII there, so here).
 *
 * Pure functions: no database, safe on any thread. GLib is included before
 * idn2.h on purpose (STYLE.md: idn2.h defines G_GNUC_DEPRECATED otherwise). */
#include <glib.h>
#include <idn2.h>

#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ADDRESS_BYTES 512

static bool is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return false;
	}
	return true;
}

/* malloc'd copies, so callers free() everything they get from this file */
static char *dup_glib(gchar *s)
{
	if (s == NULL)
		return NULL;
	char *copy = strdup(s);
	g_free(s);
	return copy;
}

static char *js_lower(const char *s, size_t len)
{
	if (!is_ascii(s, len))
		return dup_glib(g_utf8_strdown(s, (gssize)len));
	char *out = malloc(len + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	out[len] = '\0';
	return out;
}

static char *nfc(const char *s, size_t len)
{
	if (is_ascii(s, len))
		return strndup(s, len);
	return dup_glib(g_utf8_normalize(s, (gssize)len, G_NORMALIZE_NFC));
}

/* Length of the JavaScript white space character at p, or 0. */
static size_t js_space_len(const char *p, const char *end)
{
	unsigned char c = (unsigned char)*p;
	if (c == ' ' || (c >= '\t' && c <= '\r'))
		return 1;
	if (c < 0x80)
		return 0;
	gunichar u = g_utf8_get_char_validated(p, end - p);
	if (u == (gunichar)-1 || u == (gunichar)-2)
		return 0;
	bool space = u == 0xA0 || u == 0x1680 || (u >= 0x2000 && u <= 0x200A) || u == 0x2028 ||
		     u == 0x2029 || u == 0x202F || u == 0x205F || u == 0x3000 || u == 0xFEFF;
	return space ? (size_t)g_unichar_to_utf8(u, NULL) : 0;
}

/* JavaScript trim() in place. */
static void js_trim(char *s)
{
	char *end = s + strlen(s);
	char *start = s;
	size_t n;
	while (start < end && (n = js_space_len(start, end)) > 0)
		start += n;
	/* from the end: step back over whole UTF-8 characters */
	while (end > start) {
		char *prev = g_utf8_find_prev_char(start, end);
		if (prev == NULL || js_space_len(prev, end) != (size_t)(end - prev))
			break;
		end = prev;
	}
	memmove(s, start, (size_t)(end - start));
	s[end - start] = '\0';
}

/* nfc -> toLowerCase -> trim, the order of normalizeAddress() */
static char *nfc_lower_trim(const char *s, size_t len)
{
	char *n = nfc(s, len);
	if (n == NULL)
		return NULL;
	char *lower = js_lower(n, strlen(n));
	free(n);
	if (lower != NULL)
		js_trim(lower);
	return lower;
}

char *wd_domain_normalize(const char *domain)
{
	size_t len = strlen(domain);
	if (!g_utf8_validate(domain, (gssize)len, NULL))
		return NULL;
	char *d = js_lower(domain, len);
	if (d == NULL)
		return NULL;
	js_trim(d);
	if (strncmp(d, "xn--", 4) != 0)
		return d;
	char *unicode = NULL;
	if (idn2_to_unicode_8z8z(d, &unicode, 0) != IDN2_OK || unicode == NULL ||
	    !g_utf8_validate(unicode, -1, NULL)) {
		idn2_free(unicode);
		return d; /* WildDuck ignores the failure and keeps the ASCII form */
	}
	char *converted = nfc_lower_trim(unicode, strlen(unicode));
	idn2_free(unicode);
	if (converted == NULL)
		return d;
	free(d);
	return converted;
}

/* ASCII space and control characters never belong in a stored address. */
static bool has_control_or_space(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7F)
			return true;
	}
	return false;
}

int wd_address_normalize(const char *address, unsigned flags, char **result_r,
			 const char **error_r)
{
	*result_r = NULL;
	size_t len = strlen(address);
	if (len > MAX_ADDRESS_BYTES) {
		*error_r = "address is too long";
		return WD_STORE_ERR_INVALID;
	}
	if (!g_utf8_validate(address, (gssize)len, NULL)) {
		*error_r = "address is not valid UTF-8";
		return WD_STORE_ERR_INVALID;
	}
	const char *at = strrchr(address, '@');
	if (at == NULL) {
		*error_r = "address has no @";
		return WD_STORE_ERR_INVALID;
	}
	char *local = nfc_lower_trim(address, (size_t)(at - address));
	char *domain = wd_domain_normalize(at + 1);
	int ret = WD_STORE_ERR_INVALID;
	if (local == NULL || domain == NULL) {
		*error_r = "out of memory";
		goto out;
	}
	if (strchr(local, '@') != NULL) {
		*error_r = "address has more than one @";
		goto out;
	}
	if ((flags & WD_ADDRESS_REMOVE_LABEL) != 0) {
		/* /\+[^@]*$/: the first '+' that no '@' follows; the local part
		   has no '@' here, so simply the first '+' */
		char *plus = strchr(local, '+');
		if (plus != NULL)
			*plus = '\0';
	}
	if ((flags & WD_ADDRESS_REMOVE_DOTS) != 0) {
		char *w = local;
		for (const char *r = local; *r != '\0'; r++) {
			if (*r != '.')
				*w++ = *r;
		}
		*w = '\0';
	}
	if (local[0] == '\0') {
		*error_r = "address has an empty local part";
		goto out;
	}
	if (domain[0] == '\0') {
		*error_r = "address has an empty domain";
		goto out;
	}
	if (has_control_or_space(local) || has_control_or_space(domain)) {
		*error_r = "address contains white space or control characters";
		goto out;
	}
	if (asprintf(result_r, "%s@%s", local, domain) < 0) {
		*result_r = NULL;
		*error_r = "out of memory";
		goto out;
	}
	ret = WD_STORE_OK;
out:
	free(local);
	free(domain);
	return ret;
}

char *wd_uview(const char *value)
{
	size_t len = strlen(value);
	if (!g_utf8_validate(value, (gssize)len, NULL))
		return NULL;
	const char *at = strchr(value, '@');
	const char *dotless_end = at != NULL ? at : value + len;
	char *tmp = malloc(len + 1);
	if (tmp == NULL)
		return NULL;
	char *w = tmp;
	for (const char *r = value; r < dotless_end; r++) {
		if (*r != '.')
			*w++ = *r;
	}
	memcpy(w, dotless_end, (size_t)(value + len - dotless_end));
	w += value + len - dotless_end;
	*w = '\0';
	char *lower = js_lower(tmp, (size_t)(w - tmp));
	free(tmp);
	return lower;
}

int wd_address_addrview(const char *address, char **addrview_r, const char **error_r)
{
	char *normalized;
	*addrview_r = NULL;
	int ret = wd_address_normalize(address, 0, &normalized, error_r);
	if (ret < 0)
		return ret;
	*addrview_r = wd_uview(normalized);
	free(normalized);
	if (*addrview_r == NULL) {
		*error_r = "out of memory";
		return WD_STORE_ERR_INVALID;
	}
	return WD_STORE_OK;
}

static bool username_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/* [a-z0-9-]+(?:[._=:][a-z0-9-]+)* ; returns the end, or NULL */
static const char *username_part(const char *p)
{
	if (!username_char(*p))
		return NULL;
	while (username_char(*p))
		p++;
	while (*p != '\0' && strchr("._=:", *p) != NULL && username_char(p[1])) {
		p++;
		while (username_char(*p))
			p++;
	}
	return p;
}

int wd_username_validate(const char *username, const char **error_r)
{
	size_t len = strlen(username);
	if (len == 0 || len > WD_MAX_USERNAME_LENGTH) {
		*error_r = "username must be 1 to 128 characters";
		return WD_STORE_ERR_INVALID;
	}
	const char *p = username_part(username);
	if (p != NULL && *p == '@')
		p = username_part(p + 1);
	if (p == NULL || *p != '\0') {
		*error_r = "username may only contain letters, digits and '-', joined by "
			   "'.', '_', '=' or ':', and one optional '@'";
		return WD_STORE_ERR_INVALID;
	}
	return WD_STORE_OK;
}
