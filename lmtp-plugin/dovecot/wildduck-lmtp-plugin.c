/* Entry points of lib95_wildduck_lmtp_plugin.so and the LMTP client hook
 * (wildduck-lmtp.h explains the choice of hook points).
 *
 * Dovecot's lmtp loads mail_plugins when it creates its first client
 * (client_load_modules), runs our init, which registers the client-created
 * hook, and then calls that hook for the very client it is creating, before
 * the SMTP connection starts. The hook:
 *   - opens the process's pipeline (or leaves it to RCPT when the database
 *     is down: every RCPT then answers 451 until it can be opened);
 *   - advertises SIZE <lmtp.maxMB> in LHLO, lets Dovecot's SMTP server
 *     refuse a larger MAIL SIZE=, and bounds what DATA may spool at all
 *     (client_set_limits);
 *   - puts our cmd_rcpt, cmd_data, trans_start and trans_free into
 *     client->v, keeping Dovecot's in the module context: the transaction
 *     callbacks chain to Dovecot's, cmd_rcpt and cmd_data replace them
 *     (wildduck-lmtp.h says why).
 *
 * Logging: libwddeliver/libwdstore and libmongoc go into Dovecot's log with
 * the process's prefix (common/dovecot/wildduck-dovecot-log.h); the routing
 * is removed in deinit, before Dovecot unloads us. */
#include "wildduck-lmtp.h"

#include "module-dir.h"
#include "smtp-address.h"
#include "smtp-server-private.h"

#include "wildduck-dovecot-log.h"

#include <bson/bson.h>

void wildduck_lmtp_plugin_init(struct module *module);
void wildduck_lmtp_plugin_deinit(void);
extern const char *wildduck_lmtp_plugin_version;
extern const char wildduck_lmtp_plugin_binary_dependency[];

const char *wildduck_lmtp_plugin_version = DOVECOT_ABI_VERSION;
/* only the lmtp binary has the hooks we use (module-dir.c reads the
   symbol's address as the string) */
const char wildduck_lmtp_plugin_binary_dependency[] = "lmtp";

struct wildduck_lmtp_client_module wildduck_lmtp_client_module =
	MODULE_CONTEXT_INIT(&lmtp_module_register);
struct wildduck_lmtp_recipient_module wildduck_lmtp_recipient_module =
	MODULE_CONTEXT_INIT(&lmtp_recipient_module_register);

static lmtp_client_created_func_t *next_client_created;

/* ---- the transaction ---- */

static void wildduck_lmtp_trans_start(struct client *client,
				      struct smtp_server_transaction *trans)
{
	struct wildduck_lmtp_client *wclient = WILDDUCK_LMTP_CLIENT(client);
	bson_oid_t oid;

	bson_oid_init(&oid, NULL);
	bson_oid_to_string(&oid, wclient->transaction_id);
	wclient->accepted = 0;
	wclient->refused = 0;
	wclient->delivered = FALSE;
	/* no size check by Dovecot while the transaction runs (see
	   client_set_limits) */
	client->conn->set.max_message_size = 0;
	wclient->module_ctx.super.trans_start(client, trans);
}

static void wildduck_lmtp_trans_free(struct client *client,
				     struct smtp_server_transaction *trans)
{
	struct wildduck_lmtp_client *wclient = WILDDUCK_LMTP_CLIENT(client);

	/* as wd-server's engine: a transaction that ends without reaching
	   the pipeline (RSET, QUIT, a lost connection) is logged when it had
	   recipients */
	if (!wclient->delivered && (wclient->accepted > 0 || wclient->refused > 0)) {
		e_info(client->event, "wildduck: transaction %s from=<%s> rcpts=%u refused=%u: "
		       "not delivered", wclient->transaction_id,
		       smtp_address_encode(trans->mail_from), wclient->accepted,
		       wclient->refused);
	}
	wclient->accepted = 0;
	wclient->refused = 0;
	wclient->delivered = FALSE;
	/* the next MAIL's SIZE= is checked again */
	if (wclient->max_size > 0)
		client->conn->set.max_message_size = wclient->max_size;
	wclient->module_ctx.super.trans_free(client, trans);
}

/* ---- the client ---- */

/* The message size limit (the pipeline's, from lmtp.maxMB).
 *
 * LHLO advertises it as SIZE and Dovecot's smtp-server refuses a larger
 * SIZE= at MAIL (its 552 5.2.3) because conn->set.max_message_size holds it
 * until a transaction starts. During the transaction it is 0: Dovecot
 * 2.3.19's own check while DATA is read, smtp_server_cmd_data_check_size(),
 * panics in LMTP ("smtp-server-command.c: unreached", found by
 * tests/dovecot), which is why Dovecot's lmtp never sets the limit.
 * Instead our cmd_data answers a message past the limit with wd-server's
 * 552 5.3.4 for every recipient, after Dovecot has spooled it; Dovecot's
 * absolute limit (the command parser's max_data_size, read when the
 * connection starts) stops the spool at 4 x the limit and closes the
 * connection, as wd-server drops at most that much. Before the pipeline is
 * open we know no limit: no SIZE, and the spool is bounded by the store's
 * absolute message limit. */
static void client_set_limits(struct client *client, uint64_t max_size)
{
	struct smtp_server_connection *conn = client->conn;
	struct wildduck_lmtp_client *wclient = WILDDUCK_LMTP_CLIENT(client);

	wclient->max_size = max_size;
	if (max_size > 0) {
		conn->set.capabilities |= SMTP_CAPABILITY_SIZE;
		conn->set.max_message_size = max_size;
	} else {
		max_size = WILDDUCK_LMTP_ABSOLUTE_MAX;
	}
	conn->set.command_limits.max_data_size = 4 * max_size;
}

static void wildduck_lmtp_client_created(struct client **_client)
{
	struct client *client = *_client;
	struct wildduck_lmtp_client *wclient;
	const char *error;

	if (next_client_created != NULL)
		next_client_created(_client);

	wclient = p_new(client->pool, struct wildduck_lmtp_client, 1);
	wclient->client = client;
	wclient->module_ctx.super = client->v;
	MODULE_CONTEXT_SET(client, wildduck_lmtp_client_module, wclient);

	client->v.cmd_rcpt = wildduck_lmtp_cmd_rcpt;
	client->v.cmd_data = wildduck_lmtp_cmd_data;
	client->v.trans_start = wildduck_lmtp_trans_start;
	client->v.trans_free = wildduck_lmtp_trans_free;

	wclient->pipeline = wildduck_lmtp_pipeline_get(client, &error);
	if (wclient->pipeline == NULL) {
		e_error(client->event, "wildduck: the delivery pipeline is not available "
			"(RCPT answers 451 until it is): %s", error);
		client_set_limits(client, 0);
	} else {
		client_set_limits(client, wclient->pipeline->max_size);
	}
}

void wildduck_lmtp_plugin_init(struct module *module ATTR_UNUSED)
{
	wildduck_dovecot_log_init();
	next_client_created = lmtp_client_created_hook_set(wildduck_lmtp_client_created);
}

void wildduck_lmtp_plugin_deinit(void)
{
	lmtp_client_created_hook_set(next_client_created);
	wildduck_lmtp_pipelines_close();
	wildduck_dovecot_log_deinit();
}
