/* Access tokens and roles (access.h). The role table is WildDuck's
 * config/roles.json as data: per role and resource, which actions are
 * granted for any user and which for the caller's own data only. */
#include "access.h"

#include "wd-log.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define C (1u << API_CREATE)
#define R (1u << API_READ)
#define U (1u << API_UPDATE)
#define D (1u << API_DELETE_ACTION)
#define CRUD (C | R | U | D)

struct grant {
	const char *resource;
	unsigned any; /* actions on any user's data */
	unsigned own; /* actions on the caller's own data */
};

static const struct grant root_grants[] = {
	{ "*", CRUD, 0 },
	{ NULL, 0, 0 },
};
static const struct grant manager_grants[] = {
	{ "addresslisting", R, 0 }, { "addresses", CRUD, 0 }, { "authentication", C | R, 0 },
	{ "userlisting", R, 0 }, { "users", CRUD, 0 }, { "asps", C | R | D, 0 },
	{ "autoreplies", CRUD, 0 }, { "filters", CRUD, 0 }, { "domainaccess", CRUD, 0 },
	{ "domainaliases", CRUD, 0 },
	{ NULL, 0, 0 },
};
static const struct grant webmail_grants[] = {
	{ "addresses", CRUD, 0 }, { "authentication", C | R, 0 }, { "users", R | U, 0 },
	{ "asps", C | R | D, 0 }, { "messages", CRUD, 0 }, { "attachments", CRUD, 0 },
	{ "storage", CRUD, 0 }, { "mailboxes", CRUD, 0 }, { "autoreplies", CRUD, 0 },
	{ "filters", CRUD, 0 }, { "domainaccess", CRUD, 0 },
	{ NULL, 0, 0 },
};
static const struct grant user_grants[] = {
	{ "addresslisting", 0, R }, { "addresses", 0, CRUD }, { "authentication", 0, C | R },
	{ "userlisting", 0, R }, { "users", 0, R | U }, { "asps", 0, C | R | D },
	{ "messages", 0, CRUD }, { "attachments", 0, CRUD }, { "storage", 0, CRUD },
	{ "mailboxes", 0, CRUD }, { "autoreplies", 0, CRUD }, { "filters", 0, CRUD },
	{ NULL, 0, 0 },
};

static const struct {
	const char *name;
	const struct grant *grants;
} roles[] = {
	[API_ROLE_ROOT] = { "root", root_grants },
	[API_ROLE_MANAGER] = { "manager", manager_grants },
	[API_ROLE_WEBMAIL] = { "webmail", webmail_grants },
	[API_ROLE_USER] = { "user", user_grants },
};

int api_role_parse(const char *name)
{
	for (int i = 0; i < API_ROLE_NONE; i++)
		if (strcmp(roles[i].name, name) == 0)
			return i;
	return -1;
}

const char *api_role_name(enum api_role_id role)
{
	return role < API_ROLE_NONE ? roles[role].name : "none";
}

static bool granted(enum api_role_id role, const char *resource, enum api_action action,
		    bool own)
{
	if (role >= API_ROLE_NONE)
		return false;
	if (resource == NULL) /* any caller the token check let in */
		return true;
	unsigned bit = 1u << action;
	for (const struct grant *g = roles[role].grants; g->resource != NULL; g++) {
		if (strcmp(g->resource, "*") != 0 && strcmp(g->resource, resource) != 0)
			continue;
		if ((g->any & bit) != 0 || (own && (g->own & bit) != 0))
			return true;
	}
	return false;
}

/* ---- tokens ---- */

static void hex(const unsigned char *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

static void sha256_hex(const char *text, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
	hex(md, 32, out);
}

/* WildDuck's signature: HMAC-SHA256(secret, JSON.stringify({token, user,
   authVersion, role})), hex; authVersion left out for tokens without it. */
static void token_signature(const char *secret, const char *token, const char *user,
			    bool has_version, int64_t version, const char *role, char out[65])
{
	char data[512];
	if (has_version)
		snprintf(data, sizeof(data),
			 "{\"token\":\"%s\",\"user\":\"%s\",\"authVersion\":%lld,\"role\":\"%s\"}",
			 token, user, (long long)version, role);
	else
		snprintf(data, sizeof(data), "{\"token\":\"%s\",\"user\":\"%s\",\"role\":\"%s\"}",
			 token, user, role);
	unsigned char md[32];
	unsigned int len = 0;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, strlen(data),
	     md, &len);
	hex(md, 32, out);
}

static bool is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct token_data {
	char user[25];
	char role[32];
	char s[65];
	int64_t created;
	int64_t ttl;
	bool has_version;
	int64_t version;
};

/* HGETALL tn:token:<hash>: 1 found, 0 not found, -1 Redis trouble. */
static int token_load(struct api_context *ctx, const char *hash, struct token_data *data)
{
	char key[80];
	snprintf(key, sizeof(key), "tn:token:%s", hash);
	const char *argv[] = { "HGETALL", key };
	redisReply *reply = wd_store_redis_argv(ctx->store, 2, argv, NULL);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		if (reply != NULL)
			freeReplyObject(reply);
		return -1;
	}
	memset(data, 0, sizeof(*data));
	for (size_t i = 0; i + 1 < reply->elements; i += 2) {
		const redisReply *k = reply->element[i], *v = reply->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "user") == 0)
			snprintf(data->user, sizeof(data->user), "%s", v->str);
		else if (strcmp(k->str, "role") == 0)
			snprintf(data->role, sizeof(data->role), "%s", v->str);
		else if (strcmp(k->str, "s") == 0)
			snprintf(data->s, sizeof(data->s), "%s", v->str);
		else if (strcmp(k->str, "created") == 0)
			data->created = strtoll(v->str, NULL, 10);
		else if (strcmp(k->str, "ttl") == 0)
			data->ttl = strtoll(v->str, NULL, 10);
		else if (strcmp(k->str, "authVersion") == 0) {
			data->has_version = true;
			data->version = strtoll(v->str, NULL, 10);
		}
	}
	int found = reply->elements > 0 ? 1 : 0;
	freeReplyObject(reply);
	return found;
}

static void redis_simple(struct api_context *ctx, int argc, const char **argv)
{
	redisReply *reply = wd_store_redis_argv(ctx->store, argc, argv, NULL);
	if (reply != NULL)
		freeReplyObject(reply);
}

int api_access_token_issue(struct api_context *ctx, const bson_oid_t *user, const char *role,
			   int64_t auth_version, char token_r[41])
{
	unsigned char random[20];
	if (RAND_bytes(random, sizeof(random)) != 1)
		return -1;
	hex(random, sizeof(random), token_r);
	char user_hex[25], hash[65], sig[65], key[80], created[32], ttl[32], version[32];
	bson_oid_to_string(user, user_hex);
	sha256_hex(token_r, hash);
	token_signature(ctx->token_secret, token_r, user_hex, true, auth_version, role, sig);
	snprintf(key, sizeof(key), "tn:token:%s", hash);
	snprintf(created, sizeof(created), "%lld", (long long)now_ms());
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ctx->token_ttl);
	snprintf(version, sizeof(version), "%lld", (long long)auth_version);
	const char *hset[] = { "HSET", key, "user", user_hex, "role", role, "created", created,
			       "ttl", ttl, "authVersion", version, "s", sig };
	redisReply *reply = wd_store_redis_argv(ctx->store, 14, hset, NULL);
	bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
	if (reply != NULL)
		freeReplyObject(reply);
	if (!ok) {
		wd_warning("api", "cannot store an access token: Redis unavailable");
		return -1;
	}
	const char *expire[] = { "EXPIRE", key, ttl };
	redis_simple(ctx, 3, expire);
	return 0;
}

void api_access_token_follow(struct api_request *req, const bson_oid_t *user)
{
	if (!req->has_token_user || req->token[0] == '\0' || !bson_oid_equal(user, &req->token_user))
		return;
	struct api_context *ctx = req->ctx;
	struct token_data data;
	if (token_load(ctx, req->token_hash, &data) <= 0)
		return;
	struct wd_user *u = NULL;
	char *error = NULL;
	if (wd_store_user_get(ctx->store, user, &u, &error) < 0) {
		wd_warning("api", "token refresh: %s", error);
		free(error);
		return;
	}
	char user_hex[25], sig[65], key[80], version[32];
	bson_oid_to_string(user, user_hex);
	token_signature(ctx->token_secret, req->token, user_hex, true, u->auth_version, data.role,
			sig);
	snprintf(key, sizeof(key), "tn:token:%s", req->token_hash);
	snprintf(version, sizeof(version), "%d", u->auth_version);
	wd_user_free(&u);
	const char *hset[] = { "HSET", key, "authVersion", version, "s", sig };
	redis_simple(ctx, 6, hset);
}

int api_access_token_revoke(struct api_request *req)
{
	if (req->token_hash[0] == '\0')
		return -1;
	char key[80];
	snprintf(key, sizeof(key), "tn:token:%s", req->token_hash);
	const char *del[] = { "DEL", key };
	redis_simple(req->ctx, 2, del);
	return 0;
}

/* 1 valid (req->role and token user set), 0 invalid, -1 internal error. */
static int check_user_token(struct api_request *req, const char *token)
{
	struct api_context *ctx = req->ctx;
	char hash[65];
	sha256_hex(token, hash);
	struct token_data data;
	int found = token_load(ctx, hash, &data);
	if (found < 0)
		return -1;
	int role = found > 0 ? api_role_parse(data.role) : -1;
	if (role < 0 || !is_hex(data.user, 24))
		return 0;
	char expected[65];
	token_signature(ctx->token_secret, token, data.user, data.has_version, data.version,
			data.role, expected);
	if (CRYPTO_memcmp(expected, data.s, 64) != 0 || strlen(data.s) != 64)
		return 0;
	if (data.ttl > 0) {
		char key[80], ttl[32];
		snprintf(key, sizeof(key), "tn:token:%s", hash);
		if ((now_ms() - data.created) / 1000 >= ctx->token_lifetime) {
			const char *del[] = { "DEL", key };
			redis_simple(ctx, 2, del);
			return 0;
		}
		snprintf(ttl, sizeof(ttl), "%lld", (long long)data.ttl);
		const char *expire[] = { "EXPIRE", key, ttl };
		redis_simple(ctx, 3, expire);
	}
	bson_oid_t user;
	bson_oid_init_from_string(&user, data.user);
	/* a password change, suspension or new 2FA bumps authVersion and so
	   ends every older token */
	struct wd_user *u = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(ctx->store, &user, &u, &error);
	if (ret == WD_STORE_ERR_NOT_FOUND) {
		free(error);
		return 0;
	}
	if (ret < 0) {
		wd_error("api", "token check: %s", error);
		free(error);
		return -1;
	}
	bool current = (data.has_version ? data.version : 0) >= u->auth_version;
	wd_user_free(&u);
	if (!current)
		return 0;
	req->role = (enum api_role_id)role;
	req->has_token_user = true;
	req->token_user = user;
	memcpy(req->token_hash, hash, sizeof(req->token_hash));
	snprintf(req->token, sizeof(req->token), "%s", token);
	return 1;
}

static const char *request_token(struct api_request *req, const char *query_token)
{
	if (query_token != NULL && query_token[0] != '\0')
		return query_token;
	const char *header = api_header(req, "X-Access-Token");
	if (header != NULL && header[0] != '\0')
		return header;
	const char *authorization = api_header(req, "Authorization");
	if (authorization != NULL && strncasecmp(authorization, "Bearer", 6) == 0) {
		authorization += 6;
		while (*authorization == ' ' || *authorization == '\t')
			authorization++;
		if (*authorization != '\0')
			return authorization;
	}
	return NULL;
}

bool api_access_check(struct api_request *req, const char *query_token, json_t *path_params)
{
	struct api_context *ctx = req->ctx;
	const struct api_route *route = req->route;
	if ((route->flags & API_R_PUBLIC) != 0) {
		req->role = API_ROLE_NONE;
		return true;
	}
	const char *token = request_token(req, query_token);
	bool required = false;
	if (ctx->access_token != NULL) {
		required = true;
		size_t len = strlen(ctx->access_token);
		if (token != NULL && strlen(token) == len &&
		    CRYPTO_memcmp(token, ctx->access_token, len) == 0)
			req->role = API_ROLE_ROOT;
	}
	if (req->role == API_ROLE_NONE && (ctx->access_control || token != NULL)) {
		required = true;
		if (token != NULL && is_hex(token, 40)) {
			if (check_user_token(req, token) < 0) {
				api_reply_error(req, 500, "InternalDatabaseError",
						"Cannot check the access token now, try again later");
				return false;
			}
		}
	}
	if (req->role == API_ROLE_NONE) {
		if (required) {
			api_reply_error(req, 403, "InvalidToken", "Invalid accessToken value");
			return false;
		}
		req->role = API_ROLE_ROOT; /* no token configured or required: open, as WildDuck */
	}

	/* "me" is the token's user */
	json_t *user = json_object_get(path_params, "user");
	const char *user_text = json_string_value(user);
	if (user_text != NULL && strcmp(user_text, "me") == 0 && req->has_token_user) {
		char hexid[25];
		bson_oid_to_string(&req->token_user, hexid);
		json_object_set_new(path_params, "user", json_string(hexid));
		user_text = json_string_value(json_object_get(path_params, "user"));
	}
	bool own = false;
	if (req->has_token_user && user_text != NULL && strlen(user_text) == 24) {
		char hexid[25];
		bson_oid_to_string(&req->token_user, hexid);
		own = strcasecmp(hexid, user_text) == 0;
	} else if (req->has_token_user && (route->flags & API_R_SELF) != 0) {
		own = true;
	}
	req->own_only = own && !granted(req->role, route->resource, route->action, false);
	if (!granted(req->role, route->resource, route->action, own)) {
		api_reply_error(req, 403, "MissingPrivileges", "Not enough privileges");
		return false;
	}
	return true;
}
