#ifndef AUTHDB_WILDDUCK_H
#define AUTHDB_WILDDUCK_H

/* The Dovecot 2.3 auth module `wildduck` (libauthdb_wildduck.so): a passdb
 * and a userdb over the WildDuck data model through libwdauth.
 *
 *   passdb { driver = wildduck  args = config=/etc/wildduck/wildduck.toml }
 *   userdb { driver = wildduck  args = config=... uid=vmail gid=vmail home=/srv/mail/%u }
 *
 * Files:
 *   authdb-module.c    module entry points, ABI version, log routing
 *   authdb-args.c      the `args =` string: our keys, config overrides, userdb template
 *   authdb-backend.c   libwdstore/libwdauth per settings, opened lazily (our headers only)
 *   authdb-service.c   Dovecot service -> WildDuck scope, protocol name, client replies
 *   passdb-wildduck.c  password verification through wd_auth_authenticate()
 *   userdb-wildduck.c  user lookups (login names, LMTP recipients) and iteration
 *
 * Both drivers are blocking (module->blocking): Dovecot runs their lookups in
 * auth-worker processes, where libmongoc's synchronous calls may wait without
 * stalling the auth process's event loop. */

#include "lib.h"
#include "passdb.h"
#include "userdb.h"

struct wd_authdb_backend;
struct userdb_template;

/* What `args =` said. */
struct wd_authdb_args {
	struct wd_authdb_backend *backend;
	/* userdb only: every key=value we do not know (uid, gid, home, mail,
	   quota_rule, ...), Dovecot's userdb template syntax with %variables */
	struct userdb_template *tmpl;
};

/* Parses args (space-separated key=value):
     config=PATH        a WildDuck-style TOML file (dbs.mongo, dbs.redis, totp.secret, ...)
     mongo=URL          dbs.mongo
     redis=URL          dbs.redis
     a.b=VALUE          any dotted configuration key, e.g. dbs.users=wd-users
   Later ones win over the file. Other keys go to the userdb template when
   `template_name` is not NULL, else they are a fatal configuration error.
   Configuration errors are fatal (i_fatal): Dovecot then refuses to start. */
void wd_authdb_args_parse(pool_t pool, const char *driver, const char *args,
			  const char *template_name, struct wd_authdb_args *args_r);
void wd_authdb_args_deinit(struct wd_authdb_args *args);

/* The libwdauth context for a lookup; NULL (logged on the request) while the
   database cannot be reached. */
struct wd_auth *wd_authdb_auth(struct wd_authdb_args *args, struct auth_request *request);

/* ---- services (authdb-service.c) ---- */

/* The WildDuck scope for a Dovecot service name (imap, pop3, submission,
   smtp), -1 for services WildDuck has no scope for. */
int wd_authdb_service_scope(const char *service);
/* The auth log's protocol name: the service in upper case ("IMAP", "POP3",
   "SUBMISSION"), in a data-stack string. */
const char *wd_authdb_service_protocol(const char *service);

extern struct passdb_module_interface wd_passdb_wildduck;
extern struct userdb_module_interface wd_userdb_wildduck;

#endif
