/* The address register (reference §2.15; WildDuck's
 * MessageHandler.updateAddressRegister): typeahead entries of the people a
 * user corresponds with. After a message is stored, unless it went to Junk
 * (or is a draft, which delivery never stores): the From addresses of an
 * incoming message, or To, Cc and Bcc when it was filed into the Sent
 * mailbox; none at all when the message has List-ID, Auto-Submitted or
 * X-Auto-Response-Suppress; addresses matching /no-?reply/i are skipped.
 * Each is upserted on {user, addrview} with `updated` and the decoded name,
 * `address` set on insert. Failures are logged and ignored, as in WildDuck:
 * the register is a convenience, never a reason to refuse mail. GMime
 * (RFC 2047 names) is initialised by the message summary that precedes. */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-store-fdb.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REGISTER_ADDRESSES 50

struct register_ctx {
	const struct deliver_txn *txn;
	const bson_oid_t *user;
	char *seen[MAX_REGISTER_ADDRESSES];
	size_t count;
};

static bool no_reply(const char *address)
{
	for (const char *p = address; *p != '\0'; p++) {
		if (g_ascii_strncasecmp(p, "noreply", 7) == 0 || g_ascii_strncasecmp(p, "no-reply", 8) == 0)
			return true;
	}
	return false;
}

static void upsert(struct register_ctx *ctx, const char *address, const char *addrview,
		   const char *name)
{
	struct wd_store *store = ctx->txn->deliver->store;
	bson_t *query = BCON_NEW("user", BCON_OID(ctx->user), "addrview", BCON_UTF8(addrview));
	bson_t update = BSON_INITIALIZER, set, insert;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	BSON_APPEND_DATE_TIME(&set, "updated", wd__deliver_now_ms());
	if (name != NULL && name[0] != '\0') {
		char *decoded = g_mime_utils_header_decode_text(NULL, name);
		if (decoded != NULL && bson_utf8_validate(decoded, strlen(decoded), false))
			BSON_APPEND_UTF8(&set, "name", decoded);
		g_free(decoded);
	}
	bson_append_document_end(&update, &set);
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &insert);
	BSON_APPEND_UTF8(&insert, "address", address);
	bson_append_document_end(&update, &insert);
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN,
							"addressregister");
	bson_error_t error;
	/* FerretDB/SQLite: the entry found in SQLite's index and updated by
	   _id, or inserted as the upsert would (_id, the filter's fields, $set,
	   $setOnInsert): no scan of the register */
	bool found;
	bson_oid_t id;
	int fret = wd_store_fdb_find_id(store, "addressregister", query, &found, &id);
	bool ok;
	if (fret == WD_OK && found) {
		bson_t *by_id = BCON_NEW("_id", BCON_OID(&id));
		ok = mongoc_collection_update_one(coll, by_id, &update, NULL, NULL, &error);
		bson_destroy(by_id);
	} else if (fret == WD_OK) {
		bson_t doc = BSON_INITIALIZER;
		bson_oid_init(&id, NULL);
		BSON_APPEND_OID(&doc, "_id", &id);
		bson_concat(&doc, query);
		bson_iter_t it, field;
		if (bson_iter_init(&it, &update)) {
			while (bson_iter_next(&it)) {
				if (bson_iter_recurse(&it, &field)) {
					while (bson_iter_next(&field))
						bson_append_iter(&doc, NULL, 0, &field);
				}
			}
		}
		ok = mongoc_collection_insert_one(coll, &doc, NULL, NULL, &error);
		bson_destroy(&doc);
	} else {
		ok = mongoc_collection_update_one(coll, query, &update, opts, NULL, &error);
	}
	if (!ok)
		wd_warning(DELIVER_LOG, "address register not updated: %s", error.message);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(opts);
	bson_destroy(&update);
	bson_destroy(query);
}

static bool address_cb(void *context, const char *address, const char *name)
{
	struct register_ctx *ctx = context;
	if (no_reply(address))
		return true;
	for (size_t i = 0; i < ctx->count; i++)
		if (strcmp(ctx->seen[i], address) == 0)
			return true;
	if (ctx->count == MAX_REGISTER_ADDRESSES)
		return false;
	ctx->seen[ctx->count++] = strdup(address);
	char *normalized = NULL, *addrview = NULL;
	const char *error;
	if (wd_address_normalize(address, 0, &normalized, &error) == 0 &&
	    wd_address_addrview(normalized, &addrview, &error) == 0)
		upsert(ctx, normalized, addrview, name);
	free(normalized);
	free(addrview);
	return true;
}

void wd__deliver_register(const struct deliver_txn *txn, const bson_oid_t *user,
			  const char *special_use)
{
	const bson_t *parsed = txn->summary.parsed_header;
	static const char *const disallowed[] = { "list-id", "auto-submitted",
						  "x-auto-response-suppress" };
	for (size_t i = 0; i < WD_N_ELEMENTS(disallowed); i++)
		if (wd__deliver_header_count(parsed, disallowed[i]) > 0)
			return;
	struct register_ctx ctx = { .txn = txn, .user = user };
	if (special_use != NULL && strcmp(special_use, "\\Sent") == 0) {
		wd__deliver_header_addresses(parsed, "to", address_cb, &ctx);
		wd__deliver_header_addresses(parsed, "cc", address_cb, &ctx);
		wd__deliver_header_addresses(parsed, "bcc", address_cb, &ctx);
	} else {
		wd__deliver_header_addresses(parsed, "from", address_cb, &ctx);
	}
	for (size_t i = 0; i < ctx.count; i++)
		free(ctx.seen[i]);
}
