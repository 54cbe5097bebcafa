/* The wildduck mail plugin: registers the `wildduck` mail storage class and
 * mailbox list, and the per-user hooks (wildduck-user.c). Loaded with
 * mail_plugins = $mail_plugins wildduck; mail_location = wildduck:
 * (see conf.d/10-wildduck.conf). */
#include "wildduck-storage.h"

#include "module-dir.h"
#include "mail-storage.h"

#include "wd-log.h"

#include <mongoc/mongoc.h>
#include <unistd.h>

const char *wildduck_plugin_version = DOVECOT_ABI_VERSION;

void wildduck_plugin_init(struct module *module);
void wildduck_plugin_deinit(void);

/* libmongoc logs from its monitoring threads too, where Dovecot's logging
   functions must not be called: only errors, written to stderr (which the
   Dovecot log process records as errors) in one write(2). Its warnings
   (e.g. "endSessions" refused by FerretDB at every exit) are dropped. */
static void wildduck_mongoc_log(mongoc_log_level_t level, const char *domain,
				const char *message, void *context ATTR_UNUSED)
{
	char line[1024];
	int n;

	if (level > MONGOC_LOG_LEVEL_ERROR)
		return;
	n = snprintf(line, sizeof(line), "wildduck: mongoc %s: %s\n", domain, message);
	if (n > 0)
		(void)write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void wildduck_plugin_init(struct module *module)
{
	/* libwdstore's informational lines would reach Dovecot's log as
	   errors (stderr): keep its warnings and errors only */
	wd_log_init("wildduck", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	mongoc_log_set_handler(wildduck_mongoc_log, NULL);
	mail_storage_class_register(&wildduck_storage);
	mailbox_list_register(&wildduck_mailbox_list);
	wildduck_user_hooks_init(module);
}

void wildduck_plugin_deinit(void)
{
	wildduck_user_hooks_deinit();
	mailbox_list_unregister(&wildduck_mailbox_list);
	mail_storage_class_unregister(&wildduck_storage);
}
