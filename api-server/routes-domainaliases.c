/* Routes: domain aliases (WildDuck's lib/api/domainaliases.js): x@alias
 * resolves as x@domain. Listing (by alias, with a partial match on either
 * side), creation, resolve by name, read and delete by id. Names are
 * normalised by libwdstore (wd_domain_normalize). */
#include "api.h"
#include "user-fields.h"

#include "wd-store-user-admin.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

static void get_aliases(struct api_request *req)
{
	bson_t filter = BSON_INITIALIZER;
	const char *query = api_str(req, "query", NULL);
	if (query != NULL && query[0] != '\0') {
		bson_t or, a, b;
		BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &or);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &a);
		api_regex_append(&a, "alias", query);
		bson_append_document_end(&or, &a);
		BSON_APPEND_DOCUMENT_BEGIN(&or, "1", &b);
		api_regex_append(&b, "domain", query);
		bson_append_document_end(&or, &b);
		bson_append_array_end(&filter, &or);
	}
	struct wd_store_page_request preq = {
		.db = WD_STORE_DB_USERS, .collection = "domainaliases", .filter = &filter,
		.sort_key = "alias",
	};
	struct wd_store_page page;
	if (!api_listing_find(req, "domainaliases", &preq, &page)) {
		bson_destroy(&filter);
		return;
	}
	json_t *results = json_array();
	for (size_t i = 0; i < page.count; i++)
		json_array_append_new(results,
				      json_pack("{s:o,s:o,s:o}", "id", api_doc_json(page.docs[i], "_id"),
						"alias", api_doc_json(page.docs[i], "alias"), "domain",
						api_doc_json(page.docs[i], "domain")));
	api_reply_ok(req, api_listing_reply(req, "domainaliases", &preq, &page, results));
	wd_store_page_free(&page);
	bson_destroy(&filter);
}

static void post_alias(struct api_request *req)
{
	bson_oid_t id;
	char *error = NULL;
	int ret = wd_store_domainalias_add(req->ctx->store, api_str(req, "alias", ""),
					   api_str(req, "domain", ""), &id, &error);
	if (ret == WD_STORE_ERR_EXISTS)
		api_reply_error(req, 400, "AliasExists", "This domain alias already exists");
	else if (ret == WD_STORE_ERR_INVALID)
		api_reply_error(req, 400, "InputValidationError", "%s", error);
	else if (ret < 0)
		api_reply_store_error(req, ret, error, "AliasNotFound");
	else
		api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id", api_json_oid(&id)));
	free(error);
}

static void resolve_alias(struct api_request *req)
{
	char *alias = wd_domain_normalize(api_str(req, "alias", ""));
	if (alias == NULL) {
		api_reply_error(req, 400, "InputValidationError", "\"alias\" must be a valid domain");
		return;
	}
	bson_t *filter = BCON_NEW("alias", BCON_UTF8(alias));
	struct wd_store_page_request preq = {
		.db = WD_STORE_DB_USERS, .collection = "domainaliases", .filter = filter,
		.sort_key = "alias", .limit = 1,
	};
	struct wd_store_page page;
	char *error = NULL;
	int ret = wd_store_page_find(req->ctx->store, &preq, &page, &error);
	if (ret < 0)
		api_reply_store_error(req, ret, error, "AliasNotFound");
	else if (page.count == 0)
		api_reply_error(req, 404, "AliasNotFound", "This alias does not exist");
	else
		api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id",
					    api_doc_json(page.docs[0], "_id")));
	if (ret == 0)
		wd_store_page_free(&page);
	free(error);
	free(alias);
	bson_destroy(filter);
}

/* The alias document of the `alias` id; false after answering. */
static bool alias_doc(struct api_request *req, bson_t *doc_r, const char *not_found)
{
	bson_oid_t id;
	api_oid(req, "alias", &id);
	char *error = NULL;
	int ret = wd_store_doc_get(req->ctx->store, WD_STORE_DB_USERS, "domainaliases", &id, doc_r,
				   &error);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		api_reply_error(req, 404, "AliasNotFound", "%s", not_found);
	else if (ret < 0)
		api_reply_store_error(req, ret, error, "AliasNotFound");
	free(error);
	return ret == 0;
}

static void get_alias(struct api_request *req)
{
	bson_t doc;
	if (!alias_doc(req, &doc, "Invalid or unknown alias"))
		return;
	api_reply_ok(req, json_pack("{s:b,s:o,s:o,s:o,s:o}", "success", 1, "id",
				    api_doc_json(&doc, "_id"), "alias", api_doc_json(&doc, "alias"),
				    "domain", api_doc_json(&doc, "domain"), "created",
				    api_doc_json(&doc, "created")));
	bson_destroy(&doc);
}

static void delete_alias(struct api_request *req)
{
	bson_t doc;
	if (!alias_doc(req, &doc, "Invalid or unknown email alias identifier"))
		return;
	bson_oid_t id;
	api_oid(req, "alias", &id);
	bson_destroy(&doc);
	char *error = NULL;
	int ret = wd_store_doc_delete(req->ctx->store, WD_STORE_DB_USERS, "domainaliases", &id,
				      &error);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		api_reply_error(req, 404, "AliasNotFound", "Invalid or unknown email alias identifier");
	else if (ret < 0)
		api_reply_store_error(req, ret, error, "AliasNotFound");
	else
		api_reply_success(req);
	free(error);
}

static const struct api_field list_fields[] = {
	{ "query", API_T_STRING, API_F_QUERY | API_F_TRIM | API_F_EMPTY_OK, 0, 255, NULL,
	  "Partial match of a domain alias or domain name" },
	API_PAGE_FIELDS,
	API_FIELDS_END
};

static const struct api_field create_fields[] = {
	{ "alias", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 255, NULL, "Domain alias" },
	{ "domain", API_T_STRING, API_F_REQUIRED | API_F_TRIM, 1, 255, NULL,
	  "The domain the alias stands for" },
	API_FIELDS_END
};

static const struct api_field resolve_fields[] = {
	{ "alias", API_T_STRING, API_F_REQUIRED | API_F_PATH, 1, 255, NULL, "Alias domain" },
	API_FIELDS_END
};

static const struct api_field id_fields[] = {
	{ "alias", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the alias" },
	API_FIELDS_END
};

const struct api_route api_routes_domainaliases[] = {
	{ API_GET, "/domainaliases", get_aliases, "domainaliases", API_READ, 0, list_fields,
	  "DomainAliases", "List registered domain aliases", "getDomainAliases" },
	{ API_POST, "/domainaliases", post_alias, "domainaliases", API_CREATE, 0, create_fields,
	  "DomainAliases", "Create a new domain alias", "createDomainAlias" },
	{ API_GET, "/domainaliases/resolve/:alias", resolve_alias, "domainaliases", API_READ, 0,
	  resolve_fields, "DomainAliases", "Resolve the ID of a domain alias", "resolveDomainAlias" },
	{ API_GET, "/domainaliases/:alias", get_alias, "domainaliases", API_READ, 0, id_fields,
	  "DomainAliases", "Request alias information", "getDomainAlias" },
	{ API_DELETE, "/domainaliases/:alias", delete_alias, "domainaliases", API_DELETE_ACTION, 0,
	  id_fields, "DomainAliases", "Delete a domain alias", "deleteDomainAlias" },
	API_ROUTES_END
};
