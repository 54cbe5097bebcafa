/*
 * test-stack-smoke.c — does the local data stack (FerretDB + Redis, scripts/stack.sh) do what
 * wildduck-c needs from it, through the same client libraries the servers use?
 *
 *   mongo_document_roundtrip  libmongoc: insert one document into a fresh, randomly named
 *                             collection of the URL's database, find it again and check every
 *                             field with its BSON type (string, int32, double, Date, binary,
 *                             ObjectId, nested document), then drop the collection.
 *   gridfs_roundtrip          mongoc_gridfs_bucket_t with a custom bucket name and chunk size:
 *                             upload ~300 KiB of pseudo-random bytes, download by id, compare
 *                             byte for byte, delete by id, drop the bucket's collections.
 *   redis_pubsub              hiredis 0.14: one connection SUBSCRIBEs to a random channel,
 *                             another PUBLISHes a binary-safe payload, the subscriber reads it
 *                             with redisGetReply and checks channel and payload.
 *   redis_set_get_expire      SET/GET in the URL's database, EXPIRE + TTL, and a short PEXPIRE
 *                             that must really make the key disappear.
 *
 * Configuration comes only from the environment, as printed by `scripts/stack.sh start`:
 * WD_MONGO_URL (mongodb://host:port/db; "wildduck" when the URL names no database) and
 * WD_REDIS_URL (redis://[[user]:password@]host[:port][/db]). When either is missing the test
 * exits 77, which meson reports as "skipped".
 *
 * Every name it creates (collection, bucket, channel, keys) carries a fresh ObjectId so that
 * parallel runs against one stack never collide, and everything is removed again.
 * FerretDB limits kept in mind: no NUL bytes inside strings or names, names without '$' and
 * of moderate length; binary payloads may hold any byte. FerretDB 1.24 lacks endSessions, so
 * the warning libmongoc logs about it at client destruction is filtered out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>
#include <hiredis/hiredis.h>

#define SKIP_EXIT_CODE 77
#define GRIDFS_SIZE (300 * 1024 + 123) /* not a multiple of the chunk size */
#define GRIDFS_CHUNK 65536

struct redis_target {
  char host[256];
  int port;
  int db;
  char password[256]; /* empty: no AUTH */
};

struct smoke {
  mongoc_client_t *client;
  char *db_name;
  struct redis_target redis;
};

/* ---- small helpers ------------------------------------------------------------------------ */

/* unique_name: PREFIX followed by a fresh ObjectId in hex, e.g. "smoke_65f0…". */
static void unique_name(char *out, size_t size, const char *prefix) {
  bson_oid_t oid;
  char hex[25];
  bson_oid_init(&oid, NULL);
  bson_oid_to_string(&oid, hex);
  snprintf(out, size, "%s%s", prefix, hex);
}

/* Pseudo-random bytes (xorshift64*), seeded from /dev/urandom so every run differs. */
static uint64_t random_seed(void) {
  uint64_t seed = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed) seed = 0;
    close(fd);
  }
  if (seed == 0) seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
  return seed;
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed) {
  uint64_t x = seed ? seed : 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    buf[i] = (uint8_t)((x * 0x2545f4914f6cdd1dULL) >> 56);
  }
}

/* parse_redis_url: redis://[[user]:password@]host[:port][/db]; returns 0 on success. */
static int parse_redis_url(const char *url, struct redis_target *t) {
  static const char scheme[] = "redis://";
  const char *p, *at, *host_end, *slash;
  size_t n;

  memset(t, 0, sizeof *t);
  t->port = 6379;
  if (strncmp(url, scheme, sizeof scheme - 1) != 0) return -1;
  p = url + sizeof scheme - 1;

  slash = strchr(p, '/');
  at = strchr(p, '@');
  if (at && (!slash || at < slash)) { /* userinfo: [user]:password or password */
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *pw = colon ? colon + 1 : p;
    n = (size_t)(at - pw);
    if (n >= sizeof t->password) return -1;
    memcpy(t->password, pw, n);
    p = at + 1;
  }

  if (*p == '[') { /* [ipv6] */
    host_end = strchr(p, ']');
    if (!host_end) return -1;
    n = (size_t)(host_end - p - 1);
    if (n == 0 || n >= sizeof t->host) return -1;
    memcpy(t->host, p + 1, n);
    p = host_end + 1;
  } else {
    n = strcspn(p, ":/");
    if (n == 0 || n >= sizeof t->host) return -1;
    memcpy(t->host, p, n);
    p += n;
  }

  if (*p == ':') {
    char *end;
    long port = strtol(p + 1, &end, 10);
    if (end == p + 1 || port < 1 || port > 65535) return -1;
    t->port = (int)port;
    p = end;
  }
  if (*p == '/' && p[1] != '\0') {
    char *end;
    long db = strtol(p + 1, &end, 10);
    if (end == p + 1 || *end != '\0' || db < 0 || db > 1000000) return -1;
    t->db = (int)db;
    p = end;
  } else if (*p == '/') {
    p++;
  }
  return *p == '\0' ? 0 : -1;
}

/* FerretDB 1.24 has no endSessions command, so every mongoc_client_destroy() that used implicit
 * sessions logs a warning about it; drop exactly that one and keep everything else. */
static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data) {
  if (level == MONGOC_LOG_LEVEL_WARNING && strstr(message, "\"endSessions\"")) return;
  mongoc_log_default_handler(level, domain, message, data);
}

/* ---- fixture ---------------------------------------------------------------------------- */

static const char *mongo_url;
static const char *redis_url;

static int group_setup(void **state) {
  struct smoke *s = calloc(1, sizeof *s);
  bson_error_t error;
  mongoc_uri_t *uri;
  const char *db;

  if (!s) return -1;
  uri = mongoc_uri_new_with_error(mongo_url, &error);
  if (!uri) {
    fprintf(stderr, "test-stack-smoke: bad WD_MONGO_URL '%s': %s\n", mongo_url, error.message);
    free(s);
    return -1;
  }
  /* a stack that is down should fail the test in seconds, not after the default 30 s */
  if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
  db = mongoc_uri_get_database(uri);
  s->db_name = bson_strdup(db && *db ? db : "wildduck");
  s->client = mongoc_client_new_from_uri(uri);
  mongoc_uri_destroy(uri);
  if (!s->client) {
    bson_free(s->db_name);
    free(s);
    return -1;
  }
  mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
  mongoc_client_set_appname(s->client, "wd-test-stack-smoke");

  if (parse_redis_url(redis_url, &s->redis) != 0) {
    fprintf(stderr, "test-stack-smoke: bad WD_REDIS_URL '%s'\n", redis_url);
    mongoc_client_destroy(s->client);
    bson_free(s->db_name);
    free(s);
    return -1;
  }
  *state = s;
  return 0;
}

static int group_teardown(void **state) {
  struct smoke *s = *state;
  if (s) {
    mongoc_client_destroy(s->client);
    bson_free(s->db_name);
    free(s);
  }
  return 0;
}

/* ---- MongoDB: one document, every type wildduck-c stores ----------------------------------- */

static void test_mongo_document_roundtrip(void **state) {
  struct smoke *s = *state;
  static const uint8_t bin[] = {0x00, 0xff, 0x10, 0x00, 'w', 'd', 0x80, 0x7f};
  const char *text = "Grüße, wildduck-c ✉";
  const int64_t date_ms = INT64_C(1700000000123);
  char coll_name[64];
  bson_oid_t oid, idv;
  bson_error_t error;
  bson_iter_t it, child;
  const bson_t *found;
  bson_t *doc, *filter;
  mongoc_collection_t *coll;
  mongoc_cursor_t *cursor;

  unique_name(coll_name, sizeof coll_name, "smoke_");
  coll = mongoc_client_get_collection(s->client, s->db_name, coll_name);
  bson_oid_init(&idv, NULL);
  bson_oid_init(&oid, NULL);

  doc = BCON_NEW("_id", BCON_OID(&idv),
                 "text", BCON_UTF8(text),
                 "count", BCON_INT32(42),
                 "big", BCON_INT64(INT64_C(1) << 40),
                 "ratio", BCON_DOUBLE(3.25),
                 "when", BCON_DATE_TIME(date_ms),
                 "blob", BCON_BIN(BSON_SUBTYPE_BINARY, bin, sizeof bin),
                 "ref", BCON_OID(&oid),
                 "nested", "{", "name", BCON_UTF8("inner"), "n", BCON_INT32(-7), "}");
  if (!mongoc_collection_insert_one(coll, doc, NULL, NULL, &error))
    fail_msg("insert_one into %s.%s: %s", s->db_name, coll_name, error.message);
  bson_destroy(doc);

  filter = BCON_NEW("_id", BCON_OID(&idv));
  cursor = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
  assert_true(mongoc_cursor_next(cursor, &found));

  assert_true(bson_iter_init_find(&it, found, "text"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_UTF8);
  assert_string_equal(bson_iter_utf8(&it, NULL), text);

  assert_true(bson_iter_init_find(&it, found, "count"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_INT32);
  assert_int_equal(bson_iter_int32(&it), 42);

  assert_true(bson_iter_init_find(&it, found, "big"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_INT64);
  assert_true(bson_iter_int64(&it) == (INT64_C(1) << 40));

  assert_true(bson_iter_init_find(&it, found, "ratio"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_DOUBLE);
  assert_true(bson_iter_double(&it) == 3.25);

  assert_true(bson_iter_init_find(&it, found, "when"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_DATE_TIME);
  assert_true(bson_iter_date_time(&it) == date_ms);

  assert_true(bson_iter_init_find(&it, found, "blob"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_BINARY);
  {
    bson_subtype_t subtype;
    uint32_t len;
    const uint8_t *data;
    bson_iter_binary(&it, &subtype, &len, &data);
    assert_int_equal(subtype, BSON_SUBTYPE_BINARY);
    assert_int_equal(len, sizeof bin);
    assert_memory_equal(data, bin, sizeof bin);
  }

  assert_true(bson_iter_init_find(&it, found, "ref"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_OID);
  assert_true(bson_oid_equal(bson_iter_oid(&it), &oid));

  assert_true(bson_iter_init_find(&it, found, "nested"));
  assert_int_equal(bson_iter_type(&it), BSON_TYPE_DOCUMENT);
  assert_true(bson_iter_recurse(&it, &child));
  assert_true(bson_iter_find(&child, "name"));
  assert_string_equal(bson_iter_utf8(&child, NULL), "inner");
  assert_true(bson_iter_init(&it, found));
  assert_true(bson_iter_find_descendant(&it, "nested.n", &child));
  assert_int_equal(bson_iter_type(&child), BSON_TYPE_INT32);
  assert_int_equal(bson_iter_int32(&child), -7);

  assert_false(mongoc_cursor_next(cursor, &found)); /* exactly one document */
  if (mongoc_cursor_error(cursor, &error)) fail_msg("find: %s", error.message);
  mongoc_cursor_destroy(cursor);
  bson_destroy(filter);

  if (!mongoc_collection_drop(coll, &error)) fail_msg("drop %s: %s", coll_name, error.message);
  mongoc_collection_destroy(coll);
}

/* ---- GridFS: a message-sized blob through a custom bucket ---------------------------------- */

static void drop_collection(mongoc_database_t *db, const char *name) {
  bson_error_t error;
  mongoc_collection_t *coll = mongoc_database_get_collection(db, name);
  if (!mongoc_collection_drop(coll, &error) && error.code != 26 /* NamespaceNotFound */)
    fprintf(stderr, "test-stack-smoke: drop %s: %s\n", name, error.message);
  mongoc_collection_destroy(coll);
}

static void test_gridfs_roundtrip(void **state) {
  struct smoke *s = *state;
  char bucket_name[64], files_name[80], chunks_name[80];
  uint8_t *data = malloc(GRIDFS_SIZE), *back = malloc(GRIDFS_SIZE + 1);
  size_t got = 0;
  ssize_t n;
  bson_error_t error;
  bson_value_t file_id;
  bson_t *opts;
  mongoc_database_t *db;
  mongoc_gridfs_bucket_t *bucket;
  mongoc_stream_t *up, *down;

  assert_non_null(data);
  assert_non_null(back);
  fill_random(data, GRIDFS_SIZE, random_seed());

  unique_name(bucket_name, sizeof bucket_name, "smokefs_");
  snprintf(files_name, sizeof files_name, "%s.files", bucket_name);
  snprintf(chunks_name, sizeof chunks_name, "%s.chunks", bucket_name);
  db = mongoc_client_get_database(s->client, s->db_name);
  opts = BCON_NEW("bucketName", BCON_UTF8(bucket_name), "chunkSizeBytes", BCON_INT32(GRIDFS_CHUNK));
  bucket = mongoc_gridfs_bucket_new(db, opts, NULL, &error);
  bson_destroy(opts);
  if (!bucket) fail_msg("gridfs_bucket_new(%s): %s", bucket_name, error.message);

  /* upload in uneven pieces so that chunk boundaries fall inside writes */
  up = mongoc_gridfs_bucket_open_upload_stream(bucket, "smoke.eml", NULL, &file_id, &error);
  if (!up) fail_msg("open_upload_stream: %s", error.message);
  for (size_t off = 0; off < GRIDFS_SIZE;) {
    size_t piece = GRIDFS_SIZE - off < 40000 ? GRIDFS_SIZE - off : 40000;
    n = mongoc_stream_write(up, data + off, piece, 0);
    if (n != (ssize_t)piece) {
      mongoc_gridfs_bucket_stream_error(up, &error);
      fail_msg("upload write at %zu: %s", off, error.message);
    }
    off += piece;
  }
  if (mongoc_stream_close(up) != 0) { /* writes the last chunk and the files document */
    mongoc_gridfs_bucket_stream_error(up, &error);
    fail_msg("upload close: %s", error.message);
  }
  mongoc_stream_destroy(up);
  assert_int_equal(file_id.value_type, BSON_TYPE_OID);

  down = mongoc_gridfs_bucket_open_download_stream(bucket, &file_id, &error);
  if (!down) fail_msg("open_download_stream: %s", error.message);
  while ((n = mongoc_stream_read(down, back + got, GRIDFS_SIZE + 1 - got, 1, 0)) > 0) got += (size_t)n;
  if (n < 0 || mongoc_gridfs_bucket_stream_error(down, &error)) fail_msg("download: %s", error.message);
  mongoc_stream_destroy(down);
  assert_int_equal(got, GRIDFS_SIZE);
  assert_memory_equal(back, data, GRIDFS_SIZE);

  if (!mongoc_gridfs_bucket_delete_by_id(bucket, &file_id, &error)) fail_msg("delete_by_id: %s", error.message);
  down = mongoc_gridfs_bucket_open_download_stream(bucket, &file_id, &error);
  assert_null(down); /* gone */

  bson_value_destroy(&file_id);
  mongoc_gridfs_bucket_destroy(bucket);
  drop_collection(db, files_name);
  drop_collection(db, chunks_name);
  mongoc_database_destroy(db);
  free(data);
  free(back);
}

/* ---- Redis ------------------------------------------------------------------------------- */

static redisContext *redis_open(const struct redis_target *t) {
  const struct timeval tv = {5, 0};
  redisContext *c = redisConnectWithTimeout(t->host, t->port, tv);
  redisReply *r;

  if (!c || c->err) fail_msg("redis connect %s:%d: %s", t->host, t->port, c ? c->errstr : "out of memory");
  redisSetTimeout(c, tv); /* a missing reply fails the test instead of hanging it */
  if (t->password[0]) {
    r = redisCommand(c, "AUTH %s", t->password);
    if (!r || r->type == REDIS_REPLY_ERROR) fail_msg("redis AUTH: %s", r ? r->str : c->errstr);
    freeReplyObject(r);
  }
  r = redisCommand(c, "SELECT %d", t->db);
  if (!r || r->type != REDIS_REPLY_STATUS) fail_msg("redis SELECT %d: %s", t->db, r ? r->str : c->errstr);
  freeReplyObject(r);
  return c;
}

static void assert_bulk(const redisReply *r, const char *data, size_t len) {
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_int_equal(r->len, len);
  assert_memory_equal(r->str, data, len);
}

static void test_redis_pubsub(void **state) {
  struct smoke *s = *state;
  static const char payload[] = "{\"command\":\"EXISTS\",\"uid\":17}\0binary\xff";
  const size_t payload_len = sizeof payload - 1;
  char channel[64];
  redisContext *sub = redis_open(&s->redis), *pub = redis_open(&s->redis);
  redisReply *r;
  void *raw = NULL;

  unique_name(channel, sizeof channel, "wd-smoke-");
  r = redisCommand(sub, "SUBSCRIBE %s", channel);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 3);
  assert_bulk(r->element[0], "subscribe", 9);
  assert_bulk(r->element[1], channel, strlen(channel));
  freeReplyObject(r);

  r = redisCommand(pub, "PUBLISH %s %b", channel, payload, payload_len);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  assert_int_equal(r->integer, 1); /* exactly our subscriber received it */
  freeReplyObject(r);

  if (redisGetReply(sub, &raw) != REDIS_OK) fail_msg("redisGetReply on subscriber: %s", sub->errstr);
  r = raw;
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 3);
  assert_bulk(r->element[0], "message", 7);
  assert_bulk(r->element[1], channel, strlen(channel));
  assert_bulk(r->element[2], payload, payload_len);
  freeReplyObject(r);

  redisFree(sub);
  redisFree(pub);
}

static void test_redis_set_get_expire(void **state) {
  struct smoke *s = *state;
  char key[64], value[64];
  redisContext *c = redis_open(&s->redis);
  redisReply *r;

  unique_name(key, sizeof key, "wd-smoke:key:");
  unique_name(value, sizeof value, "v-");

  r = redisCommand(c, "SET %s %s", key, value);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STATUS);
  assert_string_equal(r->str, "OK");
  freeReplyObject(r);

  r = redisCommand(c, "EXPIRE %s %d", key, 60);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);

  r = redisCommand(c, "TTL %s", key);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  assert_in_range(r->integer, 1, 60);
  freeReplyObject(r);

  r = redisCommand(c, "GET %s", key);
  assert_bulk(r, value, strlen(value));
  freeReplyObject(r);

  /* the database of the URL is the one in use: the key is invisible from another one */
  r = redisCommand(c, "SELECT %d", s->redis.db == 0 ? 1 : 0);
  assert_non_null(r);
  freeReplyObject(r);
  r = redisCommand(c, "EXISTS %s", key);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  assert_int_equal(r->integer, 0);
  freeReplyObject(r);
  r = redisCommand(c, "SELECT %d", s->redis.db);
  assert_non_null(r);
  freeReplyObject(r);

  /* expiry really removes the key */
  r = redisCommand(c, "PEXPIRE %s %d", key, 50);
  assert_non_null(r);
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  usleep(200 * 1000);
  r = redisCommand(c, "GET %s", key);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_NIL);
  freeReplyObject(r);

  redisFree(c);
}

/* ---- main -------------------------------------------------------------------------------- */

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mongo_document_roundtrip),
      cmocka_unit_test(test_gridfs_roundtrip),
      cmocka_unit_test(test_redis_pubsub),
      cmocka_unit_test(test_redis_set_get_expire),
  };
  int failed;

  mongo_url = getenv("WD_MONGO_URL");
  redis_url = getenv("WD_REDIS_URL");
  if (!mongo_url || !*mongo_url || !redis_url || !*redis_url) {
    fprintf(stderr,
            "test-stack-smoke: skipped: WD_MONGO_URL and WD_REDIS_URL must be set "
            "(see `scripts/stack.sh start`, or run scripts/test.sh)\n");
    return SKIP_EXIT_CODE;
  }

  mongoc_init();
  mongoc_log_set_handler(log_handler, NULL);
  failed = cmocka_run_group_tests_name("stack-smoke", tests, group_setup, group_teardown);
  mongoc_cleanup();
  return failed;
}
