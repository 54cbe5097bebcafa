/* bench/idle-users — many users that log in cheaply, for the idle benchmark.
 *
 *   idle-users MONGO_URL REDIS_URL PREFIX FIRST COUNT ASP_PASSWORD MESSAGES [ITERATIONS]
 *
 * Makes users PREFIX<FIRST> .. PREFIX<FIRST+COUNT-1> (kept when they exist),
 * each with MESSAGES small messages in INBOX and one application-specific
 * password ASP_PASSWORD (16 letters a-z, scopes "*") stored as a PBKDF2-SHA256
 * hash of ITERATIONS (default 1000) iterations instead of the default 100,000.
 *
 * Why an app password: bench/imap-idle-memory.py measures what an idle
 * session costs, and 50,000 LOGINs at the default cost take hours on two
 * cores. The verifier (auth/password-hash.c) reads the iteration count from
 * the stored hash, but a successful master-password login upgrades a hash
 * under the default cost (auth/authenticate.c rehash(), as WildDuck does), so
 * a cheap master hash would be replaced by a full-cost one at the first
 * login. App passwords are never rehashed. The master hash is a cheap PBKDF2
 * hash of a random secret nobody knows, so the master comparison that every
 * login makes first is cheap too and never matches; the login then goes on
 * to the app password (one `asps` query). Once logged in, the session is the
 * same as after a master-password login.
 *
 * Runs of it on disjoint ranges can go in parallel. */
#include "wd-auth-asp.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_SIZE 16
#define KEY_SIZE 32

static const char message_template[] =
	"From: Ann Example <ann@example.com>\r\nTo: %s@bench.test\r\n"
	"Subject: idle bench %u\r\nMessage-ID: <idle-%s-%u@bench.test>\r\n"
	"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n"
	"Hello,\r\n\r\nmessage %u of the idle benchmark.\r\n";

/* PHC "$pbkdf2-sha256$i=N$salt$key", unpadded standard base64 */
static char *cheap_hash(const char *password, unsigned iterations)
{
	unsigned char salt[SALT_SIZE], key[KEY_SIZE];
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt), (int)iterations,
			      EVP_sha256(), sizeof(key), key) != 1)
		return NULL;
	char salt_text[4 * SALT_SIZE / 3 + 4], key_text[4 * KEY_SIZE / 3 + 4];
	EVP_EncodeBlock((unsigned char *)salt_text, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)key_text, key, sizeof(key));
	*strchrnul(salt_text, '=') = '\0';
	*strchrnul(key_text, '=') = '\0';
	char *hash;
	if (asprintf(&hash, "$pbkdf2-sha256$i=%u$%s$%s", iterations, salt_text, key_text) < 0)
		return NULL;
	return hash;
}

static struct wd_store *open_store(const char *mongo, const char *redis)
{
	struct wd_config *config = wd_config_new();
	char *error = NULL, value[1024];
	snprintf(value, sizeof(value), "\"%s\"", mongo);
	wd_config_set(config, "dbs.mongo", value, "argument", &error);
	snprintf(value, sizeof(value), "\"%s\"", redis);
	wd_config_set(config, "dbs.redis", value, "argument", &error);
	const char *sqlite = getenv("WD_FERRETDB_SQLITE");
	if (sqlite != NULL) {
		snprintf(value, sizeof(value), "\"%s\"", sqlite);
		wd_config_set(config, "dbs.ferretdbSqlite", value, "environment", &error);
	}
	struct wd_store *store = wd_store_open(config, &error);
	wd_config_free(&config);
	if (store == NULL)
		fprintf(stderr, "store: %s\n", error);
	return store;
}

/* the user's app password, unless it has one already */
static int add_asp(struct wd_store *store, const bson_oid_t *user, const char *password,
		   unsigned iterations)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_USERS);
	mongoc_collection_t *asps = wd_store_collection(store, client, WD_STORE_DB_USERS, "asps");
	bson_t *query = BCON_NEW("user", BCON_OID(user), "description", BCON_UTF8("idle bench"));
	bson_error_t error;
	int64_t have = mongoc_collection_count_documents(asps, query, NULL, NULL, NULL, &error);
	bson_destroy(query);
	int ret = 0;
	if (have < 0) {
		fprintf(stderr, "asps: %s\n", error.message);
		ret = -1;
	} else if (have == 0) {
		char *hash = cheap_hash(password, iterations), selector[3];
		wd_auth_asp_selector(password, strlen(password), selector);
		bson_t *doc = BCON_NEW("user", BCON_OID(user), "description", BCON_UTF8("idle bench"),
				       "scopes", "[", BCON_UTF8("*"), "]", "password", BCON_UTF8(hash),
				       "selector", BCON_UTF8(selector), "used", BCON_BOOL(false),
				       "authEvent", BCON_BOOL(false), "authIp", BCON_BOOL(false),
				       "created", BCON_DATE_TIME(0));
		if (hash == NULL || !mongoc_collection_insert_one(asps, doc, NULL, NULL, &error)) {
			fprintf(stderr, "asps insert: %s\n", hash == NULL ? "hash" : error.message);
			ret = -1;
		}
		bson_destroy(doc);
		free(hash);
	}
	mongoc_collection_destroy(asps);
	wd_store_client_release(store, WD_STORE_DB_USERS, client);
	return ret;
}

static int add_messages(struct wd_store *store, const char *name, const bson_oid_t *user,
			unsigned count)
{
	struct wd_mailbox *inbox = NULL;
	char *error = NULL;
	if (wd_store_mailbox_get_by_path(store, user, "INBOX", &inbox, &error) < 0) {
		fprintf(stderr, "%s INBOX: %s\n", name, error);
		return -1;
	}
	int ret = 0;
	for (unsigned i = inbox->uid_next; i <= count && ret == 0; i++) {
		char raw[512];
		int len = snprintf(raw, sizeof(raw), message_template, name, i, name, i, i);
		struct wd_message_add req = { .raw = (const uint8_t *)raw, .len = (size_t)len,
					      .source = "IMPORT" };
		struct wd_message_added added;
		if (wd_store_message_add(store, &inbox->id, &req, &added, &error) < 0) {
			fprintf(stderr, "%s add: %s\n", name, error);
			ret = -1;
		}
	}
	wd_mailbox_free(&inbox);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 8 || argc > 9) {
		fprintf(stderr, "usage: %s MONGO_URL REDIS_URL PREFIX FIRST COUNT ASP_PASSWORD "
				"MESSAGES [ITERATIONS]\n", argv[0]);
		return 2;
	}
	const char *prefix = argv[3], *asp = argv[6];
	unsigned first = (unsigned)strtoul(argv[4], NULL, 10), count = (unsigned)strtoul(argv[5], NULL, 10);
	unsigned messages = (unsigned)strtoul(argv[7], NULL, 10);
	unsigned iterations = argc == 9 ? (unsigned)strtoul(argv[8], NULL, 10) : 1000;
	char normalized[WD_AUTH_ASP_LEN + 1];
	if (!wd_auth_asp_normalize(asp, strlen(asp), normalized) || strcmp(normalized, asp) != 0 ||
	    iterations < 1) {
		fprintf(stderr, "ASP_PASSWORD must be 16 lower-case letters, ITERATIONS >= 1\n");
		return 2;
	}
	wd_log_init("idle-users", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	struct wd_store *store = open_store(argv[1], argv[2]);
	if (store == NULL)
		return 1;
	/* the master password: cheap to compare, and nobody knows it */
	unsigned char secret[24];
	char secret_text[64];
	RAND_bytes(secret, sizeof(secret));
	EVP_EncodeBlock((unsigned char *)secret_text, secret, sizeof(secret));
	char *master = cheap_hash(secret_text, iterations);
	unsigned created = 0;
	int ret = 0;
	for (unsigned i = first; i < first + count && ret == 0; i++) {
		char name[128], address[160];
		snprintf(name, sizeof(name), "%s%u", prefix, i);
		snprintf(address, sizeof(address), "%s@bench.test", name);
		struct wd_user *user = NULL;
		char *error = NULL;
		bson_oid_t id;
		int got = wd_store_user_get_by_username(store, name, &user, &error);
		if (got == WD_STORE_ERR_NOT_FOUND) {
			free(error);
			error = NULL;
			struct wd_user_create req = { .username = name, .address = address,
						      .password_hash = master,
						      .spam_level = WD_DEFAULT_SPAM_LEVEL };
			if (wd_store_user_create(store, &req, &id, &error) < 0) {
				fprintf(stderr, "create %s: %s\n", name, error);
				ret = 1;
				break;
			}
			created++;
		} else if (got < 0) {
			fprintf(stderr, "user %s: %s\n", name, error);
			ret = 1;
			break;
		} else {
			id = user->id;
			wd_user_free(&user);
		}
		if (add_asp(store, &id, asp, iterations) < 0 ||
		    add_messages(store, name, &id, messages) < 0)
			ret = 1;
	}
	printf("{\"users\": %u, \"created\": %u, \"messages\": %u, \"iterations\": %u}\n", count,
	       created, messages, iterations);
	free(master);
	wd_store_close(&store);
	return ret;
}
