/* Dovecot services seen as WildDuck scopes and auth log protocols.
 *
 * WildDuck scopes an account's access per service: app passwords carry a
 * list of scopes, `disabledScopes` switches services off, and 2FA accounts
 * must use app passwords for imap, pop3 and smtp. Dovecot tells the driver
 * which service asks (auth_request->fields.service). Services without a
 * WildDuck scope (doveadm, sieve, ...) are refused by the passdb: an
 * account password there would bypass the scope rules. Use
 * `doveadm auth test -x service=imap` to test a login by hand. */
#include "lib.h"

#include "authdb-wildduck.h"
#include "wd-auth-login.h"

int wd_authdb_service_scope(const char *service)
{
	if (service == NULL)
		return -1;
	if (strcmp(service, "imap") == 0)
		return WD_AUTH_SCOPE_IMAP;
	if (strcmp(service, "pop3") == 0)
		return WD_AUTH_SCOPE_POP3;
	/* WildDuck's smtp scope is what its MSA (ZoneMTA) checks */
	if (strcmp(service, "submission") == 0 || strcmp(service, "smtp") == 0)
		return WD_AUTH_SCOPE_SMTP;
	return -1;
}

const char *wd_authdb_service_protocol(const char *service)
{
	if (service == NULL || *service == '\0')
		return "DOVECOT";
	if (strcmp(service, "submission") == 0)
		return "SMTP";
	return t_str_ucase(service);
}
