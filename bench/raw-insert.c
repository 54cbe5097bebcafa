/* bench/raw-insert — the delivery baselines for the LMTP side-by-side figures.
 *
 *   raw-insert --mongo URL --redis URL --size BYTES [--mode raw|store]
 *              [--duration S] [--count N] [--ferretdb-sqlite DIR] [--json FILE]
 *
 * Stores messages of one size, in a closed loop on one connection, the way an
 * LMTP server with one client connection would, but with no protocol at all:
 *   raw    one document {raw: Binary, size, user, mailbox, idate} per message,
 *          inserted with mongoc_collection_insert_one: the least any store must
 *          do to keep a message (the floor);
 *   store  wd_store_message_add() into a mailbox of its own: the same message
 *          documents, journal entry, UID/MODSEQ allocation and attachment
 *          handling that wd-server's LMTP delivery writes, called in-process.
 * The messages are wd-load's (bench/wd-load/message.c: plain text of the given
 * size, a new serial each), so the bytes match what `wd-load lmtp --size-mix
 * SIZE=1` sends. The run ends after --count messages or --duration seconds
 * (default 10 s). Each run uses a fresh database named after the URL's plus
 * "-rawins-<mode>-<pid>", and drops it at the end, so repeated runs do not grow
 * the database the servers under test use.
 *
 * Output: one line "raw-insert MODE SIZE: N messages in S s: X msg/s, Y MB/s,
 * p50/p99 ms", and with --json the same as
 * {"mode","size","messages","seconds","messages_per_s","mb_per_s","p50_ms","p99_ms"}. */
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-message.h"
#include "wd-load/wd-load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* message.c picks sizes from a mix with this; here only one size is used. */
uint32_t wl_rand_range(uint32_t lo, uint32_t hi)
{
	return hi <= lo ? lo : lo + (uint32_t)rand() % (hi - lo + 1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct opts {
	const char *mongo, *redis, *sqlite, *json, *mode;
	size_t size;
	double duration;
	long count;
};

static int usage(void)
{
	fprintf(stderr, "usage: raw-insert --mongo URL --redis URL --size BYTES [--mode raw|store]\n"
			"       [--duration S] [--count N] [--ferretdb-sqlite DIR] [--json FILE]\n");
	return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .mode = "raw", .duration = 10, .size = 2048 };
	for (int i = 1; i < argc; i += 2) { /* --option value pairs */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return -1;
		if (strcmp(a, "--mongo") == 0)
			o->mongo = v;
		else if (strcmp(a, "--redis") == 0)
			o->redis = v;
		else if (strcmp(a, "--ferretdb-sqlite") == 0)
			o->sqlite = v;
		else if (strcmp(a, "--json") == 0)
			o->json = v;
		else if (strcmp(a, "--mode") == 0)
			o->mode = v;
		else if (strcmp(a, "--size") == 0) {
			if (wl_parse_size(v, &o->size) < 0 || o->size < 64 || o->size > 64u << 20)
				return -1;
		} else if (strcmp(a, "--duration") == 0) {
			o->duration = atof(v);
			if (!(o->duration > 0 && o->duration <= 3600))
				return -1;
		} else if (strcmp(a, "--count") == 0) {
			o->count = atol(v);
			if (o->count < 0 || o->count > 10000000)
				return -1;
		} else
			return -1;
	}
	if (o->mongo == NULL || o->redis == NULL || strlen(o->mongo) > 400 || strlen(o->redis) > 400 ||
	    (o->sqlite != NULL && strlen(o->sqlite) > 400))
		return -1;
	if (strcmp(o->mode, "raw") != 0 && strcmp(o->mode, "store") != 0)
		return -1;
	return 0;
}

/* One message stored; returns 0 or -1 with a message on stderr. */
typedef int (*store_fn)(void *ctx, const char *msg, size_t len);

struct raw_ctx {
	mongoc_collection_t *coll;
	bson_oid_t user, mailbox;
};

static int store_raw(void *p, const char *msg, size_t len)
{
	struct raw_ctx *c = p;
	bson_t *doc = BCON_NEW("user", BCON_OID(&c->user), "mailbox", BCON_OID(&c->mailbox),
			       "size", BCON_INT64((int64_t)len), "idate", BCON_DATE_TIME(time(NULL) * 1000),
			       "raw", BCON_BIN(BSON_SUBTYPE_BINARY, (const uint8_t *)msg, (uint32_t)len));
	bson_error_t error;
	bool ok = mongoc_collection_insert_one(c->coll, doc, NULL, NULL, &error);
	bson_destroy(doc);
	if (!ok)
		fprintf(stderr, "raw-insert: insert: %s\n", error.message);
	return ok ? 0 : -1;
}

struct store_ctx {
	struct wd_store *store;
	bson_oid_t mailbox;
};

static int store_wd(void *p, const char *msg, size_t len)
{
	struct store_ctx *c = p;
	struct wd_message_add req = { .raw = (const uint8_t *)msg, .len = len, .source = "LMTP",
				      .decode_base64 = true };
	struct wd_message_added added;
	char *error = NULL;
	if (wd_store_message_add(c->store, &c->mailbox, &req, &added, &error) < 0) {
		fprintf(stderr, "raw-insert: wd_store_message_add: %s\n", error ? error : "?");
		free(error);
		return -1;
	}
	return 0;
}

static int run_loop(const struct opts *o, store_fn fn, void *ctx)
{
	size_t cap = 1024, n = 0;
	double *lat = malloc(cap * sizeof(*lat));
	uint64_t bytes = 0;
	double t0 = now_s(), end = t0 + o->duration;
	int rc = 0;
	for (uint64_t serial = 1; lat != NULL; serial++) {
		if (o->count > 0 ? (long)n >= o->count : now_s() >= end)
			break;
		size_t len;
		char *msg = wl_message_make(o->size, "sender@bench.test", "rawinsert@bench.test", serial,
					    &len);
		if (msg == NULL) {
			rc = -1;
			break;
		}
		double s = now_s();
		int r = fn(ctx, msg, len);
		double e = now_s();
		free(msg);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (n == cap) {
			double *more = realloc(lat, 2 * cap * sizeof(*lat));
			if (more == NULL)
				break;
			lat = more;
			cap *= 2;
		}
		lat[n++] = (e - s) * 1000.0;
		bytes += len;
	}
	double secs = now_s() - t0;
	if (lat == NULL)
		return -1;
	qsort(lat, n, sizeof(*lat), cmp_double);
	double p50 = n ? lat[n / 2] : 0, p99 = n ? lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] : 0;
	double mps = secs > 0 ? (double)n / secs : 0, mbps = secs > 0 ? (double)bytes / 1048576.0 / secs : 0;
	printf("raw-insert %s %zu: %zu messages in %.1f s: %.2f msg/s, %.3f MB/s, p50 %.1f ms, p99 %.1f ms\n",
	       o->mode, o->size, n, secs, mps, mbps, p50, p99);
	if (o->json != NULL) {
		FILE *f = fopen(o->json, "w");
		if (f == NULL) {
			fprintf(stderr, "raw-insert: cannot write %s\n", o->json);
			rc = -1;
		} else {
			fprintf(f, "{\"mode\":\"%s\",\"size\":%zu,\"messages\":%zu,\"seconds\":%.3f,"
				   "\"messages_per_s\":%.3f,\"mb_per_s\":%.4f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
				   "\"ok\":%s}\n",
				o->mode, o->size, n, secs, mps, mbps, p50, p99, rc == 0 ? "true" : "false");
			fclose(f);
		}
	}
	free(lat);
	return rc;
}

static void drop_database(mongoc_client_t *client, const char *name)
{
	mongoc_database_t *db = mongoc_client_get_database(client, name);
	bson_error_t error;
	mongoc_database_drop(db, &error);
	mongoc_database_destroy(db);
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse(argc, argv, &o) < 0)
		return usage();
	wd_log_init("raw-insert", WD_LOG_SINK_STDERR, WD_LOG_ERROR);
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);
	srand((unsigned)getpid());

	/* a private database next to the URL's: "<url>-rawins-<mode>-<pid>" */
	char url[600];
	snprintf(url, sizeof(url), "%s-rawins-%s-%d", o.mongo, o.mode, (int)getpid());
	int rc;
	if (strcmp(o.mode, "raw") == 0) {
		mongoc_client_t *client = mongoc_client_new(url);
		if (client == NULL) {
			fprintf(stderr, "raw-insert: bad URL %s\n", o.mongo);
			return 2;
		}
		const char *dbname = mongoc_uri_get_database(mongoc_client_get_uri(client));
		struct raw_ctx ctx;
		ctx.coll = mongoc_client_get_collection(client, dbname, "messages");
		bson_oid_init(&ctx.user, NULL);
		bson_oid_init(&ctx.mailbox, NULL);
		rc = run_loop(&o, store_raw, &ctx);
		mongoc_collection_destroy(ctx.coll);
		drop_database(client, dbname);
		mongoc_client_destroy(client);
	} else {
		char text[1800], *error = NULL;
		int tn = snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\nredis = \"%s\"\n%s%s%s", url,
				  o.redis, o.sqlite ? "ferretdbSqlite = \"" : "", o.sqlite ? o.sqlite : "",
				  o.sqlite ? "\"\n" : "");
		if (tn < 0 || (size_t)tn >= sizeof(text) || strpbrk(url, "\"\\") != NULL)
			return usage();
		struct wd_config *config = wd_config_parse("raw-insert.toml", text, strlen(text), &error);
		struct wd_store *store = config ? wd_store_open(config, &error) : NULL;
		if (store == NULL) {
			fprintf(stderr, "raw-insert: open: %s\n", error ? error : "?");
			return 1;
		}
		struct wd_store_index_report report;
		if (wd_store_ensure_indexes(store, &report, &error) < 0) {
			fprintf(stderr, "raw-insert: indexes: %s\n", error ? error : "?");
			free(error);
			error = NULL;
		}
		struct store_ctx ctx = { .store = store };
		bson_oid_t user;
		bson_oid_init(&user, NULL);
		bson_oid_init(&ctx.mailbox, NULL);
		mongoc_client_t *c = wd_store_client(store, WD_STORE_DB_MAIN);
		mongoc_collection_t *mb = wd_store_collection(store, c, WD_STORE_DB_MAIN, "mailboxes");
		bson_t *doc = BCON_NEW("_id", BCON_OID(&ctx.mailbox), "user", BCON_OID(&user), "path",
				       BCON_UTF8("INBOX"), "specialUse", BCON_NULL, "uidValidity",
				       BCON_INT32((int32_t)time(NULL)), "uidNext", BCON_INT32(1),
				       "modifyIndex", BCON_INT32(0), "retention", BCON_INT32(0));
		bson_error_t berror;
		bool ok = mongoc_collection_insert_one(mb, doc, NULL, NULL, &berror);
		bson_destroy(doc);
		mongoc_collection_destroy(mb);
		wd_store_client_release(store, WD_STORE_DB_MAIN, c);
		if (!ok) {
			fprintf(stderr, "raw-insert: mailbox: %s\n", berror.message);
			return 1;
		}
		rc = run_loop(&o, store_wd, &ctx);
		c = wd_store_client(store, WD_STORE_DB_MAIN);
		drop_database(c, wd_store_db_name(store, WD_STORE_DB_MAIN));
		wd_store_client_release(store, WD_STORE_DB_MAIN, c);
		wd_store_close(&store);
		wd_config_free(&config);
	}
	mongoc_cleanup();
	return rc == 0 ? 0 : 1;
}
