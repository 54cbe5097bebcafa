/* The EventSource hub (updates.h).
 *
 * Locking: one mutex guards the stream list and every stream's flags. The
 * content reader takes it to decide between "write what is due" and
 * "suspend"; the hub thread takes it to mark streams due and resume them.
 * Both call into libmicrohttpd (suspend / resume) with the mutex held, in
 * that order only, so a wake-up can never slip between the reader's check
 * and its suspension. Journal reads run without the mutex.
 *
 * libmicrohttpd calls the response's free callback while it holds its own
 * connection-cleanup mutex, which MHD_resume_connection also takes: the
 * free callback must therefore never wait for our mutex (the hub may hold
 * it inside a resume). It only marks the stream dead; the hub thread
 * unlinks and frees dead streams on its next tick. A dead stream is never
 * resumed: its `suspended` is false (a suspended connection is never
 * cleaned up), and only its reader, which no longer runs, sets it. */
#include "updates.h"

#include "wd-buffer.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-notify.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define IDLE_COMMENT_MS 15000
#define JOURNAL_BATCH 500
#define TICK_MS 1000

struct stream {
	struct stream *prev, *next;
	struct api_updates *hub;
	struct MHD_Connection *connection;
	bson_oid_t user;
	bson_oid_t last_id;
	bool has_last;
	bool due;        /* the journal may have something new */
	bool idle_due;   /* an idle comment is due */
	bool suspended;
	bool closing;
	bool error_sent;
	atomic_bool dead;  /* libmicrohttpd is done with it: free on the next tick */
	unsigned idle_counter;
	int64_t last_write_ms;
	struct wd_buffer out;
};

struct api_updates {
	struct api_context *ctx;
	pthread_mutex_t lock;
	struct stream *streams;
	unsigned count, max_streams;
	int64_t poll_ms;
	int64_t last_poll_ms;
	bool stopping;

	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t stop_async;
	uv_timer_t tick;
	struct wd_notify *notify;
	bool subscribed;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With the lock held. */
static void wake(struct stream *s)
{
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->connection);
	}
}

/* ---- formatting (WildDuck's formatJournalData) ---- */

static void append_event(struct wd_buffer *out, json_t *data, const bson_oid_t *id)
{
	char *text = json_dumps(data, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL)
		return;
	wd_buffer_append_str(out, "data: ");
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\n')
			wd_buffer_append_str(out, "\ndata: ");
		else
			wd_buffer_append(out, p, 1);
	}
	free(text);
	if (id != NULL) {
		char hex[25];
		bson_oid_to_string(id, hex);
		wd_buffer_printf(out, "\nid: %s", hex);
	}
	wd_buffer_append_str(out, "\n\n");
}

static const char *const hidden_keys[] = {
	"_id", "ignore", "user", "modseq", "unseenChange", "created", NULL,
};

static json_t *entry_data(const bson_t *doc)
{
	json_t *data = json_object();
	bson_iter_t iter;
	bson_iter_init(&iter, doc);
	const char *command = NULL;
	bson_iter_t cmd;
	if (bson_iter_init_find(&cmd, doc, "command") && BSON_ITER_HOLDS_UTF8(&cmd))
		command = bson_iter_utf8(&cmd, NULL);
	while (bson_iter_next(&iter)) {
		const char *key = bson_iter_key(&iter);
		bool hidden = false;
		for (size_t i = 0; hidden_keys[i] != NULL && !hidden; i++)
			hidden = strcmp(hidden_keys[i], key) == 0;
		if (hidden || (strcmp(key, "unseen") == 0 &&
			       (command == NULL || strcmp(command, "COUNTERS") != 0)))
			continue;
		json_t *value = api_json_from_bson_iter(&iter);
		json_object_set_new(data, key, value != NULL ? value : json_null());
	}
	return data;
}

/* Mailboxes whose counters changed in this read (EXISTS, EXPUNGE, FETCH of
   unseen), in first-seen order, without repeats. */
struct touched {
	bson_oid_t ids[64];
	size_t count;
	bool overflow;
};

static void touch(struct touched *t, const bson_t *doc)
{
	bson_iter_t it;
	const char *command = NULL;
	if (bson_iter_init_find(&it, doc, "command") && BSON_ITER_HOLDS_UTF8(&it))
		command = bson_iter_utf8(&it, NULL);
	if (command == NULL || !bson_iter_init_find(&it, doc, "mailbox") || !BSON_ITER_HOLDS_OID(&it))
		return;
	bool counts = strcmp(command, "EXISTS") == 0 || strcmp(command, "EXPUNGE") == 0;
	if (strcmp(command, "FETCH") == 0) {
		bson_iter_t u;
		counts = (bson_iter_init_find(&u, doc, "unseen") && bson_iter_as_bool(&u)) ||
			 (bson_iter_init_find(&u, doc, "unseenChange") && bson_iter_as_bool(&u));
	}
	if (!counts)
		return;
	const bson_oid_t *id = bson_iter_oid(&it);
	for (size_t i = 0; i < t->count; i++)
		if (bson_oid_equal(&t->ids[i], id))
			return;
	if (t->count < sizeof(t->ids) / sizeof(t->ids[0]))
		bson_oid_copy(id, &t->ids[t->count++]);
	else
		t->overflow = true;
}

/* Reads the journal after s->last_id into `out`. Runs without the lock:
   only this stream's reader touches last_id. 0, or -1 (database error). */
static int read_journal(struct api_updates *hub, struct stream *s, struct wd_buffer *out,
			bool *more_r)
{
	*more_r = false;
	struct wd_store *store = hub->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "journal");
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, gt;
	BSON_APPEND_OID(&filter, "user", &s->user);
	if (s->has_last) {
		BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &gt);
		BSON_APPEND_OID(&gt, "$gt", &s->last_id);
		bson_append_document_end(&filter, &gt);
	}
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
	BSON_APPEND_INT32(&sort, "_id", 1);
	bson_append_document_end(&opts, &sort);
	BSON_APPEND_INT64(&opts, "limit", JOURNAL_BATCH);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
	const bson_t *doc;
	struct touched touched = { .count = 0 };
	unsigned n = 0;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
			continue;
		bson_oid_copy(bson_iter_oid(&it), &s->last_id);
		s->has_last = true;
		n++;
		touch(&touched, doc);
		json_t *data = entry_data(doc);
		append_event(out, data, &s->last_id);
		json_decref(data);
	}
	bson_error_t error;
	int ret = 0;
	if (mongoc_cursor_error(cursor, &error)) {
		wd_warning("api", "updates: journal read failed: %s", error.message);
		ret = -1;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	*more_r = n == JOURNAL_BATCH;
	for (size_t i = 0; i < touched.count; i++) {
		int64_t total = 0, unseen = 0;
		char *cerror = NULL;
		if (wd_store_mailbox_counters(store, &touched.ids[i], &total, &unseen, &cerror) < 0) {
			free(cerror);
			continue;
		}
		json_t *data = json_object();
		json_object_set_new(data, "command", json_string("COUNTERS"));
		json_object_set_new(data, "mailbox", api_json_oid(&touched.ids[i]));
		json_object_set_new(data, "total", json_integer(total));
		json_object_set_new(data, "unseen", json_integer(unseen));
		append_event(out, data, &s->last_id);
		json_decref(data);
	}
	return ret;
}

/* ---- the content reader ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	struct api_updates *hub = s->hub;
	pthread_mutex_lock(&hub->lock);
	for (;;) {
		if (s->closing) {
			pthread_mutex_unlock(&hub->lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (s->out.len > 0) {
			size_t n = s->out.len < max ? s->out.len : max;
			memcpy(buf, wd_buffer_bytes(&s->out), n);
			wd_buffer_consume(&s->out, n);
			if (s->out.len == 0)
				wd_buffer_release(&s->out);
			s->last_write_ms = now_ms();
			pthread_mutex_unlock(&hub->lock);
			return (ssize_t)n;
		}
		if (s->due) {
			s->due = false;
			pthread_mutex_unlock(&hub->lock);
			struct wd_buffer out = WD_BUFFER_INIT;
			bool more = false;
			int ret = read_journal(hub, s, &out, &more);
			pthread_mutex_lock(&hub->lock);
			if (ret < 0 && !s->error_sent) {
				wd_buffer_append_str(&out, "event: error\ndata: database unavailable, "
							   "retrying\n\n");
				s->error_sent = true;
			} else if (ret == 0) {
				s->error_sent = false;
			}
			if (more || ret < 0)
				s->due = more; /* a failed read is retried by the next poll */
			if (out.len > 0) {
				wd_buffer_append(&s->out, wd_buffer_bytes(&out), out.len);
				s->idle_due = false;
			}
			wd_buffer_release(&out);
			continue;
		}
		if (s->idle_due) {
			s->idle_due = false;
			wd_buffer_printf(&s->out, ": idling %u\n\n", ++s->idle_counter);
			continue;
		}
		s->suspended = true;
		MHD_suspend_connection(s->connection);
		pthread_mutex_unlock(&hub->lock);
		return 0;
	}
}

static void stream_free(void *cls)
{
	struct stream *s = cls;
	atomic_store(&s->dead, true);
}

/* With the lock held: unlinks and frees the streams libmicrohttpd is done
   with. */
static void reap_dead(struct api_updates *hub)
{
	struct stream *s = hub->streams;
	while (s != NULL) {
		struct stream *next = s->next;
		if (atomic_load(&s->dead)) {
			if (s->prev != NULL)
				s->prev->next = s->next;
			else
				hub->streams = s->next;
			if (s->next != NULL)
				s->next->prev = s->prev;
			hub->count--;
			wd_buffer_release(&s->out);
			free(s);
		}
		s = next;
	}
}

/* The newest journal entry of the user (where a stream without
   Last-Event-ID starts). */
static bool latest_entry(struct api_updates *hub, const bson_oid_t *user, bson_oid_t *id_r)
{
	struct wd_store *store = hub->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "journal");
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
	BSON_APPEND_OID(&filter, "user", user);
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
	BSON_APPEND_INT32(&sort, "_id", -1);
	bson_append_document_end(&opts, &sort);
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
	BSON_APPEND_INT32(&proj, "_id", 1);
	bson_append_document_end(&opts, &proj);
	BSON_APPEND_INT64(&opts, "limit", 1);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
	const bson_t *doc;
	bool found = false;
	bson_iter_t it;
	if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, "_id") &&
	    BSON_ITER_HOLDS_OID(&it)) {
		bson_oid_copy(bson_iter_oid(&it), id_r);
		found = true;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return found;
}

void api_updates_open(struct api_request *req, const bson_oid_t *user,
		      const bson_oid_t *last_event)
{
	struct api_updates *hub = req->ctx->updates;
	struct stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		api_reply_error(req, 500, "InternalError", "Out of memory");
		return;
	}
	s->hub = hub;
	s->connection = req->connection;
	bson_oid_copy(user, &s->user);
	if (last_event != NULL) {
		bson_oid_copy(last_event, &s->last_id);
		s->has_last = true;
		s->due = true;
	} else {
		s->has_last = latest_entry(hub, user, &s->last_id);
		s->idle_due = true; /* WildDuck greets with an idle comment */
	}
	s->last_write_ms = now_ms();

	pthread_mutex_lock(&hub->lock);
	if (hub->stopping || hub->count >= hub->max_streams) {
		bool stopping = hub->stopping;
		pthread_mutex_unlock(&hub->lock);
		free(s);
		api_reply_error(req, stopping ? 503 : 429, "TooManyStreams",
				stopping ? "Server is shutting down" : "Too many open update streams");
		return;
	}
	s->next = hub->streams;
	if (hub->streams != NULL)
		hub->streams->prev = s;
	hub->streams = s;
	hub->count++;
	pthread_mutex_unlock(&hub->lock);

	static const char *const headers[] = {
		"Cache-Control", "no-cache", "X-Accel-Buffering", "no", NULL,
	};
	api_reply_stream(req, "text/event-stream; charset=utf-8", UINT64_MAX, stream_read,
			 stream_free, s, headers);
}

/* ---- the hub thread ---- */

static void on_event(struct api_updates *hub, const struct wd_notify_event *event)
{
	if (event->kind != WD_NOTIFY_CHANGED)
		return;
	pthread_mutex_lock(&hub->lock);
	for (struct stream *s = hub->streams; s != NULL; s = s->next) {
		if (!atomic_load(&s->dead) && bson_oid_equal(&s->user, &event->user)) {
			s->due = true;
			wake(s);
		}
	}
	pthread_mutex_unlock(&hub->lock);
}

static void on_tick(uv_timer_t *timer)
{
	struct api_updates *hub = timer->data;
	int64_t now = now_ms();
	bool subscribed = hub->notify != NULL && wd_notify_connected(hub->notify);
	bool poll = !subscribed && now - hub->last_poll_ms >= hub->poll_ms;
	if (poll)
		hub->last_poll_ms = now;
	pthread_mutex_lock(&hub->lock);
	if (subscribed && !hub->subscribed) {
		/* pushes may have been missed while Redis was away */
		poll = true;
	}
	hub->subscribed = subscribed;
	reap_dead(hub);
	for (struct stream *s = hub->streams; s != NULL; s = s->next) {
		if (poll)
			s->due = true;
		if (now - s->last_write_ms >= IDLE_COMMENT_MS)
			s->idle_due = true;
		if (s->due || s->idle_due)
			wake(s);
	}
	pthread_mutex_unlock(&hub->lock);
}

static void on_close_walk(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

static void on_stop(uv_async_t *async)
{
	struct api_updates *hub = async->data;
	wd_notify_destroy(&hub->notify);
	uv_walk(&hub->loop, on_close_walk, NULL);
}

static void hub_thread(void *arg)
{
	struct api_updates *hub = arg;
	uv_run(&hub->loop, UV_RUN_DEFAULT);
}

struct api_updates *api_updates_create(struct api_context *ctx, const char *redis_url,
				       char **error_r)
{
	struct api_updates *hub = calloc(1, sizeof(*hub));
	if (hub == NULL)
		return NULL;
	hub->ctx = ctx;
	int64_t poll_seconds, max_streams;
	const char *cerror;
	if (wd_config_get_int(ctx->config, "api.updates.pollSeconds", 5, &poll_seconds, &cerror) < 0 ||
	    wd_config_get_int(ctx->config, "api.updates.maxStreams", 10000, &max_streams,
			      &cerror) < 0 ||
	    poll_seconds < 1 || max_streams < 1) {
		if (asprintf(error_r, "configuration: %s",
			     poll_seconds < 1 || max_streams < 1
				     ? "api.updates.pollSeconds and maxStreams must be >= 1"
				     : cerror) < 0)
			*error_r = NULL;
		free(hub);
		return NULL;
	}
	hub->poll_ms = poll_seconds * 1000;
	hub->max_streams = (unsigned)max_streams;
	pthread_mutex_init(&hub->lock, NULL);
	uv_loop_init(&hub->loop);
	uv_async_init(&hub->loop, &hub->stop_async, on_stop);
	hub->stop_async.data = hub;
	uv_timer_init(&hub->loop, &hub->tick);
	hub->tick.data = hub;
	uv_timer_start(&hub->tick, on_tick, TICK_MS, TICK_MS);
	hub->notify = wd_notify_create(&hub->loop, redis_url, on_event, hub, error_r);
	if (hub->notify == NULL) {
		uv_walk(&hub->loop, on_close_walk, NULL);
		uv_run(&hub->loop, UV_RUN_DEFAULT);
		uv_loop_close(&hub->loop);
		pthread_mutex_destroy(&hub->lock);
		free(hub);
		return NULL;
	}
	if (uv_thread_create(&hub->thread, hub_thread, hub) != 0) {
		*error_r = strdup("cannot start the updates thread");
		wd_notify_destroy(&hub->notify);
		uv_walk(&hub->loop, on_close_walk, NULL);
		uv_run(&hub->loop, UV_RUN_DEFAULT);
		uv_loop_close(&hub->loop);
		free(hub);
		return NULL;
	}
	return hub;
}

void api_updates_shutdown(struct api_updates *hub)
{
	if (hub == NULL)
		return;
	pthread_mutex_lock(&hub->lock);
	hub->stopping = true;
	for (struct stream *s = hub->streams; s != NULL; s = s->next) {
		if (atomic_load(&s->dead))
			continue;
		s->closing = true;
		wake(s);
	}
	pthread_mutex_unlock(&hub->lock);
}

void api_updates_destroy(struct api_updates **updates)
{
	struct api_updates *hub = *updates;
	if (hub == NULL)
		return;
	uv_async_send(&hub->stop_async);
	uv_thread_join(&hub->thread);
	uv_loop_close(&hub->loop);
	/* the daemon is stopped: every stream is dead */
	reap_dead(hub);
	pthread_mutex_destroy(&hub->lock);
	free(hub);
	*updates = NULL;
}

void api_updates_get_stats(struct api_updates *hub, struct api_updates_stats *stats_r)
{
	pthread_mutex_lock(&hub->lock);
	stats_r->streams = hub->count;
	stats_r->subscribed = hub->subscribed;
	pthread_mutex_unlock(&hub->lock);
}
