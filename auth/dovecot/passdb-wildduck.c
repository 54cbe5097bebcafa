/* passdb wildduck: a Dovecot login checked by libwdauth.
 *
 * Dovecot gives us the login name (after auth_username_format) and the
 * plaintext password; wd_auth_authenticate() runs WildDuck's whole flow
 * (reference §4.14): address or username lookup with dots and "+labels",
 * account password, app passwords with their scopes, the 2FA rule (the
 * account password is refused for imap/pop3/smtp when 2FA is on),
 * disabled/suspended/disabledScopes, the failure counters in Redis and
 * the authlog entry. We only translate its answer:
 *
 *   accepted            OK; `user` becomes the WildDuck username, so the
 *                       userdb and the mail processes see the canonical name
 *   refused             PASSWORD_MISMATCH (USER_UNKNOWN when there is no user;
 *                       the client gets the same answer for both)
 *   rate limited        USER_DISABLED, reason "try again in N seconds"
 *   disabled/suspended  USER_DISABLED, reason "Account is not available"
 *   scope disabled      USER_DISABLED, reason "<P> access is disabled ..."
 *   scope refused       USER_DISABLED with WildDuck's reason (2FA: use an
 *                       application-specific password; an app password of
 *                       another scope)
 *   internal error      INTERNAL_FAILURE (the client is told to try later)
 *
 * Reasons reach the client through Dovecot's `reason` field; for IMAP they
 * carry the response code wd-server answers with ("[CONTACTADMIN] ...").
 * Dovecot drops the fields of a failed passdb lookup except for
 * USER_DISABLED (auth-request.c, auth_request_handle_passdb_callback), so
 * every refusal that has something to tell is USER_DISABLED: the account
 * exists and cannot log in this way now. It also ends the passdb chain, as
 * WildDuck's answer is final there. Dovecot's log calls these "user
 * disabled"; our own log line says why.
 *
 * Only plaintext mechanisms can work: WildDuck's hashes (PBKDF2, bcrypt)
 * and app passwords give nothing CRAM-MD5 or SCRAM could use. A credentials
 * lookup without a wanted scheme (doveadm auth lookup, proxy lookups) answers
 * whether the account exists and may log in.
 *
 * No auth cache key: whether a password works depends on more than the
 * password (app passwords, 2FA, rate limits, account state), so Dovecot's
 * auth cache must not answer for this passdb. */
#include "auth-common.h"
#include "passdb.h"
#include "safe-memset.h"

#include "authdb-wildduck.h"
#include "wd-auth-address.h"
#include "wd-auth-login.h"
#include "wd-store-user.h"

#include <stdlib.h>

struct wd_passdb_module {
	struct passdb_module module;
	struct wd_authdb_args args;
};

static struct wd_passdb_module *passdb_of(struct auth_request *request)
{
	return (struct wd_passdb_module *)request->passdb->passdb;
}

/* The `reason` Dovecot sends to the client; IMAP gets a response code. */
static void set_reason(struct auth_request *request, const char *imap_code, const char *text)
{
	const char *reason = text;
	if (imap_code != NULL && null_strcmp(request->fields.service, "imap") == 0)
		reason = t_strdup_printf("[%s] %s", imap_code, text);
	auth_request_set_field(request, "reason", reason, NULL);
}

static enum passdb_result passdb_result_of(struct auth_request *request,
					   const struct wd_auth_result *res)
{
	struct event *event = authdb_event(request);
	const char *protocol = wd_authdb_service_protocol(request->fields.service);

	switch (res->status) {
	case WD_AUTH_ACCEPTED:
		if (!res->has_user || res->require2fa[0] != '\0') {
			/* a second factor is still due: Dovecot cannot ask for it */
			e_info(event, "login needs 2FA (%s): refused", res->require2fa);
			return PASSDB_RESULT_PASSWORD_MISMATCH;
		}
		auth_request_set_field(request, "user", res->username, NULL);
		e_debug(event, "WildDuck user %s accepted (%s)", res->username,
			res->source == WD_AUTH_SOURCE_ASP ? "application password" :
			res->source == WD_AUTH_SOURCE_TEMPORARY ? "temporary password" :
			"account password");
		return PASSDB_RESULT_OK;
	case WD_AUTH_REFUSED:
	case WD_AUTH_TEMP_NOT_YET_VALID:
		if (!res->has_user) {
			auth_request_log_unknown_user(request, AUTH_SUBSYS_DB);
			return PASSDB_RESULT_USER_UNKNOWN;
		}
		auth_request_log_password_mismatch(request, AUTH_SUBSYS_DB);
		return PASSDB_RESULT_PASSWORD_MISMATCH;
	case WD_AUTH_RATE_LIMITED:
		e_info(event, "too many failed logins (retry after %lld s)",
		       (long long)res->retry_after);
		set_reason(request, "LIMIT",
			   t_strdup_printf("Too many failed logins, try again in %lld seconds",
					   (long long)res->retry_after));
		return PASSDB_RESULT_USER_DISABLED;
	case WD_AUTH_DISABLED:
	case WD_AUTH_SUSPENDED:
		e_info(event, "account %s", res->status == WD_AUTH_DISABLED ? "disabled" :
		       "suspended");
		set_reason(request, "CONTACTADMIN", "Account is not available");
		return PASSDB_RESULT_USER_DISABLED;
	case WD_AUTH_SCOPE_DISABLED:
		e_info(event, "%s access disabled for this account (disabledScopes)", protocol);
		set_reason(request, "AUTHORIZATIONFAILED",
			   t_strdup_printf("%s access is disabled for this account", protocol));
		return PASSDB_RESULT_USER_DISABLED;
	case WD_AUTH_SCOPE_REFUSED:
		e_info(event, "password not valid for %s: %s", protocol, res->message);
		set_reason(request, "AUTHENTICATIONFAILED", res->message);
		return PASSDB_RESULT_USER_DISABLED;
	case WD_AUTH_INTERNAL_ERROR:
		e_error(event, "WildDuck authentication failed internally: %s", res->message);
		return PASSDB_RESULT_INTERNAL_FAILURE;
	}
	i_unreached();
}

static void wd_passdb_verify_plain(struct auth_request *request, const char *password,
				   verify_plain_callback_t *callback)
{
	const char *service = request->fields.service;
	int scope = wd_authdb_service_scope(service);
	if (scope < 0) {
		e_info(authdb_event(request), "service %s has no WildDuck scope: refused",
		       service != NULL ? service : "(none)");
		set_reason(request, NULL, "Access to requested service disabled");
		callback(PASSDB_RESULT_USER_DISABLED, request);
		return;
	}
	struct wd_auth *auth = wd_authdb_auth(&passdb_of(request)->args, request);
	if (auth == NULL) {
		callback(PASSDB_RESULT_INTERNAL_FAILURE, request);
		return;
	}
	const char *ip = request->fields.remote_ip.family != 0 ?
		net_ip2addr(&request->fields.remote_ip) : NULL;
	struct wd_auth_request req = {
		.username = request->fields.user,
		.password = password,
		.password_len = strlen(password),
		.scope = (enum wd_auth_scope)scope,
		.meta = {
			.protocol = wd_authdb_service_protocol(service),
			.ip = ip,
			.sess = request->fields.session_id,
		},
	};
	struct wd_auth_result res;
	wd_auth_authenticate(auth, &req, &res);
	enum passdb_result result = passdb_result_of(request, &res);
	safe_memset(&res, 0, sizeof(res));
	callback(result, request);
}

/* A lookup without a password: does the account exist and may it log in. */
static void wd_passdb_lookup_credentials(struct auth_request *request,
					 lookup_credentials_callback_t *callback)
{
	if (*request->wanted_credentials_scheme != '\0') {
		e_info(authdb_event(request),
		       "no %s credentials in WildDuck: use a plaintext mechanism",
		       request->wanted_credentials_scheme);
		callback(PASSDB_RESULT_SCHEME_NOT_AVAILABLE, uchar_empty_ptr, 0, request);
		return;
	}
	struct wd_auth *auth = wd_authdb_auth(&passdb_of(request)->args, request);
	if (auth == NULL) {
		callback(PASSDB_RESULT_INTERNAL_FAILURE, uchar_empty_ptr, 0, request);
		return;
	}
	struct wd_user *user = NULL;
	char *counter = NULL, *error = NULL;
	int ret = wd_auth_login_lookup(wd_auth_store(auth), request->fields.user, &user, &counter,
				       &error);
	enum passdb_result result;
	if (ret == WD_AUTH_ERR_INTERNAL) {
		e_error(authdb_event(request), "user lookup: %s", error != NULL ? error : "failed");
		result = PASSDB_RESULT_INTERNAL_FAILURE;
	} else if (ret < 0) {
		auth_request_log_unknown_user(request, AUTH_SUBSYS_DB);
		result = PASSDB_RESULT_USER_UNKNOWN;
	} else if (user->disabled || user->suspended) {
		e_info(authdb_event(request), "account %s",
		       user->disabled ? "disabled" : "suspended");
		result = PASSDB_RESULT_USER_DISABLED;
	} else {
		auth_request_set_field(request, "user", user->username, NULL);
		result = PASSDB_RESULT_OK;
	}
	wd_user_free(&user);
	free(counter);
	free(error);
	passdb_handle_credentials(result, NULL, NULL, callback, request);
}

static struct passdb_module *wd_passdb_preinit(pool_t pool, const char *args)
{
	struct wd_passdb_module *module = p_new(pool, struct wd_passdb_module, 1);
	wd_authdb_args_parse(pool, "passdb", args, NULL, &module->args);
	module->module.blocking = TRUE;
	return &module->module;
}

static void wd_passdb_deinit(struct passdb_module *_module)
{
	struct wd_passdb_module *module = (struct wd_passdb_module *)_module;
	wd_authdb_args_deinit(&module->args);
}

struct passdb_module_interface wd_passdb_wildduck = {
	.name = "wildduck",
	.preinit = wd_passdb_preinit,
	.deinit = wd_passdb_deinit,
	.verify_plain = wd_passdb_verify_plain,
	.lookup_credentials = wd_passdb_lookup_credentials,
};
