/* Integration test (suite lmtp): delivery when the stack is in trouble.
 * The store talks to FerretDB through a TCP relay in this process that the
 * test can cut and restore, and to a Redis port where nothing listens:
 *   - Redis down: mail is stored and forwarded (counters allow, as in
 *     WildDuck), no autoreply is sent (once-per-sender cannot be kept);
 *   - one recipient's trouble (a user without INBOX) is its own 451 4.3.0,
 *     the other recipient of the transaction is stored;
 *   - the database cut: RCPT answers 451 4.3.0, DATA for recipients
 *     accepted before answers 451 4.3.0 and stores nothing; after the
 *     database returns delivery works again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver-test.h"
#include "wd-auth.h"
#include "wd-config.h"
#include "wd-outbound.h"
#include "wd-result.h"
#include "wd-store-message.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a TCP relay to FerretDB that can be cut ---- */

#define RELAY_MAX 64

static int relay_listener = -1, relay_port, target_port;
static atomic_bool relay_cut, relay_stop;
static pthread_t relay_thread;

static int connect_target(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)target_port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *relay_main(void *arg)
{
	(void)arg;
	int pairs[RELAY_MAX][2];
	size_t count = 0;
	char buf[65536];
	while (!atomic_load(&relay_stop)) {
		if (atomic_load(&relay_cut)) {
			for (size_t i = 0; i < count; i++) {
				close(pairs[i][0]);
				close(pairs[i][1]);
			}
			count = 0;
		}
		struct pollfd fds[1 + 2 * RELAY_MAX];
		fds[0] = (struct pollfd){ .fd = relay_listener, .events = POLLIN };
		for (size_t i = 0; i < count; i++) {
			fds[1 + 2 * i] = (struct pollfd){ .fd = pairs[i][0], .events = POLLIN };
			fds[2 + 2 * i] = (struct pollfd){ .fd = pairs[i][1], .events = POLLIN };
		}
		size_t polled = count; /* a pair accepted below has no poll result yet */
		if (poll(fds, 1 + 2 * polled, 50) <= 0)
			continue;
		if (fds[0].revents & POLLIN) {
			int client = accept(relay_listener, NULL, NULL);
			int server = client >= 0 && !atomic_load(&relay_cut) && count < RELAY_MAX ?
					     connect_target() : -1;
			if (server < 0) {
				if (client >= 0)
					close(client);
			} else {
				pairs[count][0] = client;
				pairs[count][1] = server;
				count++;
			}
		}
		for (size_t i = 0; i < polled; i++) {
			for (int side = 0; side < 2; side++) {
				if (!(fds[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				ssize_t n = read(pairs[i][side], buf, sizeof(buf));
				bool ok = n > 0;
				for (ssize_t done = 0; ok && done < n;) {
					ssize_t w = write(pairs[i][1 - side], buf + done, (size_t)(n - done));
					ok = w > 0;
					done += w > 0 ? w : 0;
				}
				if (!ok) {
					close(pairs[i][0]);
					close(pairs[i][1]);
					pairs[i][0] = pairs[count - 1][0];
					pairs[i][1] = pairs[count - 1][1];
					count--;
					i = polled; /* fds no longer match: poll again */
					break;
				}
			}
		}
	}
	for (size_t i = 0; i < count; i++) {
		close(pairs[i][0]);
		close(pairs[i][1]);
	}
	return NULL;
}

static void relay_start(void)
{
	const char *url = getenv("WD_MONGO_URL");
	const char *colon = strrchr(url, ':');
	assert_non_null(colon);
	target_port = atoi(colon + 1);
	relay_listener = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(relay_listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(relay_listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(relay_listener, 64), 0);
	socklen_t len = sizeof(sa);
	getsockname(relay_listener, (struct sockaddr *)&sa, &len);
	relay_port = ntohs(sa.sin_port);
	pthread_create(&relay_thread, NULL, relay_main, NULL);
}

static void relay_stop_all(void)
{
	atomic_store(&relay_stop, true);
	pthread_join(relay_thread, NULL);
	close(relay_listener);
}

/* ---- the store behind the relay ---- */

static struct wd_store *store2;
static struct wd_auth *auth2;
static char db2[64];

static void open_behind_relay(void)
{
	snprintf(db2, sizeof(db2), "delivert_%d", (int)getpid());
	char text[600];
	snprintf(text, sizeof(text),
		 "[dbs]\nmongo = \"mongodb://127.0.0.1:%d/%s?serverSelectionTimeoutMS=1500"
		 "&connectTimeoutMS=1000&socketTimeoutMS=3000\"\nredis = \"redis://127.0.0.1:1/3\"\n",
		 relay_port, db2);
	char *error = NULL;
	struct wd_config *config = wd_config_parse("trouble.toml", text, strlen(text), &error);
	assert_non_null(config);
	store2 = wd_store_open(config, &error);
	if (store2 == NULL)
		fprintf(stderr, "open: %s\n", error);
	assert_non_null(store2);
	auth2 = wd_auth_create(store2, config, &error);
	assert_non_null(auth2);
	wd_config_free(&config);
}

static bson_oid_t user2(const char *name, char *address_r)
{
	char username[128];
	snprintf(username, sizeof(username), "%s%s", name, test_tag);
	snprintf(address_r, 200, "%s@example.com", username);
	struct wd_user_create req = { .username = username, .address = address_r,
				      .spam_level = WD_DEFAULT_SPAM_LEVEL };
	bson_oid_t id;
	char *error = NULL;
	assert_int_equal(wd_store_user_create(store2, &req, &id, &error), 0);
	return id;
}

static int64_t count2(const bson_oid_t *user)
{
	bson_t *filter = BCON_NEW("user", BCON_OID(user));
	int64_t n = count_docs(store2, WD_STORE_DB_MAIN, "messages", filter);
	bson_destroy(filter);
	return n;
}

static struct captured_ctx {
	unsigned forwards, autoreplies;
} queued;

static int count_queue(void *context, const struct wd_outbound_message *msg, char queue_id_r[19],
		       char **error_r)
{
	(void)context;
	*error_r = NULL;
	if (strcmp(msg->reason, "forward") == 0)
		queued.forwards++;
	else
		queued.autoreplies++;
	snprintf(queue_id_r, 19, "18f0000000000aaaaa");
	return WD_OK;
}

static struct wd_deliver *deliver2(void)
{
	char *error = NULL;
	struct wd_config *config = wd_config_new();
	struct wd_deliver *deliver = wd_deliver_create(store2, auth2, config, &error);
	assert_non_null(deliver);
	wd_config_free(&config);
	wd_deliver_set_queue(deliver, count_queue, NULL);
	return deliver;
}

static const char message[] = "From: a@example.net\r\nSubject: s\r\n\r\nbody\r\n";

static struct wd_deliver_envelope envelope = {
	.mail_from = "a@example.net", .helo = "mx", .remote_ip = "192.0.2.1",
	.transaction_id = "t1", .protocol = "LMTP",
};

static void test_redis_down(void **state)
{
	(void)state;
	char address[200];
	bson_oid_t user = user2("redisdown", address);
	bson_t *set = BCON_NEW("$set", "{", "autoreply", BCON_BOOL(true), "targets", "[", "{",
			       "type", BCON_UTF8("mail"), "value", BCON_UTF8("t@remote.example"),
			       "}", "]", "}");
	mongoc_client_t *client = wd_store_client(store2, WD_STORE_DB_USERS);
	mongoc_collection_t *coll = wd_store_collection(store2, client, WD_STORE_DB_USERS, "users");
	bson_t *query = BCON_NEW("_id", BCON_OID(&user));
	assert_true(mongoc_collection_update_one(coll, query, set, NULL, NULL, NULL));
	mongoc_collection_destroy(coll);
	coll = wd_store_collection(store2, client, WD_STORE_DB_MAIN, "autoreplies");
	bson_t *ar = BCON_NEW("user", BCON_OID(&user), "status", BCON_BOOL(true), "subject",
			      BCON_UTF8("away"), "text", BCON_UTF8("away"));
	assert_true(mongoc_collection_insert_one(coll, ar, NULL, NULL, NULL));
	mongoc_collection_destroy(coll);
	wd_store_client_release(store2, WD_STORE_DB_USERS, client);
	bson_destroy(ar);
	bson_destroy(query);
	bson_destroy(set);

	struct wd_deliver *deliver = deliver2();
	struct wd_deliver_reply reply;
	struct wd_deliver_rcpt *rcpt = wd_deliver_check_rcpt(deliver, address, &reply);
	assert_non_null(rcpt);
	memset(&queued, 0, sizeof(queued));
	assert_int_equal(wd_deliver_message(deliver, &envelope, &rcpt, 1, (const uint8_t *)message,
					    strlen(message), &reply), WD_OK);
	assert_int_equal(reply.code, 250);
	assert_int_equal(count2(&user), 1);
	assert_int_equal(queued.forwards, 1);
	assert_int_equal(queued.autoreplies, 0);
	wd_deliver_rcpt_free(&rcpt);
	wd_deliver_destroy(&deliver);
}

static void test_independent_recipients(void **state)
{
	(void)state;
	char good[200], bad[200];
	bson_oid_t ok_user = user2("good", good);
	bson_oid_t broken = user2("broken", bad);
	/* the broken user's mailboxes are gone: nowhere to store */
	mongoc_client_t *client = wd_store_client(store2, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store2, client, WD_STORE_DB_MAIN,
							"mailboxes");
	bson_t *filter = BCON_NEW("user", BCON_OID(&broken));
	assert_true(mongoc_collection_delete_many(coll, filter, NULL, NULL, NULL));
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store2, WD_STORE_DB_MAIN, client);

	struct wd_deliver *deliver = deliver2();
	struct wd_deliver_reply replies[2];
	struct wd_deliver_rcpt *rcpts[2];
	rcpts[0] = wd_deliver_check_rcpt(deliver, bad, &replies[0]);
	rcpts[1] = wd_deliver_check_rcpt(deliver, good, &replies[1]);
	assert_non_null(rcpts[0]);
	assert_non_null(rcpts[1]);
	assert_int_equal(wd_deliver_message(deliver, &envelope, rcpts, 2, (const uint8_t *)message,
					    strlen(message), replies), WD_OK);
	assert_int_equal(replies[0].code, 451);
	assert_string_equal(replies[0].status, "4.3.0");
	assert_int_equal(replies[1].code, 250);
	assert_int_equal(count2(&broken), 0);
	assert_int_equal(count2(&ok_user), 1);
	wd_deliver_rcpt_free(&rcpts[0]);
	wd_deliver_rcpt_free(&rcpts[1]);
	wd_deliver_destroy(&deliver);
}

static void test_database_cut(void **state)
{
	(void)state;
	char address[200], other[200];
	bson_oid_t user = user2("cut", address);
	user2("cutother", other);
	struct wd_deliver *deliver = deliver2();
	struct wd_deliver_reply reply;
	struct wd_deliver_rcpt *rcpt = wd_deliver_check_rcpt(deliver, address, &reply);
	assert_non_null(rcpt);

	atomic_store(&relay_cut, true);
	usleep(200 * 1000);
	struct wd_deliver_reply refused;
	assert_null(wd_deliver_check_rcpt(deliver, other, &refused));
	assert_int_equal(refused.code, 451);
	assert_string_equal(refused.status, "4.3.0");
	assert_int_equal(wd_deliver_message(deliver, &envelope, &rcpt, 1, (const uint8_t *)message,
					    strlen(message), &reply), WD_OK);
	assert_int_equal(reply.code / 100, 4);
	assert_string_equal(reply.status, "4.3.0");

	atomic_store(&relay_cut, false);
	/* the pool reconnects on its own; give it a few tries */
	bool stored = false;
	for (int i = 0; i < 20 && !stored; i++) {
		assert_int_equal(wd_deliver_message(deliver, &envelope, &rcpt, 1,
						    (const uint8_t *)message, strlen(message),
						    &reply), WD_OK);
		stored = reply.code == 250;
		if (!stored)
			usleep(500 * 1000);
	}
	assert_true(stored);
	assert_int_equal(count2(&user), 1); /* nothing was stored while cut */
	wd_deliver_rcpt_free(&rcpt);
	wd_deliver_destroy(&deliver);
}

static int setup(void **state)
{
	(void)state;
	relay_start();
	open_behind_relay();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	wd_auth_destroy(&auth2);
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
	mongoc_database_t *db = mongoc_client_get_database(client, db2);
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
	wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
	wd_store_close(&store2);
	relay_stop_all();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_redis_down, setup),
		cmocka_unit_test(test_independent_recipients),
		cmocka_unit_test_teardown(test_database_cut, teardown),
	};
	return test_stack_run("deliver-trouble", tests, WD_N_ELEMENTS(tests), "delivert", NULL);
}
