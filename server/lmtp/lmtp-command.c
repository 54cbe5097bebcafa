/* LMTP command lines: verb, paths, ESMTP parameters (lmtp-command.h).
 *
 * A path is read in two passes: first the bracketed text is found (a ">"
 * inside a quoted local part does not end it), then the mailbox inside is
 * checked piece by piece (source route, local part, domain). */
#include "lmtp-command.h"

#include "wd-result.h"
#include "wd-str.h"

#include <string.h>

#define SYNTAX(err, c, st, t) \
	((err)->code = (c), (err)->status = (st), (err)->text = (t), WD_ERROR)

bool wd_lmtp_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp, min;
		if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

int wd_lmtp_command_split(const uint8_t *line, size_t len, char verb_r[WD_LMTP_VERB_MAX],
			  const char **args_r, size_t *args_len_r, struct wd_lmtp_error *error_r)
{
	for (size_t i = 0; i < len; i++) {
		if ((line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
			return SYNTAX(error_r, 500, "5.5.2", "Syntax error: control character in command");
	}
	size_t v = 0;
	while (v < len && line[v] != ' ' && line[v] != '\t') {
		uint8_t c = line[v];
		bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
		if (!letter || v + 1 >= WD_LMTP_VERB_MAX)
			return SYNTAX(error_r, 500, "5.5.2", "Syntax error: command unrecognized");
		verb_r[v] = (char)(c & ~0x20);
		v++;
	}
	if (v == 0)
		return SYNTAX(error_r, 500, "5.5.2", "Syntax error: empty command");
	verb_r[v] = '\0';
	size_t a = v;
	while (a < len && (line[a] == ' ' || line[a] == '\t'))
		a++;
	size_t end = len;
	while (end > a && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	*args_r = (const char *)line + a;
	*args_len_r = end - a;
	return WD_OK;
}

/* ---- paths ---- */

static bool is_atext(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
		return true;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

static bool is_domain_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c >= 0x80;
}

/* Domain = sub-domain *("." sub-domain), or an address literal "[...]". */
static bool domain_valid(const uint8_t *s, size_t len)
{
	if (len == 0)
		return false;
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++) {
			/* dtext: %d33-90 / %d94-126 */
			if (s[i] < 33 || s[i] > 126 || s[i] == '[' || s[i] == ']' || s[i] == '\\')
				return false;
		}
		return true;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (is_domain_char(s[i])) {
			label++;
		} else {
			return false;
		}
	}
	return label > 0;
}

/* Local part: a dot-string (tolerant about dots) or a quoted string.
   Returns its length, 0 when malformed. */
static size_t local_part_len(const uint8_t *s, size_t len)
{
	size_t i = 0;
	if (len > 0 && s[0] == '"') {
		for (i = 1; i < len; i++) {
			if (s[i] == '\\') {
				if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
					return 0;
				i++;
			} else if (s[i] == '"') {
				return i + 1 > 2 ? i + 1 : 0;
			} else if (s[i] < 32 || s[i] == 127) {
				return 0;
			}
		}
		return 0;
	}
	while (i < len && (is_atext(s[i]) || s[i] == '.'))
		i++;
	return i;
}

/* A quoted local part whose content (quoted pairs resolved) is atext and
   dots names the same mailbox as the content unquoted (RFC 5321 §4.1.2:
   "zqxbob"@example.com is zqxbob@example.com). Address resolution
   compares unquoted forms, so the quotes go here; otherwise the quoted
   form would miss the owner's address and could fall through to another
   user's catch-all. Other quoted local parts are kept as they are. */
static void unquote_local_part(char *addr)
{
	if (addr[0] != '"')
		return;
	size_t local = local_part_len((const uint8_t *)addr, strlen(addr));
	size_t n = 0;
	for (size_t i = 1; i + 1 < local; i++) {
		if (addr[i] == '\\')
			i++;
		if (!is_atext((uint8_t)addr[i]) && addr[i] != '.')
			return;
		n++;
	}
	if (n == 0)
		return;
	size_t o = 0;
	for (size_t i = 1; i + 1 < local; i++) {
		if (addr[i] == '\\')
			i++;
		addr[o++] = addr[i];
	}
	memmove(addr + o, addr + local, strlen(addr + local) + 1);
}

/* The mailbox inside the brackets (source route already dropped). */
static bool mailbox_valid(const uint8_t *s, size_t len, bool allow_postmaster)
{
	size_t local = local_part_len(s, len);
	if (local == 0)
		return false;
	if (local == len)
		return allow_postmaster && len == 10 && wd_mem_eq_nocase(s, "postmaster", 10);
	if (s[local] != '@')
		return false;
	return domain_valid(s + local + 1, len - local - 1);
}

struct path_rules {
	bool allow_null;       /* MAIL FROM:<> */
	bool allow_postmaster; /* RCPT TO:<postmaster> */
	const char *status;    /* 5.1.7 (sender) or 5.1.3 (recipient) */
	const char *usage;     /* the reply text for a missing path */
};

/* Reads "<path>" at args[*pos]; leaves *pos after ">". */
static int parse_path(const char *args, size_t len, size_t *pos, const struct path_rules *rules,
		      char out[WD_LMTP_PATH_MAX + 1], bool *non_ascii_r,
		      struct wd_lmtp_error *error_r)
{
	const uint8_t *s = (const uint8_t *)args;
	size_t i = *pos;
	if (i >= len || s[i] != '<')
		return SYNTAX(error_r, 501, "5.5.4", rules->usage);
	size_t open = i++;
	bool quoted = false;
	for (; i < len; i++) {
		if (quoted && s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '>')
			break;
	}
	if (i >= len)
		return SYNTAX(error_r, 501, "5.5.4", rules->usage);
	size_t close = i;
	*pos = close + 1;
	if (close - open + 1 > WD_LMTP_PATH_MAX)
		return SYNTAX(error_r, 501, rules->status, "Address too long");
	const uint8_t *in = s + open + 1;
	size_t in_len = close - open - 1;
	*non_ascii_r = false;
	for (size_t k = 0; k < in_len; k++) {
		if (in[k] >= 0x80)
			*non_ascii_r = true;
	}
	if (*non_ascii_r && !wd_lmtp_utf8_valid(in, in_len))
		return SYNTAX(error_r, 501, rules->status, "Address is not valid UTF-8");
	if (in_len == 0) {
		if (!rules->allow_null)
			return SYNTAX(error_r, 501, rules->status, "Empty address");
		out[0] = '\0';
		return WD_OK;
	}
	if (in[0] == '@') {
		/* A-d-l ":" (RFC 5321 §4.1.2): accepted and ignored (Appendix C) */
		const uint8_t *colon = memchr(in, ':', in_len);
		if (colon == NULL)
			return SYNTAX(error_r, 501, rules->status, "Bad address syntax");
		size_t route = (size_t)(colon - in);
		for (size_t k = 0; k < route; k++) {
			if (in[k] != '@' && in[k] != ',' && in[k] != '.' && !is_domain_char(in[k]) &&
			    in[k] != '[' && in[k] != ']')
				return SYNTAX(error_r, 501, rules->status, "Bad address syntax");
		}
		in += route + 1;
		in_len -= route + 1;
	}
	if (!mailbox_valid(in, in_len, rules->allow_postmaster))
		return SYNTAX(error_r, 501, rules->status, "Bad address syntax");
	memcpy(out, in, in_len);
	out[in_len] = '\0';
	unquote_local_part(out);
	return WD_OK;
}

/* "FROM:" / "TO:" with optional spaces around the colon's right side. */
static int expect_keyword(const char *args, size_t len, const char *keyword, size_t *pos_r)
{
	size_t k = strlen(keyword);
	if (len < k || !wd_mem_eq_nocase(args, keyword, k))
		return WD_ERROR;
	size_t i = k;
	while (i < len && args[i] == ' ')
		i++;
	*pos_r = i;
	return WD_OK;
}

/* ---- parameters (esmtp-param, RFC 5321 §4.1.2) ---- */

struct param {
	const char *key;
	size_t key_len;
	const char *value; /* NULL without "=" */
	size_t value_len;
};

/* Next parameter after at least one space; false at the end. WD_ERROR
   through *bad when malformed. */
static bool next_param(const char *args, size_t len, size_t *pos, struct param *p, bool *bad)
{
	size_t i = *pos;
	if (i >= len)
		return false;
	if (args[i] != ' ') {
		*bad = true;
		return false;
	}
	while (i < len && args[i] == ' ')
		i++;
	size_t start = i;
	while (i < len && args[i] != ' ' && args[i] != '=') {
		char c = args[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || (c == '-' && i > start);
		if (!ok) {
			*bad = true;
			return false;
		}
		i++;
	}
	p->key = args + start;
	p->key_len = i - start;
	p->value = NULL;
	p->value_len = 0;
	if (p->key_len == 0) {
		*bad = true;
		return false;
	}
	if (i < len && args[i] == '=') {
		size_t vstart = ++i;
		while (i < len && args[i] != ' ') {
			uint8_t c = (uint8_t)args[i];
			if (c == '=' || c < 33 || c == 127) {
				*bad = true;
				return false;
			}
			i++;
		}
		if (i == vstart) {
			*bad = true;
			return false;
		}
		p->value = args + vstart;
		p->value_len = i - vstart;
	}
	*pos = i;
	return true;
}

static bool key_is(const struct param *p, const char *key)
{
	return p->key_len == strlen(key) && wd_mem_eq_nocase(p->key, key, p->key_len);
}

static bool value_is(const struct param *p, const char *value)
{
	return p->value != NULL && p->value_len == strlen(value) &&
	       wd_mem_eq_nocase(p->value, value, p->value_len);
}

int wd_lmtp_parse_mail(const char *args, size_t len, struct wd_lmtp_mail *mail_r,
		       struct wd_lmtp_error *error_r)
{
	static const struct path_rules rules = {
		.allow_null = true,
		.status = "5.1.7",
		.usage = "Syntax: MAIL FROM:<address> [parameters]",
	};
	memset(mail_r, 0, sizeof(*mail_r));
	size_t pos;
	if (expect_keyword(args, len, "FROM:", &pos) < 0)
		return SYNTAX(error_r, 501, "5.5.4", rules.usage);
	bool non_ascii;
	if (parse_path(args, len, &pos, &rules, mail_r->address, &non_ascii, error_r) < 0)
		return WD_ERROR;
	struct param p;
	bool bad = false;
	while (next_param(args, len, &pos, &p, &bad)) {
		if (key_is(&p, "SIZE")) {
			if (mail_r->has_size || p.value == NULL ||
			    wd_str_to_uint64(p.value, p.value_len, &mail_r->size) < 0)
				return SYNTAX(error_r, 501, "5.5.4", "Bad SIZE parameter");
			mail_r->has_size = true;
		} else if (key_is(&p, "BODY")) {
			if (mail_r->body != WD_LMTP_BODY_UNSET)
				return SYNTAX(error_r, 501, "5.5.4", "Duplicate BODY parameter");
			if (value_is(&p, "7BIT"))
				mail_r->body = WD_LMTP_BODY_7BIT;
			else if (value_is(&p, "8BITMIME"))
				mail_r->body = WD_LMTP_BODY_8BITMIME;
			else
				return SYNTAX(error_r, 501, "5.5.4",
					      "Unsupported BODY type (7BIT and 8BITMIME are)");
		} else if (key_is(&p, "SMTPUTF8")) {
			if (mail_r->smtputf8 || p.value != NULL)
				return SYNTAX(error_r, 501, "5.5.4", "Bad SMTPUTF8 parameter");
			mail_r->smtputf8 = true;
		} else {
			return SYNTAX(error_r, 555, "5.5.4", "Unsupported MAIL parameter");
		}
	}
	if (bad)
		return SYNTAX(error_r, 501, "5.5.4", "Bad parameter syntax");
	if (non_ascii && !mail_r->smtputf8)
		return SYNTAX(error_r, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
	return WD_OK;
}

int wd_lmtp_parse_rcpt(const char *args, size_t len, bool smtputf8, struct wd_lmtp_rcpt *rcpt_r,
		       struct wd_lmtp_error *error_r)
{
	static const struct path_rules rules = {
		.allow_postmaster = true,
		.status = "5.1.3",
		.usage = "Syntax: RCPT TO:<address>",
	};
	memset(rcpt_r, 0, sizeof(*rcpt_r));
	size_t pos;
	if (expect_keyword(args, len, "TO:", &pos) < 0)
		return SYNTAX(error_r, 501, "5.5.4", rules.usage);
	bool non_ascii;
	if (parse_path(args, len, &pos, &rules, rcpt_r->address, &non_ascii, error_r) < 0)
		return WD_ERROR;
	struct param p;
	bool bad = false;
	if (next_param(args, len, &pos, &p, &bad))
		return SYNTAX(error_r, 555, "5.5.4", "Unsupported RCPT parameter");
	if (bad)
		return SYNTAX(error_r, 501, "5.5.4", "Bad parameter syntax");
	if (non_ascii && !smtputf8)
		return SYNTAX(error_r, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
	return WD_OK;
}
