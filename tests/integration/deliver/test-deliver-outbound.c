/* Integration test (suite lmtp): what delivery sends and records besides
 * the stored message, against the real stack — forwards through the real
 * outbound queue (libwdoutbound: zone-queue entries, the X-WildDuck-Seen
 * loop header with sender.loopSecret, the same message coming back refused
 * as a loop, 30 Received: lines refused, a forwarded address answering 554
 * 5.4.6 to a loop), autoreplies (composition, once per sender per interval,
 * never to lists, bulk, auto-submitted, the null sender, mailer-daemon,
 * no-reply, spam; start/end windows), the address register, and the
 * message log entries (messagelog) of a stored and forwarded message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver-test.h"
#include "wd-config.h"
#include "wd-outbound.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENDER "person@example.net"

static char sender_db[64];

static const char plain[] =
	"From: =?utf-8?q?J=C3=BCrgen?= Person <Person@Example.NET>\r\n"
	"To: you@example.com\r\n"
	"Subject: question\r\n"
	"Message-ID: <q1@example.net>\r\n"
	"References: <q0@example.net>\r\n"
	"\r\n"
	"Are you there?\r\n";

static struct wd_outbound *outbound_open(void)
{
	static const char text[] = "[sender]\nloopSecret = \"deliver test secret\"\n";
	char *error = NULL;
	struct wd_config *config = wd_config_parse("outbound.toml", text, strlen(text), &error);
	assert_non_null(config);
	struct wd_outbound *outbound = wd_outbound_create(test_store, config, &error);
	if (outbound == NULL)
		fprintf(stderr, "outbound: %s\n", error);
	assert_non_null(outbound);
	wd_config_free(&config);
	return outbound;
}

/* zone-queue entries of a queue id, and of all. */
static int64_t queue_entries(const char *id)
{
	bson_t *filter = BCON_NEW("id", BCON_UTF8(id));
	int64_t n = count_docs(test_store, WD_STORE_DB_SENDER, "zone-queue", filter);
	bson_destroy(filter);
	return n;
}

static int64_t all_queue_entries(void)
{
	bson_t filter = BSON_INITIALIZER;
	return count_docs(test_store, WD_STORE_DB_SENDER, "zone-queue", &filter);
}

static bson_t *queue_file(const char *id)
{
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_SENDER);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_SENDER,
							"mail.files");
	char filename[64];
	snprintf(filename, sizeof(filename), "message %s", id);
	bson_t *filter = BCON_NEW("filename", BCON_UTF8(filename));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	bson_t *copy = NULL;
	if (mongoc_cursor_next(cursor, &doc))
		copy = bson_copy(doc);
	mongoc_cursor_destroy(cursor);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_SENDER, client);
	return copy;
}

/* The value of the header line `key` in metadata.data.headers, or NULL. */
static char *queued_header(const bson_t *files, const char *key)
{
	bson_iter_t top, iter, list, entry;
	if (!bson_iter_init(&top, files) ||
	    !bson_iter_find_descendant(&top, "metadata.data.headers", &iter) ||
	    !bson_iter_recurse(&iter, &list))
		return NULL;
	while (bson_iter_next(&list)) {
		bson_iter_recurse(&list, &entry);
		const char *k = NULL, *line = NULL;
		while (bson_iter_next(&entry)) {
			if (strcmp(bson_iter_key(&entry), "key") == 0)
				k = bson_iter_utf8(&entry, NULL);
			else if (strcmp(bson_iter_key(&entry), "line") == 0)
				line = bson_iter_utf8(&entry, NULL);
		}
		if (k != NULL && line != NULL && strcasecmp(k, key) == 0) {
			/* the value unfolded: the outbound queue may fold long lines */
			const char *colon = strchr(line, ':');
			char *value = strdup(colon != NULL ? colon + 1 : line);
			size_t n = 0;
			for (char *p = value; *p != '\0'; p++)
				if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
					value[n++] = *p;
			value[n] = '\0';
			return value;
		}
	}
	return NULL;
}

/* The first outbound queue id of the newest INBOX message, or "". */
static void last_outbound(const bson_oid_t *user, char id[32])
{
	bson_t *doc = last_in(user, "INBOX");
	assert_non_null(doc);
	bson_iter_t top, iter;
	id[0] = '\0';
	if (bson_iter_init(&top, doc) && bson_iter_find_descendant(&top, "outbound.0", &iter))
		snprintf(id, 32, "%s", bson_iter_utf8(&iter, NULL));
	bson_destroy(doc);
}

/* The message log entries of a stored and forwarded message: STORE keyed
   by the message id (no Received: queue id), FORWARD by its queue id, both
   pointing at the stored copy. */
static void expect_messagelog(const bson_oid_t *user, const char *address, const char *queue_id)
{
	bson_oid_t stored = last_id(user, "INBOX");
	char hex[25];
	bson_oid_to_string(&stored, hex);
	bson_t *filter = BCON_NEW("id", BCON_UTF8(hex), "action", BCON_UTF8("STORE"), "parentId",
				  BCON_OID(&stored), "message-id", BCON_UTF8("<q1@example.net>"),
				  "source", BCON_UTF8("LMTP"), "from", BCON_UTF8(SENDER), "to",
				  BCON_UTF8(address), "transtype", BCON_UTF8("LMTP"));
	assert_int_equal(count_docs(test_store, WD_STORE_DB_MAIN, "messagelog", filter), 1);
	bson_destroy(filter);
	filter = BCON_NEW("id", BCON_UTF8(queue_id), "action", BCON_UTF8("FORWARD"), "parentId",
			  BCON_OID(&stored), "targets.value", BCON_UTF8("target@remote.example"),
			  "from", BCON_UTF8(SENDER), "to", BCON_UTF8(address));
	assert_int_equal(count_docs(test_store, WD_STORE_DB_MAIN, "messagelog", filter), 1);
	bson_destroy(filter);
	filter = BCON_NEW("parentId", BCON_OID(&stored));
	assert_int_equal(count_docs(test_store, WD_STORE_DB_MAIN, "messagelog", filter), 2);
	bson_destroy(filter);
}

static void test_forward_loop(void **state)
{
	(void)state;
	struct wd_outbound *outbound = outbound_open();
	struct wd_deliver *deliver = deliver_open(NULL);
	wd_deliver_set_outbound(deliver, outbound);
	char address[200];
	bson_oid_t user = make_user("loop", address);
	bson_t *set = BCON_NEW("targets", "[", "{", "type", BCON_UTF8("mail"), "value",
			       BCON_UTF8("target@remote.example"), "}", "]");
	user_set(&user, set);
	bson_destroy(set);

	/* queued once, to the target, with the loop header */
	struct wd_deliver_reply reply;
	int64_t before = all_queue_entries();
	assert_int_equal(deliver_one(deliver, SENDER, address, plain, &reply), 250);
	assert_int_equal(all_queue_entries(), before + 1);
	char id[32];
	last_outbound(&user, id);
	assert_int_equal(strlen(id), 18);
	assert_int_equal(queue_entries(id), 1);
	bson_t *files = queue_file(id);
	assert_non_null(files);
	char *seen = queued_header(files, "X-WildDuck-Seen");
	assert_non_null(seen);
	assert_int_equal(strlen(seen), 12 + 64);
	bson_iter_t top, iter;
	assert_true(bson_iter_init(&top, files) &&
		    bson_iter_find_descendant(&top, "metadata.data.reason", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "forward");
	assert_true(bson_iter_init(&top, files) &&
		    bson_iter_find_descendant(&top, "metadata.data.from", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), SENDER);
	bson_destroy(files);
	expect_messagelog(&user, address, id);

	/* the forwarded copy comes back (the target forwards to us): stored,
	   not forwarded again */
	char *again = NULL;
	assert_true(asprintf(&again, "X-WildDuck-Seen: %s\r\n%s", seen, plain) > 0);
	before = all_queue_entries();
	int64_t inbox = count_in(&user, "INBOX");
	assert_int_equal(deliver_one(deliver, SENDER, address, again, &reply), 250);
	assert_int_equal(all_queue_entries(), before);
	assert_int_equal(count_in(&user, "INBOX"), inbox + 1);
	free(again);

	/* 30 Received: lines: not forwarded; 29: forwarded */
	char *many = calloc(1, 8192);
	for (int i = 0; i < 29; i++)
		strcat(many, "Received: from a.example by b.example; Mon, 1 Jan 2024 10:00:00 +0000\r\n");
	strcat(many, plain);
	assert_int_equal(deliver_one(deliver, SENDER, address, many, &reply), 250);
	assert_int_equal(all_queue_entries(), before + 1);
	char *thirty = NULL;
	assert_true(asprintf(&thirty, "Received: from c.example by d.example; Mon, 1 Jan 2024 "
				      "10:00:00 +0000\r\n%s", many) > 0);
	assert_int_equal(deliver_one(deliver, SENDER, address, thirty, &reply), 250);
	assert_int_equal(all_queue_entries(), before + 1);
	free(thirty);
	free(many);

	/* a forwarded address answers a loop with 554 5.4.6 */
	char fwd[200];
	snprintf(fwd, sizeof(fwd), "fwdloop%s@example.com", test_tag);
	char json[600];
	snprintf(json, sizeof(json),
		 "{\"address\": \"%s\", \"addrview\": \"%s\", \"targets\": [{\"type\": \"mail\", "
		 "\"value\": \"target@remote.example\"}], \"forwards\": 0, \"forwardedDisabled\": false}",
		 fwd, fwd);
	bson_error_t error;
	bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
	assert_non_null(doc);
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_USERS);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_USERS,
							"addresses");
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error));
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_USERS, client);
	bson_destroy(doc);
	assert_int_equal(deliver_one(deliver, SENDER, fwd, plain, &reply), 250);
	assert_non_null(strstr(reply.text, "forwarded as "));
	const char *queue_id = strstr(reply.text, "forwarded as ") + strlen("forwarded as ");
	files = queue_file(queue_id);
	assert_non_null(files);
	char *seen2 = queued_header(files, "X-WildDuck-Seen");
	assert_non_null(seen2);
	bson_destroy(files);
	assert_true(asprintf(&again, "X-WildDuck-Seen: %s\r\n%s", seen2, plain) > 0);
	assert_int_equal(deliver_one(deliver, SENDER, fwd, again, &reply), 554);
	assert_string_equal(reply.status, "5.4.6");
	free(again);
	free(seen2);
	free(seen);
	wd_deliver_destroy(&deliver);
	wd_outbound_destroy(&outbound);
}

/* An autoreplies document for the user (`window_json`: start/end fields or
   NULL), and users.autoreply on. */
static bson_oid_t autoreply_set(const bson_oid_t *user, bool status, const char *subject,
				const char *window_json)
{
	char hex[25], json[800];
	bson_oid_to_string(user, hex);
	snprintf(json, sizeof(json),
		 "{\"user\": {\"$oid\": \"%s\"}, \"status\": %s, \"name\": \"Out Of Office\", "
		 "\"subject\": \"%s\", \"text\": \"I am away until Monday.\", "
		 "\"html\": \"<p>I am away until Monday.</p>\"%s%s}",
		 hex, status ? "true" : "false", subject, window_json != NULL ? ", " : "",
		 window_json != NULL ? window_json : "");
	bson_oid_t id = insert_json("autoreplies", json);
	bson_t *set = BCON_NEW("autoreply", BCON_BOOL(true), "name", BCON_UTF8("User Name"));
	user_set(user, set);
	bson_destroy(set);
	return id;
}

static bson_oid_t autoreply_on(const bson_oid_t *user, const char *window_json)
{
	return autoreply_set(user, true, "Away", window_json);
}

static void autoreplies_clear(void)
{
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_MAIN,
							"autoreplies");
	bson_t filter = BSON_INITIALIZER;
	mongoc_collection_delete_many(coll, &filter, NULL, NULL, NULL);
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_MAIN, client);
}

/* How many autoreplies a delivery of `raw` from `from` queued. */
static size_t replies_to(struct wd_deliver *deliver, const char *address, const char *from,
			 const char *raw)
{
	capture_reset();
	struct wd_deliver_reply reply;
	assert_int_equal(deliver_one(deliver, from, address, raw, &reply), 250);
	size_t n = 0;
	for (size_t i = 0; i < captured_count; i++)
		n += strcmp(captured[i].reason, "autoreply") == 0;
	return n;
}

static void test_autoreply(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	char address[200];
	bson_oid_t user = make_user("away", address);
	autoreply_on(&user, NULL);

	/* composed as WildDuck does */
	assert_int_equal(replies_to(deliver, address, SENDER, plain), 1);
	struct captured *c = &captured[0];
	assert_string_equal(c->from, "");
	assert_int_equal(c->to_count, 1);
	assert_string_equal(c->to[0], SENDER);
	assert_non_null(strstr(c->raw, "\r\nSubject: Auto: Away\r\n"));
	assert_non_null(strstr(c->raw, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(c->raw, "In-Reply-To: <q1@example.net>\r\n"));
	assert_non_null(strstr(c->raw, "References: <q1@example.net> <q0@example.net>\r\n"));
	assert_non_null(strstr(c->raw, "X-WD-Autoreply-For: 65a1b2c3d4e5f60718293a4b\r\n"));
	char from_line[300];
	snprintf(from_line, sizeof(from_line), "From: Out Of Office <%s>\r\n", address);
	assert_non_null(strstr(c->raw, from_line));
	assert_non_null(strstr(c->raw, "To: " SENDER "\r\n"));
	assert_non_null(strstr(c->raw, "multipart/alternative"));
	assert_non_null(strstr(c->raw, "I am away until Monday."));
	assert_non_null(strstr(c->raw, "Message-ID: <"));
	assert_null(strstr(c->raw, "\n\n")); /* CRLF throughout */
	/* the stored message lists the autoreply's queue id */
	char id[32];
	last_outbound(&user, id);
	assert_string_equal(id, "18f000000000000000");

	/* once per sender per interval; another sender gets one */
	assert_int_equal(replies_to(deliver, address, SENDER, plain), 0);
	assert_int_equal(replies_to(deliver, address, "PERSON@example.net", plain), 0);
	assert_int_equal(replies_to(deliver, address, "other@example.net", plain), 1);
	/* the interval passes: pruned from war:<id>, answered again */
	char hex[25];
	bson_t *ar = last_in(&user, "INBOX");
	bson_destroy(ar);
	insert_json("settings", "{\"key\": \"const:autoreply:interval\", \"value\": \"1000\"}");
	wd_deliver_destroy(&deliver);
	deliver = deliver_open(NULL);
	usleep(1200 * 1000);
	assert_int_equal(replies_to(deliver, address, SENDER, plain), 1);

	/* never: null sender, daemons, no-reply, lists, bulk, auto-submitted,
	   suppressed, spam */
	static const char *const refused[] = {
		"Auto-Submitted: auto-generated\r\n", "Auto-Submitted: auto-replied\r\n",
		"Precedence: bulk\r\n", "Precedence: List\r\n", "Precedence: junk\r\n",
		"List-Unsubscribe: <mailto:leave@list.example>\r\n",
		"List-Id: A list <a.list.example>\r\n", "X-Auto-Response-Suppress: All, OOF\r\n",
		"X-Auto-Response-Suppress: AutoReply\r\n", "X-Spam-Status: Yes, score=12\r\n",
	};
	char raw[1000], from[100];
	for (size_t i = 0; i < WD_N_ELEMENTS(refused); i++) {
		snprintf(raw, sizeof(raw), "%s%s", refused[i], plain);
		snprintf(from, sizeof(from), "fresh%zu@example.net", i);
		assert_int_equal(replies_to(deliver, address, from, raw), 0);
	}
	/* Auto-Submitted: no is a person */
	snprintf(raw, sizeof(raw), "Auto-Submitted: no\r\n%s", plain);
	assert_int_equal(replies_to(deliver, address, "human@example.net", raw), 1);
	assert_int_equal(replies_to(deliver, address, "", plain), 0);
	assert_int_equal(replies_to(deliver, address, "MAILER-DAEMON@example.net", plain), 0);
	assert_int_equal(replies_to(deliver, address, "noreply@example.net", plain), 0);
	assert_int_equal(replies_to(deliver, address, "no-reply@example.net", plain), 0);
	assert_int_equal(replies_to(deliver, address, "owner-list@example.net", plain), 0);
	assert_int_equal(replies_to(deliver, address, "list-request@example.net", plain), 0);

	/* without its own subject: "Auto: Re: <original>" */
	autoreplies_clear();
	bson_oid_t second = make_user("away2", address);
	autoreply_set(&second, true, "", NULL);
	snprintf(raw, sizeof(raw), "From: a@example.net\r\nSubject: =?utf-8?q?K=C3=A4se?=\r\n\r\nx\r\n");
	assert_int_equal(replies_to(deliver, address, SENDER, raw), 1);
	/* "Käse" RFC 2047-encoded again (B or Q, as GMime chooses) */
	assert_non_null(strcasestr(captured[0].raw, "Subject: Auto: Re: =?utf-8?"));
	assert_true(strstr(captured[0].raw, "S8Okc2U") != NULL ||
		    strcasestr(captured[0].raw, "K=C3=A4se") != NULL);
	assert_null(strstr(captured[0].raw, "In-Reply-To"));
	/* an encoded line break in the subject cannot add a header */
	snprintf(raw, sizeof(raw), "From: a@example.net\r\nSubject: =?utf-8?q?x=0D=0ABcc=3A_victim=40example=2Eorg?=\r\n\r\nx\r\n");
	assert_int_equal(replies_to(deliver, address, "injector@example.net", raw), 1);
	assert_null(strstr(captured[0].raw, "\r\nBcc:"));
	assert_null(strstr(captured[0].raw, "\nBcc:"));

	/* off, not yet started, ended, users.autoreply false */
	autoreplies_clear();
	bson_oid_t third = make_user("away3", address);
	autoreply_set(&third, false, "Away", NULL);
	assert_int_equal(replies_to(deliver, address, "p1@example.net", plain), 0);
	autoreplies_clear();
	autoreply_on(&third, "\"start\": {\"$date\": \"2999-01-01T00:00:00Z\"}");
	assert_int_equal(replies_to(deliver, address, "p2@example.net", plain), 0);
	autoreplies_clear();
	autoreply_on(&third, "\"end\": {\"$date\": \"2001-01-01T00:00:00Z\"}");
	assert_int_equal(replies_to(deliver, address, "p3@example.net", plain), 0);
	autoreplies_clear();
	autoreply_on(&third, "\"start\": {\"$date\": \"2001-01-01T00:00:00Z\"}, \"end\": false");
	assert_int_equal(replies_to(deliver, address, "p4@example.net", plain), 1);
	bson_t *set = BCON_NEW("autoreply", BCON_BOOL(false));
	user_set(&third, set);
	bson_destroy(set);
	assert_int_equal(replies_to(deliver, address, "p5@example.net", plain), 0);
	(void)hex;
	capture_reset();
	wd_deliver_destroy(&deliver);
}

static bson_t *register_entry(const bson_oid_t *user, const char *addrview)
{
	bson_t *query = BCON_NEW("user", BCON_OID(user), "addrview", BCON_UTF8(addrview));
	bson_t *doc = test_find_one(WD_STORE_DB_MAIN, "addressregister", query);
	bson_destroy(query);
	return doc;
}

static int64_t register_count(const bson_oid_t *user)
{
	bson_t *query = BCON_NEW("user", BCON_OID(user));
	int64_t n = test_count(WD_STORE_DB_MAIN, "addressregister", query);
	bson_destroy(query);
	return n;
}

static void test_address_register(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	char address[200];
	bson_oid_t user = make_user("register", address);
	struct wd_deliver_reply reply;
	assert_int_equal(deliver_one(deliver, SENDER, address, plain, &reply), 250);
	bson_t *doc = register_entry(&user, "person@example.net");
	assert_non_null(doc);
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, doc, "address"));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "person@example.net");
	assert_true(bson_iter_init_find(&iter, doc, "name"));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "J\xc3\xbcrgen Person");
	assert_true(bson_iter_init_find(&iter, doc, "updated"));
	bson_destroy(doc);
	/* again: the same entry, updated */
	assert_int_equal(deliver_one(deliver, SENDER, address, plain, &reply), 250);
	assert_int_equal(register_count(&user), 1);
	/* not from lists, automatic mail, no-reply senders, or Junk */
	static const char *const skipped[] = {
		"List-ID: <l.example>\r\nFrom: l1@example.org\r\n\r\nx\r\n",
		"Auto-Submitted: auto-generated\r\nFrom: l2@example.org\r\n\r\nx\r\n",
		"X-Auto-Response-Suppress: All\r\nFrom: l3@example.org\r\n\r\nx\r\n",
		"From: No-Reply@example.org\r\n\r\nx\r\n",
		"X-Spam-Status: Yes\r\nFrom: l4@example.org\r\n\r\nx\r\n",
	};
	for (size_t i = 0; i < WD_N_ELEMENTS(skipped); i++)
		assert_int_equal(deliver_one(deliver, SENDER, address, skipped[i], &reply), 250);
	assert_int_equal(register_count(&user), 1);
	/* every From address of a message */
	assert_int_equal(deliver_one(deliver, SENDER, address,
				     "From: a@example.org, B <b@example.org>\r\n\r\nx\r\n", &reply), 250);
	assert_int_equal(register_count(&user), 3);
	wd_deliver_destroy(&deliver);
}

static void test_drop_sender_db(void **state)
{
	(void)state;
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_SENDER);
	mongoc_database_t *db = mongoc_client_get_database(client, sender_db);
	mongoc_database_drop(db, NULL);
	mongoc_database_destroy(db);
	wd_store_client_release(test_store, WD_STORE_DB_SENDER, client);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forward_loop),
		cmocka_unit_test(test_autoreply),
		cmocka_unit_test(test_address_register),
		cmocka_unit_test(test_drop_sender_db),
	};
	static char extra[128];
	snprintf(sender_db, sizeof(sender_db), "deliverq_%d", (int)getpid());
	snprintf(extra, sizeof(extra), "sender = \"%s\"\n", sender_db);
	return test_stack_run("deliver-outbound", tests, WD_N_ELEMENTS(tests), "delivero", extra);
}
