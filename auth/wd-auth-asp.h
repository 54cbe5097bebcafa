#ifndef WD_AUTH_ASP_H
#define WD_AUTH_ASP_H

/* Application-specific passwords as WildDuck keeps them (reference §2.5,
 * §4.14 step 6): 16 random lower-case letters shown once, stored as a
 * default-scheme hash in `asps` with a `selector` (sum of the SHA-1 bytes of
 * the password mod 32, in hex) that lets a login check only the hashes that
 * can match; scopes ['*'] or a sorted subset of imap/pop3/smtp; an optional
 * ttl that `expires` slides forward on every use. At most the setting
 * const:asp:limit (50) per user.
 *
 * Expired entries are ignored at login (FerretDB does not enforce the TTL
 * index) and deleted by wd_auth_log_expire(). */

#include "wd-auth.h"

#include <stdbool.h>
#include <stdint.h>

#define WD_AUTH_ASP_LEN 16
#define WD_AUTH_SCOPE_ALL 0x7 /* WD_SCOPE_IMAP | WD_SCOPE_POP3 | WD_SCOPE_SMTP: stored as "*" */

/* ---- pure ---- */

/* 16 uniformly random letters a-z plus NUL. */
int wd_auth_asp_generate(char password[WD_AUTH_ASP_LEN + 1]);
/* WildDuck's selector of a password: "0" ... "1f". */
void wd_auth_asp_selector(const char *password, size_t len, char selector[3]);
/* What a login's password is as an app password: white space removed,
   lower-cased; true when that is exactly 16 letters a-z (then in out). */
bool wd_auth_asp_normalize(const char *password, size_t len, char out[WD_AUTH_ASP_LEN + 1]);
/* "imap", "pop3", "smtp", "*" (any case, trimmed) → scope bits
   (WD_SCOPE_* of wd-store-user.h; "*" = WD_AUTH_SCOPE_ALL); 0 when unknown. */
unsigned wd_auth_scope_bit(const char *name);

/* ---- on a user ---- */

struct wd_asp_create {
	const char *description; /* required, at most WD_AUTH_MAX_DESCRIPTION bytes */
	unsigned scopes;         /* WD_SCOPE_* bits; 0 or all three: "*" */
	int64_t ttl;             /* seconds; 0: does not expire */
};

/* Creates one; the password (shown once) goes to password_r. Logged as
   'create asp'. WD_AUTH_ERR_LIMIT past const:asp:limit, NOT_FOUND for an
   unknown user, INVALID without a description. */
int wd_auth_asp_create(struct wd_auth *auth, const bson_oid_t *user,
		       const struct wd_asp_create *req, const struct wd_auth_meta *meta,
		       bson_oid_t *id_r, char password_r[WD_AUTH_ASP_LEN + 1], char **error_r);

struct wd_asp {
	bson_oid_t id;
	char *description;
	char scopes[24];      /* "*" or "imap,pop3" ... */
	int64_t created_ms;
	int64_t used_ms;      /* 0: never used */
	char *used_ip;        /* NULL: never used */
	int64_t ttl;          /* seconds, 0: none */
	int64_t expires_ms;   /* 0: none */
};
struct wd_asp_list {
	struct wd_asp *items;
	size_t count;
};
/* The user's app passwords, oldest first (expired ones left out). */
int wd_auth_asp_list(struct wd_auth *auth, const bson_oid_t *user, struct wd_asp_list *list_r,
		     char **error_r);
void wd_asp_list_free(struct wd_asp_list *list);
/* Deletes one of the user's app passwords ('delete asp' logged). */
int wd_auth_asp_delete(struct wd_auth *auth, const bson_oid_t *user, const bson_oid_t *asp,
		       const struct wd_auth_meta *meta, char **error_r);

#endif
