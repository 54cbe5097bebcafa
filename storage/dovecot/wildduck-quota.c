/* The `wildduck` quota backend for Dovecot's quota plugin
 * (lib11_wildduck_quota_plugin.so; quota = wildduck:User quota).
 *
 * WildDuck's quota is one number per user (users.quota, bytes; 0 = the
 * default of 1 GiB) against users.storageUsed, which libwdstore keeps with
 * atomic $inc on every store, copy and delete (reference §4.9). So this
 * backend only reads: STORAGE (IMAP GETQUOTA, in KiB as WildDuck answers)
 * is storageUsed, its limit the user's quota; update() has nothing to do
 * (auto_updating). There is no message-count quota in WildDuck.
 *
 * The numbers come from the storage plugin (wildduck_quota_usage(),
 * exported by lib05_wildduck_plugin.so, which Dovecot loads first with
 * RTLD_GLOBAL), so both plugins share one database handle. */
#include "lib.h"
#include "module-dir.h"
#include "mail-user.h"
#include "quota-private.h"

#include "config.h"
#if DOVECOT_VERSION_MAJOR != 2 || DOVECOT_VERSION_MINOR != 3 || DOVECOT_VERSION_MICRO != 19
#error "the wildduck plugins are written for Dovecot 2.3.19 (Debian 12)"
#endif

int wildduck_quota_usage(struct mail_user *user, uint64_t *used_r, uint64_t *limit_r,
			 const char **error_r);

const char *wildduck_quota_plugin_version = DOVECOT_ABI_VERSION;
const char *wildduck_quota_plugin_dependencies[] = { "quota", "wildduck", NULL };
void wildduck_quota_plugin_init(struct module *module);
void wildduck_quota_plugin_deinit(void);

extern struct quota_backend quota_backend_wildduck;

static struct quota_root *wildduck_quota_alloc(void)
{
	return i_new(struct quota_root, 1);
}

static int wildduck_quota_init(struct quota_root *root, const char *args, const char **error_r)
{
	root->auto_updating = TRUE;
	event_set_append_log_prefix(root->backend.event, "quota-wildduck: ");
	return quota_root_default_init(root, args, error_r);
}

static void wildduck_quota_deinit(struct quota_root *root)
{
	i_free(root);
}

static int wildduck_quota_init_limits(struct quota_root *root, const char **error_r)
{
	uint64_t used, limit;

	if (wildduck_quota_usage(root->quota->user, &used, &limit, error_r) < 0)
		return -1;
	root->bytes_limit = limit > INT64_MAX ? 0 : (int64_t)limit;
	root->count_limit = 0;
	return 0;
}

static const char *const *wildduck_quota_get_resources(struct quota_root *root ATTR_UNUSED)
{
	static const char *resources[] = { QUOTA_NAME_STORAGE_KILOBYTES, NULL };
	return resources;
}

static enum quota_get_result
wildduck_quota_get_resource(struct quota_root *root, const char *name, uint64_t *value_r,
			    const char **error_r)
{
	uint64_t used, limit;

	if (strcmp(name, QUOTA_NAME_STORAGE_BYTES) != 0) {
		*error_r = QUOTA_UNKNOWN_RESOURCE_ERROR_STRING;
		return QUOTA_GET_RESULT_UNKNOWN_RESOURCE;
	}
	if (wildduck_quota_usage(root->quota->user, &used, &limit, error_r) < 0)
		return QUOTA_GET_RESULT_INTERNAL_ERROR;
	*value_r = used;
	return QUOTA_GET_RESULT_LIMITED;
}

static int wildduck_quota_update(struct quota_root *root ATTR_UNUSED,
				 struct quota_transaction_context *ctx ATTR_UNUSED,
				 const char **error_r ATTR_UNUSED)
{
	/* libwdstore changed storageUsed with the write itself */
	return 0;
}

struct quota_backend quota_backend_wildduck = {
	.name = "wildduck",
	.v = {
		.alloc = wildduck_quota_alloc,
		.init = wildduck_quota_init,
		.deinit = wildduck_quota_deinit,
		.init_limits = wildduck_quota_init_limits,
		.get_resources = wildduck_quota_get_resources,
		.get_resource = wildduck_quota_get_resource,
		.update = wildduck_quota_update,
	},
};

void wildduck_quota_plugin_init(struct module *module ATTR_UNUSED)
{
	quota_backend_register(&quota_backend_wildduck);
}

void wildduck_quota_plugin_deinit(void)
{
	quota_backend_unregister(&quota_backend_wildduck);
}
