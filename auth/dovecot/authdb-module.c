/* Entry points of libauthdb_wildduck.so, loaded by Dovecot's auth process
 * from <moduledir>/auth when a passdb or userdb says `driver = wildduck`
 * (module-dir.c: the file name gives the module name "authdb_wildduck",
 * whose _init, _deinit and _version symbols must exist).
 *
 * The version string is checked by Dovecot at load time against its own
 * ABI; the build refuses other Dovecot headers (meson.build and the #if
 * below), because the module uses private auth structures whose layout
 * changes between releases.
 *
 * Logging: libwdauth/libwdstore and libmongoc are routed into Dovecot's log
 * (common/dovecot/wildduck-dovecot-log.h), so their lines carry the
 * auth-worker prefix instead of appearing as raw stderr; the routing is
 * removed in deinit, before Dovecot unloads us. */
#include "auth-common.h"
#include "module-dir.h"

#include "authdb-wildduck.h"
#include "wildduck-dovecot-log.h"

#if DOVECOT_VERSION_MAJOR != 2 || DOVECOT_VERSION_MINOR != 3 || DOVECOT_VERSION_MICRO != 19
#  error "libauthdb_wildduck is written for Dovecot 2.3.19 (ABI 2.3.ABIv19)"
#endif

void authdb_wildduck_init(struct module *module);
void authdb_wildduck_deinit(void);
extern const char *authdb_wildduck_version;

const char *authdb_wildduck_version = DOVECOT_ABI_VERSION;

void authdb_wildduck_init(struct module *module ATTR_UNUSED)
{
	wildduck_dovecot_log_init();
	passdb_register_module(&wd_passdb_wildduck);
	userdb_register_module(&wd_userdb_wildduck);
}

void authdb_wildduck_deinit(void)
{
	passdb_unregister_module(&wd_passdb_wildduck);
	userdb_unregister_module(&wd_userdb_wildduck);
	wildduck_dovecot_log_deinit();
}
