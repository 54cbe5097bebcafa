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
 * cleaned up), and only its reader, which no longer runs, sets it.
 *
 * Order: journal _ids are ObjectIds made by whichever process wrote the
 * entry (wd-server, wd-api, WildDuck, on any machine), so entries written
 * within the same second, or under clock skew, do not sort in the order
 * they were written. Reading strictly after the last _id sent (as WildDuck
 * does) loses an entry that sorts below it but arrives later. A live stream
 * therefore reads from a floor REORDER_SECONDS before the newest timestamp
 * it has seen and skips the entries it already sent (kept in a small set of
 * recent ids, grown as needed). A stream starts with the window's entries
 * up to its starting point (the newest entry, or Last-Event-ID) counted as
 * sent, so nothing the client had is repeated; an entry written after that
 * point is sent even when it sorts below it. (An entry that sorted below
 * Last-Event-ID and was written between the client's last event and its
 * reconnect is not recovered, as in WildDuck.) */
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
#define REORDER_SECONDS 2
#define RECENT_MAX 4096 /* ids remembered within the reorder window, at most */

struct stream {
	struct stream *prev, *next;
	struct api_updates *hub;
	struct MHD_Connection *connection;
	bson_oid_t user;
	bson_oid_t last_id;     /* the newest entry sent (the `id:` of events) */
	bool has_last;
	bool strict;            /* next read: strictly after last_id (resume, or a full batch) */
	uint32_t newest_time;   /* newest ObjectId timestamp seen, for the reorder floor */
	bson_oid_t *recent;     /* entries sent within the reorder window */
	size_t recent_count, recent_cap;
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

/* The ObjectId below every id made REORDER_SECONDS before `newest`. */
static void reorder_floor(uint32_t newest, bson_oid_t *floor_r)
{
	uint32_t t = newest > REORDER_SECONDS ? newest - REORDER_SECONDS : 0;
	memset(floor_r, 0, sizeof(*floor_r));
	floor_r->bytes[0] = (uint8_t)(t >> 24);
	floor_r->bytes[1] = (uint8_t)(t >> 16);
	floor_r->bytes[2] = (uint8_t)(t >> 8);
	floor_r->bytes[3] = (uint8_t)t;
}

/* Records `id` as sent; false when it was sent before. Ids older than the
   reorder window are forgotten (a re-read never reaches them). */
static bool remember(struct stream *s, const bson_oid_t *id)
{
	uint32_t t = (uint32_t)bson_oid_get_time_t(id);
	for (size_t i = 0; i < s->recent_count; i++)
		if (bson_oid_equal(&s->recent[i], id))
			return false;
	if (t > s->newest_time)
		s->newest_time = t;
	size_t kept = 0;
	for (size_t i = 0; i < s->recent_count; i++)
		if ((uint32_t)bson_oid_get_time_t(&s->recent[i]) + REORDER_SECONDS >= s->newest_time)
			bson_oid_copy(&s->recent[i], &s->recent[kept++]);
	s->recent_count = kept;
	if (s->recent_count == s->recent_cap && s->recent_cap < RECENT_MAX) {
		size_t cap = s->recent_cap > 0 ? s->recent_cap * 2 : 16;
		bson_oid_t *grown = realloc(s->recent, cap * sizeof(*grown));
		if (grown != NULL) {
			s->recent = grown;
			s->recent_cap = cap;
		}
	}
	if (s->recent_count == s->recent_cap) { /* full: forget the oldest */
		if (s->recent_cap == 0)
			return true;
		memmove(s->recent, s->recent + 1, --s->recent_count * sizeof(s->recent[0]));
	}
	bson_oid_copy(id, &s->recent[s->recent_count++]);
	return true;
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
		bson_oid_t floor;
		if (s->strict)
			bson_oid_copy(&s->last_id, &floor);
		else
			reorder_floor(s->newest_time, &floor);
		BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &gt);
		BSON_APPEND_OID(&gt, "$gt", &floor);
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
	bson_oid_t batch_last;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
			continue;
		const bson_oid_t *id = bson_iter_oid(&it);
		bson_oid_copy(id, &batch_last);
		n++;
		if (!remember(s, id))
			continue; /* sent already (read again inside the reorder window) */
		bson_oid_copy(id, &s->last_id);
		s->has_last = true;
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
	/* a full batch goes on strictly after its last entry, so that a window
	   holding more than a batch cannot be read over and over */
	s->strict = *more_r;
	if (*more_r)
		bson_oid_copy(&batch_last, &s->last_id);
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
			free(s->recent);
			free(s);
		}
		s = next;
	}
}

/* Where a stream starts: after `upto` (Last-Event-ID), or after the user's
   newest entry when upto is NULL. The entries of the reorder window up to
   that point count as sent, so that the first floor read does not repeat
   them. */
static void start_point(struct api_updates *hub, struct stream *s, const bson_oid_t *upto)
{
	struct wd_store *store = hub->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "journal");
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj, range;
	BSON_APPEND_OID(&filter, "user", &s->user);
	if (upto != NULL) {
		bson_oid_t floor;
		reorder_floor((uint32_t)bson_oid_get_time_t(upto), &floor);
		BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &range);
		BSON_APPEND_OID(&range, "$gt", &floor);
		BSON_APPEND_OID(&range, "$lte", upto);
		bson_append_document_end(&filter, &range);
		bson_oid_copy(upto, &s->last_id);
		s->has_last = true;
		s->newest_time = (uint32_t)bson_oid_get_time_t(upto);
	}
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
	BSON_APPEND_INT32(&sort, "_id", -1);
	bson_append_document_end(&opts, &sort);
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
	BSON_APPEND_INT32(&proj, "_id", 1);
	bson_append_document_end(&opts, &proj);
	BSON_APPEND_INT64(&opts, "limit", RECENT_MAX / 2);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
	const bson_t *doc;
	bson_iter_t it;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
			continue;
		const bson_oid_t *id = bson_iter_oid(&it);
		if (!s->has_last) { /* the newest entry */
			bson_oid_copy(id, &s->last_id);
			s->has_last = true;
			s->newest_time = (uint32_t)bson_oid_get_time_t(id);
		}
		if ((uint32_t)bson_oid_get_time_t(id) + REORDER_SECONDS < s->newest_time)
			break;
		remember(s, id);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
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
	start_point(hub, s, last_event);
	if (last_event != NULL)
		s->due = true;
	else
		s->idle_due = true; /* WildDuck greets with an idle comment */
	s->last_write_ms = now_ms();

	pthread_mutex_lock(&hub->lock);
	if (hub->stopping || hub->count >= hub->max_streams) {
		bool stopping = hub->stopping;
		pthread_mutex_unlock(&hub->lock);
		free(s->recent);
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
