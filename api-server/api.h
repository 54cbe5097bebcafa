#ifndef WD_API_H
#define WD_API_H

/* wd-api's framework: what every resource module (routes-*.c) builds on.
 *
 * A request goes through one pipeline (http-daemon.c):
 *   1. libmicrohttpd hands us the method, path, headers and body; the body is
 *      collected up to the route's limit (413 past it, 415 for a JSON route
 *      without JSON);
 *   2. the route table (routes.c, one array per resource module) picks the
 *      route: 404 / 405 otherwise;
 *   3. access (access.c): the root token, a user token from POST
 *      /authenticate, or open access; `:user` = "me" becomes the token's user;
 *      the role must grant the route's resource and action, "own" grants only
 *      when `:user` is the token's user;
 *   4. input (input.c): path parameters, query arguments and the JSON body are
 *      merged into one object and checked against the route's field list, as
 *      WildDuck's Joi schemas do (unknown keys, wrong types, lengths, ranges,
 *      ObjectIds), giving 400 {error, code: "InputValidationError", details};
 *   5. the handler runs on the libmicrohttpd thread (blocking libwdstore calls
 *      are fine: the daemon has a pool of threads) and answers exactly once
 *      with api_reply_*(). A handler that forgets gets a 500.
 *
 * Responses have WildDuck's shapes: {"success": true, ...} with 200, and
 * {"error": "...", "code": "..."} with 4xx/5xx.
 *
 * The field lists are also what /openapi.json is made from (openapi.c), so
 * the document always says what the server checks. */

#include <bson/bson.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_config;
struct wd_store;
struct wd_auth;
struct wd_deliver;
struct wd_outbound;
struct api_updates;

/* ---- process-wide state ---- */

struct api_context {
	const struct wd_config *config;
	struct wd_store *store;
	struct wd_auth *auth;
	struct wd_deliver *deliver;     /* message submission and forwarding */
	struct wd_outbound *outbound;   /* the outbound queue (ZoneMTA format) */
	struct api_updates *updates;    /* EventSource hub (updates.c) */

	/* access.c */
	char *access_token;             /* api.accessToken, or NULL */
	bool access_control;            /* api.accessControl.enabled */
	char *token_secret;             /* api.accessControl.secret */
	int64_t token_ttl;              /* seconds */
	int64_t token_lifetime;         /* seconds */

	/* http-daemon.c */
	uint64_t max_json_bytes;        /* api.maxJsonBytes */
	uint64_t max_upload_bytes;      /* api.maxUploadBytes (raw messages, files) */
	char *cors_origin;              /* api.cors.origin, NULL = no CORS headers */
	unsigned rate_limit;            /* api.rateLimit.requests per window per client, 0 = off */
	unsigned rate_window;           /* api.rateLimit.window seconds */
	struct api_rate *rate;          /* rate.c */
};

/* ---- routes ---- */

enum api_method {
	API_GET, API_POST, API_PUT, API_DELETE,
	API_METHOD_COUNT,
};
const char *api_method_name(enum api_method method);

enum api_action {
	API_CREATE, API_READ, API_UPDATE, API_DELETE_ACTION,
};

enum api_type {
	API_T_STRING,    /* min/max: length in characters (UTF-8 code points) */
	API_T_INT,       /* min/max: value (strings of digits accepted, as Joi's convert) */
	API_T_BOOL,      /* true/false, also "true"/"false"/"1"/"0"/"yes"/"no" from a query */
	API_T_OID,       /* 24 hex digits (lower-cased) */
	API_T_USER,      /* like OID; "me" is replaced by access.c before input checks */
	API_T_STRINGS,   /* array of strings (a query "a,b" is split); min/max: count, item_max: length */
	API_T_OBJECT,    /* any JSON object (checked for depth and size); max: bytes of its JSON */
	API_T_ANY,       /* any JSON value (bounded like OBJECT) */
	API_T_EMAIL,     /* an e-mail address (has '@', no spaces); max: length */
	API_T_DATE,      /* ISO 8601 / RFC 2822 date or ms number; stored as ms (int) */
};

enum api_field_flags {
	API_F_REQUIRED = 0x1,
	API_F_PATH = 0x2,        /* a path parameter (":name") */
	API_F_QUERY = 0x4,       /* documented as a query argument (GET/DELETE) */
	API_F_NULLABLE = 0x8,    /* null or "" allowed (then stored as JSON null) */
	API_F_EMPTY_OK = 0x10,   /* "" allowed for a string with min > 0 */
	API_F_LOWERCASE = 0x20,  /* strings are lower-cased after the check */
	API_F_TRIM = 0x40,       /* strings are trimmed before the check */
};

struct api_field {
	const char *name;
	enum api_type type;
	unsigned flags;
	int64_t min, max;           /* see enum api_type; 0/0 = no bounds */
	const char *const *choices; /* NULL-terminated allowed string values, or NULL */
	const char *description;    /* for the OpenAPI document */
};
/* Terminates a field list. */
#define API_FIELDS_END { NULL, 0, 0, 0, 0, NULL, NULL }

struct api_request;
typedef void api_handler_fn(struct api_request *req);

enum api_route_flags {
	API_R_PUBLIC = 0x1,     /* no token check (health, openapi.json) */
	API_R_RAW_BODY = 0x2,   /* the body is not JSON: kept as bytes (message upload) */
	API_R_STREAM = 0x4,     /* the handler answers with a stream (EventSource) */
	API_R_JSON_OR_RAW = 0x8,/* JSON when Content-Type says so, else raw bytes */
	/* A route without :user that a user token may call for its own records
	   (GET /users, /addresses, /filters; DELETE /authenticate): the role's
	   "own" grant applies, and req->own_only tells the handler to narrow
	   its answer to req->token_user. */
	API_R_SELF = 0x10,
};

struct api_route {
	enum api_method method;
	const char *path;               /* "/users/:user/mailboxes/:mailbox" */
	api_handler_fn *handler;
	const char *resource;           /* roles resource ("users", "messages", ...);
					   NULL: any caller with a valid token */
	enum api_action action;
	unsigned flags;                 /* enum api_route_flags */
	const struct api_field *fields; /* path, query and body fields, END-terminated */
	const char *tag;                /* OpenAPI tag ("Users") */
	const char *summary;            /* one line */
	const char *name;               /* WildDuck's operationId ("getUsers") */
};

/* Each resource module exports one table, terminated by a route with a NULL
   path; routes.c lists the tables. */
#define API_ROUTES_END { 0, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL }

/* All routes, in table order; *count_r is set. */
const struct api_route *const *api_routes_all(size_t *count_r);

/* ---- a request, as handlers see it ---- */

enum api_role_id {
	API_ROLE_ROOT, API_ROLE_MANAGER, API_ROLE_WEBMAIL, API_ROLE_USER,
	API_ROLE_NONE,
};

struct api_request {
	struct api_context *ctx;
	const struct api_route *route;
	enum api_method method;
	const char *url;                /* path without the query */
	const char *remote_ip;
	void *connection;               /* struct MHD_Connection */

	/* access */
	enum api_role_id role;
	bool has_token_user;            /* the caller is a user token */
	bson_oid_t token_user;
	char token_hash[65];            /* sha256 hex of the user token, "" without */
	char token[41];                 /* the user token itself, "" without (wiped at the end) */
	/* access was granted through the role's "own" grant only: the handler of
	   an API_R_SELF route must answer about req->token_user alone */
	bool own_only;

	/* input: path parameters, query arguments and body fields after the
	   field checks, converted to their types (strings, integers as JSON
	   integers, booleans, OIDs as lower-case hex strings). */
	json_t *input;
	const uint8_t *body;            /* raw body (API_R_RAW_BODY or JSON_OR_RAW) */
	size_t body_len;
	const char *content_type;

	/* answer */
	bool answered;
	bool stream;                    /* handler set up a streaming response */
	void *response;                 /* struct MHD_Response while building */
	unsigned status;
};

/* Typed access to the checked input. */
bool api_has(const struct api_request *req, const char *name);
const char *api_str(const struct api_request *req, const char *name, const char *def);
int64_t api_int(const struct api_request *req, const char *name, int64_t def);
bool api_bool(const struct api_request *req, const char *name, bool def);
/* An OID field (or API_T_USER) into *oid; false when absent. */
bool api_oid(const struct api_request *req, const char *name, bson_oid_t *oid);
json_t *api_json(const struct api_request *req, const char *name); /* borrowed or NULL */
/* A request header (NULL when absent). */
const char *api_header(const struct api_request *req, const char *name);

/* ---- answers (exactly one per request) ---- */

/* 200 with `body` (reference stolen); "success": true is added first when
   the object has no "success" member. */
void api_reply_ok(struct api_request *req, json_t *body);
/* 200 {"success": true} */
void api_reply_success(struct api_request *req);
/* `status` with {"error": message, "code": code} */
void api_reply_error(struct api_request *req, unsigned status, const char *code,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The usual answer for a libwdstore error (its negative kind): 404 for not
   found (code `not_found_code`), 400 for exists/invalid/limit/not permitted,
   500 InternalDatabaseError otherwise (the detail is logged, not sent). */
void api_reply_store_error(struct api_request *req, int ret, const char *error,
			   const char *not_found_code);
/* 200 with raw bytes (message.eml, attachments); `data` is copied. */
void api_reply_bytes(struct api_request *req, const char *content_type, const void *data,
		     size_t len, const char *disposition);
/* 200 with a body produced by `read` (libmicrohttpd's content reader
   contract: return bytes, -1 at the end, -2 on error); `free_fn` releases
   `cls` when the response is done. size UINT64_MAX = unknown (chunked). */
typedef ssize_t api_stream_read_fn(void *cls, uint64_t pos, char *buf, size_t max);
typedef void api_stream_free_fn(void *cls);
void api_reply_stream(struct api_request *req, const char *content_type, uint64_t size,
		      api_stream_read_fn *read, api_stream_free_fn *free_fn, void *cls,
		      const char *const *headers /* name, value, ..., NULL */);

/* ---- helpers for handlers ---- */

/* A JSON date as WildDuck sends it: "2024-01-31T12:00:00.000Z". */
json_t *api_json_date(int64_t ms);
/* An ObjectId as JSON string (24 lower-case hex digits). */
json_t *api_json_oid(const bson_oid_t *oid);
/* A BSON value converted to JSON (ObjectId → hex, dates → ISO strings,
   binary → base64, int64 → integer, decimal → string). NULL on failure. */
json_t *api_json_from_bson_iter(const bson_iter_t *iter);
/* A whole document (or a subset: `keys` NULL-terminated, NULL = all). */
json_t *api_json_from_bson(const bson_t *doc, const char *const *keys);
/* A JSON value into `doc` under `key` (objects and arrays recursively). */
bool api_bson_append_json(bson_t *doc, const char *key, const json_t *value);

/* The user named by :user exists? Answers 404 UserNotFound (or 500) and
   returns false otherwise. */
bool api_require_user(struct api_request *req, bson_oid_t *user_r);

/* WildDuck's cursor paging (users, messages, addresses…): `next`/`previous`
   are opaque strings; ours encode the last _id (or sort key) seen. */
char *api_cursor_encode(const char *kind, const char *value);
/* NULL when `cursor` is not one of ours of this kind (400 then). */
char *api_cursor_decode(const char *kind, const char *cursor);

#endif
