/* The `args =` string of `passdb/userdb { driver = wildduck }`.
 *
 * Dovecot hands each driver its args once, in preinit, in every auth and
 * auth-worker process. We split them into three kinds:
 *   - our own keys (config, mongo, redis) and dotted configuration keys,
 *     which make the backend settings (authdb-backend.c shares one backend
 *     between the passdb and the userdb when these are equal);
 *   - for the userdb, everything else: Dovecot's userdb template
 *     (userdb-template.c, as `userdb static` uses it), so uid, gid, home,
 *     mail and any plugin setting work with %variables;
 *   - for the passdb, anything else is a configuration error.
 * Values cannot contain spaces (Dovecot's args convention). */
#include "auth-common.h"
#include "array.h"
#include "str.h"
#include "auth-request.h"
#include "userdb-template.h"

#include "authdb-wildduck.h"
#include "authdb-backend.h"

#include <stdlib.h>

static const char *config_key(const char *key)
{
	if (strcmp(key, "mongo") == 0)
		return "dbs.mongo";
	if (strcmp(key, "redis") == 0)
		return "dbs.redis";
	if (strchr(key, '.') != NULL)
		return key;
	return NULL;
}

void wd_authdb_args_parse(pool_t pool, const char *driver, const char *args,
			  const char *template_name, struct wd_authdb_args *args_r)
{
	ARRAY_TYPE(const_string) keys, values;
	string_t *rest = t_str_new(128);
	struct wd_authdb_backend_settings set = { .config_path = NULL };

	i_zero(args_r);
	t_array_init(&keys, 8);
	t_array_init(&values, 8);
	for (const char *const *arg = t_strsplit_spaces(args, " "); *arg != NULL; arg++) {
		const char *eq = strchr(*arg, '=');
		const char *key = eq == NULL ? *arg : t_strdup_until(*arg, eq);
		const char *value = eq == NULL ? "" : eq + 1;
		const char *ckey = config_key(key);

		if (strcmp(key, "config") == 0) {
			if (*value == '\0')
				i_fatal("%s wildduck: config= needs a file name", driver);
			set.config_path = p_strdup(pool, value);
		} else if (ckey != NULL) {
			if (eq == NULL)
				i_fatal("%s wildduck: %s needs a value (%s=...)", driver, key, key);
			array_push_back(&keys, &ckey);
			array_push_back(&values, &value);
		} else if (template_name != NULL) {
			if (str_len(rest) > 0)
				str_append_c(rest, ' ');
			str_append(rest, *arg);
		} else {
			i_fatal("%s wildduck: unknown argument '%s' "
				"(known: config=, mongo=, redis=, dotted configuration keys)",
				driver, *arg);
		}
	}
	unsigned int count;
	set.keys = array_get(&keys, &count);
	set.values = array_get(&values, &count);
	set.count = count;

	char *error = NULL;
	args_r->backend = wd_authdb_backend_ref(&set, &error);
	if (args_r->backend == NULL) {
		const char *msg = t_strdup(error != NULL ? error : "failed");
		free(error);
		i_fatal("%s wildduck: %s", driver, msg);
	}
	if (template_name != NULL)
		args_r->tmpl = userdb_template_build(pool, template_name, str_c(rest));
}

void wd_authdb_args_deinit(struct wd_authdb_args *args)
{
	wd_authdb_backend_unref(&args->backend);
}

struct wd_auth *wd_authdb_auth(struct wd_authdb_args *args, struct auth_request *request)
{
	char *error = NULL;
	struct wd_auth *auth = wd_authdb_backend_auth(args->backend, &error);
	if (auth == NULL) {
		e_error(authdb_event(request), "WildDuck database unavailable: %s",
			error != NULL ? error : "failed");
		free(error);
	}
	return auth;
}
