/*
 * test-notify.c — the wd_events subscriber (server/notify) on a real libuv loop against the
 * real Redis of the stack (WD_REDIS_URL; exit 77 without).
 *
 *   bad_urls                  URLs that must be refused at create, and valid ones that are
 *                             accepted and destroyed before the loop ever runs.
 *   receive_and_ignore        subscribe; publish (synchronous hiredis) every form WildDuck
 *                             uses and a set of malformed, oversized and other-shaped ones;
 *                             the valid ones arrive in order with their kind, user, mailbox
 *                             and reason, none of the others does; a sentinel published last
 *                             proves that everything before it was processed.
 *   reconnect_after_kill      CLIENT KILL ID <ours> TYPE pubsub from the server side: the
 *                             subscriber notices, reconnects and receives again.
 *   refused_port_retries      a closed port: attempts keep coming with the backoff, a 10 ms
 *                             uv timer keeps firing (the loop never blocks), destroy in that
 *                             state is clean.
 *   silent_server_times_out   a listener that accepts and never answers: each attempt is
 *                             abandoned at the connect timeout and retried; destroy while
 *                             connecting is clean.
 *   wrong_password_retries    AUTH refused: never "connected", keeps retrying.
 *   destroy_while_resolving   a host name (localhost): destroy while uv_getaddrinfo is pending.
 *   destroy_inside_callback   the callback destroys the subscriber that called it.
 *
 * Every test runs its own loop and ends by running it until no handle is left and checking
 * uv_loop_close() == 0, so a handle leaked or freed early shows up (and, under the sanitize
 * build, any use after free). Users in messages are fresh ObjectIds and only events for them
 * are looked at: other tests may publish on the same Redis at the same time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "wd-log.h"
#include "wd-notify.h"

#define SKIP_EXIT_CODE 77
#define MAX_EVENTS 64

static const char *redis_url;
static char redis_host[256];
static int redis_port;
static char redis_password[256];

struct harness {
	uv_loop_t loop;
	uv_timer_t tick;
	unsigned ticks;
	struct wd_notify *notify;
	struct wd_notify_event events[MAX_EVENTS];
	unsigned event_count;
	bool destroy_in_callback;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void tick_cb(uv_timer_t *timer)
{
	struct harness *h = timer->data;
	h->ticks++;
}

static void harness_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	assert_int_equal(uv_loop_init(&h->loop), 0);
	uv_timer_init(&h->loop, &h->tick);
	h->tick.data = h;
	uv_timer_start(&h->tick, tick_cb, 10, 10);
}

/* Runs the loop until cond(h) or timeout_ms passed; returns cond(h). */
static bool run_until(struct harness *h, bool (*cond)(struct harness *), unsigned timeout_ms)
{
	uint64_t start = uv_now(&h->loop);
	while (!cond(h)) {
		uv_update_time(&h->loop);
		if (uv_now(&h->loop) - start > timeout_ms)
			return false;
		uv_run(&h->loop, UV_RUN_ONCE);
	}
	return true;
}

static bool never(struct harness *h)
{
	return false;
}

static bool is_connected(struct harness *h)
{
	return h->notify != NULL && wd_notify_connected(h->notify);
}

/* Destroys what is left, runs the loop dry and checks that nothing remains. */
static void harness_finish(struct harness *h)
{
	wd_notify_destroy(&h->notify);
	uv_close((uv_handle_t *)&h->tick, NULL);
	for (int i = 0; i < 100 && uv_run(&h->loop, UV_RUN_DEFAULT) != 0; i++)
		;
	assert_int_equal(uv_loop_close(&h->loop), 0);
}

static void on_event(struct harness *h, const struct wd_notify_event *event)
{
	if (h->event_count < MAX_EVENTS)
		h->events[h->event_count++] = *event;
	if (h->destroy_in_callback)
		wd_notify_destroy(&h->notify);
}

static struct wd_notify *notify_create(struct harness *h, const char *url)
{
	char *error = NULL;
	struct wd_notify *notify = wd_notify_create(&h->loop, url, on_event, h, &error);
	if (notify == NULL)
		fail_msg("wd_notify_create(%s): %s", url, error);
	return notify;
}

static redisContext *redis_sync(void)
{
	struct timeval tv = { 5, 0 };
	redisContext *c = redisConnectWithTimeout(redis_host, redis_port, tv);
	assert_non_null(c);
	if (c->err)
		fail_msg("redis %s:%d: %s", redis_host, redis_port, c->errstr);
	if (redis_password[0] != '\0') {
		redisReply *r = redisCommand(c, "AUTH %s", redis_password);
		assert_non_null(r);
		freeReplyObject(r);
	}
	return c;
}

static void publish(redisContext *c, const char *data, size_t len)
{
	redisReply *r = redisCommand(c, "PUBLISH wd_events %b", data, len);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	freeReplyObject(r);
}

static void publish_str(redisContext *c, const char *data)
{
	publish(c, data, strlen(data));
}

static void fresh_hex(char hex[25], bson_oid_t *oid_r)
{
	bson_oid_t oid;
	bson_oid_init(&oid, NULL);
	bson_oid_to_string(&oid, hex);
	if (oid_r != NULL)
		*oid_r = oid;
}

static const struct wd_notify_event *find_event(const struct harness *h, const bson_oid_t *user)
{
	for (unsigned i = 0; i < h->event_count; i++) {
		if (bson_oid_equal(&h->events[i].user, user))
			return &h->events[i];
	}
	return NULL;
}

/* Publishes {"e":<fresh user>} and runs until it arrived. */
static bool sentinel_user_seen;
static bson_oid_t sentinel_user;
static bool sentinel_arrived(struct harness *h)
{
	return find_event(h, &sentinel_user) != NULL;
}

static void publish_sentinel_and_wait(struct harness *h, redisContext *c)
{
	char hex[25], msg[64];
	fresh_hex(hex, &sentinel_user);
	snprintf(msg, sizeof(msg), "{\"e\":\"%s\"}", hex);
	publish_str(c, msg);
	sentinel_user_seen = run_until(h, sentinel_arrived, 5000);
	assert_true(sentinel_user_seen);
}

/* A 127.0.0.1 port that nothing listens on (bound, then closed again). */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void bad_urls(void **state)
{
	static const char *const bad[] = {
		"http://127.0.0.1:6379", "redis:/127.0.0.1", "redis://h:0", "redis://h:70000",
		"redis://h:12a", "redis://h:", "redis://[::1", "redis://[::1]x", "redis://h:1/x",
		"",
	};
	static const char *const good[] = {
		"redis://", "redis://127.0.0.1", "redis://:secret@127.0.0.1:1/3",
		"redis://user:secret@[::1]:6379/0", "redis://localhost:6379/", "redis://h:1?x=1",
	};
	struct harness h;
	harness_init(&h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *error = NULL;
		struct wd_notify *n = wd_notify_create(&h.loop, bad[i], on_event, &h, &error);
		if (n != NULL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(error);
		free(error);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct wd_notify *n = notify_create(&h, good[i]);
		assert_false(wd_notify_connected(n));
		wd_notify_destroy(&n);
		assert_null(n);
	}
	harness_finish(&h);
}

static void receive_and_ignore(void **state)
{
	struct harness h;
	harness_init(&h);
	h.notify = notify_create(&h, redis_url);
	assert_false(wd_notify_connected(h.notify));
	assert_true(run_until(&h, is_connected, 5000));
	struct wd_notify_stats before;
	wd_notify_get_stats(h.notify, &before);
	redisContext *c = redis_sync();

	/* the forms WildDuck publishes */
	enum { CHANGED, CHANGED_NULL, CHANGED_EMPTY, LOGOUT, DROP, VALID_COUNT };
	char hex[VALID_COUNT][25], mailbox_hex[25], msg[512];
	bson_oid_t users[VALID_COUNT], mailbox;
	for (int i = 0; i < VALID_COUNT; i++)
		fresh_hex(hex[i], &users[i]);
	fresh_hex(mailbox_hex, &mailbox);
	snprintf(msg, sizeof(msg), "{\"e\":\"%s\"}", hex[CHANGED]);
	publish_str(c, msg);
	snprintf(msg, sizeof(msg), "{\"e\":\"%s\",\"p\":null}", hex[CHANGED_NULL]);
	publish_str(c, msg);
	snprintf(msg, sizeof(msg), " {\"p\":\"\", \"e\" : \"%s\"}\n", hex[CHANGED_EMPTY]);
	publish_str(c, msg);
	snprintf(msg, sizeof(msg), "{\"e\":\"%s\",\"p\":{\"command\":\"LOGOUT\","
		 "\"reason\":\"Authentication settings changed\"}}", hex[LOGOUT]);
	publish_str(c, msg);
	snprintf(msg, sizeof(msg), "{\"e\":\"%s\",\"p\":{\"command\":\"DROP\",\"mailbox\":\"%s\"}}",
		 hex[DROP], mailbox_hex);
	publish_str(c, msg);

	/* forms that must be ignored; each names a fresh user that must never show up */
	static const char *const ignored[] = {
		"{\"e\":\"%s\",\"p\":\"INBOX\"}",                   /* COPY's payload */
		"{\"e\":\"%s\",\"p\":{\"command\":\"FOO\"}}",        /* unknown command */
		"{\"e\":\"%s\",\"p\":{\"command\":\"DROP\"}}",       /* DROP without mailbox */
		"{\"e\":\"%s\",\"p\":{\"command\":\"DROP\",\"mailbox\":\"xyz\"}}",
		"{\"e\":\"%s\",\"p\":{\"command\":\"logout\"}}",     /* commands are case-sensitive */
		"{\"e\":\"%s\",\"p\":1}",                            /* truthy, not a command */
		"{\"e\":\"%s\"}{\"x\":1}",                           /* trailing document */
		"{\"e\":\"%s\"} x",                                  /* trailing junk */
		"[{\"e\":\"%s\"}]",                                  /* not an object */
		"{\"e\":\"%s\"",                                     /* truncated */
		"{\"e\":{\"$oid\":\"%s\"}}",                         /* not a string */
		"{\"e\":\"%s\",\"e\":\"000000000000000000000000\"}", /* repeated */
		"{\"e\":\"%s0\"}",                                   /* 25 digits */
		"{\"x\":\"%s\"}",                                    /* no e */
	};
	bson_oid_t ignored_users[sizeof(ignored) / sizeof(ignored[0]) + 2];
	size_t n_ignored = 0;
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		char uhex[25];
		fresh_hex(uhex, &ignored_users[n_ignored++]);
		snprintf(msg, sizeof(msg), ignored[i], uhex);
		publish_str(c, msg);
	}
	/* oversized: a valid form padded past WD_NOTIFY_MESSAGE_MAX */
	{
		char uhex[25];
		fresh_hex(uhex, &ignored_users[n_ignored++]);
		size_t size = WD_NOTIFY_MESSAGE_MAX + 64;
		char *big = malloc(size + 1);
		assert_non_null(big);
		int len = snprintf(big, size + 1, "{\"e\":\"%s\",\"x\":\"", uhex);
		memset(big + len, 'a', size - (size_t)len - 2);
		memcpy(big + size - 2, "\"}", 2);
		publish(c, big, size);
		free(big);
	}
	/* a NUL byte inside */
	{
		char uhex[25];
		fresh_hex(uhex, &ignored_users[n_ignored++]);
		int len = snprintf(msg, sizeof(msg), "{\"e\":\"%s\"}", uhex);
		msg[len - 1] = '\0';
		publish(c, msg, (size_t)len);
	}
	publish_str(c, "not json at all");
	publish(c, "", 0);

	publish_sentinel_and_wait(&h, c);

	const struct wd_notify_event *ev;
	ev = find_event(&h, &users[CHANGED]);
	assert_non_null(ev);
	assert_int_equal(ev->kind, WD_NOTIFY_CHANGED);
	ev = find_event(&h, &users[CHANGED_NULL]);
	assert_non_null(ev);
	assert_int_equal(ev->kind, WD_NOTIFY_CHANGED);
	ev = find_event(&h, &users[CHANGED_EMPTY]);
	assert_non_null(ev);
	assert_int_equal(ev->kind, WD_NOTIFY_CHANGED);
	ev = find_event(&h, &users[LOGOUT]);
	assert_non_null(ev);
	assert_int_equal(ev->kind, WD_NOTIFY_LOGOUT);
	assert_string_equal(ev->reason, "Authentication settings changed");
	ev = find_event(&h, &users[DROP]);
	assert_non_null(ev);
	assert_int_equal(ev->kind, WD_NOTIFY_DROP);
	assert_true(bson_oid_equal(&ev->mailbox, &mailbox));
	/* in publishing order */
	const struct wd_notify_event *first = find_event(&h, &users[CHANGED]);
	for (int i = 1; i < VALID_COUNT; i++)
		assert_true(find_event(&h, &users[i]) > first);
	for (size_t i = 0; i < n_ignored; i++) {
		if (find_event(&h, &ignored_users[i]) != NULL)
			fail_msg("ignored form %zu was delivered", i);
	}

	struct wd_notify_stats after;
	wd_notify_get_stats(h.notify, &after);
	assert_true(after.received - before.received >= VALID_COUNT + n_ignored + 2 + 1);
	assert_true(after.ignored - before.ignored >= n_ignored + 2);
	assert_true(after.delivered - before.delivered >= VALID_COUNT + 1);
	assert_int_equal(after.subscribes, 1);

	redisFree(c);
	/* destroy while subscribed */
	harness_finish(&h);
}

static bool subscribed_twice(struct harness *h)
{
	struct wd_notify_stats stats;
	wd_notify_get_stats(h->notify, &stats);
	return stats.subscribes >= 2 && wd_notify_connected(h->notify);
}

static bool disconnected(struct harness *h)
{
	return !wd_notify_connected(h->notify);
}

/* The id of the client CLIENT SETNAME named wd-notify-<our pid>; -1 when none. */
static long long our_client_id(redisContext *c)
{
	char name[64];
	long long id = -1;
	snprintf(name, sizeof(name), " name=wd-notify-%ld ", (long)getpid());
	redisReply *r = redisCommand(c, "CLIENT LIST TYPE pubsub");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	for (char *line = r->str; line != NULL && *line != '\0';) {
		char *eol = strchr(line, '\n');
		if (eol != NULL)
			*eol = '\0';
		if (strstr(line, name) != NULL && strncmp(line, "id=", 3) == 0) {
			assert_int_equal(id, -1); /* exactly one */
			id = strtoll(line + 3, NULL, 10);
		}
		line = eol != NULL ? eol + 1 : NULL;
	}
	freeReplyObject(r);
	return id;
}

static void reconnect_after_kill(void **state)
{
	struct harness h;
	harness_init(&h);
	h.notify = notify_create(&h, redis_url);
	wd_notify_set_timeouts(h.notify, 0, 50, 400);
	assert_true(run_until(&h, is_connected, 5000));
	redisContext *c = redis_sync();
	long long id = our_client_id(c);
	assert_true(id > 0);

	redisReply *r = redisCommand(c, "CLIENT KILL ID %lld TYPE pubsub", id);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);

	assert_true(run_until(&h, disconnected, 5000));
	assert_true(run_until(&h, subscribed_twice, 5000));
	long long id2 = our_client_id(c);
	assert_true(id2 > 0 && id2 != id);

	publish_sentinel_and_wait(&h, c);
	assert_int_equal(find_event(&h, &sentinel_user)->kind, WD_NOTIFY_CHANGED);
	redisFree(c);
	harness_finish(&h);
}

static void refused_port_retries(void **state)
{
	char url[64];
	struct harness h;
	harness_init(&h);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", closed_port());
	h.notify = notify_create(&h, url);
	wd_notify_set_timeouts(h.notify, 500, 20, 80);
	run_until(&h, never, 600);
	struct wd_notify_stats stats;
	wd_notify_get_stats(h.notify, &stats);
	assert_false(wd_notify_connected(h.notify));
	assert_true(stats.attempts >= 5);
	assert_int_equal(stats.subscribes, 0);
	/* 600 ms of a 10 ms timer: the loop was never held up for long */
	assert_true(h.ticks >= 40);
	harness_finish(&h);
}

/* A server that accepts and never says a word. */
static void silent_accept_cb(uv_stream_t *server, int status)
{
	if (status != 0)
		return;
	uv_tcp_t *client = malloc(sizeof(*client));
	assert_non_null(client);
	uv_tcp_init(server->loop, client);
	client->data = NULL;
	if (uv_accept(server, (uv_stream_t *)client) != 0)
		uv_close((uv_handle_t *)client, (uv_close_cb)free);
	/* kept open; closed by walk_close at the end */
}

static void walk_close(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle) && handle->type == UV_TCP)
		uv_close(handle, handle->data == arg ? NULL : (uv_close_cb)free);
}

static void silent_server_times_out(void **state)
{
	struct harness h;
	uv_tcp_t server;
	struct sockaddr_in sin;
	int namelen = sizeof(sin);
	char url[64];

	harness_init(&h);
	uv_tcp_init(&h.loop, &server);
	server.data = &server;
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(uv_tcp_bind(&server, (struct sockaddr *)&sin, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&server, 16, silent_accept_cb), 0);
	assert_int_equal(uv_tcp_getsockname(&server, (struct sockaddr *)&sin, &namelen), 0);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(sin.sin_port));

	h.notify = notify_create(&h, url);
	wd_notify_set_timeouts(h.notify, 150, 20, 40);
	run_until(&h, never, 700);
	struct wd_notify_stats stats;
	wd_notify_get_stats(h.notify, &stats);
	assert_false(wd_notify_connected(h.notify));
	assert_true(stats.attempts >= 3);
	assert_int_equal(stats.subscribes, 0);
	assert_true(h.ticks >= 40);
	/* destroy while (most likely) connecting: the timeout is 150 ms, the backoff 40 */
	wd_notify_destroy(&h.notify);
	uv_walk(&h.loop, walk_close, &server);
	harness_finish(&h);
}

static void wrong_password_retries(void **state)
{
	char url[600];
	struct harness h;
	harness_init(&h);
	snprintf(url, sizeof(url), "redis://:wrong-%ld@%s:%d/3", (long)getpid(), redis_host,
		 redis_port);
	h.notify = notify_create(&h, url);
	wd_notify_set_timeouts(h.notify, 1000, 20, 50);
	run_until(&h, never, 500);
	struct wd_notify_stats stats;
	wd_notify_get_stats(h.notify, &stats);
	if (redis_password[0] == '\0') {
		/* Redis without a password refuses AUTH */
		assert_false(wd_notify_connected(h.notify));
		assert_int_equal(stats.subscribes, 0);
		assert_true(stats.attempts >= 2);
	}
	harness_finish(&h);
}

static void destroy_while_resolving(void **state)
{
	char url[64];
	struct harness h;
	harness_init(&h);
	snprintf(url, sizeof(url), "redis://localhost:%d/3", redis_port);
	h.notify = notify_create(&h, url);
	/* one iteration: the 0 ms timer starts the lookup */
	uv_run(&h.loop, UV_RUN_NOWAIT);
	wd_notify_destroy(&h.notify);
	harness_finish(&h);

	/* and the same name all the way to a subscription (::1 may come first) */
	harness_init(&h);
	h.notify = notify_create(&h, url);
	wd_notify_set_timeouts(h.notify, 500, 20, 100);
	assert_true(run_until(&h, is_connected, 5000));
	harness_finish(&h);
}

static void destroy_inside_callback(void **state)
{
	struct harness h;
	harness_init(&h);
	h.notify = notify_create(&h, redis_url);
	assert_true(run_until(&h, is_connected, 5000));
	h.destroy_in_callback = true;
	redisContext *c = redis_sync();
	char hex[25], msg[64];
	fresh_hex(hex, NULL);
	/* several messages: those after the first must not reach the callback */
	for (int i = 0; i < 3; i++) {
		snprintf(msg, sizeof(msg), "{\"e\":\"%s\"}", hex);
		publish_str(c, msg);
	}
	redisFree(c);
	uint64_t start = uv_now(&h.loop);
	while (h.notify != NULL && uv_now(&h.loop) - start < 5000) {
		uv_run(&h.loop, UV_RUN_ONCE);
		uv_update_time(&h.loop);
	}
	assert_null(h.notify);
	assert_int_equal(h.event_count, 1);
	harness_finish(&h);
}

/* ---- main --------------------------------------------------------------------------------- */

static bool parse_test_url(const char *url)
{
	/* redis://[[user]:password@]host[:port][/db], as scripts/stack.sh prints it */
	if (strncmp(url, "redis://", 8) != 0)
		return false;
	const char *p = url + 8;
	const char *end = p + strcspn(p, "/");
	const char *at = memchr(p, '@', (size_t)(end - p));
	if (at != NULL) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		const char *pw = colon != NULL ? colon + 1 : p;
		snprintf(redis_password, sizeof(redis_password), "%.*s", (int)(at - pw), pw);
		p = at + 1;
	}
	const char *colon = memchr(p, ':', (size_t)(end - p));
	snprintf(redis_host, sizeof(redis_host), "%.*s",
		 (int)((colon != NULL ? colon : end) - p), p);
	redis_port = colon != NULL ? atoi(colon + 1) : 6379;
	return redis_host[0] != '\0' && redis_port > 0;
}

int main(void)
{
	redis_url = getenv("WD_REDIS_URL");
	if (redis_url == NULL || redis_url[0] == '\0') {
		fprintf(stderr, "WD_REDIS_URL not set: skipped\n");
		return SKIP_EXIT_CODE;
	}
	if (!parse_test_url(redis_url)) {
		fprintf(stderr, "cannot parse WD_REDIS_URL=%s\n", redis_url);
		return 1;
	}
	wd_log_init("test-notify", WD_LOG_SINK_STDERR,
		    getenv("WD_TEST_DEBUG") != NULL ? WD_LOG_DEBUG : WD_LOG_INFO);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_urls),
		cmocka_unit_test(receive_and_ignore),
		cmocka_unit_test(reconnect_after_kill),
		cmocka_unit_test(refused_port_retries),
		cmocka_unit_test(silent_server_times_out),
		cmocka_unit_test(wrong_password_retries),
		cmocka_unit_test(destroy_while_resolving),
		cmocka_unit_test(destroy_inside_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
