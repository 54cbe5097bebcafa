/* The wd_outbound object: sender.* settings read once (docs/OUTBOUND.md),
 * ZoneMTA's queue indexes, counters, and the small helpers the queue
 * writer and the sender share. */
#include "outbound-private.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG "outbound"

int64_t wd__outbound_now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t wd__outbound_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *wd__outbound_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return msg != NULL ? msg : strdup("out of memory");
}

/* ---- settings ---- */

struct reader {
	struct wd_outbound *ob;
	const struct wd_config *config;
	const char *error;
	char *bad; /* malloc'd message about a value out of range */
};

static const char *keep(struct reader *r, const char *value)
{
	if (value == NULL || r->ob->owned_count == WD_N_ELEMENTS(r->ob->owned))
		return value;
	char *copy = strdup(value);
	if (copy != NULL)
		r->ob->owned[r->ob->owned_count++] = copy;
	return copy;
}

static const char *get_string(struct reader *r, const char *key, const char *def)
{
	const char *value = def;
	if (r->error == NULL && wd_config_get_string(r->config, key, def, &value, &r->error) < 0)
		return def;
	return keep(r, value);
}

static bool get_bool(struct reader *r, const char *key, bool def)
{
	bool value = def;
	if (r->error == NULL && wd_config_get_bool(r->config, key, def, &value, &r->error) < 0)
		return def;
	return value;
}

/* seconds (fractions allowed) to milliseconds, within [min_s, max_s] */
static int64_t get_seconds(struct reader *r, const char *key, double def, double min_s,
			   double max_s)
{
	double value = def;
	if (r->error == NULL && wd_config_get_float(r->config, key, def, &value, &r->error) < 0)
		return (int64_t)(def * 1000);
	if (!(value >= min_s && value <= max_s) && r->bad == NULL)
		r->bad = wd__outbound_error("%s: %g is out of range (%g..%g seconds)", key, value,
					    min_s, max_s);
	return (int64_t)(value * 1000);
}

static int64_t get_int(struct reader *r, const char *key, int64_t def, int64_t min, int64_t max)
{
	int64_t value = def;
	if (r->error == NULL && wd_config_get_int(r->config, key, def, &value, &r->error) < 0)
		return def;
	if ((value < min || value > max) && r->bad == NULL)
		r->bad = wd__outbound_error("%s: %lld is out of range (%lld..%lld)", key,
					    (long long)value, (long long)min, (long long)max);
	return value;
}

static int read_settings(struct wd_outbound *ob, const struct wd_config *config, char **error_r)
{
	struct wd_outbound_settings *s = &ob->set;
	struct reader r = { .ob = ob, .config = config };
	s->enabled = get_bool(&r, "sender.enabled", false);
	s->zone = get_string(&r, "sender.zone", "default");
	s->gfs = get_string(&r, "sender.gfs", "mail");
	s->collection = get_string(&r, "sender.collection", "zone-queue");
	s->loop_secret = get_string(&r, "sender.loopSecret", NULL);
	s->instance_id = get_string(&r, "sender.instanceId", "wildduck-c");

	char host[256] = "localhost";
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	const char *name = get_string(&r, "sender.hostname", host);
	snprintf(s->hostname, sizeof(s->hostname), "%s", name != NULL ? name : host);

	s->relay_host = get_string(&r, "sender.relay.host", "127.0.0.1");
	s->relay_secure = get_bool(&r, "sender.relay.secure", false);
	s->relay_port = (unsigned)get_int(&r, "sender.relay.port", s->relay_secure ? 465 : 25, 1,
					  65535);
	s->relay_starttls = get_bool(&r, "sender.relay.starttls", false);
	s->relay_user = get_string(&r, "sender.relay.user", NULL);
	s->relay_pass = get_string(&r, "sender.relay.pass", "");
	s->relay_insecure_auth = get_bool(&r, "sender.relay.insecureAuth", false);
	s->tls_reject_unauthorized = get_bool(&r, "sender.relay.tls.rejectUnauthorized", true);
	s->tls_ca = get_string(&r, "sender.relay.tls.ca", NULL);

	s->poll_interval_ms = get_seconds(&r, "sender.pollInterval", 1, 0.01, 3600);
	s->lock_ms = get_seconds(&r, "sender.lockTime", 1800, 1, 86400);
	s->connect_timeout_ms = get_seconds(&r, "sender.connectTimeout", 30, 0.01, 3600);
	s->timeout_ms = get_seconds(&r, "sender.timeout", 60, 0.01, 3600);
	s->data_timeout_ms = get_seconds(&r, "sender.dataTimeout", 600, 0.01, 3600);
	s->max_per_connection = (unsigned)get_int(&r, "sender.maxMessages", 100, 1, 100000);

	if (r.error != NULL) {
		free(r.bad);
		*error_r = strdup(r.error);
		return WD_ERROR;
	}
	if (r.bad != NULL) {
		*error_r = r.bad;
		return WD_ERROR;
	}
	const char *required[] = { s->zone, s->gfs, s->collection, s->instance_id, s->relay_host };
	for (size_t i = 0; i < WD_N_ELEMENTS(required); i++) {
		if (required[i] == NULL || required[i][0] == '\0') {
			*error_r = wd__outbound_error("sender.*: zone, gfs, collection, instanceId "
						      "and relay.host must not be empty");
			return WD_ERROR;
		}
	}
	if (s->relay_secure && s->relay_starttls) {
		*error_r = strdup("sender.relay: secure (implicit TLS) and starttls exclude each other");
		return WD_ERROR;
	}
	return WD_OK;
}

struct wd_outbound *wd_outbound_create(struct wd_store *store, const struct wd_config *config,
				       char **error_r)
{
	struct wd_outbound *ob = calloc(1, sizeof(*ob));
	if (ob == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	ob->store = store;
	pthread_mutex_init(&ob->id_lock, NULL);
	pthread_mutex_init(&ob->index_lock, NULL);
	pthread_mutex_init(&ob->sender_lock, NULL);
	wd__queue_id_init(ob);
	if (read_settings(ob, config, error_r) < 0) {
		wd_outbound_destroy(&ob);
		return NULL;
	}
	return ob;
}

void wd_outbound_destroy(struct wd_outbound **_ob)
{
	struct wd_outbound *ob = *_ob;
	*_ob = NULL;
	if (ob == NULL)
		return;
	wd_outbound_sender_stop(ob);
	for (size_t i = 0; i < ob->owned_count; i++)
		free(ob->owned[i]);
	pthread_mutex_destroy(&ob->id_lock);
	pthread_mutex_destroy(&ob->index_lock);
	pthread_mutex_destroy(&ob->sender_lock);
	free(ob);
}

bool wd_outbound_sender_enabled(const struct wd_outbound *ob)
{
	return ob->set.enabled;
}

void wd_outbound_describe(const struct wd_outbound *ob, char *buf, size_t size)
{
	const char *host = ob->set.relay_host;
	bool v6 = strchr(host, ':') != NULL;
	snprintf(buf, size, "sender delivering to %s%s%s:%u (zone %s)", v6 ? "[" : "", host,
		 v6 ? "]" : "", ob->set.relay_port, ob->set.zone);
}

void wd_outbound_get_stats(const struct wd_outbound *ob, struct wd_outbound_stats *st)
{
	st->queued = atomic_load(&ob->stat_queued);
	st->attempts = atomic_load(&ob->stat_attempts);
	st->delivered = atomic_load(&ob->stat_delivered);
	st->deferred = atomic_load(&ob->stat_deferred);
	st->dropped = atomic_load(&ob->stat_dropped);
}

/* ---- ZoneMTA's indexes (its indexes.yaml), on the queue and the bucket ---- */

struct queue_index {
	bool files;       /* on <gfs>.files, else on the queue collection */
	const char *name;
	const char *keys[5];
};

static const struct queue_index queue_indexes[] = {
	{ true, "mailupload", { "uploadDate" } },
	{ true, "mailfile", { "filename" } },
	{ false, "findall", { "created" } },
	{ false, "search_next", { "sendingZone", "queued", "locked", "assigned", "domain" } },
	{ false, "find_all_queued", { "queued" } },
	{ false, "delivery", { "id", "seq" } },
	{ false, "message_locking", { "locked", "assigned", "lockTime" } },
};

void wd__outbound_ensure_indexes(struct wd_outbound *ob)
{
	pthread_mutex_lock(&ob->index_lock);
	if (ob->indexes_done) {
		pthread_mutex_unlock(&ob->index_lock);
		return;
	}
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	mongoc_database_t *db =
		mongoc_client_get_database(client, wd_store_db_name(ob->store, WD_STORE_DB_SENDER));
	char files[256];
	snprintf(files, sizeof(files), "%s.files", ob->set.gfs);
	bool reachable = true;
	for (size_t i = 0; i < WD_N_ELEMENTS(queue_indexes) && reachable; i++) {
		const struct queue_index *qi = &queue_indexes[i];
		const char *coll = qi->files ? files : ob->set.collection;
		bson_t cmd = BSON_INITIALIZER, list, index, key;
		BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
		bson_append_array_begin(&cmd, "indexes", -1, &list);
		bson_append_document_begin(&list, "0", -1, &index);
		bson_append_document_begin(&index, "key", -1, &key);
		for (size_t k = 0; k < WD_N_ELEMENTS(qi->keys) && qi->keys[k] != NULL; k++)
			BSON_APPEND_INT32(&key, qi->keys[k], 1);
		bson_append_document_end(&index, &key);
		BSON_APPEND_UTF8(&index, "name", qi->name);
		bson_append_document_end(&list, &index);
		bson_append_array_end(&cmd, &list);
		bson_error_t error;
		if (!mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, &error)) {
			wd_warning(LOG, "index %s.%s: %s", coll, qi->name, error.message);
			reachable = error.domain != MONGOC_ERROR_SERVER_SELECTION &&
				    error.domain != MONGOC_ERROR_STREAM;
		}
		bson_destroy(&cmd);
	}
	mongoc_database_destroy(db);
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	ob->indexes_done = reachable;
	pthread_mutex_unlock(&ob->index_lock);
}
