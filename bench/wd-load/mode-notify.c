/* mode-notify.c — the notify mode: how long a change made through one
 * server takes to reach an IDLE client of another server (or of the same).
 *
 * Client B logs in on --host-b/--port-b as the notify user (--user, else the
 * first user of --user-prefix), SELECTs INBOX and IDLEs. Client A logs in on
 * --host-a/--port-a as the same user and, --count times, APPENDs a message of
 * --message-size bytes to INBOX. Each round measures, at the moment B reads
 * "* n EXISTS" for the new message:
 *   from-send    time since A started writing its APPEND
 *   from-ok      time since A read the APPEND's tagged OK (0 when B saw the
 *                EXISTS first; those rounds are counted as "exists-first")
 * A round that B does not see within --timeout counts as a timeout. Rounds are
 * 50 ms apart so that each starts from a quiet state.
 *
 * --background-clients N runs the imap mode's mix against server A at the
 * same time, as users 2..N+1 of --user-prefix (never the notify user, whose
 * EXISTS updates would be ambiguous); its table is printed as well. The
 * rounds start once every background client has logged in and selected (or
 * failed), so that they measure under the mix, not under the logins.
 *
 * --events-port P --events-user HEX subscribes to wd_events on the Redis at
 * 127.0.0.1:P (a plain RESP SUBSCRIBE on the loop) and adds from-publish:
 * the time from the wd_events message naming the notify user (its id, from
 * `wdctl user list`) to B's EXISTS. That is the cross-instance path alone
 * (Redis, B's wake, B's read of the change, B's write), whatever A does
 * after publishing: under load A's OK often comes after B's EXISTS, so
 * from-ok is 0 for those rounds and says little. A round whose message was
 * not seen is counted under publish-unseen.
 *
 * Design: both clients are wl_imap sessions on the one loop; timestamps come
 * from the same monotonic clock, taken in the read callbacks, so the figures
 * include this process's loop latency (small unless the background load
 * saturates it). */
#include <stdlib.h>
#include <string.h>

#include "wd-load.h"

static struct {
	struct wl_imap *a, *b;
	bool a_ready, b_idling, done;
	long round;
	double t_send, t_ok, t_seen;
	bool waiting;
	uint32_t expect;
	char *msg;
	size_t msg_len;
	struct wl_stats *stats, *bg_stats;
	struct wl_stat *st_send, *st_ok, *st_append, *st_first, *st_pub, *st_pub_unseen;
	double t_pub;
	struct wl_imap_run *bg;
	uv_timer_t gap, round_timer;
	double t_start;
	char error[160];
} N;

static void start_round(void);

/* The wd_events subscriber (--events-port). */
static struct {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	bool open, subscribed;
	char pattern[48]; /* "e":"<hex>", as wd-server and WildDuck publish it */
	size_t pattern_len;
	char buf[8192];
	size_t len;
} E;

static void finish(const char *error)
{
	if (N.done)
		return;
	N.done = true;
	if (error != NULL && N.error[0] == '\0')
		snprintf(N.error, sizeof(N.error), "%s", error);
	if (N.a != NULL)
		wl_imap_close(N.a, "done");
	if (N.b != NULL)
		wl_imap_close(N.b, "done");
	if (E.open) {
		E.open = false;
		uv_close((uv_handle_t *)&E.tcp, NULL);
	}
	if (N.bg != NULL)
		wl_imap_run_stop(N.bg);
	uv_close((uv_handle_t *)&N.gap, NULL);
	uv_close((uv_handle_t *)&N.round_timer, NULL);
}

static void gap_cb(uv_timer_t *t)
{
	(void)t;
	start_round();
}

static void round_over(void)
{
	uv_timer_stop(&N.round_timer);
	N.waiting = false;
	if (N.round >= wl_opt.count) {
		finish(NULL);
		return;
	}
	uv_timer_start(&N.gap, gap_cb, 50, 0);
}

static void maybe_complete(void)
{
	if (!N.waiting || N.t_ok == 0 || N.t_seen == 0)
		return;
	wl_stat_record(N.st_send, (uint64_t)((N.t_seen - N.t_send) * 1e6));
	double d = N.t_seen - N.t_ok;
	if (d < 0) {
		d = 0;
		N.st_first->count++;
	}
	wl_stat_record(N.st_ok, (uint64_t)(d * 1e6));
	if (wl_opt.events_port > 0) {
		if (N.t_pub > 0)
			wl_stat_record(N.st_pub, (uint64_t)((N.t_seen > N.t_pub ? N.t_seen - N.t_pub : 0) * 1e6));
		else
			N.st_pub_unseen->count++;
	}
	round_over();
}

static void round_timeout(uv_timer_t *t)
{
	(void)t;
	if (!N.waiting)
		return;
	N.st_send->timeouts++;
	N.st_ok->timeouts++;
	if (wl_opt.verbose)
		fprintf(stderr, "round %ld: B saw no EXISTS\n", N.round);
	/* the mailbox size B knows is what counts for the next round */
	round_over();
}

static void append_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)im;
	(void)ctx;
	if (!wl_imap_ok(r)) {
		if (strcmp(r->word, "NO") == 0)
			N.st_append->no++;
		else
			N.st_append->bad++;
		round_over();
		return;
	}
	N.t_ok = wl_now_s();
	wl_stat_record(N.st_append, (uint64_t)((N.t_ok - N.t_send) * 1e6));
	maybe_complete();
}

static void start_round(void)
{
	if (N.done || !N.a_ready || !N.b_idling || N.waiting)
		return;
	if ((N.bg != NULL && wl_imap_run_pending(N.bg) > 0) ||
	    (wl_opt.events_port > 0 && E.open && !E.subscribed)) {
		/* background still logging in, or not yet subscribed */
		uv_timer_start(&N.gap, gap_cb, 100, 0);
		return;
	}
	N.round++;
	N.waiting = true;
	N.t_ok = N.t_seen = N.t_pub = 0;
	N.expect = wl_imap_exists(N.b) + 1;
	N.t_send = wl_now_s();
	uv_timer_start(&N.round_timer, round_timeout, (uint64_t)(wl_opt.timeout * 1000), 0);
	if (wl_imap_command(N.a, append_done, "APPEND INBOX {%zu}", N.msg_len) < 0)
		finish("cannot send APPEND");
}

static void events_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = E.buf + E.len;
	buf->len = sizeof(E.buf) - E.len;
}

/* Each occurrence of the user's pattern is one message for that user. */
static void events_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	(void)stream;
	(void)buf;
	if (nread < 0) {
		if (E.open) {
			E.open = false;
			uv_close((uv_handle_t *)&E.tcp, NULL);
		}
		if (!N.done)
			finish("the wd_events subscription closed");
		return;
	}
	E.len += (size_t)nread;
	if (!E.subscribed && memmem(E.buf, E.len, "subscribe", 9) != NULL)
		E.subscribed = true;
	size_t scan = 0;
	const char *hit;
	while ((hit = memmem(E.buf + scan, E.len - scan, E.pattern, E.pattern_len)) != NULL) {
		if (N.waiting && N.t_pub == 0)
			N.t_pub = wl_now_s();
		scan = (size_t)(hit - E.buf) + E.pattern_len;
	}
	/* keep what could be the start of a pattern cut by the read */
	size_t keep = E.len >= E.pattern_len ? E.len - (E.pattern_len - 1) : 0;
	if (keep < scan)
		keep = scan;
	memmove(E.buf, E.buf + keep, E.len - keep);
	E.len -= keep;
	if (E.subscribed)
		start_round();
}

static void events_connected(uv_connect_t *req, int status)
{
	(void)req;
	static char cmd[] = "SUBSCRIBE wd_events\r\n";
	uv_buf_t buf = uv_buf_init(cmd, sizeof(cmd) - 1);
	if (status < 0 || uv_write(&E.write, (uv_stream_t *)&E.tcp, &buf, 1, NULL) < 0 ||
	    uv_read_start((uv_stream_t *)&E.tcp, events_alloc, events_read) < 0)
		finish("cannot subscribe to wd_events (--events-port)");
}

static int events_start(void)
{
	struct sockaddr_in addr;
	if (wl_opt.events_user == NULL || strlen(wl_opt.events_user) != 24) {
		fprintf(stderr, "wd-load: --events-port needs --events-user (24 hex digits)\n");
		return -1;
	}
	E.pattern_len = (size_t)snprintf(E.pattern, sizeof(E.pattern), "\"e\":\"%s\"",
					 wl_opt.events_user);
	uv_ip4_addr("127.0.0.1", wl_opt.events_port, &addr);
	uv_tcp_init(wl_loop, &E.tcp);
	E.open = true;
	if (uv_tcp_connect(&E.connect, &E.tcp, (const struct sockaddr *)&addr,
			   events_connected) < 0) {
		finish("cannot connect to Redis (--events-port)");
		return -1;
	}
	return 0;
}

static void a_continue(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)ctx;
	(void)r;
	wl_imap_send_raw(im, N.msg, N.msg_len);
	wl_imap_send_raw(im, "\r\n", 2);
}

static void b_untagged(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)im;
	(void)ctx;
	if (N.waiting && N.t_seen == 0 && r->has_number && strcmp(r->word, "EXISTS") == 0 &&
	    r->number >= N.expect) {
		N.t_seen = wl_now_s();
		maybe_complete();
	}
}

static void b_continue(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)ctx;
	(void)r;
	if (N.b_idling)
		return;
	N.b_idling = true;
	wl_imap_timeout(im, 0);
	start_round();
}

static void b_idle_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)im;
	(void)ctx;
	(void)r;
	finish("the server ended B's IDLE");
}

static void b_select_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)ctx;
	if (!wl_imap_ok(r)) {
		finish("B: SELECT refused");
		return;
	}
	if (wl_imap_command(im, b_idle_done, "IDLE") < 0)
		finish("B: cannot send IDLE");
}

static void a_login_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)im;
	(void)ctx;
	if (!wl_imap_ok(r)) {
		finish("A: login refused");
		return;
	}
	N.a_ready = true;
	start_round();
}

static void b_login_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)ctx;
	if (!wl_imap_ok(r)) {
		finish("B: login refused");
		return;
	}
	if (wl_imap_command(im, b_select_done, "SELECT INBOX") < 0)
		finish("B: cannot send SELECT");
}

static void on_ready(struct wl_imap *im, void *ctx, bool ok)
{
	char user[128];
	bool is_a = ctx == (void *)&N.a;
	if (!ok) {
		finish(is_a ? "A: bad greeting" : "B: bad greeting");
		return;
	}
	if (wl_imap_login(im, wl_user_name(0, user, sizeof(user)), wl_opt.password,
			  is_a ? a_login_done : b_login_done) < 0)
		finish("cannot send LOGIN");
}

static void on_close(struct wl_imap *im, void *ctx, const char *reason)
{
	(void)im;
	bool is_a = ctx == (void *)&N.a;
	if (is_a)
		N.a = NULL;
	else
		N.b = NULL;
	if (!N.done) {
		char why[160];
		snprintf(why, sizeof(why), "%s closed: %s", is_a ? "A" : "B", reason);
		finish(why);
	}
}

static const struct wl_imap_events a_events = {
	.on_ready = on_ready, .on_continue = a_continue, .on_close = on_close,
};
static const struct wl_imap_events b_events = {
	.on_ready = on_ready, .on_untagged = b_untagged, .on_continue = b_continue,
	.on_close = on_close,
};

int wl_mode_notify(void)
{
	const char *host_a = wl_opt.host_a != NULL ? wl_opt.host_a : wl_opt.host;
	const char *host_b = wl_opt.host_b != NULL ? wl_opt.host_b : host_a;
	int port_a = wl_opt.port_a > 0 ? wl_opt.port_a : (wl_opt.port > 0 ? wl_opt.port : 9993);
	int port_b = wl_opt.port_b > 0 ? wl_opt.port_b : port_a;
	if (wl_opt.count <= 0)
		wl_opt.count = 100;
	N.stats = wl_stats_new();
	N.msg = wl_message_make(wl_opt.message_size, wl_opt.from, "bench@bench.invalid", 7,
				&N.msg_len);
	if (N.stats == NULL || N.msg == NULL)
		return 1;
	wl_stats_hide_total(N.stats);
	N.st_send = wl_stats_op(N.stats, "from-send");
	N.st_ok = wl_stats_op(N.stats, "from-ok");
	N.st_append = wl_stats_op(N.stats, "append");
	N.st_first = wl_stats_op(N.stats, "exists-first");
	N.st_pub = wl_stats_op(N.stats, "from-publish");
	N.st_pub_unseen = wl_stats_op(N.stats, "publish-unseen");
	N.st_append->setup = N.st_first->setup = N.st_pub_unseen->setup = true;
	wl_raise_nofile();
	char user[128];
	printf("wd-load notify: APPEND on %s:%d, IDLE on %s:%d%s, user %s, %ld rounds, "
	       "%d background clients\n",
	       host_a, port_a, host_b, port_b, wl_opt.tls ? " (TLS)" : "",
	       wl_user_name(0, user, sizeof(user)), wl_opt.count, wl_opt.background_clients);
	fflush(stdout);
	uv_timer_init(wl_loop, &N.gap);
	uv_timer_init(wl_loop, &N.round_timer);
	N.t_start = wl_now_s();
	if (wl_opt.events_port > 0 && events_start() < 0)
		return 2;
	N.a = wl_imap_open(host_a, port_a, wl_opt.tls, &a_events, &N.a);
	N.b = wl_imap_open(host_b, port_b, wl_opt.tls, &b_events, &N.b);
	if (N.a == NULL || N.b == NULL)
		finish("cannot open connections");
	if (wl_opt.background_clients > 0) {
		N.bg_stats = wl_stats_new();
		if (N.bg_stats != NULL)
			N.bg = wl_imap_run_start(host_a, port_a, wl_opt.background_clients, 1,
						 N.bg_stats, N.t_start, N.t_start + 1e9);
	}
	uv_run(wl_loop, UV_RUN_DEFAULT);
	double secs = wl_now_s() - N.t_start;
	wl_stats_print(N.stats, "notify: B sees EXISTS (latency)", secs);
	printf("rounds: %ld of %ld; EXISTS before the APPEND's OK: %llu%s%s\n", N.round,
	       wl_opt.count, (unsigned long long)N.st_first->count,
	       N.error[0] ? "; stopped: " : "", N.error);
	if (N.bg != NULL) {
		wl_stats_print(N.bg_stats, "notify: background imap load on A", secs);
		wl_imap_run_free(N.bg);
	}
	char extra[256];
	snprintf(extra, sizeof(extra),
		 "\"mode\":\"notify\",\"rounds\":%ld,\"background_clients\":%d,\"error\":\"%s\"",
		 N.round, wl_opt.background_clients, N.error[0] ? "stopped early" : "");
	wl_json_write(N.stats, "notify", secs, extra);
	int rc = N.error[0] == '\0' && N.st_send->count == (uint64_t)wl_opt.count ? 0 : 1;
	wl_stats_free(N.bg_stats);
	wl_stats_free(N.stats);
	free(N.msg);
	return rc;
}
