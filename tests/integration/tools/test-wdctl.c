/* Integration tests (suite storage): the wdctl command line against the
 * stack — user and mailbox listing, import of .eml/mbox/Maildir and export
 * byte for byte, and `check` finding and repairing counters broken the way
 * a crash between two store steps breaks them; the auth commands (user
 * passwords, app passwords, TOTP, auth check). argv[1] is the wdctl binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store.h"

#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *wdctl;
static char db_url[512], redis_url[256], dir[64];
static struct wd_store *store;

/* Runs wdctl with the test database; output into *out (may be NULL). */
static int run(struct wd_buffer *out, const char *fmt, ...)
{
	char args[2048], cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' --dbs.mongo='%s' --dbs.redis='%s' %s", dir, wdctl,
		 db_url, redis_url, args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		if (out != NULL)
			wd_buffer_append(out, chunk, n);
	}
	int status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void write_file(const char *name, const void *data, size_t len)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void expect_export(unsigned uid, const char *expected, size_t len)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(run(&out, "message export alice INBOX %u", uid), 0);
	if (out.len != len || memcmp(wd_buffer_bytes(&out), expected, len) != 0)
		fail_msg("UID %u: exported %zu bytes, expected %zu", uid, out.len, len);
	wd_buffer_release(&out);
}

static void insert(const char *collection, bson_t *doc)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, collection);
	bson_error_t error;
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error));
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(doc);
}

/* gc: a 4-hour-old journal entry expires (FerretDB enforces no TTL) and an
   archived message past its date is purged; a second run finds nothing. */
static void test_gc(void **state)
{
	(void)state;
	int64_t now = (int64_t)time(NULL) * 1000;
	bson_oid_t mailbox, id;
	bson_oid_init(&mailbox, NULL);
	bson_oid_init(&id, NULL);
	insert("journal", BCON_NEW("mailbox", BCON_OID(&mailbox), "command", BCON_UTF8("EXISTS"),
				   "uid", BCON_INT32(1), "modseq", BCON_INT32(1), "created",
				   BCON_DATE_TIME(now - 4 * 3600 * 1000)));
	insert("archived", BCON_NEW("_id", BCON_OID(&id), "mailbox", BCON_OID(&mailbox), "uid",
				    BCON_INT32(1), "exp", BCON_BOOL(true), "rdate",
				    BCON_DOUBLE((double)(now - 1000)), "size", BCON_INT32(10),
				    "magic", BCON_INT32(1)));
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(run(&out, "gc"), 0);
	wd_buffer_append(&out, "", 1);
	const char *text = (const char *)wd_buffer_bytes(&out);
	if (wd_store_caps(store)->ttl_enforced == false)
		assert_non_null(strstr(text, "expired: 1 journal entries"));
	assert_non_null(strstr(text, "1 archived messages purged"));
	wd_buffer_release(&out);
	assert_int_equal(run(&out, "gc"), 0);
	wd_buffer_append(&out, "", 1);
	text = (const char *)wd_buffer_bytes(&out);
	assert_non_null(strstr(text, "expired: 0 journal entries"));
	assert_non_null(strstr(text, "0 archived messages purged"));
	wd_buffer_release(&out);
	assert_int_equal(run(NULL, "gc --grace-hours x"), 1);
}

static void test_users_and_mailboxes(void **state)
{
	(void)state;
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(run(&out, "user create alice --address alice@example.com"), 0);
	assert_int_equal(out.len, 25); /* ObjectId hex + newline */
	wd_buffer_clear(&out);
	assert_int_equal(run(NULL, "user create alice"), 1); /* exists */
	assert_int_equal(run(&out, "user list"), 0);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), " alice alice@example.com 0"));
	wd_buffer_clear(&out);
	assert_int_equal(run(&out, "mailbox list alice"), 0);
	wd_buffer_append(&out, "", 1);
	const char *text = (const char *)wd_buffer_bytes(&out);
	assert_non_null(strstr(text, "INBOX\t-\t"));
	assert_non_null(strstr(text, "Sent Mail\t\\Sent\t"));
	assert_non_null(strstr(text, "Junk\t\\Junk\t"));
	assert_int_equal(run(NULL, "mailbox list nobody"), 1);
	assert_int_equal(run(NULL, "no such command"), 2);
	wd_buffer_release(&out);
}

static void test_import_export(void **state)
{
	(void)state;
	static const char eml[] = "Subject: eml\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
	static const char lf_eml[] = "Subject: lf and no final newline\n\nbody";
	write_file("a.eml", eml, sizeof(eml) - 1);
	write_file("b.eml", lf_eml, sizeof(lf_eml) - 1);
	static const char mbox[] =
		"From a@example.com Thu Jan  1 00:00:00 2026\n"
		"Subject: m1\n\nline\n>From quoted\n\n"
		"From b@example.com Thu Jan  1 00:00:00 2026\n"
		"Subject: m2\n\nsecond\n\n";
	write_file("box.mbox", mbox, sizeof(mbox) - 1);
	char path[128];
	snprintf(path, sizeof(path), "%s/md", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/md/cur", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/md/new", dir);
	mkdir(path, 0700);
	static const char md1[] = "Subject: maildir one\n\nx\n";
	static const char md2[] = "Subject: maildir two\r\n\r\ny\r\n";
	write_file("md/cur/1700000001.a:2,S", md1, sizeof(md1) - 1);
	write_file("md/new/1700000002.b", md2, sizeof(md2) - 1);
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(run(&out, "message import alice INBOX a.eml b.eml box.mbox md"), 0);
	wd_buffer_append(&out, "", 1);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), "imported 6 messages"));
	wd_buffer_release(&out);
	expect_export(1, eml, sizeof(eml) - 1);
	expect_export(2, lf_eml, sizeof(lf_eml) - 1);
	static const char m1[] = "Subject: m1\n\nline\nFrom quoted\n";
	static const char m2[] = "Subject: m2\n\nsecond\n";
	expect_export(3, m1, sizeof(m1) - 1);
	expect_export(4, m2, sizeof(m2) - 1);
	expect_export(5, md1, sizeof(md1) - 1);
	expect_export(6, md2, sizeof(md2) - 1);
	assert_int_equal(run(NULL, "message export alice INBOX 99"), 1);
	assert_int_equal(run(NULL, "message import alice INBOX missing.eml"), 1);
}

static void corrupt(enum wd_store_db db, const char *collection, const char *filter_json,
		    const char *set_json)
{
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	bson_t *filter = bson_new_from_json((const uint8_t *)filter_json, -1, NULL);
	bson_t *set = bson_new_from_json((const uint8_t *)set_json, -1, NULL);
	bson_t update = BSON_INITIALIZER;
	BSON_APPEND_DOCUMENT(&update, "$set", set);
	bson_error_t error;
	assert_true(mongoc_collection_update_many(coll, filter, &update, NULL, NULL, &error));
	bson_destroy(&update);
	bson_destroy(set);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
}

static void test_check_and_repair(void **state)
{
	(void)state;
	/* three messages share one attachment */
	for (int i = 0; i < 3; i++) {
		char msg[512], name[32];
		int len = snprintf(msg, sizeof(msg),
				   "Subject: shared %d\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
				   "--X\r\n\r\ntext %d\r\n--X\r\nContent-Type: application/zip\r\n"
				   "Content-Transfer-Encoding: base64\r\n\r\nUEsDBBQAAAAIAA==\r\n--X--\r\n",
				   i, i);
		snprintf(name, sizeof(name), "s%d.eml", i);
		write_file(name, msg, (size_t)len);
	}
	assert_int_equal(run(NULL, "message import alice INBOX s0.eml s1.eml s2.eml"), 0);
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(run(&out, "check"), 0);
	wd_buffer_append(&out, "", 1);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), "0 problems found"));
	wd_buffer_clear(&out);

	/* what a crash between steps leaves: a reference taken for a message
	   that was never written, counters that were not advanced, quota that
	   was not given back */
	corrupt(WD_STORE_DB_GRIDFS, "attachments.files", "{}", "{\"metadata.c\": 4}");
	corrupt(WD_STORE_DB_MAIN, "mailboxes", "{\"path\": \"INBOX\"}",
		"{\"uidNext\": 2, \"modifyIndex\": 1}");
	corrupt(WD_STORE_DB_USERS, "users", "{\"username\": \"alice\"}", "{\"storageUsed\": 12345}");
	assert_int_equal(run(&out, "check"), 3);
	wd_buffer_append(&out, "", 1);
	const char *text = (const char *)wd_buffer_bytes(&out);
	assert_non_null(strstr(text, "recounted c=3"));
	assert_non_null(strstr(text, "uidNext=2"));
	assert_non_null(strstr(text, "storageUsed=12345"));
	assert_non_null(strstr(text, "3 problems found, 0 repaired"));
	wd_buffer_clear(&out);
	assert_int_equal(run(&out, "check --repair"), 0);
	wd_buffer_append(&out, "", 1);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), "3 problems found, 3 repaired"));
	wd_buffer_clear(&out);
	assert_int_equal(run(&out, "check"), 0);
	wd_buffer_append(&out, "", 1);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), "0 problems found"));
	wd_buffer_release(&out);
	/* and the next import gets UID 10, not a reused one */
	assert_int_equal(run(NULL, "message import alice INBOX a.eml"), 0);
	static const char eml[] = "Subject: eml\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
	expect_export(10, eml, sizeof(eml) - 1);
}

/* The auth commands: passwords from stdin (a file here), app passwords
   with scopes, TOTP enrolment with a code from oathtool, password change;
   `auth check` answers with its exit code and a reason on stderr. */
static void test_auth_commands(void **state)
{
	(void)state;
	struct wd_buffer out = WD_BUFFER_INIT;
	write_file("pw", "s3cret pass\n", 12);
	write_file("wrong", "not it\n", 7);
	assert_int_equal(run(&out, "user create carol --address c.arol@example.com --password - < pw"), 0);
	assert_int_equal(out.len, 25);
	wd_buffer_clear(&out);
	assert_int_equal(run(NULL, "user create dave --password-hash plaintext"), 1);
	assert_int_equal(run(&out, "auth check carol --scope imap < pw"), 0);
	wd_buffer_append(&out, "", 1);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), " carol password"));
	wd_buffer_clear(&out);
	assert_int_equal(run(NULL, "auth check Carol+x@Example.COM --scope pop3 < pw"), 0);
	assert_int_equal(run(NULL, "auth check carol --scope imap < wrong 2>/dev/null"), 1);
	assert_int_equal(run(NULL, "auth check nobody --scope imap < pw 2>/dev/null"), 1);
	assert_int_equal(run(NULL, "auth check carol --scope bogus < pw 2>/dev/null"), 1);

	/* an app password for IMAP only */
	assert_int_equal(run(&out, "asp create carol --description 'Mail app' --scope imap"), 0);
	wd_buffer_append(&out, "", 1);
	char id[25], asp[17];
	assert_int_equal(sscanf((const char *)wd_buffer_bytes(&out), "%24s %16s", id, asp), 2);
	wd_buffer_clear(&out);
	char line[32];
	int n = snprintf(line, sizeof(line), "%s\n", asp);
	write_file("asp", line, (size_t)n);
	assert_int_equal(run(NULL, "auth check carol --scope imap < asp"), 0);
	assert_int_equal(run(NULL, "auth check carol --scope smtp < asp 2>/dev/null"), 1);
	assert_int_equal(run(&out, "asp list carol"), 0);
	wd_buffer_append(&out, "", 1);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), " imap "));
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), "Mail app"));
	wd_buffer_clear(&out);

	/* TOTP: after enabling, IMAP needs the app password */
	if (system("command -v oathtool >/dev/null 2>&1") == 0) {
		assert_int_equal(run(&out, "2fa totp setup carol --issuer Test"), 0);
		wd_buffer_append(&out, "", 1);
		char seed[64];
		assert_int_equal(sscanf((const char *)wd_buffer_bytes(&out), "%63s", seed), 1);
		assert_non_null(strstr((const char *)wd_buffer_bytes(&out), "otpauth://totp/carol?"));
		wd_buffer_clear(&out);
		assert_int_equal(run(NULL, "2fa totp enable carol 000000 2>/dev/null"), 1);
		assert_int_equal(run(NULL, "2fa totp enable carol $(oathtool --totp -b %s)", seed), 0);
		assert_int_equal(run(NULL, "auth check carol --scope imap < pw 2>/dev/null"), 1);
		assert_int_equal(run(NULL, "auth check carol --scope imap < asp"), 0);
		assert_int_equal(run(NULL, "2fa totp disable carol"), 0);
		assert_int_equal(run(NULL, "2fa totp disable carol 2>/dev/null"), 1);
	}
	assert_int_equal(run(NULL, "asp delete carol %s", id), 0);
	assert_int_equal(run(NULL, "auth check carol --scope imap < asp 2>/dev/null"), 1);
	/* a new password */
	assert_int_equal(run(NULL, "user passwd carol < wrong"), 0);
	assert_int_equal(run(NULL, "auth check carol < wrong"), 0);
	assert_int_equal(run(NULL, "auth check carol < pw 2>/dev/null"), 1);
	assert_int_equal(run(&out, "auth expire"), 0);
	wd_buffer_append(&out, "", 1);
	assert_non_null(strstr((const char *)wd_buffer_bytes(&out), "app passwords expired"));
	wd_buffer_release(&out);
}

int main(int argc, char **argv)
{
	const char *url = getenv("WD_MONGO_URL");
	const char *redis = getenv("WD_REDIS_URL");
	if (url == NULL || redis == NULL) {
		fprintf(stderr, "WD_MONGO_URL/WD_REDIS_URL are not set: start the stack\n");
		return 77;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: test-wdctl WDCTL\n");
		return 1;
	}
	static char wdctl_path[4096];
	if (realpath(argv[1], wdctl_path) == NULL) {
		fprintf(stderr, "test-wdctl: %s not found\n", argv[1]);
		return 1;
	}
	wdctl = wdctl_path;
	wd_log_init("test-wdctl", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	snprintf(db_url, sizeof(db_url), "%s-wdctl-%d", url, (int)getpid());
	snprintf(redis_url, sizeof(redis_url), "%s", redis);
	snprintf(dir, sizeof(dir), "/tmp/wd-test-wdctl-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	char text[1024], *error = NULL;
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\nredis = \"%s\"\n", db_url, redis);
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	mongoc_log_set_handler(NULL, NULL);
	store = wd_store_open(config, &error);
	wd_config_free(&config);
	struct wd_store_index_report report;
	if (store == NULL || wd_store_ensure_indexes(store, &report, &error) < 0) {
		fprintf(stderr, "store: %s\n", error);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_users_and_mailboxes),
		cmocka_unit_test(test_import_export),
		cmocka_unit_test(test_check_and_repair),
		cmocka_unit_test(test_auth_commands),
		cmocka_unit_test(test_gc),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	wd_store_close(&store);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		failed++;
	return failed;
}
