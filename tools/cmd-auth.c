/* wdctl auth check | auth expire.
 *
 * auth check runs the real authentication flow for a login name
 * and a password read from stdin, exactly as a protocol server would
 * (failure counters, auth log and all): exit 0 accepted, 1 refused with the
 * reason on stderr. Operators use it to answer "why can't this user log
 * in?"; the reason printed is the internal one, not the client message. */
#include "wdctl.h"
#include "wd-auth-log.h"
#include "wd-auth-login.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wdctl_auth_check(struct wdctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return wdctl_fail("usage: wdctl auth check <user-or-address> "
				  "[--scope imap|pop3|smtp|master] [--ip IP]");
	struct wd_auth_request req = { .username = argv[0], .scope = WD_AUTH_SCOPE_MASTER,
				       .meta = { .protocol = "CLI" } };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc) {
			int scope = wd_auth_scope_parse(argv[++i]);
			if (scope < 0)
				return wdctl_fail("auth check: unknown scope %s", argv[i]);
			req.scope = (enum wd_auth_scope)scope;
			req.meta.protocol = scope == WD_AUTH_SCOPE_IMAP ? "IMAP" :
					    scope == WD_AUTH_SCOPE_POP3 ? "POP3" :
					    scope == WD_AUTH_SCOPE_SMTP ? "SMTP" : "CLI";
		} else if (strcmp(argv[i], "--ip") == 0 && i + 1 < argc) {
			req.meta.ip = argv[++i];
		} else {
			return wdctl_fail("auth check: unknown option %s", argv[i]);
		}
	}
	char buf[WD_AUTH_MAX_PASSWORD + 1];
	long len = wdctl_read_password("Password: ", buf, sizeof(buf));
	if (len < 0)
		return WDCTL_EXIT_FAIL;
	req.password = buf;
	req.password_len = (size_t)len;
	struct wd_auth_result result;
	enum wd_auth_status status = wd_auth_authenticate(ctl->auth, &req, &result);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (status != WD_AUTH_ACCEPTED) {
		fprintf(stderr, "wdctl: auth check %s: refused: %s", argv[0],
			wd_auth_status_name(status));
		if (status == WD_AUTH_RATE_LIMITED || status == WD_AUTH_SCOPE_REFUSED)
			fprintf(stderr, " (%s)", result.message);
		fputc('\n', stderr);
		return WDCTL_EXIT_FAIL;
	}
	static const char *const sources[] = { "-", "password", "temporary password",
					       "app password" };
	char hex[25];
	bson_oid_to_string(&result.user, hex);
	printf("%s %s %s%s%s%s\n", hex, result.username, sources[result.source],
	       result.require_password_change ? " (password change required)" : "",
	       result.require2fa[0] != '\0' ? " 2fa:" : "", result.require2fa);
	return WDCTL_EXIT_OK;
}

/* FerretDB does not enforce TTL indexes: this is the expiry of authlog
   entries and app passwords for a cron job (or the servers' periodic task). */
int wdctl_auth_expire(struct wdctl *ctl, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return wdctl_fail("usage: wdctl auth expire");
	int64_t authlog = 0, asps = 0;
	char *error = NULL;
	if (wd_auth_log_expire(ctl->auth, &authlog, &asps, &error) < 0) {
		wdctl_fail("auth expire: %s", error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	printf("%lld authlog entries, %lld app passwords expired\n", (long long)authlog,
	       (long long)asps);
	return WDCTL_EXIT_OK;
}
