/* Routes about the API itself: GET /health (database and Redis reachable),
 * GET /openapi.json (openapi.c) and GET /api-methods (the route list, as
 * WildDuck's). */
#include "api.h"
#include "openapi.h"
#include "updates.h"

#include "wd-store.h"

#include <hiredis/hiredis.h>
#include <mongoc/mongoc.h>
#include <string.h>

static void get_health(struct api_request *req)
{
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	bson_t ping = BSON_INITIALIZER;
	BSON_APPEND_INT32(&ping, "ping", 1);
	bson_error_t error;
	bool mongo = mongoc_client_command_simple(client, wd_store_db_name(store, WD_STORE_DB_MAIN),
						  &ping, NULL, NULL, &error);
	bson_destroy(&ping);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	const char *argv[] = { "PING" };
	struct redisReply *reply = wd_store_redis_argv(store, 1, argv, NULL);
	bool redis = reply != NULL && reply->type != REDIS_REPLY_ERROR;
	if (reply != NULL)
		freeReplyObject(reply);
	if (!mongo) {
		api_reply_error(req, 500, "HealthcheckFailed", "Database unreachable");
		return;
	}
	if (!redis) {
		api_reply_error(req, 500, "HealthcheckFailed", "Redis unreachable");
		return;
	}
	struct api_updates_stats stats;
	api_updates_get_stats(req->ctx->updates, &stats);
	api_reply_ok(req, json_pack("{s:b,s:i,s:b}", "success", 1, "updateStreams",
				    (json_int_t)stats.streams, "subscribed", stats.subscribed));
}

static void get_openapi(struct api_request *req)
{
	json_t *doc = api_openapi_document();
	char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (text == NULL) {
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	api_reply_bytes(req, "application/json; charset=utf-8", text, strlen(text), NULL);
	free(text);
}

static void get_api_methods(struct api_request *req)
{
	size_t count;
	const struct api_route *const *routes = api_routes_all(&count);
	json_t *list = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s?}", "method",
						      api_method_name(routes[i]->method), "path",
						      routes[i]->path, "name",
						      routes[i]->name != NULL ? routes[i]->name : "",
						      "summary", routes[i]->summary));
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "methods", list));
}

const struct api_route api_routes_meta[] = {
	{ API_GET, "/health", get_health, "health", API_READ, API_R_PUBLIC, NULL, "Health",
	  "Check that the database and Redis answer", "getHealth" },
	{ API_GET, "/openapi.json", get_openapi, "api", API_READ, API_R_PUBLIC, NULL, "API",
	  "This document: the OpenAPI 3 description of every route", "getOpenApi" },
	{ API_GET, "/api-methods", get_api_methods, "api", API_READ, 0, NULL, "API",
	  "List every route (method, path, name)", "getApiMethods" },
	API_ROUTES_END
};
