/* The wildduck mail plugin: registers the `wildduck` mail storage class and
 * mailbox list, and the per-user hooks (wildduck-user.c). Loaded with
 * mail_plugins = $mail_plugins wildduck; mail_location = wildduck:
 * (see conf.d/10-wildduck.conf). */
#include "wildduck-storage.h"

#include "module-dir.h"
#include "mail-storage.h"

#include "wd-log.h"
#include "wildduck-dovecot-log.h"

const char *wildduck_plugin_version = DOVECOT_ABI_VERSION;

void wildduck_plugin_init(struct module *module);
void wildduck_plugin_deinit(void);

void wildduck_plugin_init(struct module *module)
{
	/* libwdstore's warnings and errors, into Dovecot's log */
	wd_log_init("wildduck", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	wildduck_dovecot_log_init();
	mail_storage_class_register(&wildduck_storage);
	mailbox_list_register(&wildduck_mailbox_list);
	wildduck_user_hooks_init(module);
}

void wildduck_plugin_deinit(void)
{
	wildduck_user_hooks_deinit();
	mailbox_list_unregister(&wildduck_mailbox_list);
	mail_storage_class_unregister(&wildduck_storage);
	wildduck_dovecot_log_deinit();
}
