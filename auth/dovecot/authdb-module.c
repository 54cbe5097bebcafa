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
 * Logging: libwdauth/libwdstore log through wd_log and libmongoc through its
 * own handler; both are routed into Dovecot's log (i_info, i_error, ...),
 * so their lines carry the auth-worker prefix instead of appearing as raw
 * stderr. Only warnings and errors of libmongoc are kept (the rest is its
 * chatter). The handlers are removed in deinit, before Dovecot unloads us. */
#include "auth-common.h"
#include "module-dir.h"

#include "authdb-wildduck.h"
#include "wd-log.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <unistd.h>

#if DOVECOT_VERSION_MAJOR != 2 || DOVECOT_VERSION_MINOR != 3 || DOVECOT_VERSION_MICRO != 19
#  error "libauthdb_wildduck is written for Dovecot 2.3.19 (ABI 2.3.ABIv19)"
#endif

void authdb_wildduck_init(struct module *module);
void authdb_wildduck_deinit(void);
extern const char *authdb_wildduck_version;

const char *authdb_wildduck_version = DOVECOT_ABI_VERSION;

static void wd_log_to_dovecot(enum wd_log_level level, const char *component, const char *text,
			      void *context ATTR_UNUSED)
{
	switch (level) {
	case WD_LOG_DEBUG:
		i_debug("wildduck %s: %s", component, text);
		break;
	case WD_LOG_INFO:
		i_info("wildduck %s: %s", component, text);
		break;
	case WD_LOG_WARNING:
		i_warning("wildduck %s: %s", component, text);
		break;
	case WD_LOG_ERROR:
	case WD_LOG_FATAL:
		i_error("wildduck %s: %s", component, text);
		break;
	}
}

static pthread_t dovecot_thread;

static void mongoc_log_to_dovecot(mongoc_log_level_t level, const char *domain,
				  const char *message, void *context ATTR_UNUSED)
{
	if (level > MONGOC_LOG_LEVEL_WARNING)
		return;
	if (!pthread_equal(pthread_self(), dovecot_thread)) {
		/* libmongoc's server monitors run in threads of their own, and
		   Dovecot's logging is not thread-safe: a plain stderr line,
		   which Dovecot's log process records as an error */
		char line[1024];
		int n = snprintf(line, sizeof(line), "wildduck mongoc %s: %s\n", domain, message);
		if (n <= 0)
			return;
		if ((size_t)n >= sizeof(line)) {
			n = sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		ssize_t ret = write(STDERR_FILENO, line, (size_t)n);
		(void)ret;
		return;
	}
	if (level <= MONGOC_LOG_LEVEL_CRITICAL)
		i_error("wildduck mongoc %s: %s", domain, message);
	else if (level == MONGOC_LOG_LEVEL_WARNING && strstr(message, "\"endSessions\"") == NULL)
		/* (FerretDB has no endSessions: every pool shutdown would warn) */
		i_warning("wildduck mongoc %s: %s", domain, message);
}

void authdb_wildduck_init(struct module *module ATTR_UNUSED)
{
	dovecot_thread = pthread_self();
	wd_log_set_handler(wd_log_to_dovecot, NULL);
	mongoc_log_set_handler(mongoc_log_to_dovecot, NULL);
	passdb_register_module(&wd_passdb_wildduck);
	userdb_register_module(&wd_userdb_wildduck);
}

void authdb_wildduck_deinit(void)
{
	passdb_unregister_module(&wd_passdb_wildduck);
	userdb_unregister_module(&wd_userdb_wildduck);
	mongoc_log_set_handler(NULL, NULL);
	wd_log_set_handler(NULL, NULL);
}
