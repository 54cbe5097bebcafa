/* The sender: one thread that empties our zone of ZoneMTA's queue into the
 * configured relay (docs/OUTBOUND.md).
 *
 * Loop: claim the next due entry (queue-entries.c), load its message,
 * connect to the relay unless a connection from the previous entry is
 * still good (at most sender.maxMessages per connection), send, then:
 *
 *   250 to the message    delete the entry (and the file when it was the
 *                         last entry of its message);
 *   4xx / network / relay trouble before MAIL FROM
 *                         defer by the next step of the retry schedule
 *                         (const:sender:defer_times or ZoneMTA's 5m, 7m,
 *                         8m, 25m, 75m, 2h, 4h ×11); past the last step the
 *                         entry is dropped like a permanent failure;
 *   5xx                   drop with a log line. No bounce is generated
 *                         (see docs/OUTBOUND.md: our forwards and
 *                         autoreplies are not worth a DSN storm).
 *
 * When the relay cannot be reached (or refuses us before MAIL FROM), the
 * other entries due in the same batch are deferred with that result: a
 * dead relay costs one connection attempt per poll, not one per queued
 * message. A queued message that cannot be sent (its file lacks the
 * metadata, its header lines are unreadable) is dropped; one whose file is
 * gone takes its entries with it (ZoneMTA does the same). After each batch
 * the thread sleeps sender.pollInterval, or until wd_outbound_sender_wake().
 *
 * Bounded time: each attempt must finish within 3/4 of sender.lockTime
 * (the SMTP client's overall deadline), so our lock never expires under a
 * running attempt and another sender cannot take the entry while we still
 * send it. Stop writes an eventfd that every SMTP wait polls: an attempt in
 * progress ends at once, its entry is unlocked untouched (if the relay had
 * already received the final dot, it may deliver the message again when
 * retried: the usual at-least-once of mail). Database calls are not
 * interruptible; they are bounded by the driver's own timeouts. */
#include "outbound-private.h"
#include "queue-entries.h"
#include "smtp-client.h"
#include "wd-log.h"
#include "wd-result.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOG "outbound"
#define SETTINGS_REFRESH_MS (60 * 1000)
#define GARBAGE_INTERVAL_MS (10 * 60 * 1000)
#define MAX_DEFER_TIMES 64

struct wd_outbound_sender {
	struct wd_outbound *ob;
	pthread_t thread;
	int stop_fd;
	int wake_fd;
	atomic_bool stopping;
	SSL_CTX *tls;
	struct wd_smtp_options smtp;

	int64_t defer_times[MAX_DEFER_TIMES];
	size_t defer_count;
	int64_t settings_due_ms;
	int64_t garbage_due_ms;
	bool db_trouble; /* log the first database error of a streak only */
};

static void signal_fd(int fd)
{
	uint64_t one = 1;
	ssize_t n = write(fd, &one, sizeof(one));
	(void)n;
}

static void drain_fd(int fd)
{
	uint64_t value;
	ssize_t n = read(fd, &value, sizeof(value));
	(void)n;
}

static bool stopping(struct wd_outbound_sender *s)
{
	return atomic_load(&s->stopping);
}

static void db_error(struct wd_outbound_sender *s, const char *what, char *error)
{
	if (!s->db_trouble)
		wd_error(LOG, "%s: %s (retrying every poll)", what, error);
	s->db_trouble = true;
	free(error);
}

static const char *relay_name(const struct wd_outbound *ob, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%u", ob->set.relay_host, ob->set.relay_port);
	return buf;
}

/* ---- the outcome of one attempt ---- */

static void finish_done(struct wd_outbound_sender *s, const struct wd_queue_entry *e)
{
	char *error = NULL;
	if (wd__queue_done(s->ob, e, &error) < 0)
		db_error(s, "removing a finished queue entry", error);
}

static void drop(struct wd_outbound_sender *s, const struct wd_queue_entry *e,
		 const struct wd_queued_message *m, const char *why, const struct wd_smtp_result *r)
{
	char relay[300];
	wd_warning(LOG, "%s.%s DROPPED[%s] from=<%s> to=<%s> relay=%s message-id=%s %s at %s: %s",
		   e->id, e->seq, why, m != NULL ? m->from : "?", e->recipient,
		   relay_name(s->ob, relay, sizeof(relay)),
		   m != NULL && m->message_id != NULL ? m->message_id : "-",
		   r->code != 0 ? "rejected" : "failed", r->stage, r->text);
	atomic_fetch_add(&s->ob->stat_dropped, 1);
	finish_done(s, e);
}

static void defer(struct wd_outbound_sender *s, const struct wd_queue_entry *e,
		  const struct wd_queued_message *m, const struct wd_smtp_result *r)
{
	if (e->deferred_count < 0 || (size_t)e->deferred_count >= s->defer_count) {
		drop(s, e, m, "out of retries", r);
		return;
	}
	int64_t ttl = s->defer_times[e->deferred_count];
	char response[600];
	snprintf(response, sizeof(response), "%s: %s", r->stage, r->text);
	bool matched = false;
	char *error = NULL;
	if (wd__queue_defer(s->ob, e, ttl, response, &matched, &error) < 0) {
		db_error(s, "deferring a queue entry", error);
		return;
	}
	char relay[300];
	if (!matched) {
		wd_warning(LOG, "%s.%s lock lost before the deferral (taken by another sender)",
			   e->id, e->seq);
		return;
	}
	atomic_fetch_add(&s->ob->stat_deferred, 1);
	wd_info(LOG, "%s.%s DEFERRED[%lld] from=<%s> to=<%s> relay=%s next in %llds: %s",
		e->id, e->seq, (long long)e->deferred_count + 1, m != NULL ? m->from : "?",
		e->recipient, relay_name(s->ob, relay, sizeof(relay)), (long long)(ttl / 1000),
		response);
}

static void give_back(struct wd_outbound_sender *s, const struct wd_queue_entry *e)
{
	char *error = NULL;
	if (wd__queue_unlock(s->ob, e, &error) < 0)
		db_error(s, "unlocking a queue entry", error);
}

static void outcome(struct wd_outbound_sender *s, const struct wd_queue_entry *e,
		    const struct wd_queued_message *m, const struct wd_smtp_result *r)
{
	char relay[300];
	switch (r->status) {
	case WD_SMTP_OK:
		atomic_fetch_add(&s->ob->stat_delivered, 1);
		wd_info(LOG, "%s.%s ACCEPTED from=<%s> to=<%s> relay=%s message-id=%s: %s", e->id,
			e->seq, m->from, e->recipient, relay_name(s->ob, relay, sizeof(relay)),
			m->message_id != NULL ? m->message_id : "-", r->text);
		finish_done(s, e);
		break;
	case WD_SMTP_TEMPORARY:
		defer(s, e, m, r);
		break;
	case WD_SMTP_PERMANENT:
		drop(s, e, m, "permanent", r);
		break;
	case WD_SMTP_ABORTED:
		give_back(s, e);
		break;
	}
}

/* ---- one entry ---- */

/* What one batch knows beyond the entry at hand. */
struct batch {
	struct wd_smtp_client *client;
	unsigned on_connection;
	/* the relay could not be reached (or refused us) in this batch: the
	   other entries due now are deferred with the same result rather than
	   each costing another connection attempt */
	bool relay_failed;
	struct wd_smtp_result relay_result;
};

/* Returns false when the batch should end (database trouble, stop). */
static bool deliver(struct wd_outbound_sender *s, const struct wd_queue_entry *e, struct batch *b)
{
	struct wd_outbound *ob = s->ob;
	struct wd_queued_message m;
	char *error = NULL;
	switch (wd__queue_message_load(ob, e->id, &m, &error)) {
	case WD_QUEUE_LOADED:
		break;
	case WD_QUEUE_MISSING:
		wd_info(LOG, "%s.%s DELETED: the message file is gone", e->id, e->seq);
		if (wd__queue_forget_message(ob, e->id, &error) < 0)
			db_error(s, "removing the entries of a deleted message", error);
		return true;
	case WD_QUEUE_MALFORMED: {
		struct wd_smtp_result r = { .status = WD_SMTP_PERMANENT, .stage = "queue" };
		snprintf(r.text, sizeof(r.text), "unusable queued message: %s", error);
		free(error);
		drop(s, e, NULL, "malformed", &r);
		return true;
	}
	case WD_QUEUE_TROUBLE:
		db_error(s, "loading a queued message", error);
		give_back(s, e);
		return false;
	}
	if (b->relay_failed) {
		outcome(s, e, &m, &b->relay_result);
		wd__queue_message_clear(&m);
		return true;
	}
	int64_t deadline = wd__outbound_monotonic_ms() + ob->set.lock_ms * 3 / 4;
	struct wd_smtp_result r;
	if (b->client != NULL && !wd_smtp_usable(b->client))
		wd_smtp_close(&b->client);
	if (b->client == NULL) {
		b->client = wd_smtp_connect(&s->smtp, deadline, &r);
		b->on_connection = 0;
		if (b->client == NULL) {
			outcome(s, e, &m, &r);
			wd__queue_message_clear(&m);
			b->relay_failed = r.status == WD_SMTP_TEMPORARY;
			b->relay_result = r;
			return r.status != WD_SMTP_ABORTED;
		}
	}
	struct wd_queue_reader reader;
	if (wd__queue_reader_open(ob, &m, &reader, &error) < 0) {
		db_error(s, "reading a queued message", error);
		give_back(s, e);
		wd__queue_message_clear(&m);
		return false;
	}
	struct wd_smtp_message msg = {
		.from = m.from, .to = e->recipient, .size = m.header.len + m.body_len,
		.utf8_headers = m.utf8_headers, .read = wd__queue_reader_read, .context = &reader,
	};
	wd_smtp_send(b->client, &msg, deadline, &r);
	wd__queue_reader_close(&reader);
	s->db_trouble = false;
	outcome(s, e, &m, &r);
	wd__queue_message_clear(&m);
	if (++b->on_connection >= ob->set.max_per_connection)
		wd_smtp_quit(&b->client);
	return r.status != WD_SMTP_ABORTED;
}

/* Everything due now. */
static void run_batch(struct wd_outbound_sender *s)
{
	struct batch b = { .client = NULL };
	while (!stopping(s)) {
		struct wd_queue_entry e;
		bool found;
		char *error = NULL;
		if (wd__queue_claim(s->ob, &e, &found, &error) < 0) {
			db_error(s, "claiming a queue entry", error);
			break;
		}
		if (!found)
			break;
		s->db_trouble = false;
		atomic_fetch_add(&s->ob->stat_attempts, 1);
		bool go_on = deliver(s, &e, &b);
		wd__queue_entry_clear(&e);
		if (!go_on)
			break;
	}
	wd_smtp_quit(&b.client);
}

static void housekeeping(struct wd_outbound_sender *s)
{
	int64_t now = wd__outbound_monotonic_ms();
	if (now >= s->settings_due_ms) {
		s->defer_count = wd__queue_defer_times(s->ob, s->defer_times, MAX_DEFER_TIMES);
		s->settings_due_ms = now + SETTINGS_REFRESH_MS;
	}
	if (now >= s->garbage_due_ms) {
		char *error = NULL;
		if (wd__queue_collect_garbage(s->ob, &error) < 0)
			db_error(s, "queue garbage collection", error);
		s->garbage_due_ms = now + GARBAGE_INTERVAL_MS;
	}
}

static void sleep_interval(struct wd_outbound_sender *s)
{
	struct pollfd p[2] = { { .fd = s->stop_fd, .events = POLLIN },
			       { .fd = s->wake_fd, .events = POLLIN } };
	int64_t ms = s->ob->set.poll_interval_ms;
	if (poll(p, 2, ms > 1000000 ? 1000000 : (int)ms) > 0 && (p[1].revents & POLLIN))
		drain_fd(s->wake_fd);
}

static void *sender_main(void *arg)
{
	struct wd_outbound_sender *s = arg;
	wd__outbound_ensure_indexes(s->ob);
	while (!stopping(s)) {
		housekeeping(s);
		run_batch(s);
		if (!stopping(s))
			sleep_interval(s);
	}
	ERR_clear_error();
	return NULL;
}

/* ---- start / stop ---- */

static SSL_CTX *client_tls(const struct wd_outbound_settings *set, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = wd__outbound_error("TLS context: %s",
					      ERR_error_string(ERR_get_error(), NULL));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (set->tls_reject_unauthorized) {
		int ok = set->tls_ca != NULL ? SSL_CTX_load_verify_locations(ctx, set->tls_ca, NULL)
					     : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			*error_r = wd__outbound_error("sender.relay.tls.ca %s: %s",
						      set->tls_ca != NULL ? set->tls_ca : "(system)",
						      ERR_error_string(ERR_get_error(), NULL));
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	return ctx;
}

static void sender_free(struct wd_outbound_sender *s)
{
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	SSL_CTX_free(s->tls);
	free(s);
}

int wd_outbound_sender_start(struct wd_outbound *ob, char **error_r)
{
	const struct wd_outbound_settings *set = &ob->set;
	struct wd_outbound_sender *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*error_r = strdup("out of memory");
		return WD_ERROR;
	}
	s->ob = ob;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0 || s->wake_fd < 0) {
		*error_r = wd__outbound_error("eventfd: %s", strerror(errno));
		sender_free(s);
		return WD_ERROR;
	}
	if (set->relay_secure || set->relay_starttls) {
		s->tls = client_tls(set, error_r);
		if (s->tls == NULL) {
			sender_free(s);
			return WD_ERROR;
		}
	}
	s->smtp = (struct wd_smtp_options){
		.host = set->relay_host, .port = set->relay_port, .secure = set->relay_secure,
		.starttls = set->relay_starttls, .user = set->relay_user, .pass = set->relay_pass,
		.insecure_auth = set->relay_insecure_auth, .tls = s->tls,
		.verify = set->tls_reject_unauthorized, .helo = set->hostname,
		.connect_timeout_ms = set->connect_timeout_ms, .timeout_ms = set->timeout_ms,
		.data_timeout_ms = set->data_timeout_ms, .abort_fd = s->stop_fd,
	};
	pthread_mutex_lock(&ob->sender_lock);
	if (ob->sender != NULL) {
		pthread_mutex_unlock(&ob->sender_lock);
		sender_free(s);
		*error_r = strdup("the sender is already running");
		return WD_ERROR;
	}
	int err = pthread_create(&s->thread, NULL, sender_main, s);
	if (err != 0) {
		pthread_mutex_unlock(&ob->sender_lock);
		sender_free(s);
		*error_r = wd__outbound_error("sender thread: %s", strerror(err));
		return WD_ERROR;
	}
	ob->sender = s;
	pthread_mutex_unlock(&ob->sender_lock);
	wd_info(LOG, "sender thread started: relay %s:%u, zone %s, instance %s", set->relay_host,
		set->relay_port, set->zone, set->instance_id);
	return WD_OK;
}

void wd_outbound_sender_stop(struct wd_outbound *ob)
{
	pthread_mutex_lock(&ob->sender_lock);
	struct wd_outbound_sender *s = ob->sender;
	ob->sender = NULL;
	pthread_mutex_unlock(&ob->sender_lock);
	if (s == NULL)
		return;
	atomic_store(&s->stopping, true);
	signal_fd(s->stop_fd);
	pthread_join(s->thread, NULL);
	sender_free(s);
	wd_info(LOG, "sender stopped");
}

bool wd_outbound_sender_running(const struct wd_outbound *ob)
{
	struct wd_outbound *mutable = (struct wd_outbound *)ob;
	pthread_mutex_lock(&mutable->sender_lock);
	bool running = ob->sender != NULL;
	pthread_mutex_unlock(&mutable->sender_lock);
	return running;
}

void wd_outbound_sender_wake(struct wd_outbound *ob)
{
	pthread_mutex_lock(&ob->sender_lock);
	if (ob->sender != NULL)
		signal_fd(ob->sender->wake_fd);
	pthread_mutex_unlock(&ob->sender_lock);
}
