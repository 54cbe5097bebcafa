/* userdb wildduck: who a name is, for the mail processes.
 *
 * Lookups come after a passdb login (the name is then already the WildDuck
 * username), from LMTP for a recipient address (Dovecot has cut the
 * "+detail" with recipient_delimiter; WildDuck's resolution ignores dots
 * and labels anyway), and from doveadm. Names are resolved as WildDuck
 * does:
 *   - service lmtp with an address: the address as delivery resolves it
 *     (exact, domain alias, then wildcards and "local@*"); an address that
 *     only forwards (no owner) is not a user here;
 *   - otherwise as a login name: the username, or the owner of the address
 *     (no wildcards), else a username that looks like an address.
 *
 * The reply:
 *   user              the WildDuck username (Dovecot's canonical name)
 *   uid, gid, home, mail, ...   from the template in args (%variables work,
 *                     with the canonical name): the mail processes need a
 *                     uid/gid; home is optional (stateless setups leave it out)
 *   wildduck_user     the user's id (24 hex digits), so the storage and LMTP
 *                     plugins need no second lookup (they read it with
 *                     mail_user_plugin_getenv())
 *   wildduck_disabled / wildduck_suspended = yes   when so; the passdb
 *                     refuses such logins, delivery decides on its own
 *
 * Iteration (doveadm -A) lists every username in _id order, a page at a
 * time. */
#include "auth-common.h"
#include "userdb.h"
#include "auth-request.h"
#include "userdb-template.h"

#include "authdb-wildduck.h"
#include "wd-auth-address.h"
#include "wd-auth-login.h"
#include "wd-store-user.h"

#include <stdlib.h>

#define ITERATE_PAGE 250

struct wd_userdb_module {
	struct userdb_module module;
	struct wd_authdb_args args;
};

static struct wd_userdb_module *userdb_of(struct auth_request *request)
{
	return (struct wd_userdb_module *)request->userdb->userdb;
}

/* 0 and *user_r, or a userdb result for "unknown" or "failed". */
static enum userdb_result find_user(struct auth_request *request, struct wd_store *store,
				    struct wd_user **user_r)
{
	const char *name = request->fields.user;
	char *error = NULL;
	int ret;

	*user_r = NULL;
	if (null_strcmp(request->fields.service, "lmtp") == 0 && strchr(name, '@') != NULL) {
		struct wd_auth_resolved resolved = { .address = NULL };
		ret = wd_auth_address_resolve(store, name, WD_RESOLVE_WILDCARD, &resolved, &error);
		if (ret == 0 && !resolved.address->has_user) {
			e_info(authdb_event(request), "%s forwards only: no mailbox user", name);
			ret = WD_AUTH_ERR_NOT_FOUND;
		} else if (ret == 0) {
			free(error);
			error = NULL;
			ret = wd_store_user_get(store, &resolved.address->user, user_r, &error);
			if (ret == WD_STORE_ERR_NOT_FOUND)
				ret = WD_AUTH_ERR_NOT_FOUND;
			else if (ret < 0)
				ret = WD_AUTH_ERR_INTERNAL;
		}
		wd_auth_resolved_free(&resolved);
	} else {
		char *counter = NULL;
		ret = wd_auth_login_lookup(store, name, user_r, &counter, &error);
		free(counter);
	}
	enum userdb_result result = USERDB_RESULT_OK;
	if (ret == WD_AUTH_ERR_NOT_FOUND || ret == WD_AUTH_ERR_INVALID) {
		auth_request_log_unknown_user(request, AUTH_SUBSYS_DB);
		result = USERDB_RESULT_USER_UNKNOWN;
	} else if (ret < 0) {
		e_error(authdb_event(request), "user lookup: %s", error != NULL ? error : "failed");
		result = USERDB_RESULT_INTERNAL_FAILURE;
	}
	free(error);
	if (result != USERDB_RESULT_OK)
		wd_user_free(user_r);
	return result;
}

static void wd_userdb_lookup(struct auth_request *request, userdb_callback_t *callback)
{
	struct wd_userdb_module *module = userdb_of(request);
	struct wd_auth *auth = wd_authdb_auth(&module->args, request);
	if (auth == NULL) {
		callback(USERDB_RESULT_INTERNAL_FAILURE, request);
		return;
	}
	struct wd_user *user = NULL;
	enum userdb_result result = find_user(request, wd_auth_store(auth), &user);
	if (result != USERDB_RESULT_OK) {
		callback(result, request);
		return;
	}
	char hex[25];
	bson_oid_to_string(&user->id, hex);
	/* the canonical name first: the template's %u means it */
	auth_request_set_userdb_field(request, "user", user->username);
	const char *error;
	if (userdb_template_export(module->args.tmpl, request, &error) < 0) {
		e_error(authdb_event(request), "userdb args: %s", error);
		result = USERDB_RESULT_INTERNAL_FAILURE;
	} else {
		auth_request_set_userdb_field(request, "wildduck_user", hex);
		if (user->disabled)
			auth_request_set_userdb_field(request, "wildduck_disabled", "yes");
		if (user->suspended)
			auth_request_set_userdb_field(request, "wildduck_suspended", "yes");
	}
	wd_user_free(&user);
	callback(result, request);
}

/* ---- iteration ---- */

struct wd_userdb_iterate_context {
	struct userdb_iterate_context ctx;
	struct wd_store *store;
	struct wd_user_list page;
	size_t next;
	bson_oid_t after;
	bool started, done;
};

static struct userdb_iterate_context *
wd_userdb_iterate_init(struct auth_request *request, userdb_iter_callback_t *callback,
		       void *context)
{
	struct wd_userdb_iterate_context *ctx = i_new(struct wd_userdb_iterate_context, 1);
	ctx->ctx.auth_request = request;
	ctx->ctx.callback = callback;
	ctx->ctx.context = context;
	auth_request_ref(request);
	struct wd_auth *auth = wd_authdb_auth(&userdb_of(request)->args, request);
	if (auth == NULL)
		ctx->ctx.failed = TRUE;
	else
		ctx->store = wd_auth_store(auth);
	return &ctx->ctx;
}

static void wd_userdb_iterate_next(struct userdb_iterate_context *_ctx)
{
	struct wd_userdb_iterate_context *ctx = (struct wd_userdb_iterate_context *)_ctx;

	if (!_ctx->failed && !ctx->done && ctx->next >= ctx->page.count) {
		char *error = NULL;
		wd_user_list_free(&ctx->page);
		ctx->next = 0;
		if (wd_store_user_list(ctx->store, ctx->started ? &ctx->after : NULL, ITERATE_PAGE,
				       &ctx->page, &error) < 0) {
			e_error(authdb_event(_ctx->auth_request), "iterate: %s",
				error != NULL ? error : "failed");
			_ctx->failed = TRUE;
		}
		free(error);
		ctx->started = true;
		ctx->done = ctx->page.count == 0;
	}
	if (_ctx->failed || ctx->done) {
		_ctx->callback(NULL, _ctx->context);
		return;
	}
	const struct wd_user *user = &ctx->page.items[ctx->next++];
	ctx->after = user->id;
	_ctx->callback(user->username, _ctx->context);
}

static int wd_userdb_iterate_deinit(struct userdb_iterate_context *_ctx)
{
	struct wd_userdb_iterate_context *ctx = (struct wd_userdb_iterate_context *)_ctx;
	int ret = _ctx->failed ? -1 : 0;
	wd_user_list_free(&ctx->page);
	auth_request_unref(&_ctx->auth_request);
	i_free(ctx);
	return ret;
}

static struct userdb_module *wd_userdb_preinit(pool_t pool, const char *args)
{
	struct wd_userdb_module *module = p_new(pool, struct wd_userdb_module, 1);
	wd_authdb_args_parse(pool, "userdb", args, "wildduck", &module->args);
	module->module.blocking = TRUE;
	return &module->module;
}

static void wd_userdb_deinit(struct userdb_module *_module)
{
	struct wd_userdb_module *module = (struct wd_userdb_module *)_module;
	wd_authdb_args_deinit(&module->args);
}

struct userdb_module_interface wd_userdb_wildduck = {
	.name = "wildduck",
	.preinit = wd_userdb_preinit,
	.deinit = wd_userdb_deinit,
	.lookup = wd_userdb_lookup,
	.iterate_init = wd_userdb_iterate_init,
	.iterate_next = wd_userdb_iterate_next,
	.iterate_deinit = wd_userdb_iterate_deinit,
};
