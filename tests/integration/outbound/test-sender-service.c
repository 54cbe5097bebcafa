/*
 * test-sender-service.c — the sender as a service of the real wd-server binary (argv[1]),
 * against the real stack (WD_MONGO_URL; exit 77 without) and tests/clients/smtpsink.py.
 *
 *   service_delivers   wd-server with sender.enabled and two event loops logs
 *                      "sender delivering to 127.0.0.1:PORT (zone Z)" exactly once (the
 *                      service runs on the first loop only); a message queued by this
 *                      process reaches the sink; SIGTERM ends wd-server within 5 s with
 *                      status 0 and "sender stopped" in its log.
 *   service_disabled   without sender.enabled: "sender: disabled", nothing is sent, the
 *                      queue entry stays for an external ZoneMTA.
 *   stop_on_dead_relay wd-server whose relay never answers: SIGTERM still ends it within
 *                      5 s.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"
#include "wd-log.h"
#include "wd-outbound.h"
#include "wd-result.h"
#include "wd-store.h"

#include "outbound-fixture.h"
#include "sink-fixture.h"

static const char *server_path;
static struct wd_store *store;
static char main_db_url[512], sender_db[128], tmp_dir[256], cert[300], key[300], empty[300];

struct server {
	pid_t pid;
	int log_fd;
	char log[65536];
	size_t log_len;
};

static void read_log(struct server *s, int timeout_ms)
{
	struct pollfd p = { .fd = s->log_fd, .events = POLLIN };
	while (s->log_len < sizeof(s->log) - 1 && poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = read(s->log_fd, s->log + s->log_len, sizeof(s->log) - 1 - s->log_len);
		if (n <= 0)
			break;
		s->log_len += (size_t)n;
		s->log[s->log_len] = '\0';
		timeout_ms = 0;
	}
}

/* Start wd-server and wait for its last startup line. */
static void server_start(struct server *s, const char *const *extra)
{
	memset(s, 0, sizeof(*s));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	char a_mongo[600], a_sender[200], a_redis[300], a_cert[400], a_key[400], a_conf[400];
	snprintf(a_conf, sizeof(a_conf), "--config=%s", empty);
	snprintf(a_mongo, sizeof(a_mongo), "--dbs.mongo=%s", main_db_url);
	snprintf(a_sender, sizeof(a_sender), "--dbs.sender=%s", sender_db);
	snprintf(a_redis, sizeof(a_redis), "--dbs.redis=%s", getenv("WD_REDIS_URL"));
	snprintf(a_cert, sizeof(a_cert), "--tls.cert=%s", cert);
	snprintf(a_key, sizeof(a_key), "--tls.key=%s", key);
	const char *argv[40] = { server_path, a_conf, a_mongo, a_sender, a_redis, a_cert, a_key,
				 "--imap.host=127.0.0.1", "--imap.port=0", "--pop3.host=127.0.0.1",
				 "--pop3.port=0", "--lmtp.host=127.0.0.1", "--lmtp.port=0",
				 "--workers.threads=2", "--workers.loops=2", "--log.level=info" };
	size_t n = 16;
	for (size_t i = 0; extra[i] != NULL && n < 38; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		execv(server_path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	s->log_fd = fds[0];
	int64_t until = mono_ms() + 60000;
	while (strstr(s->log, " worker threads") == NULL && mono_ms() < until) {
		int status;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = -1;
			break;
		}
		read_log(s, 100);
	}
	if (strstr(s->log, " worker threads") == NULL)
		fprintf(stderr, "wd-server did not start:\n%s\n", s->log);
	assert_non_null(strstr(s->log, " worker threads"));
}

/* SIGTERM; the exit status, and how long it took. */
static int server_stop(struct server *s, int64_t *took_ms)
{
	int64_t t0 = mono_ms();
	kill(s->pid, SIGTERM);
	int status = -1;
	while (mono_ms() - t0 < 20000) {
		read_log(s, 20);
		if (waitpid(s->pid, &status, WNOHANG) == s->pid)
			break;
	}
	*took_ms = mono_ms() - t0;
	if (waitpid(s->pid, &status, WNOHANG) == 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
	}
	read_log(s, 100);
	close(s->log_fd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void queue_message(const char *zone, const char *to_address, char id[19])
{
	char text[1024];
	snprintf(text, sizeof(text), "[dbs]\nsender = \"%s\"\n[sender]\nzone = \"%s\"\n", sender_db,
		 zone);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("q.toml", text, strlen(text), &error);
	struct wd_outbound *ob = wd_outbound_create(store, config, &error);
	assert_non_null(ob);
	static const char raw[] = "Message-ID: <svc@example.com>\r\nDate: Tue, 04 Feb 2025 10:00:00 +0000\r\n"
				  "Subject: through wd-server\r\n\r\nbody\r\n";
	const char *to[] = { to_address };
	struct wd_outbound_message msg = { .from = "svc@example.com", .to = to, .to_count = 1,
					   .raw = (const uint8_t *)raw, .len = strlen(raw),
					   .reason = "forward", .interface = "forwarder" };
	assert_int_equal(wd_outbound_queue(ob, &msg, id, &error), WD_OK);
	wd_outbound_destroy(&ob);
	wd_config_free(&config);
}

static int64_t entries_of_zone(const char *zone)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_SENDER, "zone-queue");
	bson_t *f = BCON_NEW("sendingZone", BCON_UTF8(zone));
	int64_t n = mongoc_collection_count_documents(coll, f, NULL, NULL, NULL, NULL);
	bson_destroy(f);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_SENDER, client);
	return n;
}

static void test_service_delivers(void **state)
{
	struct sink sink;
	sink_start(&sink, NULL);
	char port[64], line[128];
	snprintf(port, sizeof(port), "--sender.relay.port=%d", sink.port);
	const char *extra[] = { "--sender.enabled=true", "--sender.relay.host=127.0.0.1", port,
				"--sender.zone=z-service", "--sender.pollInterval=0.1", NULL };
	struct server s;
	server_start(&s, extra);
	snprintf(line, sizeof(line), "sender delivering to 127.0.0.1:%d (zone z-service)", sink.port);
	if (count_substr(s.log, line) != 1)
		fprintf(stderr, "%s\n", s.log);
	assert_int_equal(count_substr(s.log, line), 1);
	char id[19];
	queue_message("z-service", "svc-rcpt@example.net", id);
	WAIT_FOR(sink_count(&sink) == 1 && entries_of_zone("z-service") == 0, 15000);
	assert_int_equal(sink_count(&sink), 1);
	assert_int_equal(entries_of_zone("z-service"), 0);
	char *json = sink_record(&sink, 1, "json", NULL);
	assert_non_null(strstr(json, "\"rcpt_to\": [\"svc-rcpt@example.net\"]"));
	free(json);
	int64_t took;
	assert_int_equal(server_stop(&s, &took), 0);
	fprintf(stderr, "wd-server with the sender stopped in %lld ms\n", (long long)took);
	assert_true(took < 5000);
	assert_non_null(strstr(s.log, "sender stopped"));
	sink_stop(&sink);
}

static void test_service_disabled(void **state)
{
	struct sink sink;
	sink_start(&sink, NULL);
	char port[64];
	snprintf(port, sizeof(port), "--sender.relay.port=%d", sink.port);
	const char *extra[] = { port, "--sender.zone=z-off", "--sender.pollInterval=0.1", NULL };
	struct server s;
	server_start(&s, extra);
	assert_non_null(strstr(s.log, "sender: disabled"));
	assert_null(strstr(s.log, "sender delivering to"));
	char id[19];
	queue_message("z-off", "off@example.net", id);
	sleep_ms(1000);
	assert_int_equal(sink_count(&sink), 0);
	assert_int_equal(entries_of_zone("z-off"), 1);
	int64_t took;
	assert_int_equal(server_stop(&s, &took), 0);
	sink_stop(&sink);
}

static void test_stop_on_dead_relay(void **state)
{
	const char *args[] = { "--reply", "greeting=hang*", NULL };
	struct sink sink;
	sink_start(&sink, args);
	char port[64];
	snprintf(port, sizeof(port), "--sender.relay.port=%d", sink.port);
	const char *extra[] = { "--sender.enabled=true", port, "--sender.zone=z-dead",
				"--sender.pollInterval=0.1", "--sender.timeout=600", NULL };
	struct server s;
	server_start(&s, extra);
	char id[19];
	queue_message("z-dead", "dead@example.net", id);
	sleep_ms(1500); /* the sender is waiting for the greeting now */
	int64_t took;
	assert_int_equal(server_stop(&s, &took), 0);
	fprintf(stderr, "wd-server stopped in %lld ms while its relay was silent\n", (long long)took);
	assert_true(took < 5000);
	assert_int_equal(entries_of_zone("z-dead"), 1);
	sink_stop(&sink);
}

int main(int argc, char **argv)
{
	const char *url = getenv("WD_MONGO_URL"), *redis = getenv("WD_REDIS_URL");
	if (url == NULL || redis == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: test-sender-service WD-SERVER\n");
		return 1;
	}
	server_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	wd_log_init("test-sender-service", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);
	snprintf(main_db_url, sizeof(main_db_url), "%s-svc-%d", url, (int)getpid());
	snprintf(sender_db, sizeof(sender_db), "wdtest_zmta_v_%d", (int)getpid());
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/wd-svc-XXXXXX");
	if (mkdtemp(tmp_dir) == NULL)
		return 1;
	snprintf(cert, sizeof(cert), "%s/server.crt", tmp_dir);
	snprintf(key, sizeof(key), "%s/server.key", tmp_dir);
	snprintf(empty, sizeof(empty), "%s/empty.toml", tmp_dir);
	FILE *f = fopen(empty, "w");
	if (f != NULL)
		fclose(f);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		 "-subj /CN=localhost -keyout '%s' -out '%s' >/dev/null 2>&1", key, cert);
	if (system(cmd) != 0)
		return 1;
	store = outbound_fixture_open(main_db_url, redis, sender_db, NULL, NULL);
	if (store == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_delivers),
		cmocka_unit_test(test_service_disabled),
		cmocka_unit_test(test_stop_on_dead_relay),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	outbound_fixture_drop(&store);
	mongoc_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	if (system(cmd) != 0)
		failed++;
	return failed;
}
