/* Other servers' changes during IDLE: a `SUBSCRIBE wd_events` on Redis in
 * Dovecot's ioloop, plus a fallback timer.
 *
 * Every writer of the WildDuck data model (WildDuck, wd-server, wd-api,
 * libwdstore in this plugin) publishes {"e":"<user id>"} on wd_events
 * after it changed a user's journal (reference §4.2, §4.3). While a
 * mailbox is watched (IMAP IDLE: box->notify_callback set), a message that
 * names our user marks the mailbox and wakes imap, whose sync then reads
 * the journal (wildduck-sync.c) and sends EXISTS / EXPUNGE / FETCH.
 *
 * The subscriber is hiredis' async client on a small adapter that maps its
 * addRead/delRead/addWrite/delWrite hooks to io_add()/io_remove(); hiredis
 * 0.14 has no timeouts, so connecting has our own timer. One connection per
 * mail user that ever IDLEs (kept for the session: IDLE starts and stops
 * around every command); Redis down or lost means a reconnect with backoff
 * (1 s doubling to 60 s) and a full re-read once it is back, because
 * beacons were missed. The fallback timer (wildduck_poll_interval, 30 s)
 * re-syncs the watched mailbox whatever Redis does, so IDLE clients see
 * changes even while Redis is unreachable. */
#include "wildduck-storage.h"

#include "ioloop.h"

#include "wd-redis-client.h"
#include "wd-redis-url.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>

#define WILDDUCK_NOTIFY_CHANNEL "wd_events"
#define WILDDUCK_NOTIFY_CONNECT_TIMEOUT_MS 5000
#define WILDDUCK_NOTIFY_BACKOFF_MIN_MS 1000
#define WILDDUCK_NOTIFY_BACKOFF_MAX_MS 60000

struct wildduck_notify {
	struct wildduck_user *wuser;
	struct wd_redis_url url;
	bool url_ok;

	redisAsyncContext *ac;
	struct io *io_read, *io_write;
	int fd;
	struct timeout *to_connect, *to_reconnect, *to_wake;
	unsigned int backoff_ms;
	bool subscribed;
	/* the subscription was lost after it had worked: beacons missed */
	bool lost;
	/* a failure was logged; the next one is not, until it works again */
	bool warned;

	struct mailbox *box;      /* the watched mailbox, NULL: none */
};

static void notify_connect(struct wildduck_notify *notify);

/* ---- waking the watched mailbox ---- */

static void notify_wake_cb(struct wildduck_notify *notify)
{
	struct mailbox *box = notify->box;

	timeout_remove(&notify->to_wake);
	if (box != NULL && box->notify_callback != NULL)
		box->notify_callback(box, box->notify_context);
}

static void notify_wake(struct wildduck_notify *notify, bool full)
{
	if (notify->box == NULL)
		return;
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(notify->box);
	mbox->notified = TRUE;
	if (full)
		mbox->force_full = TRUE;
	/* outside hiredis' callback: imap syncs and writes from here */
	if (notify->to_wake == NULL)
		notify->to_wake = timeout_add_short(0, notify_wake_cb, notify);
}

/* ---- the hiredis ↔ ioloop adapter ---- */

static void adapter_read(struct wildduck_notify *notify)
{
	redisAsyncHandleRead(notify->ac);
}

static void adapter_write(struct wildduck_notify *notify)
{
	redisAsyncHandleWrite(notify->ac);
}

static void adapter_add_read(void *privdata)
{
	struct wildduck_notify *notify = privdata;
	if (notify->io_read == NULL)
		notify->io_read = io_add(notify->fd, IO_READ, adapter_read, notify);
}

static void adapter_del_read(void *privdata)
{
	struct wildduck_notify *notify = privdata;
	io_remove(&notify->io_read);
}

static void adapter_add_write(void *privdata)
{
	struct wildduck_notify *notify = privdata;
	if (notify->io_write == NULL)
		notify->io_write = io_add(notify->fd, IO_WRITE, adapter_write, notify);
}

static void adapter_del_write(void *privdata)
{
	struct wildduck_notify *notify = privdata;
	io_remove(&notify->io_write);
}

static void adapter_cleanup(void *privdata)
{
	struct wildduck_notify *notify = privdata;
	io_remove(&notify->io_read);
	io_remove(&notify->io_write);
}

/* ---- the subscription ---- */

static void notify_schedule_reconnect(struct wildduck_notify *notify);

static void notify_reconnect_cb(struct wildduck_notify *notify)
{
	timeout_remove(&notify->to_reconnect);
	notify_connect(notify);
}

static void notify_schedule_reconnect(struct wildduck_notify *notify)
{
	if (notify->to_reconnect != NULL)
		return;
	if (notify->backoff_ms == 0)
		notify->backoff_ms = WILDDUCK_NOTIFY_BACKOFF_MIN_MS;
	notify->to_reconnect = timeout_add(notify->backoff_ms, notify_reconnect_cb, notify);
	notify->backoff_ms *= 2;
	if (notify->backoff_ms > WILDDUCK_NOTIFY_BACKOFF_MAX_MS)
		notify->backoff_ms = WILDDUCK_NOTIFY_BACKOFF_MAX_MS;
}

static void notify_on_message(redisAsyncContext *ac ATTR_UNUSED, void *r, void *privdata)
{
	struct wildduck_notify *notify = privdata;
	redisReply *reply = r;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;
	const redisReply *kind = reply->element[0], *payload = reply->element[2];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "subscribe") == 0) {
		bool was_lost = notify->lost;
		if (notify->warned)
			i_info("wildduck: Redis subscription to %s back", WILDDUCK_NOTIFY_CHANNEL);
		notify->warned = FALSE;
		notify->subscribed = TRUE;
		notify->backoff_ms = 0;
		timeout_remove(&notify->to_connect);
		if (was_lost) {
			/* beacons may have been missed while it was down */
			notify->lost = FALSE;
			notify_wake(notify, TRUE);
		}
		return;
	}
	if (strcmp(kind->str, "message") != 0 || payload->type != REDIS_REPLY_STRING)
		return;
	/* {"e":"<user id>"} possibly with "p"; the id is 24 hex digits, so a
	   substring match on "e":"<id>" cannot hit another user */
	const char *needle = t_strdup_printf("\"e\":\"%s\"", notify->wuser->user_hex);
	if (payload->len < 4096 && strstr(payload->str, needle) != NULL)
		notify_wake(notify, FALSE);
}

static void notify_on_connect(const redisAsyncContext *ac, int status)
{
	struct wildduck_notify *notify = ac->ev.data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		if (!notify->warned) {
			i_warning("wildduck: Redis %s:%d unreachable (%s): IDLE falls back to "
				  "polling, reconnecting", notify->url.host, notify->url.port,
				  ac->errstr);
			notify->warned = TRUE;
		}
		notify->ac = NULL;
		timeout_remove(&notify->to_connect);
		notify->lost = TRUE;
		notify_schedule_reconnect(notify);
	}
}

static void notify_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct wildduck_notify *notify = ac->ev.data;

	notify->ac = NULL;
	notify->subscribed = FALSE;
	timeout_remove(&notify->to_connect);
	if (status != REDIS_OK) {
		i_warning("wildduck: Redis subscription lost (%s): reconnecting", ac->errstr);
		notify->warned = TRUE;
		notify->lost = TRUE;
		notify_schedule_reconnect(notify);
	}
}

static void notify_connect_timeout(struct wildduck_notify *notify)
{
	timeout_remove(&notify->to_connect);
	if (notify->ac != NULL && !notify->subscribed) {
		if (!notify->warned) {
			i_warning("wildduck: Redis %s:%d did not answer in %d ms: IDLE falls back "
				  "to polling", notify->url.host, notify->url.port,
				  WILDDUCK_NOTIFY_CONNECT_TIMEOUT_MS);
			notify->warned = TRUE;
		}
		redisAsyncContext *ac = notify->ac;
		notify->ac = NULL;
		/* the disconnect callback is not called for a forced free of
		   an unconnected context in hiredis 0.14: clean up here */
		ac->onDisconnect = NULL;
		redisAsyncFree(ac);
		notify->lost = TRUE;
		notify_schedule_reconnect(notify);
	}
}

static void notify_connect(struct wildduck_notify *notify)
{
	redisAsyncContext *ac;

	if (notify->ac != NULL || !notify->url_ok)
		return;
	if (notify->url.sentinel_count > 0) {
		/* Redis Sentinel: ask for the master at every (re)connect, so a
		   failover is followed; at most 500 ms per sentinel, in this
		   process's own time (one user's session) */
		char *error = NULL;
		if (wd_redis_sentinel_master(&notify->url, 500, notify->url.host,
					     sizeof(notify->url.host), &notify->url.port,
					     &error) < 0) {
			if (!notify->warned) {
				i_warning("wildduck: Redis Sentinel: %s",
					  error != NULL ? error : "out of memory");
				notify->warned = TRUE;
			}
			free(error);
			notify->lost = TRUE;
			notify_schedule_reconnect(notify);
			return;
		}
	}
	ac = redisAsyncConnect(notify->url.host, notify->url.port);
	if (ac == NULL || ac->err != 0) {
		if (!notify->warned) {
			i_warning("wildduck: Redis %s:%d: %s", notify->url.host, notify->url.port,
				  ac == NULL ? "out of memory" : ac->errstr);
			notify->warned = TRUE;
		}
		if (ac != NULL)
			redisAsyncFree(ac);
		notify->lost = TRUE;
		notify_schedule_reconnect(notify);
		return;
	}
	notify->ac = ac;
	notify->fd = ac->c.fd;
	ac->ev.data = notify;
	ac->ev.addRead = adapter_add_read;
	ac->ev.delRead = adapter_del_read;
	ac->ev.addWrite = adapter_add_write;
	ac->ev.delWrite = adapter_del_write;
	ac->ev.cleanup = adapter_cleanup;
	redisAsyncSetConnectCallback(ac, notify_on_connect);
	redisAsyncSetDisconnectCallback(ac, notify_on_disconnect);
	if (notify->url.password[0] != '\0') {
		if (notify->url.user[0] != '\0')
			redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", notify->url.user,
					  notify->url.password);
		else
			redisAsyncCommand(ac, NULL, NULL, "AUTH %s", notify->url.password);
	}
	redisAsyncCommand(ac, notify_on_message, notify, "SUBSCRIBE %s", WILDDUCK_NOTIFY_CHANNEL);
	notify->to_connect = timeout_add(WILDDUCK_NOTIFY_CONNECT_TIMEOUT_MS,
					 notify_connect_timeout, notify);
}

static struct wildduck_notify *notify_get(struct wildduck_user *wuser)
{
	struct wildduck_notify *notify = wuser->notify;
	char *error = NULL;

	if (notify != NULL)
		return notify;
	notify = wuser->notify = i_new(struct wildduck_notify, 1);
	notify->wuser = wuser;
	notify->fd = -1;
	if (wuser->redis_url == NULL) {
		notify->url_ok = FALSE;
	} else if (wd_redis_url_parse(wuser->redis_url, &notify->url, &error) < 0) {
		i_error("wildduck: dbs.redis: %s", error);
		free(error);
	} else {
		notify->url_ok = TRUE;
	}
	notify_connect(notify);
	return notify;
}

/* ---- the fallback timer ---- */

static void notify_poll(struct wildduck_mailbox *mbox)
{
	mbox->notified = TRUE;
	if (mbox->box.notify_callback != NULL)
		mbox->box.notify_callback(&mbox->box, mbox->box.notify_context);
}

void wildduck_notify_changes(struct mailbox *box)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(box);
	struct wildduck_user *wuser = mbox->storage->wuser;
	struct wildduck_notify *notify;

	if (box->notify_callback == NULL) {
		timeout_remove(&mbox->to_poll);
		if (wuser->notify != NULL && wuser->notify->box == box) {
			wuser->notify->box = NULL;
			timeout_remove(&wuser->notify->to_wake);
		}
		return;
	}
	notify = notify_get(wuser);
	notify->box = box;
	if (notify->ac == NULL && notify->to_reconnect == NULL)
		notify_connect(notify);
	if (mbox->to_poll == NULL && wuser->poll_secs > 0)
		mbox->to_poll = timeout_add(wuser->poll_secs * 1000, notify_poll, mbox);
}

void wildduck_notify_user_deinit(struct wildduck_user *wuser)
{
	struct wildduck_notify *notify = wuser->notify;

	if (notify == NULL)
		return;
	wuser->notify = NULL;
	timeout_remove(&notify->to_connect);
	timeout_remove(&notify->to_reconnect);
	timeout_remove(&notify->to_wake);
	if (notify->ac != NULL) {
		redisAsyncContext *ac = notify->ac;
		notify->ac = NULL;
		ac->onDisconnect = NULL;
		redisAsyncFree(ac);
	}
	io_remove(&notify->io_read);
	io_remove(&notify->io_write);
	i_free(notify);
}
