/* Integration test (suite lmtp): RCPT resolution and the minimal delivery
 * path of libwddeliver against the real stack — unknown, disabled,
 * suspended, over-quota, domain-aliased, wildcard, dotted, labelled and IDN
 * recipients and a forwarded address in one transaction with mixed
 * replies; the trace headers exactly as WildDuck writes them and the rest
 * of the stored message byte for byte; meta fields; recipients of one user
 * delivered once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver-test.h"
#include "wd-config.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char message[] =
	"Received: from relay.example.net (relay.example.net [198.51.100.4])\r\n"
	"\tby mx.test (Postfix) with ESMTPS id 4XyZ123abc\r\n"
	"\tfor <someone@example.com>; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	"From: Sender <sender@example.net>\r\n"
	"To: someone@example.com\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@example.net>\r\n"
	"\r\n"
	"Hello there.\r\n";

static bool find_path(const bson_t *doc, const char *path, bson_iter_t *iter)
{
	bson_iter_t top;
	return bson_iter_init(&top, doc) && bson_iter_find_descendant(&top, path, iter);
}

static char *expected_trace(const char *recipient, const char *sender)
{
	char *out = NULL;
	if (asprintf(&out, "Delivered-To: %s\r\nReturn-Path: <%s>\r\n", recipient, sender) < 0)
		abort();
	return out;
}

/* The newest message in INBOX is trace + raw[0..len), byte for byte, and
   its size says so. */
static void assert_stored_bytes(const bson_oid_t *user, const char *recipient, const char *sender,
				const char *raw, size_t len)
{
	bson_oid_t id = last_id(user, "INBOX");
	size_t stored_len;
	char *bytes = stored_bytes(&id, &stored_len);
	char *trace = expected_trace(recipient, sender);
	size_t trace_len = strlen(trace);
	assert_int_equal(stored_len, trace_len + len);
	assert_memory_equal(bytes, trace, trace_len);
	if (len > 0)
		assert_memory_equal(bytes + trace_len, raw, len);
	bson_t *doc = last_in(user, "INBOX");
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, doc, "size"));
	assert_int_equal(bson_iter_as_int64(&iter), (int64_t)stored_len);
	bson_destroy(doc);
	free(trace);
	free(bytes);
}

static void assert_stored(const bson_oid_t *user, const char *recipient, const char *sender,
			  const char *raw)
{
	assert_stored_bytes(user, recipient, sender, raw, strlen(raw));
}

static void test_minimal_path(void **state)
{
	(void)state;
	char address[200];
	bson_oid_t user = make_user("minimal", address);
	struct wd_deliver *deliver = deliver_open(NULL);
	struct wd_deliver_reply reply;
	assert_int_equal(deliver_one(deliver, "sender@example.net", address, message, &reply), 250);
	assert_string_equal(reply.status, "2.0.0");
	assert_int_equal(count_in(&user, "INBOX"), 1);
	assert_stored(&user, address, "sender@example.net", message);

	/* meta as WildDuck's LMTP writes it, from the envelope and Received: */
	bson_t *doc = last_in(&user, "INBOX");
	bson_iter_t iter;
	assert_true(find_path(doc, "meta.source", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "LMTP");
	assert_true(find_path(doc, "meta.from", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "sender@example.net");
	assert_true(find_path(doc, "meta.to.0", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), address);
	assert_true(find_path(doc, "meta.transactionId", &iter));
	assert_true(BSON_ITER_HOLDS_OID(&iter));
	assert_true(find_path(doc, "meta.transhost", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "mx.test");
	/* the first Received: names the queue id, protocol and origin */
	assert_true(find_path(doc, "meta.queueId", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "4XyZ123abc");
	assert_true(find_path(doc, "meta.transtype", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "ESMTPS");
	assert_true(find_path(doc, "meta.origin", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "relay.example.net");
	assert_true(bson_iter_init_find(&iter, doc, "filters"));
	assert_true(BSON_ITER_HOLDS_ARRAY(&iter));
	assert_false(bson_iter_init_find(&iter, doc, "junk"));
	/* indexed headers include the Delivered-To we added */
	bool delivered_to = false;
	bson_iter_t list, entry;
	assert_true(bson_iter_init_find(&iter, doc, "headers"));
	assert_true(bson_iter_recurse(&iter, &list));
	while (bson_iter_next(&list)) {
		bson_iter_recurse(&list, &entry);
		if (bson_iter_find(&entry, "key") &&
		    strcmp(bson_iter_utf8(&entry, NULL), "delivered-to") == 0)
			delivered_to = true;
	}
	assert_true(delivered_to);
	bson_destroy(doc);

	/* storageUsed counts the trace headers */
	struct wd_user *u = NULL;
	char *error = NULL;
	assert_int_equal(wd_store_user_get(test_store, &user, &u, &error), 0);
	char *trace = expected_trace(address, "sender@example.net");
	assert_int_equal(u->storage_used, (int64_t)(strlen(trace) + strlen(message)));
	free(trace);
	wd_user_free(&u);

	/* the null sender: Return-Path: <> */
	assert_int_equal(deliver_one(deliver, "", address, message, NULL), 250);
	assert_stored(&user, address, "", message);
	/* line ends are kept as sent, a message without a body too */
	static const char bare[] = "Subject: x\n\nbody\nwithout CR\n";
	assert_int_equal(deliver_one(deliver, "a@b.example", address, bare, NULL), 250);
	assert_stored(&user, address, "a@b.example", bare);
	static const char header_only[] = "Subject: only a header";
	assert_int_equal(deliver_one(deliver, "a@b.example", address, header_only, NULL), 250);
	assert_stored(&user, address, "a@b.example", header_only);
	wd_deliver_destroy(&deliver);
}

/* A forwarded address document (no user) with one mail target. */
static bson_oid_t forwarded_address(const char *address, const char *target, bool disabled)
{
	bson_oid_t id;
	bson_oid_init(&id, NULL);
	char *addrview = NULL;
	const char *error;
	assert_int_equal(wd_address_addrview(address, &addrview, &error), 0);
	bson_t *doc = BCON_NEW("_id", BCON_OID(&id), "address", BCON_UTF8(address), "addrview",
			       BCON_UTF8(addrview), "targets", "[", "{", "id", BCON_OID(&id), "type",
			       BCON_UTF8("mail"), "value", BCON_UTF8(target), "}", "]", "forwards",
			       BCON_INT32(0), "forwardedDisabled", BCON_BOOL(disabled), "created",
			       BCON_DATE_TIME(test_now_ms()));
	mongoc_client_t *client = wd_store_client(test_store, WD_STORE_DB_USERS);
	mongoc_collection_t *coll = wd_store_collection(test_store, client, WD_STORE_DB_USERS,
							"addresses");
	bson_error_t berror;
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &berror));
	mongoc_collection_destroy(coll);
	wd_store_client_release(test_store, WD_STORE_DB_USERS, client);
	bson_destroy(doc);
	free(addrview);
	return id;
}

static void test_mixed_recipients(void **state)
{
	(void)state;
	char a_label[200], b_dots[200], c_alias[200], d_idn[200], unknown[200], dis[200], sus[200],
		full[200], fwd[200], fwd_off[200], wild[200], base[200];
	bson_oid_t alice = make_user("alice", base);
	snprintf(a_label, sizeof(a_label), "Alice%s+News.Letter@EXAMPLE.com", test_tag);
	bson_oid_t bob = make_user("bob", NULL);
	snprintf(b_dots, sizeof(b_dots), "b.o.b%s@example.com", test_tag);
	bson_oid_t carol = make_user("carol", NULL);
	char alias[100];
	snprintf(alias, sizeof(alias), "alias%s.test", test_tag);
	bson_oid_t alias_id;
	char *error = NULL;
	assert_int_equal(wd_store_domainalias_add(test_store, alias, "example.com", &alias_id, &error), 0);
	snprintf(c_alias, sizeof(c_alias), "carol%s@%s", test_tag, alias);
	bson_oid_t dora = make_user("dora", NULL);
	char idn_address[200];
	snprintf(idn_address, sizeof(idn_address), "d\xc3\xb6ra%s@m\xc3\xbcnchen.de", test_tag);
	struct wd_address_add add = { 0 };
	bson_oid_t address_id;
	assert_int_equal(wd_store_address_add(test_store, &dora, idn_address, &add, &address_id,
					      &error), 0);
	snprintf(d_idn, sizeof(d_idn), "D\xc3\x96RA%s@XN--MNCHEN-3YA.DE", test_tag);
	snprintf(unknown, sizeof(unknown), "nobody%s@example.com", test_tag);
	bson_oid_t disabled = make_user("disabled", dis);
	bson_t *set = BCON_NEW("disabled", BCON_BOOL(true));
	user_set(&disabled, set);
	bson_destroy(set);
	bson_oid_t suspended = make_user("suspended", sus);
	set = BCON_NEW("suspended", BCON_BOOL(true));
	user_set(&suspended, set);
	bson_destroy(set);
	bson_oid_t fuller = make_user("full", full);
	set = BCON_NEW("quota", BCON_INT32(1000), "storageUsed", BCON_INT32(1000));
	user_set(&fuller, set);
	bson_destroy(set);
	snprintf(fwd, sizeof(fwd), "fwd%s@example.com", test_tag);
	forwarded_address(fwd, "outside@remote.example", false);
	snprintf(fwd_off, sizeof(fwd_off), "fwdoff%s@example.com", test_tag);
	forwarded_address(fwd_off, "outside@remote.example", true);
	bson_oid_t catcher = make_user("catcher", NULL);
	char wildcard[100];
	snprintf(wildcard, sizeof(wildcard), "*@wild%s.test", test_tag);
	struct wd_address_add wadd = { .allow_wildcard = true };
	assert_int_equal(wd_store_address_add(test_store, &catcher, wildcard, &wadd, &address_id,
					      &error), 0);
	snprintf(wild, sizeof(wild), "Anyone.At.All@WILD%s.test", test_tag);

	const char *addresses[] = { a_label, unknown, b_dots, dis, c_alias, sus, d_idn, full,
				    fwd, fwd_off, wild };
	const struct {
		unsigned rcpt, data;
		const char *status;
	} expect[] = {
		{ 250, 250, "2.0.0" }, { 550, 0, "5.1.1" }, { 250, 250, "2.0.0" },
		{ 550, 0, "5.2.1" },   { 250, 250, "2.0.0" }, { 550, 0, "5.2.1" },
		{ 250, 250, "2.0.0" }, { 552, 0, "5.2.2" }, { 250, 250, "2.0.0" },
		{ 550, 0, "5.2.1" },   { 250, 250, "2.0.0" },
	};
	size_t n = WD_N_ELEMENTS(addresses);
	struct wd_deliver_reply rcpt[16], data[16];
	capture_reset();
	struct wd_deliver *deliver = deliver_open(NULL);
	transaction(deliver, "Sender@Example.NET", addresses, n, message, rcpt, data);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(rcpt[i].code, expect[i].rcpt);
		assert_int_equal(data[i].code, expect[i].data);
		assert_string_equal(data[i].code != 0 ? data[i].status : rcpt[i].status,
				    expect[i].status);
	}
	/* Delivered-To: the RCPT address normalised, label and dots kept,
	   the IDN domain in Unicode; the sender normalised too */
	char lower[200];
	snprintf(lower, sizeof(lower), "alice%s+news.letter@example.com", test_tag);
	assert_stored(&alice, lower, "sender@example.net", message);
	snprintf(lower, sizeof(lower), "b.o.b%s@example.com", test_tag);
	assert_stored(&bob, lower, "sender@example.net", message);
	snprintf(lower, sizeof(lower), "carol%s@%s", test_tag, alias);
	assert_stored(&carol, lower, "sender@example.net", message);
	assert_stored(&dora, idn_address, "sender@example.net", message);
	snprintf(lower, sizeof(lower), "anyone.at.all@wild%s.test", test_tag);
	assert_stored(&catcher, lower, "sender@example.net", message);
	assert_int_equal(count_in(&disabled, "INBOX"), 0);
	assert_int_equal(count_in(&fuller, "INBOX"), 0);
	/* the forwarded address forwarded, once, with the recipient it was for */
	assert_int_equal(captured_count, 1);
	assert_string_equal(captured[0].reason, "forward");
	assert_string_equal(captured[0].to[0], "outside@remote.example");
	assert_string_equal(captured[0].from, "sender@example.net");
	assert_string_equal(captured[0].raw, message);
	assert_string_equal(captured[0].forwarded_for, fwd);
	assert_non_null(strstr(data[8].text, "forwarded"));
	wd_deliver_destroy(&deliver);

	/* WildDuck's lmtp.js behaviour on request: no wildcards, no
	   forwarded addresses */
	deliver = deliver_open("[lmtp]\nwildcard = false\nforwardedAddresses = false\n");
	struct wd_deliver_reply reply;
	assert_int_equal(deliver_one(deliver, "s@example.net", wild, message, &reply), 550);
	assert_string_equal(reply.status, "5.1.1");
	assert_int_equal(deliver_one(deliver, "s@example.net", fwd, message, &reply), 550);
	assert_string_equal(reply.status, "5.1.1");
	assert_int_equal(deliver_one(deliver, "s@example.net", a_label, message, &reply), 250);
	wd_deliver_destroy(&deliver);
	capture_reset();
}

static void test_one_delivery_per_user(void **state)
{
	(void)state;
	char address[200], dotted[200], labelled[200];
	bson_oid_t user = make_user("twice", address);
	snprintf(dotted, sizeof(dotted), "t.wice%s@example.com", test_tag);
	snprintf(labelled, sizeof(labelled), "twice%s+x@example.com", test_tag);
	const char *addresses[] = { address, dotted, labelled };
	struct wd_deliver_reply rcpt[3], data[3];
	struct wd_deliver *deliver = deliver_open(NULL);
	transaction(deliver, "s@example.net", addresses, 3, message, rcpt, data);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(data[i].code, 250);
		assert_string_equal(data[i].text, data[0].text);
	}
	assert_int_equal(count_in(&user, "INBOX"), 1);
	assert_stored(&user, address, "s@example.net", message);
	wd_deliver_destroy(&deliver);
}

static void test_limits_and_settings(void **state)
{
	(void)state;
	char address[200];
	make_user("limits", address);
	struct wd_deliver *deliver = deliver_open("[lmtp]\nmaxMB = 1\n");
	assert_int_equal(wd_deliver_max_size(deliver), 1024 * 1024);
	size_t big = 1024 * 1024 + 1;
	char *raw = malloc(big + 1);
	memset(raw, 'a', big);
	memcpy(raw, "Subject: big\r\n\r\n", 16);
	raw[big] = '\0';
	struct wd_deliver_reply reply;
	assert_int_equal(deliver_one(deliver, "s@example.net", address, raw, &reply), 552);
	assert_string_equal(reply.status, "5.3.4");
	free(raw);
	/* a recipient that is no address */
	assert_int_equal(deliver_one(deliver, "s@example.net", "no-at-sign", message, &reply), 550);
	assert_int_equal(deliver_one(deliver, "s@example.net", "", message, &reply), 550);
	wd_deliver_destroy(&deliver);
	/* 64 MiB leaves the store room for the trace headers */
	deliver = deliver_open("[lmtp]\nmaxMB = 64\n");
	assert_int_equal(wd_deliver_max_size(deliver), 64 * 1024 * 1024 - 4096);
	wd_deliver_destroy(&deliver);
	deliver = deliver_open(NULL);
	assert_int_equal(wd_deliver_max_size(deliver), 25 * 1024 * 1024);
	wd_deliver_destroy(&deliver);

	/* settings of the wrong type or range are errors */
	const char *bad[] = { "[lmtp]\nmaxMB = \"x\"\n", "[lmtp]\nmaxMB = 0\n", "[lmtp]\nmaxMB = 65\n",
			      "[lmtp]\noverQuota = \"later\"\n", "[lmtp]\nspamHeader = [1]\n",
			      "[lmtp]\nspamHeader = \"X Spam\"\n", "[lmtp]\nspamHeaderScore = 101\n",
			      "[lmtp]\nrspamdHeader = \"a:b\"\n", "[lmtp]\nwildcard = \"yes please\"\n" };
	for (size_t i = 0; i < WD_N_ELEMENTS(bad); i++) {
		char *error = NULL;
		struct wd_config *config = wd_config_parse("bad.toml", bad[i], strlen(bad[i]), &error);
		assert_non_null(config);
		struct wd_deliver *d = wd_deliver_create(test_store, test_auth, config, &error);
		assert_null(d);
		assert_non_null(error);
		free(error);
		wd_config_free(&config);
	}
}

/* One recipient, a message of any bytes; returns the DATA reply code. */
static unsigned deliver_bytes(struct wd_deliver *deliver, const char *address, const char *raw,
			      size_t len)
{
	struct wd_deliver_reply reply;
	struct wd_deliver_rcpt *rcpt = wd_deliver_check_rcpt(deliver, address, &reply);
	assert_non_null(rcpt);
	struct wd_deliver_envelope envelope = { .mail_from = "junk@example.net",
						.transaction_id = "hostile", .protocol = "LMTP" };
	assert_int_equal(wd_deliver_message(deliver, &envelope, &rcpt, 1, (const uint8_t *)raw,
					    len, &reply), WD_OK);
	wd_deliver_rcpt_free(&rcpt);
	return reply.code;
}

static void test_hostile_messages(void **state)
{
	(void)state;
	char address[200];
	bson_oid_t user = make_user("hostile", address);
	/* filters and an autoreply that read every part of the message */
	filter_add(&user, "{\"headers\": {\"from\": \"x\", \"subject\": \"y\"}, "
			  "\"text\": \"z\", \"ha\": true}", "{\"flag\": true}", false);
	bson_t *set = BCON_NEW("targets", "[", "{", "type", BCON_UTF8("mail"), "value",
			       BCON_UTF8("t@remote.example"), "}", "]", "autoreply", BCON_BOOL(true));
	user_set(&user, set);
	bson_destroy(set);
	char hex[25], json[300];
	bson_oid_to_string(&user, hex);
	snprintf(json, sizeof(json), "{\"user\": {\"$oid\": \"%s\"}, \"status\": true, "
				     "\"subject\": \"\", \"text\": \"away\"}", hex);
	insert_json("autoreplies", json);
	struct wd_deliver *deliver = deliver_open(NULL);
	capture_reset();

	static const char nul_junk[] = "From: \xff\xfe <a@\xc3(.example>\r\nSubject: \x00\xc3\r\n"
				       "\r\n\x00\x01\x02\xff binary\r\n";
	const struct {
		const char *raw;
		size_t len;
	} small[] = {
		{ "", 0 }, { "\r\n", 2 }, { "\n\n\n", 3 }, { "no header at all", 16 },
		{ ":\r\n: :\r\n\r\n", 10 }, { nul_junk, sizeof(nul_junk) - 1 },
		{ "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n", 52 },
	};
	for (size_t i = 0; i < WD_N_ELEMENTS(small); i++) {
		assert_int_equal(deliver_bytes(deliver, address, small[i].raw, small[i].len), 250);
		assert_stored_bytes(&user, address, "junk@example.net", small[i].raw, small[i].len);
	}

	/* a 1 MiB header line, 5000 Received lines, 300 nested multiparts */
	size_t cap = 2 * 1024 * 1024, n = 0;
	char *big = malloc(cap);
	assert_non_null(big);
	memcpy(big, "Subject: ", 9);
	n = 9;
	memset(big + n, 'S', 1024 * 1024);
	n += 1024 * 1024;
	n += (size_t)sprintf(big + n, "\r\n\r\nbody\r\n");
	assert_int_equal(deliver_bytes(deliver, address, big, n), 250);
	assert_stored_bytes(&user, address, "junk@example.net", big, n);
	n = 0;
	for (int i = 0; i < 5000; i++)
		n += (size_t)sprintf(big + n, "Received: from h%d by h%d with SMTP id q%d\r\n", i, i, i);
	n += (size_t)sprintf(big + n, "Subject: hops\r\n\r\nbody\r\n");
	assert_int_equal(deliver_bytes(deliver, address, big, n), 250);
	assert_stored_bytes(&user, address, "junk@example.net", big, n);
	n = 0;
	for (int i = 0; i < 300; i++)
		n += (size_t)sprintf(big + n, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
					      "--b%d\r\n", i, i);
	n += (size_t)sprintf(big + n, "Content-Type: application/octet-stream\r\n\r\nAAAA\r\n");
	assert_int_equal(deliver_bytes(deliver, address, big, n), 250);
	assert_stored_bytes(&user, address, "junk@example.net", big, n);
	free(big);
	capture_reset();
	wd_deliver_destroy(&deliver);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_path),
		cmocka_unit_test(test_mixed_recipients),
		cmocka_unit_test(test_one_delivery_per_user),
		cmocka_unit_test(test_limits_and_settings),
		cmocka_unit_test(test_hostile_messages),
	};
	return test_stack_run("deliver-recipients", tests, WD_N_ELEMENTS(tests), "deliver", NULL);
}
