/* The HTTP side of wd-api: libmicrohttpd in its internal thread pool
 * (DESIGN.md §4), one access handler that runs the pipeline of api.h for
 * every request, and the answer helpers handlers call.
 *
 * Limits: request line and headers within MHD's per-connection memory
 * (api.maxHeaderBytes, 64 KiB), JSON bodies up to api.maxJsonBytes (1 MiB),
 * raw uploads up to api.maxUploadBytes (64 MiB, WildDuck's largest message);
 * a Content-Length over the limit is refused before the body is read, a
 * chunked body that grows past it is discarded as it arrives and answered
 * with 413. Connections: api.maxConnections in all, api.maxConnectionsPerIp,
 * idle timeout api.connectionTimeout (EventSource streams are suspended
 * between events and do not time out). Requests per client address and
 * window: rate.c. */
#include "http-daemon.h"
#include "access.h"
#include "input.h"
#include "rate.h"
#include "router.h"

#include "wd-log.h"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_QUERY_ARGS 64

struct api_daemon {
	struct MHD_Daemon *mhd;
	struct api_context *ctx;
	uint16_t port;
};

/* HTTPS certificate and key, handed to GnuTLS at each handshake through
   MHD_OPTION_HTTPS_CERT_CALLBACK so that a reload (SIGHUP) takes effect for
   new connections without restarting the daemon; connections already
   established keep their TLS session. Replaced sets stay allocated until
   the daemon stops (a handshake may still be using one). One HTTPS daemon
   per process, so the current set is a process-wide pointer: GnuTLS's
   callback has no context argument. */
#define TLS_MAX_CHAIN 16
struct tls_creds {
	gnutls_pcert_st pcerts[TLS_MAX_CHAIN];
	unsigned count;
	gnutls_privkey_t key;
	struct tls_creds *older;
};
static struct tls_creds *tls_current;

static void tls_creds_free(struct tls_creds *creds)
{
	while (creds != NULL) {
		struct tls_creds *older = creds->older;
		for (unsigned i = 0; i < creds->count; i++)
			gnutls_pcert_deinit(&creds->pcerts[i]);
		if (creds->key != NULL)
			gnutls_privkey_deinit(creds->key);
		free(creds);
		creds = older;
	}
}

static char *gnutls_error(const char *what, int ret)
{
	char *msg = NULL;
	if (asprintf(&msg, "%s: %s", what, gnutls_strerror(ret)) < 0)
		msg = NULL;
	return msg;
}

/* Certificate chain and key from PEM text, checked to belong together. */
static struct tls_creds *tls_creds_load(const char *cert_pem, const char *key_pem,
					char **error_r)
{
	gnutls_datum_t cert = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) };
	gnutls_datum_t key = { (unsigned char *)key_pem, (unsigned)strlen(key_pem) };
	gnutls_certificate_credentials_t check;
	int ret = gnutls_certificate_allocate_credentials(&check);
	if (ret < 0) {
		*error_r = gnutls_error("TLS credentials", ret);
		return NULL;
	}
	/* refuses a key that does not match the certificate */
	ret = gnutls_certificate_set_x509_key_mem(check, &cert, &key, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(check);
	if (ret < 0) {
		*error_r = gnutls_error("certificate and key", ret);
		return NULL;
	}
	struct tls_creds *creds = calloc(1, sizeof(*creds));
	if (creds == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	creds->count = TLS_MAX_CHAIN;
	ret = gnutls_pcert_list_import_x509_raw(creds->pcerts, &creds->count, &cert,
						GNUTLS_X509_FMT_PEM, 0);
	if (ret < 0) {
		creds->count = 0;
		tls_creds_free(creds);
		*error_r = gnutls_error("certificate", ret);
		return NULL;
	}
	ret = gnutls_privkey_init(&creds->key);
	if (ret >= 0)
		ret = gnutls_privkey_import_x509_raw(creds->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (ret < 0) {
		tls_creds_free(creds);
		*error_r = gnutls_error("private key", ret);
		return NULL;
	}
	return creds;
}

static int tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
			     int nreqs, const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			     gnutls_pcert_st **pcert, unsigned int *pcert_length,
			     gnutls_privkey_t *pkey)
{
	(void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
	struct tls_creds *creds = __atomic_load_n(&tls_current, __ATOMIC_ACQUIRE);
	if (creds == NULL)
		return -1;
	*pcert = creds->pcerts;
	*pcert_length = creds->count;
	*pkey = creds->key;
	return 0;
}

int api_daemon_reload_tls(const char *cert_pem, const char *key_pem, char **error_r)
{
	*error_r = NULL;
	struct tls_creds *creds = tls_creds_load(cert_pem, key_pem, error_r);
	if (creds == NULL)
		return -1;
	creds->older = __atomic_load_n(&tls_current, __ATOMIC_ACQUIRE);
	__atomic_store_n(&tls_current, creds, __ATOMIC_RELEASE);
	return 0;
}

/* One request's state between the calls of the access handler. */
struct pending_request {
	struct api_request req;
	const struct api_route *route;
	json_t *path_params;
	uint64_t limit;        /* body bytes allowed */
	uint8_t *body;
	size_t body_len, body_cap;
	bool too_large;
	unsigned early_status; /* answer decided before the body arrived */
	const char *early_code, *early_message;
	char remote_ip[INET6_ADDRSTRLEN];
	char *url;
};

static const char *const method_names[API_METHOD_COUNT] = {
	[API_GET] = "GET", [API_POST] = "POST", [API_PUT] = "PUT", [API_DELETE] = "DELETE",
};

const char *api_method_name(enum api_method method)
{
	return method < API_METHOD_COUNT ? method_names[method] : "?";
}

static int parse_method(const char *name)
{
	for (int i = 0; i < API_METHOD_COUNT; i++)
		if (strcmp(name, method_names[i]) == 0)
			return i;
	if (strcmp(name, "HEAD") == 0)
		return API_GET;
	return -1;
}

/* ---- answers ---- */

static void add_common_headers(struct api_request *req, struct MHD_Response *response)
{
	if (req->ctx->cors_origin != NULL) {
		MHD_add_response_header(response, "Access-Control-Allow-Origin", req->ctx->cors_origin);
		MHD_add_response_header(response, "Access-Control-Expose-Headers",
					"X-Access-Token, Last-Event-ID");
	}
}

static void queue(struct api_request *req, unsigned status, struct MHD_Response *response)
{
	if (response == NULL) {
		wd_error("api", "%s %s: out of memory for the response", api_method_name(req->method),
			 req->url);
		req->answered = true;
		return;
	}
	add_common_headers(req, response);
	if (req->answered) {
		wd_error("api", "%s %s answered twice (handler bug)", api_method_name(req->method),
			 req->url);
	} else if (MHD_queue_response(req->connection, status, response) != MHD_YES) {
		wd_warning("api", "%s %s: could not queue the response", api_method_name(req->method),
			   req->url);
	}
	req->answered = true;
	req->status = status;
	MHD_destroy_response(response);
}

static void reply_json_text(struct api_request *req, unsigned status, char *text)
{
	if (text == NULL) {
		wd_error("api", "%s %s: JSON encoding failed", api_method_name(req->method), req->url);
		text = strdup("{\"error\":\"Internal error\",\"code\":\"InternalError\"}");
		status = 500;
		if (text == NULL)
			return;
	}
	struct MHD_Response *response =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (response == NULL)
		free(text);
	else
		MHD_add_response_header(response, "Content-Type", "application/json; charset=utf-8");
	queue(req, status, response);
}

void api_reply_ok(struct api_request *req, json_t *body)
{
	if (body == NULL) {
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	json_t *out = body;
	if (json_is_object(body) && json_object_get(body, "success") == NULL) {
		/* "success" first, as WildDuck writes it */
		out = json_object();
		json_object_set_new(out, "success", json_true());
		json_object_update(out, body);
		json_decref(body);
	}
	reply_json_text(req, 200, json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(out);
}

void api_reply_success(struct api_request *req)
{
	api_reply_ok(req, json_pack("{s:b}", "success", 1));
}

void api_reply_error(struct api_request *req, unsigned status, const char *code, const char *fmt,
		     ...)
{
	char message[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	json_t *body = json_object();
	json_object_set_new(body, "error", json_string(message));
	if (code != NULL)
		json_object_set_new(body, "code", json_string(code));
	reply_json_text(req, status, json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(body);
}

/* The 400 of the input checks carries `details` as WildDuck's Joi does. */
static void reply_input_error(struct api_request *req, json_t *details)
{
	json_t *body = json_object();
	const char *key;
	json_t *value;
	char message[512] = "";
	size_t len = 0;
	json_object_foreach(details, key, value) {
		int n = snprintf(message + len, sizeof(message) - len, "%s%s", len > 0 ? ". " : "",
				 json_string_value(value));
		if (n < 0 || (size_t)n >= sizeof(message) - len)
			break;
		len += (size_t)n;
	}
	json_object_set_new(body, "error", json_string(message));
	json_object_set_new(body, "code", json_string("InputValidationError"));
	json_object_set(body, "details", details);
	reply_json_text(req, 400, json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(body);
}

void api_reply_store_error(struct api_request *req, int ret, const char *error,
			   const char *not_found_code)
{
	const char *text = error != NULL ? error : "failed";
	switch (ret) {
	case -2: /* WD_STORE_ERR_NOT_FOUND */
		api_reply_error(req, 404, not_found_code, "%s", text);
		return;
	case -3: /* EXISTS */
		api_reply_error(req, 400, "AlreadyExists", "%s", text);
		return;
	case -4: /* LIMIT */
		api_reply_error(req, 400, "LimitExceeded", "%s", text);
		return;
	case -5: /* INVALID */
		api_reply_error(req, 400, "InputValidationError", "%s", text);
		return;
	case -6: /* NOT_PERMITTED */
		api_reply_error(req, 400, "NotPermitted", "%s", text);
		return;
	default:
		wd_error("api", "%s %s: %s", api_method_name(req->method), req->url, text);
		api_reply_error(req, 500, "InternalDatabaseError", "Database error, try again later");
	}
}

void api_reply_bytes(struct api_request *req, const char *content_type, const void *data,
		     size_t len, const char *disposition)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	if (response != NULL) {
		MHD_add_response_header(response, "Content-Type", content_type);
		if (disposition != NULL)
			MHD_add_response_header(response, "Content-Disposition", disposition);
	}
	queue(req, 200, response);
}

void api_reply_stream(struct api_request *req, const char *content_type, uint64_t size,
		      api_stream_read_fn *read, api_stream_free_fn *free_fn, void *cls,
		      const char *const *headers)
{
	struct MHD_Response *response = MHD_create_response_from_callback(
		size == UINT64_MAX ? MHD_SIZE_UNKNOWN : size, 32 * 1024, read, cls, free_fn);
	if (response == NULL) {
		if (free_fn != NULL)
			free_fn(cls);
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	MHD_add_response_header(response, "Content-Type", content_type);
	for (size_t i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
		MHD_add_response_header(response, headers[i], headers[i + 1]);
	req->stream = true;
	queue(req, 200, response);
}

const char *api_header(const struct api_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

/* ---- the pipeline ---- */

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	json_t *query = cls;
	if (json_object_size(query) >= MAX_QUERY_ARGS) {
		json_object_set_new(query, "\x01too-many", json_true());
		return MHD_NO;
	}
	json_t *text = json_string(value != NULL ? value : "");
	if (text == NULL) { /* invalid UTF-8 */
		json_object_set_new(query, "\x01too-many", json_true());
		return MHD_NO;
	}
	json_object_set_new(query, key, text);
	return MHD_YES;
}

static void run_pipeline(struct pending_request *pending)
{
	struct api_request *req = &pending->req;
	if (pending->too_large) {
		api_reply_error(req, 413, "PayloadTooLarge",
				"Request body is larger than %llu bytes",
				(unsigned long long)pending->limit);
		return;
	}
	if (!api_rate_allow(req->ctx->rate, req->remote_ip)) {
		api_reply_error(req, 429, "RateLimitedError",
				"Too many requests from this address, try again later");
		return;
	}
	json_t *query = json_object();
	MHD_get_connection_values(req->connection, MHD_GET_ARGUMENT_KIND, collect_query, query);
	if (json_object_get(query, "\x01too-many") != NULL) {
		json_decref(query);
		api_reply_error(req, 400, "InputValidationError", "Too many query arguments, or one that is not UTF-8");
		return;
	}
	/* the token may come as ?accessToken=; it never reaches the input checks */
	char *query_token = NULL;
	const char *qt = json_string_value(json_object_get(query, "accessToken"));
	if (qt != NULL)
		query_token = strdup(qt);
	json_object_del(query, "accessToken");

	if (!api_access_check(req, query_token, pending->path_params)) {
		free(query_token);
		json_decref(query);
		return;
	}
	free(query_token);

	json_t *details = NULL;
	if (api_input_check(req, pending->path_params, query, pending->body, pending->body_len,
			    &details) < 0) {
		json_decref(query);
		if (details != NULL) {
			reply_input_error(req, details);
			json_decref(details);
		}
		return;
	}
	json_decref(query);
	req->body = pending->body;
	req->body_len = pending->body_len;
	pending->route->handler(req);
	if (!req->answered) {
		wd_error("api", "%s %s: handler gave no answer", api_method_name(req->method), req->url);
		api_reply_error(req, 500, "InternalError", "No response");
	}
}

static void reply_preflight(struct pending_request *pending)
{
	struct api_request *req = &pending->req;
	struct MHD_Response *response = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (response != NULL && req->ctx->cors_origin != NULL) {
		MHD_add_response_header(response, "Access-Control-Allow-Methods",
					"GET, POST, PUT, DELETE, OPTIONS");
		MHD_add_response_header(response, "Access-Control-Allow-Headers",
					"Content-Type, X-Access-Token, Authorization, Last-Event-ID");
		MHD_add_response_header(response, "Access-Control-Max-Age", "600");
	}
	queue(req, req->ctx->cors_origin != NULL ? 204 : 405, response);
}

static struct pending_request *pending_create(struct api_daemon *daemon,
					      struct MHD_Connection *connection, const char *url,
					      const char *method)
{
	struct pending_request *pending = calloc(1, sizeof(*pending));
	if (pending == NULL)
		return NULL;
	struct api_request *req = &pending->req;
	req->ctx = daemon->ctx;
	req->connection = connection;
	req->role = API_ROLE_NONE;
	pending->url = strdup(url);
	req->url = pending->url != NULL ? pending->url : "";
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (info != NULL && info->client_addr != NULL) {
		const struct sockaddr *sa = info->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
				  pending->remote_ip, sizeof(pending->remote_ip));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
				  pending->remote_ip, sizeof(pending->remote_ip));
	}
	if (pending->remote_ip[0] == '\0')
		snprintf(pending->remote_ip, sizeof(pending->remote_ip), "unknown");
	req->remote_ip = pending->remote_ip;
	req->content_type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_CONTENT_TYPE);

	if (strcmp(method, "OPTIONS") == 0) {
		pending->early_status = 1; /* preflight */
		return pending;
	}
	int m = parse_method(method);
	if (m < 0) {
		pending->early_status = 405;
		pending->early_code = "MethodNotAllowed";
		pending->early_message = "Method not allowed";
		return pending;
	}
	req->method = (enum api_method)m;
	enum api_match match = api_router_match(req->method, url, &pending->route,
						&pending->path_params);
	if (match == API_MATCH_NONE) {
		pending->early_status = 404;
		pending->early_code = "ResourceNotFound";
		pending->early_message = "Requested resource was not found";
		return pending;
	}
	if (match == API_MATCH_OTHER_METHOD) {
		pending->early_status = 405;
		pending->early_code = "MethodNotAllowed";
		pending->early_message = "Method not allowed for this resource";
		return pending;
	}
	req->route = pending->route;
	bool raw = (pending->route->flags & API_R_RAW_BODY) != 0 ||
		   ((pending->route->flags & API_R_JSON_OR_RAW) != 0 &&
		    (req->content_type == NULL || strstr(req->content_type, "json") == NULL));
	pending->limit = raw ? daemon->ctx->max_upload_bytes : daemon->ctx->max_json_bytes;
	const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length != NULL && strtoull(length, NULL, 10) > pending->limit)
		pending->too_large = true;
	return pending;
}

static void append_body(struct pending_request *pending, const char *data, size_t len)
{
	if (pending->too_large || pending->early_status != 0)
		return;
	if (len > pending->limit - pending->body_len) {
		pending->too_large = true;
		free(pending->body);
		pending->body = NULL;
		pending->body_len = pending->body_cap = 0;
		return;
	}
	if (pending->body_len + len + 1 > pending->body_cap) {
		size_t cap = pending->body_cap > 0 ? pending->body_cap : 4096;
		while (cap < pending->body_len + len + 1)
			cap *= 2;
		uint8_t *body = realloc(pending->body, cap);
		if (body == NULL) {
			pending->too_large = true; /* answered 413: we cannot hold it */
			return;
		}
		pending->body = body;
		pending->body_cap = cap;
	}
	memcpy(pending->body + pending->body_len, data, len);
	pending->body_len += len;
	pending->body[pending->body_len] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct api_daemon *daemon = cls;
	struct pending_request *pending = *con_cls;
	if (pending == NULL) {
		pending = pending_create(daemon, connection, url, method);
		if (pending == NULL)
			return MHD_NO;
		*con_cls = pending;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		append_body(pending, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (pending->req.answered)
		return MHD_YES;
	if (pending->early_status == 1)
		reply_preflight(pending);
	else if (pending->early_status != 0)
		api_reply_error(&pending->req, pending->early_status, pending->early_code, "%s",
				pending->early_message);
	else
		run_pipeline(pending);
	if (pending->req.status != 0 && !pending->req.stream)
		wd_debug("api", "%s %s %u", method, url, pending->req.status);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pending_request *pending = *con_cls;
	if (pending == NULL)
		return;
	OPENSSL_cleanse(pending->req.token, sizeof(pending->req.token));
	json_decref(pending->req.input);
	json_decref(pending->path_params);
	free(pending->body);
	free(pending->url);
	free(pending);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	size_t len = strlen(text);
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	wd_warning("http", "%s", text);
}

/* GnuTLS priorities of the HTTPS listener, the same policy as wd-server's
   OpenSSL contexts (common/tls-context.c): TLS 1.2 and 1.3 only, ECDHE or
   DHE key exchange, AEAD ciphers (AES-GCM, ChaCha20-Poly1305). GnuTLS's
   "NORMAL" (libmicrohttpd's default) also took TLS 1.0/1.1, static RSA key
   exchange and CBC with SHA-1 (tests/tls/test_tls_api.py). */
#define TLS_PRIORITIES                                                                   \
	"SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:"         \
	"+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:" \
	"+DHE-RSA:%SERVER_PRECEDENCE"

struct api_daemon *api_daemon_start(struct api_context *ctx, const struct api_daemon_settings *set,
				    char **error_r)
{
	struct api_daemon *daemon = calloc(1, sizeof(*daemon));
	if (daemon == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	daemon->ctx = ctx;
	struct sockaddr_storage addr = { 0 };
	if (inet_pton(AF_INET, set->host, &((struct sockaddr_in *)&addr)->sin_addr) == 1) {
		struct sockaddr_in *in = (struct sockaddr_in *)&addr;
		in->sin_family = AF_INET;
		in->sin_port = htons(set->port);
	} else if (inet_pton(AF_INET6, set->host, &((struct sockaddr_in6 *)&addr)->sin6_addr) == 1) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(set->port);
	} else {
		if (asprintf(error_r, "api.host: \"%s\" is not an IP address", set->host) < 0)
			*error_r = NULL;
		free(daemon);
		return NULL;
	}
	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (set->tls_cert != NULL)
		flags |= MHD_USE_TLS;
	if (set->tls_cert != NULL && api_daemon_reload_tls(set->tls_cert, set->tls_key, error_r) < 0) {
		free(daemon);
		return NULL;
	}
	struct MHD_OptionItem tls_options[] = {
		{ set->tls_cert != NULL ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, 0,
		  (void *)tls_cert_callback },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES },
		{ MHD_OPTION_END, 0, NULL },
	};
	daemon->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, daemon,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, daemon,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, set->threads,
		MHD_OPTION_CONNECTION_LIMIT, set->max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, set->max_connections_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, set->connection_timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)set->max_header_bytes,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, daemon,
		MHD_OPTION_ARRAY, tls_options,
		MHD_OPTION_END);
	if (daemon->mhd == NULL) {
		if (asprintf(error_r, "cannot listen on %s:%u (in use, or TLS settings refused)",
			     set->host, set->port) < 0)
			*error_r = NULL;
		free(daemon);
		return NULL;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon->mhd,
							       MHD_DAEMON_INFO_BIND_PORT);
	daemon->port = info != NULL ? info->port : set->port;
	return daemon;
}

uint16_t api_daemon_port(const struct api_daemon *daemon)
{
	return daemon->port;
}

void api_daemon_quiesce(struct api_daemon *daemon)
{
	if (daemon != NULL && daemon->mhd != NULL)
		MHD_quiesce_daemon(daemon->mhd);
}

void api_daemon_stop(struct api_daemon **daemon)
{
	if (*daemon == NULL)
		return;
	MHD_stop_daemon((*daemon)->mhd);
	free(*daemon);
	*daemon = NULL;
	tls_creds_free(__atomic_exchange_n(&tls_current, NULL, __ATOMIC_ACQ_REL));
}
