/* The `wd_events` subscriber: one hiredis 0.14 async connection on a libuv
 * loop, with our own timers because hiredis 0.14 has none (DESIGN.md §4).
 *
 * States, and what the single uv_timer means in each:
 *
 *   WAITING      no connection; the timer is the backoff before the next
 *                attempt (0 ms for the very first one, so create never
 *                blocks). Backoff doubles from backoff_min to backoff_max and
 *                is reset by a confirmed SUBSCRIBE.
 *   RESOLVING    uv_getaddrinfo for a host name is pending (hiredis would
 *                resolve synchronously on the loop thread), or, with a
 *                redis-sentinel:// URL, the sentinels are being asked for
 *                the master's address on libuv's thread pool (every attempt
 *                asks again, so a failover is followed at the reconnect);
 *                the timer is the connect timeout.
 *   CONNECTING   a redisAsyncContext exists, AUTH (when the URL has a
 *                password), CLIENT SETNAME wd-notify-<pid> and SUBSCRIBE are
 *                queued behind the TCP connect;
 *                the timer is still the connect timeout, which therefore
 *                covers resolve + connect + AUTH + SUBSCRIBE.
 *   SUBSCRIBED   the subscribe reply arrived; the timer is stopped. TCP
 *                keepalive notices a silent peer (a PING in subscribed mode
 *                cannot be matched to its reply by hiredis 0.14).
 *
 * hiredis ownership rules this file relies on (0.14.1):
 *   - a context whose connect fails is freed by hiredis right after our
 *     connect callback returns; the disconnect callback only runs for
 *     contexts that were connected;
 *   - redisAsyncFree() inside a reply callback is deferred until the callback
 *     returns; inside the connect callback it is not, so we never free there;
 *   - freeing runs the subscribe callback with a NULL reply, then the
 *     disconnect callback.
 * So a context is always "detached" before we let go of it: ac->data = NULL,
 * and every hiredis callback starts by checking ac->data. Callbacks that
 * arrive for a detached context do nothing.
 *
 * Destroy detaches and frees the context (its poll handle is closed by the
 * hiredis cleanup hook and freed in that handle's close callback), cancels a pending lookup and closes the timer; the
 * struct is freed once the timer is closed and the lookup has called back,
 * never inside one of our own callbacks (STYLE.md anti-pattern 5).
 *
 * Messages: a strict pre-scan checks that the payload is exactly one JSON
 * object (libbson's parser would accept trailing documents and top-level
 * arrays), then libbson parses it and the fields are checked with their
 * types. See wd-notify.h for the accepted forms. */
#include "wd-notify.h"
#include "wd-log.h"
#include "wd-redis-client.h"
#include "wd-redis-url.h"
#include "wd-result.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG "notify"
#define CHANNEL "wd_events"
#define CONNECT_TIMEOUT_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_ADDRS 4

enum notify_state {
	NOTIFY_WAITING,
	NOTIFY_RESOLVING,
	NOTIFY_CONNECTING,
	NOTIFY_SUBSCRIBED,
};


struct wd_notify {
	uv_loop_t *loop;
	wd_notify_fn *callback;
	void *context;

	struct wd_redis_url url;
	char port_str[8];
	bool numeric_host;

	/* Addresses of the last lookup, tried in turn before resolving again. */
	char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
	unsigned addr_count, addr_next;

	enum notify_state state;
	redisAsyncContext *ac;
	uv_timer_t timer;
	uv_getaddrinfo_t resolve;
	uv_work_t sentinel_work; /* the sentinel query (sentinel mode) */
	bool resolving;    /* `resolve` or `sentinel_work` is owned by libuv until its callback */
	bool asking_sentinels;
	/* the sentinels' answer, written by the pool thread */
	char sentinel_host[256];
	int sentinel_port;
	char *sentinel_error;
	bool timer_closed;
	bool destroyed;

	unsigned connect_timeout_ms, backoff_min_ms, backoff_max_ms;
	unsigned backoff_ms;
	bool down_logged;  /* "not subscribed" was logged since the last subscribe */
	unsigned failures; /* attempts since the last subscribe */
	struct wd_notify_stats stats;
};

static void start_attempt(struct wd_notify *n);
static void timer_cb(uv_timer_t *timer);

/* ---- URL ------------------------------------------------------------------------------- */

/* ---- message parsing --------------------------------------------------------------------- */

/* True when data[0..len) is exactly one JSON object with optional white
   space around it (strings and escapes skipped; nesting depth bounded). */
static bool json_single_object(const char *data, size_t len)
{
	size_t i = 0;
	int depth = 0;
	while (i < len && strchr(" \t\r\n", data[i]) != NULL)
		i++;
	if (i == len || data[i] != '{')
		return false;
	for (; i < len; i++) {
		char c = data[i];
		if (c == '"') {
			for (i++; i < len && data[i] != '"'; i++) {
				if (data[i] == '\\')
					i++;
			}
			if (i >= len)
				return false;
		} else if (c == '{' || c == '[') {
			if (++depth > 16)
				return false;
		} else if (c == '}' || c == ']') {
			if (--depth == 0)
				break;
		}
	}
	if (i >= len)
		return false;
	for (i++; i < len; i++) {
		if (strchr(" \t\r\n", data[i]) == NULL)
			return false;
	}
	return true;
}

static bool utf8_oid(const bson_iter_t *iter, bson_oid_t *oid_r)
{
	uint32_t len;
	if (!BSON_ITER_HOLDS_UTF8(iter))
		return false;
	const char *str = bson_iter_utf8(iter, &len);
	if (len != 24 || !bson_oid_is_valid(str, len))
		return false;
	bson_oid_init_from_string(oid_r, str);
	return true;
}

/* JavaScript truthiness of `p`, as in WildDuck's `data.e && !data.p`. */
static bool bson_value_truthy(const bson_iter_t *iter)
{
	switch (bson_iter_type(iter)) {
	case BSON_TYPE_NULL:
	case BSON_TYPE_UNDEFINED:
		return false;
	case BSON_TYPE_BOOL:
		return bson_iter_bool(iter);
	case BSON_TYPE_INT32:
		return bson_iter_int32(iter) != 0;
	case BSON_TYPE_INT64:
		return bson_iter_int64(iter) != 0;
	case BSON_TYPE_DOUBLE: {
		double d = bson_iter_double(iter);
		return d == d && d != 0.0;
	}
	case BSON_TYPE_UTF8: {
		uint32_t len;
		bson_iter_utf8(iter, &len);
		return len > 0;
	}
	default:
		return true;
	}
}

static void copy_reason(char *dst, const char *src, uint32_t len)
{
	if (len > WD_NOTIFY_REASON_MAX) {
		len = WD_NOTIFY_REASON_MAX;
		/* do not cut a UTF-8 sequence in half */
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* The payload object {"command": …}: LOGOUT or DROP; anything else false. */
static bool parse_command(const bson_iter_t *p_iter, struct wd_notify_event *ev)
{
	bson_iter_t child;
	const char *command = NULL, *reason = NULL;
	uint32_t command_len = 0, reason_len = 0;
	unsigned mailboxes = 0;
	bool bad_mailbox = false;

	if (!bson_iter_recurse(p_iter, &child))
		return false;
	while (bson_iter_next(&child)) {
		const char *key = bson_iter_key(&child);
		if (strcmp(key, "command") == 0) {
			if (command != NULL || !BSON_ITER_HOLDS_UTF8(&child))
				return false;
			command = bson_iter_utf8(&child, &command_len);
		} else if (strcmp(key, "mailbox") == 0) {
			mailboxes++;
			if (!utf8_oid(&child, &ev->mailbox))
				bad_mailbox = true;
		} else if (strcmp(key, "reason") == 0 && BSON_ITER_HOLDS_UTF8(&child)) {
			reason = bson_iter_utf8(&child, &reason_len);
		}
	}
	if (command == NULL)
		return false;
	if (command_len == 6 && strcmp(command, "LOGOUT") == 0) {
		ev->kind = WD_NOTIFY_LOGOUT;
		if (reason != NULL)
			copy_reason(ev->reason, reason, reason_len);
		return true;
	}
	if (command_len == 4 && strcmp(command, "DROP") == 0 && mailboxes == 1 && !bad_mailbox) {
		ev->kind = WD_NOTIFY_DROP;
		return true;
	}
	return false;
}

/* Fills *ev from one wd_events payload; false (with a reason for the debug
   log) when the message is to be ignored. */
static bool parse_message(const char *data, size_t len, struct wd_notify_event *ev,
			  const char **why_r)
{
	bson_t doc;
	bson_iter_t iter, p_iter;
	bool have_user = false, have_p = false, ok = false;

	memset(ev, 0, sizeof(*ev));
	if (len == 0 || len > WD_NOTIFY_MESSAGE_MAX) {
		*why_r = "empty or oversized";
		return false;
	}
	if (memchr(data, '\0', len) != NULL || !json_single_object(data, len)) {
		*why_r = "not one JSON object";
		return false;
	}
	if (!bson_init_from_json(&doc, data, (ssize_t)len, NULL)) {
		*why_r = "invalid JSON";
		return false;
	}
	*why_r = "no user";
	if (!bson_iter_init(&iter, &doc))
		goto out;
	while (bson_iter_next(&iter)) {
		const char *key = bson_iter_key(&iter);
		if (strcmp(key, "e") == 0) {
			if (have_user || !utf8_oid(&iter, &ev->user)) {
				*why_r = "bad or repeated \"e\"";
				goto out;
			}
			have_user = true;
		} else if (strcmp(key, "p") == 0) {
			if (have_p) {
				*why_r = "repeated \"p\"";
				goto out;
			}
			have_p = true;
			p_iter = iter;
		}
		/* other keys: tolerated, as WildDuck does */
	}
	if (!have_user)
		goto out;
	if (!have_p || !bson_value_truthy(&p_iter)) {
		ev->kind = WD_NOTIFY_CHANGED;
		ok = true;
	} else if (BSON_ITER_HOLDS_DOCUMENT(&p_iter) && parse_command(&p_iter, ev)) {
		ok = true;
	} else {
		*why_r = "payload of another form";
	}
out:
	bson_destroy(&doc);
	return ok;
}

/* ---- hiredis event hooks -------------------------------------------------------------------
 * Our own instead of <hiredis/adapters/libuv.h>: that adapter ignores a
 * uv_poll error status, which is how libuv reports a refused connect
 * (POLLERR), so a dead port would only be noticed at the connect timeout; it
 * also leaks its state when uv_poll_init fails. Here an error status lets
 * hiredis look at the socket (connect → socket error, read → EOF/error), which
 * ends in the connect or disconnect callback. */

struct notify_poll {
	uv_poll_t handle;
	redisAsyncContext *ac; /* NULL once hiredis cleaned up */
	int events;
};

static void poll_cb(uv_poll_t *handle, int status, int events)
{
	struct notify_poll *p = handle->data;

	if (p->ac == NULL)
		return;
	if (status < 0) {
		/* libuv stopped the handle; hiredis finds the error itself */
		if ((p->ac->c.flags & REDIS_CONNECTED) == 0)
			redisAsyncHandleWrite(p->ac);
		else
			redisAsyncHandleRead(p->ac);
		if (p->ac != NULL && p->events != 0)
			uv_poll_start(&p->handle, p->events, poll_cb);
		return;
	}
	if ((events & UV_READABLE) != 0)
		redisAsyncHandleRead(p->ac);
	if (p->ac != NULL && (events & UV_WRITABLE) != 0)
		redisAsyncHandleWrite(p->ac);
}

static void poll_update(struct notify_poll *p, int events)
{
	p->events = events;
	if (events != 0)
		uv_poll_start(&p->handle, events, poll_cb);
	else
		uv_poll_stop(&p->handle);
}

static void poll_add_read(void *data)
{
	struct notify_poll *p = data;
	poll_update(p, p->events | UV_READABLE);
}

static void poll_del_read(void *data)
{
	struct notify_poll *p = data;
	poll_update(p, p->events & ~UV_READABLE);
}

static void poll_add_write(void *data)
{
	struct notify_poll *p = data;
	poll_update(p, p->events | UV_WRITABLE);
}

static void poll_del_write(void *data)
{
	struct notify_poll *p = data;
	poll_update(p, p->events & ~UV_WRITABLE);
}

static void poll_close_cb(uv_handle_t *handle)
{
	free(handle->data);
}

static void poll_cleanup(void *data)
{
	struct notify_poll *p = data;
	p->ac = NULL;
	uv_close((uv_handle_t *)&p->handle, poll_close_cb);
}

static int poll_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	struct notify_poll *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return WD_ERROR;
	if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
		free(p);
		return WD_ERROR;
	}
	p->handle.data = p;
	p->ac = ac;
	ac->ev.data = p;
	ac->ev.addRead = poll_add_read;
	ac->ev.delRead = poll_del_read;
	ac->ev.addWrite = poll_add_write;
	ac->ev.delWrite = poll_del_write;
	ac->ev.cleanup = poll_cleanup;
	return WD_OK;
}

/* ---- connection ------------------------------------------------------------------------ */

static void timer_start(struct wd_notify *n, unsigned ms)
{
	uv_timer_start(&n->timer, timer_cb, ms, 0);
}

/* Lets go of the current context: hiredis callbacks for it become no-ops. */
static redisAsyncContext *detach(struct wd_notify *n)
{
	redisAsyncContext *ac = n->ac;
	n->ac = NULL;
	if (ac != NULL)
		ac->data = NULL;
	return ac;
}

static void schedule_retry(struct wd_notify *n, const char *why)
{
	bool was_subscribed = n->state == NOTIFY_SUBSCRIBED;
	n->state = NOTIFY_WAITING;
	if (!was_subscribed)
		n->failures++;
	if (was_subscribed) {
		wd_warning(LOG, "lost the %s subscription at %s:%d (%s); reconnecting, "
			   "sessions poll meanwhile", CHANNEL, n->url.host, n->url.port, why);
		n->backoff_ms = n->backoff_min_ms;
		n->down_logged = true;
	} else if (!n->down_logged) {
		wd_warning(LOG, "cannot subscribe to %s at %s:%d (%s); retrying in the "
			   "background, sessions poll meanwhile", CHANNEL, n->url.host,
			   n->url.port, why);
		n->down_logged = true;
	} else {
		wd_debug(LOG, "attempt %u failed (%s); next in %u ms", n->failures, why,
			 n->backoff_ms);
	}
	timer_start(n, n->backoff_ms);
	n->backoff_ms = n->backoff_ms >= n->backoff_max_ms / 2 ? n->backoff_max_ms
							       : n->backoff_ms * 2;
}

/* Abandons the current context (not from inside its connect callback). */
static void drop_connection(struct wd_notify *n, const char *why)
{
	redisAsyncContext *ac = detach(n);
	if (ac != NULL)
		redisAsyncFree(ac);
	schedule_retry(n, why);
}

static void subscribed(struct wd_notify *n)
{
	uv_timer_stop(&n->timer);
	n->state = NOTIFY_SUBSCRIBED;
	n->stats.subscribes++;
	n->backoff_ms = n->backoff_min_ms;
	n->addr_count = 0; /* resolve again next time: addresses may change */
	if (n->stats.subscribes == 1 && !n->down_logged)
		wd_info(LOG, "subscribed to %s at %s:%d", CHANNEL, n->url.host, n->url.port);
	else
		wd_info(LOG, "subscribed to %s at %s:%d again (%u failed attempt%s before)",
			CHANNEL, n->url.host, n->url.port, n->failures,
			n->failures == 1 ? "" : "s");
	n->down_logged = false;
	n->failures = 0;
}

static void deliver(struct wd_notify *n, const char *data, size_t len)
{
	struct wd_notify_event ev;
	const char *why;

	n->stats.received++;
	if (!parse_message(data, len, &ev, &why)) {
		n->stats.ignored++;
		wd_debug(LOG, "ignored a %s message of %zu bytes: %s", CHANNEL, len, why);
		return;
	}
	n->stats.delivered++;
	n->callback(n->context, &ev);
}

static void subscribe_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	struct wd_notify *n = ac->data;
	redisReply *reply = r;

	if (n == NULL || reply == NULL)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING ||
	    strcmp(reply->element[1]->str, CHANNEL) != 0)
		return;
	const char *kind = reply->element[0]->str;
	if (strcmp(kind, "subscribe") == 0) {
		if (n->state == NOTIFY_CONNECTING)
			subscribed(n);
	} else if (strcmp(kind, "message") == 0) {
		redisReply *payload = reply->element[2];
		if (payload->type == REDIS_REPLY_STRING)
			deliver(n, payload->str, payload->len);
	}
}

static void auth_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	struct wd_notify *n = ac->data;
	redisReply *reply = r;

	if (n == NULL || reply == NULL || reply->type != REDIS_REPLY_ERROR)
		return;
	char why[160];
	snprintf(why, sizeof(why), "AUTH: %.140s", reply->str);
	/* inside a reply callback: hiredis defers the free until we return */
	drop_connection(n, why);
}

static void connect_cb(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct wd_notify *n = ac->data;

	if (n == NULL)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after we return */
		char why[128];
		snprintf(why, sizeof(why), "%s", ac->errstr[0] != '\0' ? ac->errstr : "connect failed");
		detach(n);
		schedule_retry(n, why);
		return;
	}
	(void)redisEnableKeepAlive(&ac->c); /* 15 s probes in 0.14 */
}

static void disconnect_cb(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct wd_notify *n = ac->data;

	if (n == NULL)
		return;
	char why[128];
	snprintf(why, sizeof(why), "%s",
		 status == REDIS_OK || ac->errstr[0] == '\0' ? "closed by the server" : ac->errstr);
	detach(n); /* hiredis is freeing it */
	schedule_retry(n, why);
}

static void connect_address(struct wd_notify *n, const char *address)
{
	char why[128];
	redisAsyncContext *ac = redisAsyncConnect(address, n->url.port);

	if (ac == NULL) {
		schedule_retry(n, "out of memory");
		return;
	}
	if (ac->err != 0) {
		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		schedule_retry(n, why);
		return;
	}
	if (poll_attach(ac, n->loop) < 0) {
		redisAsyncFree(ac);
		schedule_retry(n, "cannot attach to the loop");
		return;
	}
	ac->data = n;
	n->ac = ac;
	n->state = NOTIFY_CONNECTING;
	redisAsyncSetConnectCallback(ac, connect_cb);
	redisAsyncSetDisconnectCallback(ac, disconnect_cb);
	if (n->url.password[0] != '\0') {
		if (n->url.user[0] != '\0')
			redisAsyncCommand(ac, auth_cb, NULL, "AUTH %s %s", n->url.user, n->url.password);
		else
			redisAsyncCommand(ac, auth_cb, NULL, "AUTH %s", n->url.password);
	}
	/* Names the connection in CLIENT LIST (operators, and the test that
	   kills it); a failure is harmless and its reply is discarded. */
	redisAsyncCommand(ac, NULL, NULL, "CLIENT SETNAME wd-notify-%ld", (long)getpid());
	redisAsyncCommand(ac, subscribe_cb, NULL, "SUBSCRIBE " CHANNEL);
}

static void maybe_free(struct wd_notify *n)
{
	if (n->destroyed && n->timer_closed && !n->resolving) {
		free(n->sentinel_error);
		free(n);
	}
}

static void resolve_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct wd_notify *n = req->data;

	n->resolving = false;
	if (n->destroyed || n->state != NOTIFY_RESOLVING) {
		/* destroyed, or abandoned by the connect timeout */
		uv_freeaddrinfo(res);
		maybe_free(n);
		return;
	}
	n->addr_count = n->addr_next = 0;
	for (struct addrinfo *ai = res; ai != NULL && n->addr_count < MAX_ADDRS; ai = ai->ai_next) {
		char *dst = n->addrs[n->addr_count];
		int ret = -1;
		if (ai->ai_family == AF_INET)
			ret = uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, dst, INET6_ADDRSTRLEN);
		else if (ai->ai_family == AF_INET6)
			ret = uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, dst, INET6_ADDRSTRLEN);
		if (ret == 0)
			n->addr_count++;
	}
	uv_freeaddrinfo(res);
	if (status != 0 || n->addr_count == 0) {
		char why[128];
		snprintf(why, sizeof(why), "cannot resolve the host name: %s",
			 status != 0 ? uv_strerror(status) : "no address");
		schedule_retry(n, why);
		return;
	}
	connect_address(n, n->addrs[n->addr_next++]);
}

/* Connects to url.host (resolving it first unless it is numeric). */
static void resolve_and_connect(struct wd_notify *n)
{
	if (n->numeric_host) {
		connect_address(n, n->url.host);
		return;
	}
	if (n->addr_next < n->addr_count) {
		/* the next address of the last lookup (e.g. ::1, then 127.0.0.1) */
		connect_address(n, n->addrs[n->addr_next++]);
		return;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_ADDRCONFIG };
	n->resolve.data = n;
	int ret = uv_getaddrinfo(n->loop, &n->resolve, resolve_cb, n->url.host, n->port_str, &hints);
	if (ret != 0) {
		schedule_retry(n, uv_strerror(ret));
		return;
	}
	n->resolving = true;
	n->state = NOTIFY_RESOLVING;
}

static void set_host(struct wd_notify *n, const char *host, int port)
{
	if (host != n->url.host)
		snprintf(n->url.host, sizeof(n->url.host), "%s", host);
	n->url.port = port;
	snprintf(n->port_str, sizeof(n->port_str), "%d", port);
	unsigned char buf[sizeof(struct in6_addr)];
	n->numeric_host = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
	n->addr_count = n->addr_next = 0;
}

static void sentinel_work_cb(uv_work_t *req)
{
	struct wd_notify *n = req->data;
	free(n->sentinel_error);
	n->sentinel_error = NULL;
	if (wd_redis_sentinel_master(&n->url, n->connect_timeout_ms / 2, n->sentinel_host,
				     sizeof(n->sentinel_host), &n->sentinel_port,
				     &n->sentinel_error) < 0 && n->sentinel_error == NULL)
		n->sentinel_error = strdup("out of memory");
}

static void sentinel_done_cb(uv_work_t *req, int status)
{
	struct wd_notify *n = req->data;
	n->resolving = false;
	n->asking_sentinels = false;
	if (n->destroyed || n->state != NOTIFY_RESOLVING) {
		maybe_free(n);
		return;
	}
	if (status != 0 || n->sentinel_error != NULL) {
		char why[300];
		snprintf(why, sizeof(why), "%s", status != 0 ? uv_strerror(status) : n->sentinel_error);
		schedule_retry(n, why);
		return;
	}
	set_host(n, n->sentinel_host, n->sentinel_port);
	resolve_and_connect(n);
}

static void start_attempt(struct wd_notify *n)
{
	n->stats.attempts++;
	timer_start(n, n->connect_timeout_ms);
	if (n->url.sentinel_count == 0) {
		resolve_and_connect(n);
		return;
	}
	n->sentinel_work.data = n;
	int ret = uv_queue_work(n->loop, &n->sentinel_work, sentinel_work_cb, sentinel_done_cb);
	if (ret != 0) {
		schedule_retry(n, uv_strerror(ret));
		return;
	}
	n->resolving = true;
	n->asking_sentinels = true;
	n->state = NOTIFY_RESOLVING;
}

static void timer_cb(uv_timer_t *timer)
{
	struct wd_notify *n = timer->data;

	switch (n->state) {
	case NOTIFY_WAITING:
		if (n->resolving) {
			/* an abandoned lookup is still running in libuv's pool */
			timer_start(n, n->backoff_min_ms);
			return;
		}
		start_attempt(n);
		return;
	case NOTIFY_RESOLVING:
		if (n->asking_sentinels) {
			uv_cancel((uv_req_t *)&n->sentinel_work);
			schedule_retry(n, "timed out asking the sentinels for the master");
			return;
		}
		uv_cancel((uv_req_t *)&n->resolve);
		schedule_retry(n, "timed out resolving the host name");
		return;
	case NOTIFY_CONNECTING:
		drop_connection(n, "timed out connecting and subscribing");
		return;
	case NOTIFY_SUBSCRIBED:
		return;
	}
}

static void timer_close_cb(uv_handle_t *handle)
{
	struct wd_notify *n = handle->data;
	n->timer_closed = true;
	maybe_free(n);
}

/* ---- API ------------------------------------------------------------------------------- */

struct wd_notify *wd__notify_create(uv_loop_t *loop, const char *redis_url,
				    wd_notify_fn *callback, void *context, char **error_r)
{
	struct wd_notify *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	if (wd_redis_url_parse(redis_url, &n->url, error_r) < 0) {
		free(n);
		return NULL;
	}
	if (n->url.sentinel_count == 0)
		set_host(n, n->url.host, n->url.port);
	else
		snprintf(n->url.host, sizeof(n->url.host), "(master \"%s\")", n->url.master_name);
	n->loop = loop;
	n->callback = callback;
	n->context = context;
	n->connect_timeout_ms = CONNECT_TIMEOUT_MS;
	n->backoff_min_ms = n->backoff_ms = BACKOFF_MIN_MS;
	n->backoff_max_ms = BACKOFF_MAX_MS;
	n->state = NOTIFY_WAITING;
	uv_timer_init(loop, &n->timer);
	n->timer.data = n;
	timer_start(n, 0);
	return n;
}

void wd_notify_destroy(struct wd_notify **_n)
{
	struct wd_notify *n = *_n;
	if (n == NULL)
		return;
	*_n = NULL;
	wd_assert(!n->destroyed);
	n->destroyed = true;
	wd_info(LOG, "%s: %llu messages received, %llu delivered, %llu ignored; "
		"%llu subscriptions in %llu attempts", CHANNEL,
		(unsigned long long)n->stats.received, (unsigned long long)n->stats.delivered,
		(unsigned long long)n->stats.ignored, (unsigned long long)n->stats.subscribes,
		(unsigned long long)n->stats.attempts);
	redisAsyncContext *ac = detach(n);
	if (ac != NULL)
		redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
	if (n->resolving)
		uv_cancel((uv_req_t *)&n->resolve);
	n->state = NOTIFY_WAITING;
	uv_timer_stop(&n->timer);
	uv_close((uv_handle_t *)&n->timer, timer_close_cb);
}

bool wd_notify_connected(const struct wd_notify *n)
{
	return n->state == NOTIFY_SUBSCRIBED;
}

void wd_notify_get_stats(const struct wd_notify *n, struct wd_notify_stats *stats_r)
{
	*stats_r = n->stats;
}

void wd_notify_set_timeouts(struct wd_notify *n, unsigned connect_timeout_ms,
			    unsigned backoff_min_ms, unsigned backoff_max_ms)
{
	if (connect_timeout_ms != 0)
		n->connect_timeout_ms = connect_timeout_ms;
	if (backoff_min_ms != 0)
		n->backoff_min_ms = n->backoff_ms = backoff_min_ms;
	if (backoff_max_ms != 0)
		n->backoff_max_ms = backoff_max_ms;
	if (n->backoff_max_ms < n->backoff_min_ms)
		n->backoff_max_ms = n->backoff_min_ms;
}
