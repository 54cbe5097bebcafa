/*
 * test-outbound-sender.c — the outbound sender against the real stack (WD_MONGO_URL; exit 77
 * without) and a real SMTP server: tests/clients/smtpsink.py, started per test with the
 * answers it should give. Each test uses a zone of its own, so entries of one never meet
 * another's sender.
 *
 *   deliver_once          two recipients: the sink gets one transaction each, with the
 *                         right MAIL FROM / RCPT TO, SIZE and BODY=8BITMIME, and the bytes
 *                         queued (dot-stuffed lines included); the entries and the GridFS
 *                         file are gone; nothing arrives twice.
 *   defer_then_deliver    451 after the data: the entry is deferred as ZoneMTA defers
 *                         (_deferred.count/first/last/next/response, queued = next, unlocked,
 *                         assigned to us), by 5 minutes under ZoneMTA's default schedule and
 *                         by the const:sender:defer_times setting once it exists; later it
 *                         is delivered exactly once. Past the last step it is dropped.
 *   permanent_drop        550 to RCPT TO, and 554 after the data: dropped, nothing delivered,
 *                         entry and file gone.
 *   relay_down            a closed port: deferred with the connect error; a relay that
 *                         never greets: stop returns within a second and the entry is
 *                         unlocked untouched.
 *   two_senders           an in-process sender and a second process's sender on one queue:
 *                         30 messages, each delivered exactly once.
 *   lock_expiry           an entry locked long ago by a crashed sender is taken and
 *                         delivered; one locked just now is left alone; one assigned to
 *                         another instance, and WildDuck's relay (mx) and HTTP targets, are
 *                         never taken.
 *   tls_and_auth          STARTTLS with the sink's certificate as CA and with verification
 *                         off; implicit TLS; verification failure defers; AUTH PLAIN over
 *                         TLS; a wrong password defers; AUTH without TLS is refused (defer).
 *   protocol_edges        HELO fallback (no extensions, no parameters); an SMTPUTF8 recipient
 *                         with and without SMTPUTF8 at the relay; bare LF and "\n.\n" in the
 *                         body arrive as CRLF lines inside one message (no smuggling); a
 *                         message over the relay's SIZE is dropped without being sent.
 *   deleted_and_garbage   entries whose file was removed are dropped unsent; an orphan file
 *                         older than the oldest entry by 10 minutes is collected, a fresh one
 *                         is kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-outbound.h"
#include "wd-result.h"
#include "wd-store.h"

#include "outbound-fixture.h"
#include "sink-fixture.h"

static struct wd_store *store;
static const char *mongo_url, *redis_url;
static char main_db_url[512], sender_db[128];
static char self_path[4096];

/* ---- the outbound object ---- */

static struct wd_config *make_config(const char *zone, int port, const char *sender_extra,
				     const char *relay_extra)
{
	char text[4096];
	snprintf(text, sizeof(text),
		 "[dbs]\nmongo = \"%s\"\nredis = \"%s\"\nsender = \"%s\"\n"
		 "[sender]\nenabled = true\nzone = \"%s\"\npollInterval = 0.05\n"
		 "hostname = \"sender.test\"\ndataTimeout = 5\n%s\n"
		 "[sender.relay]\nhost = \"127.0.0.1\"\nport = %d\n%s\n",
		 main_db_url, redis_url, sender_db, zone,
		 sender_extra != NULL ? sender_extra : "timeout = 5\nconnectTimeout = 5",
		 port, relay_extra != NULL ? relay_extra : "");
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	if (config == NULL)
		fprintf(stderr, "config: %s\n", error);
	assert_non_null(config);
	return config;
}

struct ob {
	struct wd_config *config;
	struct wd_outbound *ob;
};

static void ob_make(struct ob *o, const char *zone, int port, const char *sender_extra,
		    const char *relay_extra)
{
	o->config = make_config(zone, port, sender_extra, relay_extra);
	char *error = NULL;
	o->ob = wd_outbound_create(store, o->config, &error);
	if (o->ob == NULL)
		fprintf(stderr, "create: %s\n", error);
	assert_non_null(o->ob);
}

static void ob_start(struct ob *o)
{
	char *error = NULL;
	int ret = wd_outbound_sender_start(o->ob, &error);
	if (ret < 0)
		fprintf(stderr, "start: %s\n", error);
	assert_int_equal(ret, WD_OK);
	assert_true(wd_outbound_sender_running(o->ob));
}

static void ob_free(struct ob *o)
{
	wd_outbound_destroy(&o->ob);
	wd_config_free(&o->config);
}

static void queue_one(struct wd_outbound *ob, const char *raw, const char *from,
		      const char *const *to, size_t to_count, char id[19])
{
	struct wd_outbound_message msg = {
		.from = from, .to = to, .to_count = to_count, .raw = (const uint8_t *)raw,
		.len = strlen(raw), .reason = "autoreply", .interface = "autoreplies",
	};
	char *error = NULL;
	int ret = wd_outbound_queue(ob, &msg, id, &error);
	if (ret != WD_OK)
		fprintf(stderr, "queue: %s\n", error);
	assert_int_equal(ret, WD_OK);
}

/* ---- the database ---- */

static int64_t count_in(enum wd_store_db db, const char *coll_name, const bson_t *filter)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, coll_name);
	int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, NULL);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
	return n;
}

static int64_t entries_of_zone(const char *zone)
{
	bson_t *f = BCON_NEW("sendingZone", BCON_UTF8(zone));
	int64_t n = count_in(WD_STORE_DB_SENDER, "zone-queue", f);
	bson_destroy(f);
	return n;
}

static int64_t files_of(const char *id)
{
	char name[64];
	snprintf(name, sizeof(name), "message %s", id);
	bson_t *f = BCON_NEW("filename", BCON_UTF8(name));
	int64_t n = count_in(WD_STORE_DB_SENDER, "mail.files", f);
	bson_destroy(f);
	return n;
}

static bson_t *entry_of(const char *id)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_SENDER, "zone-queue");
	bson_t *f = BCON_NEW("id", BCON_UTF8(id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, f, NULL, NULL);
	const bson_t *doc;
	bson_t *copy = mongoc_cursor_next(cursor, &doc) ? bson_copy(doc) : NULL;
	mongoc_cursor_destroy(cursor);
	bson_destroy(f);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
	return copy;
}

static void update_entries(const char *id, const bson_t *update)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_SENDER, "zone-queue");
	bson_t *f = BCON_NEW("id", BCON_UTF8(id));
	bson_error_t error;
	bool ok = mongoc_collection_update_many(coll, f, update, NULL, NULL, &error);
	if (!ok)
		fprintf(stderr, "update: %s\n", error.message);
	assert_true(ok);
	bson_destroy(f);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
}

static void set_defer_times(const char *json_value)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "settings");
	bson_t *f = BCON_NEW("key", BCON_UTF8("const:sender:defer_times"));
	bson_error_t error;
	if (json_value == NULL) {
		mongoc_collection_delete_many(coll, f, NULL, NULL, &error);
	} else {
		bson_t *u = BCON_NEW("$set", "{", "value", BCON_UTF8(json_value), "}");
		bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
		assert_true(mongoc_collection_update_one(coll, f, u, opts, NULL, &error));
		bson_destroy(opts);
		bson_destroy(u);
	}
	bson_destroy(f);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
}

static int64_t num_at(const bson_t *doc, const char *path)
{
	bson_iter_t it;
	if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it))
		return INT64_MIN;
	if (BSON_ITER_HOLDS_DATE_TIME(&it))
		return bson_iter_date_time(&it);
	if (BSON_ITER_HOLDS_BOOL(&it))
		return bson_iter_bool(&it);
	return BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : INT64_MIN;
}

static const char *str_at(const bson_t *doc, const char *path)
{
	bson_iter_t it;
	if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &it) ||
	    !BSON_ITER_HOLDS_UTF8(&it))
		return NULL;
	return bson_iter_utf8(&it, NULL);
}


static const char message[] =
	"Message-ID: <sender-test@example.com>\r\n"
	"Date: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
	"From: Sender <sender@example.com>\r\n"
	"Subject: hello\r\n"
	"\r\n"
	"first line\r\n"
	".a line starting with a dot\r\n"
	"..two dots\r\n"
	".\r\n"
	"last line\r\n";

/* relay settings with @DIR@ standing for the sink's directory */
static void with_dir(char *out, size_t size, const char *text, const char *dir)
{
	const char *at = strstr(text, "@DIR@");
	if (at == NULL)
		snprintf(out, size, "%s", text);
	else
		snprintf(out, size, "%.*s%s%s", (int)(at - text), text, dir, at + 5);
}

/* A sink answering as `sink_args`, an outbound object for `zone` pointed at it (with
   `relay_extra` in [sender.relay]), one message (`raw`, or the test message) to `to`
   queued, the sender started. */
struct scenario {
	struct sink sink;
	struct ob o;
	char id[19];
};

static void scenario_queue(struct scenario *sc, const char *zone, const char *const *sink_args,
			   const char *relay_extra, const char *to, const char *raw)
{
	sink_start(&sc->sink, sink_args);
	char extra[1024];
	with_dir(extra, sizeof(extra), relay_extra != NULL ? relay_extra : "", sc->sink.dir);
	ob_make(&sc->o, zone, sc->sink.port, NULL, extra);
	const char *rcpt[] = { to };
	queue_one(sc->o.ob, raw, "sender@example.com", rcpt, 1, sc->id);
	ob_start(&sc->o);
}

static void scenario_start(struct scenario *sc, const char *zone, const char *const *sink_args,
			   const char *relay_extra, const char *to)
{
	scenario_queue(sc, zone, sink_args, relay_extra, to, message);
}

static void scenario_end(struct scenario *sc)
{
	ob_free(&sc->o);
	sink_stop(&sc->sink);
}

static struct wd_outbound_stats stats_of(const struct scenario *sc)
{
	struct wd_outbound_stats st;
	wd_outbound_get_stats(sc->o.ob, &st);
	return st;
}

/* ---- tests ---- */

static void test_deliver_once(void **state)
{
	struct sink sink;
	sink_start(&sink, NULL);
	struct ob o;
	ob_make(&o, "z-once", sink.port, NULL, NULL);
	const char *to[] = { "one@example.net", "two@example.org" };
	char id[19];
	queue_one(o.ob, message, "sender@example.com", to, 2, id);
	ob_start(&o);
	WAIT_FOR(entries_of_zone("z-once") == 0 && sink_count(&sink) == 2, 10000);
	assert_int_equal(entries_of_zone("z-once"), 0);
	assert_int_equal(sink_count(&sink), 2);
	WAIT_FOR(files_of(id) == 0, 2000);
	assert_int_equal(files_of(id), 0);
	sleep_ms(500); /* nothing more arrives */
	assert_int_equal(sink_count(&sink), 2);
	bool seen[2] = { false, false };
	for (int n = 1; n <= 2; n++) {
		size_t len;
		char *eml = sink_record(&sink, n, "eml", &len);
		char *json = sink_record(&sink, n, "json", NULL);
		assert_int_equal(len, strlen(message));
		assert_memory_equal(eml, message, len);
		assert_non_null(strstr(json, "\"mail_from\": \"sender@example.com\""));
		assert_non_null(strstr(json, "\"helo\": \"sender.test\""));
		assert_non_null(strstr(json, "\"bare_lf\": false"));
		char size[64];
		snprintf(size, sizeof(size), "\"SIZE=%zu\"", strlen(message));
		assert_non_null(strstr(json, size));
		assert_non_null(strstr(json, "\"BODY=8BITMIME\""));
		for (int i = 0; i < 2; i++) {
			char rcpt[128];
			snprintf(rcpt, sizeof(rcpt), "\"rcpt_to\": [\"%s\"]", to[i]);
			if (strstr(json, rcpt) != NULL) {
				assert_false(seen[i]);
				seen[i] = true;
			}
		}
		free(eml);
		free(json);
	}
	assert_true(seen[0] && seen[1]);
	struct wd_outbound_stats st;
	wd_outbound_get_stats(o.ob, &st);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(st.deferred, 0);
	assert_int_equal(st.dropped, 0);
	ob_free(&o);
	sink_stop(&sink);
}

static void test_defer_then_deliver(void **state)
{
	set_defer_times(NULL); /* ZoneMTA's default schedule */
	const char *args[] = { "--reply", "message=451", NULL };
	struct sink sink;
	sink_start(&sink, args);
	struct ob o;
	ob_make(&o, "z-defer", sink.port, NULL, NULL);
	const char *to[] = { "later@example.net" };
	char id[19];
	queue_one(o.ob, message, "sender@example.com", to, 1, id);
	int64_t before = now_ms();
	ob_start(&o);
	struct wd_outbound_stats st;
	WAIT_FOR((wd_outbound_get_stats(o.ob, &st), st.deferred == 1), 10000);
	assert_int_equal(st.deferred, 1);
	wd_outbound_sender_stop(o.ob);
	assert_false(wd_outbound_sender_running(o.ob));
	int64_t after = now_ms();

	bson_t *e = entry_of(id);
	assert_non_null(e);
	assert_int_equal(num_at(e, "locked"), 0);
	assert_string_equal(str_at(e, "assigned"), "wildduck-c");
	assert_int_equal(num_at(e, "_deferred.count"), 1);
	int64_t first = num_at(e, "_deferred.first"), last = num_at(e, "_deferred.last");
	int64_t next = num_at(e, "_deferred.next"), queued = num_at(e, "queued");
	assert_true(first >= before && first <= after);
	assert_int_equal(first, last);
	assert_int_equal(next - last, 5 * 60 * 1000);
	assert_int_equal(queued, next);
	const char *response = str_at(e, "_deferred.response");
	assert_non_null(response);
	assert_non_null(strstr(response, "451 4.3.0 sink says try again"));
	bson_destroy(e);
	assert_int_equal(sink_count(&sink), 0);

	/* the setting's schedule: 1 s; make the entry due now, as if 5 minutes had passed */
	set_defer_times("\"1s, 2s\"");
	bson_t *u = BCON_NEW("$set", "{", "queued", BCON_DATE_TIME(now_ms()), "}");
	update_entries(id, u);
	bson_destroy(u);
	wd_outbound_destroy(&o.ob);
	wd_config_free(&o.config);
	ob_make(&o, "z-defer", sink.port, NULL, NULL);
	ob_start(&o);
	WAIT_FOR(sink_count(&sink) == 1 && entries_of_zone("z-defer") == 0, 10000);
	assert_int_equal(sink_count(&sink), 1);
	assert_int_equal(entries_of_zone("z-defer"), 0);
	sleep_ms(300);
	char *events = sink_events(&sink);
	assert_int_equal(count_substr(events, "\"code\": 451"), 1);
	assert_int_equal(count_substr(events, "\"code\": 250"), 1);
	free(events);
	ob_free(&o);
	sink_stop(&sink);

	/* every attempt deferred: 1 s, 2 s, then dropped */
	const char *always[] = { "--reply", "message=452*", NULL };
	struct scenario sc;
	scenario_start(&sc, "z-defer2", always, NULL, "later@example.net");
	WAIT_FOR(entries_of_zone("z-defer2") == 0, 15000);
	assert_int_equal(entries_of_zone("z-defer2"), 0);
	st = stats_of(&sc);
	assert_int_equal(st.deferred, 2);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.delivered, 0);
	events = sink_events(&sc.sink);
	assert_int_equal(count_substr(events, "\"code\": 452"), 3);
	free(events);
	WAIT_FOR(files_of(sc.id) == 0, 2000);
	assert_int_equal(files_of(sc.id), 0);
	scenario_end(&sc);
}

static void test_permanent_drop(void **state)
{
	const char *rcpt_args[] = { "--reply", "rcpt=550*", NULL };
	struct scenario sc;
	scenario_start(&sc, "z-perm", rcpt_args, NULL, "nobody@example.net");
	WAIT_FOR(entries_of_zone("z-perm") == 0, 10000);
	assert_int_equal(entries_of_zone("z-perm"), 0);
	WAIT_FOR(files_of(sc.id) == 0, 2000);
	assert_int_equal(files_of(sc.id), 0);
	assert_int_equal(stats_of(&sc).dropped, 1);
	assert_int_equal(stats_of(&sc).deferred, 0);
	assert_int_equal(sink_count(&sc.sink), 0);
	char *events = sink_events(&sc.sink);
	assert_int_equal(count_substr(events, "\"stage\": \"rcpt\", \"code\": 550"), 1);
	free(events);
	scenario_end(&sc);

	const char *msg_args[] = { "--reply", "message=554", NULL };
	scenario_start(&sc, "z-perm2", msg_args, NULL, "nobody@example.net");
	WAIT_FOR(entries_of_zone("z-perm2") == 0, 10000);
	assert_int_equal(entries_of_zone("z-perm2"), 0);
	assert_int_equal(stats_of(&sc).dropped, 1);
	assert_int_equal(sink_count(&sc.sink), 0);
	scenario_end(&sc);
}

static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_relay_down(void **state)
{
	struct ob o;
	ob_make(&o, "z-down", closed_port(), NULL, NULL);
	const char *to[] = { "down@example.net" };
	char id[19];
	queue_one(o.ob, message, "sender@example.com", to, 1, id);
	ob_start(&o);
	struct wd_outbound_stats st;
	WAIT_FOR((wd_outbound_get_stats(o.ob, &st), st.deferred == 1), 10000);
	assert_int_equal(st.deferred, 1);
	int64_t t0 = mono_ms();
	wd_outbound_sender_stop(o.ob);
	assert_true(mono_ms() - t0 < 1000);
	bson_t *e = entry_of(id);
	assert_int_equal(num_at(e, "_deferred.count"), 1);
	assert_non_null(strstr(str_at(e, "_deferred.response"), "connect"));
	assert_non_null(strstr(str_at(e, "_deferred.response"), "refused"));
	bson_destroy(e);
	ob_free(&o);

	/* a relay that refuses us at the greeting: one connection per batch, every due entry
	   deferred with that answer */
	const char *refusing[] = { "--reply", "greeting=421*", NULL };
	struct sink sink;
	sink_start(&sink, refusing);
	ob_make(&o, "z-refuse", sink.port, NULL, NULL);
	char ids[3][19];
	for (int i = 0; i < 3; i++)
		queue_one(o.ob, message, "sender@example.com", to, 1, ids[i]);
	ob_start(&o);
	WAIT_FOR((wd_outbound_get_stats(o.ob, &st), st.deferred == 3), 10000);
	wd_outbound_sender_stop(o.ob);
	wd_outbound_get_stats(o.ob, &st);
	assert_int_equal(st.deferred, 3);
	assert_int_equal(st.attempts, 3);
	char *events = sink_events(&sink);
	assert_int_equal(count_substr(events, "\"stage\": \"connect\""), 1);
	free(events);
	for (int i = 0; i < 3; i++) {
		e = entry_of(ids[i]);
		assert_non_null(strstr(str_at(e, "_deferred.response"), "greeting: 421"));
		bson_destroy(e);
	}
	ob_free(&o);
	sink_stop(&sink);

	/* a relay that accepts and never says a word; long timeouts */
	const char *args[] = { "--reply", "greeting=hang*", NULL };
	sink_start(&sink, args);
	ob_make(&o, "z-silent", sink.port, "timeout = 600\nconnectTimeout = 600", NULL);
	queue_one(o.ob, message, "sender@example.com", to, 1, id);
	ob_start(&o);
	wd_outbound_get_stats(o.ob, &st);
	WAIT_FOR((wd_outbound_get_stats(o.ob, &st), st.attempts == 1), 10000);
	assert_int_equal(st.attempts, 1);
	sleep_ms(300); /* it waits for the greeting now */
	e = entry_of(id);
	assert_int_equal(num_at(e, "locked"), 1);
	bson_destroy(e);
	t0 = mono_ms();
	wd_outbound_sender_stop(o.ob);
	int64_t took = mono_ms() - t0;
	fprintf(stderr, "stop while waiting for a silent relay: %lld ms\n", (long long)took);
	assert_true(took < 1000);
	e = entry_of(id);
	assert_int_equal(num_at(e, "locked"), 0);
	assert_int_equal(num_at(e, "_deferred.count"), INT64_MIN); /* not counted */
	bson_destroy(e);
	wd_outbound_get_stats(o.ob, &st);
	assert_int_equal(st.deferred, 0);
	ob_free(&o);
	sink_stop(&sink);
}

#define TWO_SENDERS_MESSAGES 30

static void test_two_senders(void **state)
{
	struct sink sink;
	sink_start(&sink, NULL);
	struct ob o;
	ob_make(&o, "z-two", sink.port, NULL, NULL);
	char rcpts[TWO_SENDERS_MESSAGES][64];
	char id[19];
	for (int i = 0; i < TWO_SENDERS_MESSAGES; i++) {
		snprintf(rcpts[i], sizeof(rcpts[i]), "r%02d@example.net", i);
		const char *to[] = { rcpts[i] };
		queue_one(o.ob, message, "sender@example.com", to, 1, id);
	}
	/* the other sender: this program in another process */
	char port[16];
	snprintf(port, sizeof(port), "%d", sink.port);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		execl(self_path, self_path, "--child-sender", "z-two", port, sender_db, main_db_url,
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	ob_start(&o);
	WAIT_FOR(entries_of_zone("z-two") == 0 && sink_count(&sink) >= TWO_SENDERS_MESSAGES, 30000);
	sleep_ms(500);
	kill(child, SIGTERM);
	char out[256] = "";
	ssize_t r = read(fds[0], out, sizeof(out) - 1);
	out[r > 0 ? r : 0] = '\0';
	close(fds[0]);
	int status;
	waitpid(child, &status, 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	long child_delivered = strtol(out, NULL, 10);
	struct wd_outbound_stats st;
	wd_outbound_get_stats(o.ob, &st);
	fprintf(stderr, "two senders: %llu here, %ld in the other process\n",
		(unsigned long long)st.delivered, child_delivered);
	assert_int_equal(entries_of_zone("z-two"), 0);
	assert_int_equal(sink_count(&sink), TWO_SENDERS_MESSAGES);
	assert_int_equal((long)st.delivered + child_delivered, TWO_SENDERS_MESSAGES);
	/* each recipient exactly once */
	int seen[TWO_SENDERS_MESSAGES] = { 0 };
	for (int n = 1; n <= TWO_SENDERS_MESSAGES; n++) {
		char *json = sink_record(&sink, n, "json", NULL);
		assert_non_null(json);
		const char *r0 = strstr(json, "\"rcpt_to\": [\"r");
		assert_non_null(r0);
		seen[atoi(r0 + 14)]++;
		free(json);
	}
	for (int i = 0; i < TWO_SENDERS_MESSAGES; i++)
		assert_int_equal(seen[i], 1);
	ob_free(&o);
	sink_stop(&sink);
}

static void test_lock_expiry(void **state)
{
	struct sink sink;
	sink_start(&sink, NULL);
	struct ob o;
	ob_make(&o, "z-lock", sink.port, "lockTime = 20", NULL);
	const char *crashed[] = { "crashed@example.net" }, *busy[] = { "busy@example.net" },
		   *other[] = { "other@example.net" };
	char id_crashed[19], id_busy[19], id_other[19];
	queue_one(o.ob, message, "sender@example.com", crashed, 1, id_crashed);
	queue_one(o.ob, message, "sender@example.com", busy, 1, id_busy);
	queue_one(o.ob, message, "sender@example.com", other, 1, id_other);
	int64_t now = now_ms();
	bson_t *u = BCON_NEW("$set", "{", "locked", BCON_BOOL(true), "lockTime",
			     BCON_DOUBLE((double)(now - 60000)), "assigned", BCON_UTF8("wildduck-c"), "}");
	update_entries(id_crashed, u);
	bson_destroy(u);
	u = BCON_NEW("$set", "{", "locked", BCON_BOOL(true), "lockTime", BCON_DOUBLE((double)now),
		     "assigned", BCON_UTF8("wildduck-c"), "}");
	update_entries(id_busy, u);
	bson_destroy(u);
	u = BCON_NEW("$set", "{", "assigned", BCON_UTF8("zone-mta-elsewhere"), "}");
	update_entries(id_other, u);
	bson_destroy(u);
	/* WildDuck's relay and HTTP targets are left to ZoneMTA */
	const char *relay[] = { "relay@example.net" }, *http[] = { "http@example.net" };
	char id_relay[19], id_http[19];
	queue_one(o.ob, message, "sender@example.com", relay, 1, id_relay);
	queue_one(o.ob, message, "sender@example.com", http, 1, id_http);
	u = BCON_NEW("$set", "{", "mx", BCON_UTF8("mx.example.net"), "mxPort", BCON_INT32(2525), "}");
	update_entries(id_relay, u);
	bson_destroy(u);
	u = BCON_NEW("$set", "{", "http", BCON_BOOL(true), "targetUrl",
		     BCON_UTF8("https://example.net/hook"), "}");
	update_entries(id_http, u);
	bson_destroy(u);
	ob_start(&o);
	WAIT_FOR(sink_count(&sink) == 1, 10000);
	sleep_ms(1000);
	assert_int_equal(sink_count(&sink), 1);
	char *json = sink_record(&sink, 1, "json", NULL);
	assert_non_null(strstr(json, "\"rcpt_to\": [\"crashed@example.net\"]"));
	free(json);
	assert_null(entry_of(id_crashed));
	bson_t *e = entry_of(id_busy);
	assert_int_equal(num_at(e, "locked"), 1);
	bson_destroy(e);
	const char *untouched[] = { id_other, id_relay, id_http };
	for (int i = 0; i < 3; i++) {
		e = entry_of(untouched[i]);
		assert_non_null(e);
		assert_int_equal(num_at(e, "locked"), 0);
		assert_string_not_equal(str_at(e, "assigned"), "wildduck-c");
		bson_destroy(e);
	}
	ob_free(&o);
	sink_stop(&sink);
}

static void expect_delivery(const char *zone, const char *const *sink_args, const char *relay_extra,
			    const char *json_needle)
{
	struct scenario sc;
	scenario_start(&sc, zone, sink_args, relay_extra, "tls@example.net");
	WAIT_FOR(sink_count(&sc.sink) == 1 && entries_of_zone(zone) == 0, 10000);
	assert_int_equal(sink_count(&sc.sink), 1);
	assert_int_equal(entries_of_zone(zone), 0);
	char *json = sink_record(&sc.sink, 1, "json", NULL);
	const char *found = json != NULL ? strstr(json, json_needle) : NULL;
	if (found == NULL)
		fprintf(stderr, "%s: %s lacks %s\n", zone, json != NULL ? json : "(no record)",
			json_needle);
	assert_non_null(found);
	free(json);
	size_t len;
	char *eml = sink_record(&sc.sink, 1, "eml", &len);
	assert_int_equal(len, strlen(message));
	assert_memory_equal(eml, message, len);
	free(eml);
	scenario_end(&sc);
}

static void expect_deferral(const char *zone, const char *const *sink_args, const char *relay_extra,
			    const char *response_needle)
{
	struct scenario sc;
	scenario_start(&sc, zone, sink_args, relay_extra, "tls@example.net");
	WAIT_FOR(stats_of(&sc).deferred == 1, 10000);
	assert_int_equal(stats_of(&sc).deferred, 1);
	wd_outbound_sender_stop(sc.o.ob);
	bson_t *e = entry_of(sc.id);
	const char *response = str_at(e, "_deferred.response");
	const char *found = response != NULL ? strstr(response, response_needle) : NULL;
	if (found == NULL)
		fprintf(stderr, "%s: response \"%s\" lacks \"%s\"\n", zone,
			response != NULL ? response : "(none)", response_needle);
	assert_non_null(found);
	bson_destroy(e);
	assert_int_equal(sink_count(&sc.sink), 0);
	scenario_end(&sc);
}

static void test_tls_and_auth(void **state)
{
	const char *starttls[] = { "--starttls", NULL };
	expect_delivery("z-tls1", starttls, "starttls = true\ntls.ca = \"@DIR@/sink.crt\"",
			"\"tls\": true");
	expect_delivery("z-tls2", starttls, "starttls = true\ntls.rejectUnauthorized = false",
			"\"tls\": true");
	const char *implicit[] = { "--implicit-tls", NULL };
	expect_delivery("z-tls3", implicit, "secure = true\ntls.ca = \"@DIR@/sink.crt\"",
			"\"tls\": true");
	/* the system store does not know the sink's self-signed certificate */
	expect_deferral("z-tls4", starttls, "starttls = true", "certificate");
	const char *auth[] = { "--starttls", "--auth", "relayuser:relay pass", NULL };
	expect_delivery("z-auth1", auth,
			"starttls = true\ntls.ca = \"@DIR@/sink.crt\"\nuser = \"relayuser\"\n"
			"pass = \"relay pass\"",
			"\"auth\": \"relayuser\"");
	expect_deferral("z-auth2", auth,
			"starttls = true\ntls.ca = \"@DIR@/sink.crt\"\nuser = \"relayuser\"\n"
			"pass = \"wrong\"",
			"535");
	const char *plain_auth[] = { "--auth", "relayuser:relay pass", NULL };
	expect_deferral("z-auth3", plain_auth, "user = \"relayuser\"\npass = \"relay pass\"",
			"without TLS");
	expect_delivery("z-auth4", plain_auth,
			"user = \"relayuser\"\npass = \"relay pass\"\ninsecureAuth = true",
			"\"auth\": \"relayuser\"");
	/* STARTTLS required but not offered */
	expect_deferral("z-tls5", NULL, "starttls = true", "does not offer STARTTLS");
}

static void test_protocol_edges(void **state)
{
	const char *no_ehlo[] = { "--no-ehlo", NULL };
	expect_delivery("z-helo", no_ehlo, "", "\"mail_params\": []");

	/* a non-ASCII recipient: SMTPUTF8 when offered, dropped otherwise */
	struct scenario sc;
	scenario_start(&sc, "z-utf8", NULL, NULL, "\xc3\xbc@example.net");
	WAIT_FOR(sink_count(&sc.sink) == 1, 10000);
	char *json = sink_record(&sc.sink, 1, "json", NULL);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"SMTPUTF8\""));
	free(json);
	scenario_end(&sc);
	const char *no_utf8[] = { "--no-smtputf8", NULL };
	scenario_start(&sc, "z-utf8b", no_utf8, NULL, "\xc3\xbc@example.net");
	WAIT_FOR(entries_of_zone("z-utf8b") == 0, 10000);
	assert_int_equal(stats_of(&sc).dropped, 1);
	assert_int_equal(sink_count(&sc.sink), 0);
	scenario_end(&sc);

	/* bare LF and "\n.\n" inside the body: CRLF lines inside one message */
	static const char smuggle[] = "Message-ID: <s@x>\r\nDate: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
				      "Subject: s\r\n\r\nbefore\n.\nMAIL FROM:<evil@x>\r\nafter\rend";
	static const char expected[] = "Message-ID: <s@x>\r\nDate: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
				       "Subject: s\r\n\r\nbefore\r\n.\r\nMAIL FROM:<evil@x>\r\nafter\r\nend\r\n";
	scenario_queue(&sc, "z-smuggle", NULL, NULL, "s@example.net", smuggle);
	WAIT_FOR(sink_count(&sc.sink) == 1 && entries_of_zone("z-smuggle") == 0, 10000);
	sleep_ms(300);
	assert_int_equal(sink_count(&sc.sink), 1);
	size_t len;
	char *eml = sink_record(&sc.sink, 1, "eml", &len);
	assert_int_equal(len, strlen(expected));
	assert_memory_equal(eml, expected, len);
	free(eml);
	json = sink_record(&sc.sink, 1, "json", NULL);
	assert_non_null(strstr(json, "\"bare_lf\": false"));
	assert_non_null(strstr(json, "\"bare_cr\": false"));
	free(json);
	scenario_end(&sc);

	/* over the relay's SIZE: dropped before MAIL FROM is sent */
	const char *small[] = { "--size", "100", NULL };
	scenario_start(&sc, "z-size", small, NULL, "s@example.net");
	WAIT_FOR(entries_of_zone("z-size") == 0, 10000);
	assert_int_equal(stats_of(&sc).dropped, 1);
	assert_int_equal(sink_count(&sc.sink), 0);
	char *events = sink_events(&sc.sink); /* connected, never got to MAIL FROM */
	assert_int_equal(count_substr(events, "\"stage\": \"connect\""), 1);
	assert_int_equal(count_substr(events, "\"stage\": \"m"), 0);
	free(events);
	scenario_end(&sc);
}

static void test_deleted_and_garbage(void **state)
{
	struct sink sink;
	sink_start(&sink, NULL);
	struct ob o;
	ob_make(&o, "z-gone", sink.port, NULL, NULL);
	const char *to[] = { "a@example.net", "b@example.net" };
	char id[19];
	queue_one(o.ob, message, "sender@example.com", to, 2, id);
	/* the message file removed (as the API's DELETE /outbound does it) */
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *files = wd_store_collection(store, client, WD_STORE_DB_SENDER, "mail.files");
	char name[64];
	snprintf(name, sizeof(name), "message %s", id);
	bson_t *f = BCON_NEW("filename", BCON_UTF8(name));
	assert_true(mongoc_collection_delete_many(files, f, NULL, NULL, NULL));
	bson_destroy(f);

	/* an orphan file from an hour ago and a fresh one */
	bson_oid_t old_id, fresh_id;
	uint8_t bytes[12] = { 0 };
	uint32_t t = (uint32_t)(time(NULL) - 3600);
	bytes[0] = (uint8_t)(t >> 24);
	bytes[1] = (uint8_t)(t >> 16);
	bytes[2] = (uint8_t)(t >> 8);
	bytes[3] = (uint8_t)t;
	bytes[11] = 1;
	bson_oid_init_from_data(&old_id, bytes);
	bson_oid_init(&fresh_id, NULL);
	bson_t *old_doc = BCON_NEW("_id", BCON_OID(&old_id), "filename", BCON_UTF8("message old"),
				   "length", BCON_INT32(0));
	bson_t *fresh_doc = BCON_NEW("_id", BCON_OID(&fresh_id), "filename",
				     BCON_UTF8("message fresh"), "length", BCON_INT32(0));
	assert_true(mongoc_collection_insert_one(files, old_doc, NULL, NULL, NULL));
	assert_true(mongoc_collection_insert_one(files, fresh_doc, NULL, NULL, NULL));
	bson_destroy(old_doc);
	bson_destroy(fresh_doc);
	mongoc_collection_destroy(files);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);

	ob_start(&o);
	WAIT_FOR(entries_of_zone("z-gone") == 0, 10000);
	assert_int_equal(entries_of_zone("z-gone"), 0);
	sleep_ms(300);
	assert_int_equal(sink_count(&sink), 0);
	f = BCON_NEW("filename", BCON_UTF8("message old"));
	WAIT_FOR(count_in(WD_STORE_DB_SENDER, "mail.files", f) == 0, 5000);
	assert_int_equal(count_in(WD_STORE_DB_SENDER, "mail.files", f), 0);
	bson_destroy(f);
	f = BCON_NEW("filename", BCON_UTF8("message fresh"));
	assert_int_equal(count_in(WD_STORE_DB_SENDER, "mail.files", f), 1);
	bson_destroy(f);
	ob_free(&o);
	sink_stop(&sink);
}

/* ---- a sender in a process of its own (two_senders) ---- */

static volatile sig_atomic_t child_stop;

static void on_term(int sig)
{
	child_stop = 1;
}

static int child_sender(const char *zone, const char *port, const char *db)
{
	snprintf(sender_db, sizeof(sender_db), "%s", db);
	char *error = NULL;
	store = outbound_fixture_open(main_db_url, redis_url, sender_db, NULL, NULL);
	if (store == NULL)
		return 1;
	struct wd_config *config = make_config(zone, atoi(port), NULL, NULL);
	struct wd_outbound *ob = wd_outbound_create(store, config, &error);
	if (ob == NULL || wd_outbound_sender_start(ob, &error) < 0)
		return 1;
	signal(SIGTERM, on_term);
	while (!child_stop)
		sleep_ms(20);
	wd_outbound_sender_stop(ob);
	struct wd_outbound_stats st;
	wd_outbound_get_stats(ob, &st);
	printf("%llu\n", (unsigned long long)st.delivered);
	fflush(stdout);
	wd_outbound_destroy(&ob);
	wd_config_free(&config);
	wd_store_close(&store);
	return 0;
}

int main(int argc, char **argv)
{
	mongo_url = getenv("WD_MONGO_URL");
	redis_url = getenv("WD_REDIS_URL");
	if (mongo_url == NULL || redis_url == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	self_path[n > 0 ? n : 0] = '\0';
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);
	if (argc == 6 && strcmp(argv[1], "--child-sender") == 0) {
		snprintf(main_db_url, sizeof(main_db_url), "%s", argv[5]);
		wd_log_init("test-outbound-sender-child", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
		int ret = child_sender(argv[2], argv[3], argv[4]);
		mongoc_cleanup();
		return ret;
	}
	wd_log_init("test-outbound-sender", WD_LOG_SINK_STDERR,
		    getenv("WD_TEST_VERBOSE") != NULL ? WD_LOG_DEBUG : WD_LOG_WARNING);
	snprintf(main_db_url, sizeof(main_db_url), "%s-outs-%d", mongo_url, (int)getpid());
	snprintf(sender_db, sizeof(sender_db), "wdtest_zmta_s_%d", (int)getpid());
	store = outbound_fixture_open(main_db_url, redis_url, sender_db, NULL, NULL);
	if (store == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deliver_once),
		cmocka_unit_test(test_defer_then_deliver),
		cmocka_unit_test(test_permanent_drop),
		cmocka_unit_test(test_relay_down),
		cmocka_unit_test(test_two_senders),
		cmocka_unit_test(test_lock_expiry),
		cmocka_unit_test(test_tls_and_auth),
		cmocka_unit_test(test_protocol_edges),
		cmocka_unit_test(test_deleted_and_garbage),
	};
	if (getenv("WD_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("WD_TEST_FILTER"));
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	outbound_fixture_drop(&store);
	mongoc_cleanup();
	return failed;
}
