/* mode-idle.c — the idle mode: open N authenticated connections that sit in
 * IDLE, ramped at --rate per second, hold them for --hold seconds, and report
 * what they cost the server: VmRSS / VmHWM of --server-pid before the ramp,
 * after it and after the hold, and the RSS growth per connection.
 *
 * Each connection: connect (optionally from one of --source-ips), greeting,
 * LOGIN / AUTHENTICATE PLAIN, SELECT, IDLE; established at the "+". Setup
 * latency (connect to "+") is reported like an operation ("idle-setup").
 *
 * Design:
 *   - Before starting, RLIMIT_NOFILE is raised to the hard limit, and the
 *     target is checked against it and against the ephemeral ports (per
 *     source address): when N cannot be reached the run says so up front
 *     and goes on with what it can get.
 *   - A 10 ms ramp timer opens as many connections as the rate allows so far;
 *     connections that fail (timeout, refused, NO) are counted and not
 *     retried, so the final line says exactly how many were held.
 *   - Server untagged output while idling (EXISTS...) is read and dropped;
 *     the operation timeout is disarmed once a connection idles.
 *   - The hold ends after --hold seconds or at SIGUSR1, whichever comes
 *     first: a driver (bench/imap-idle-memory.py) that samples the server
 *     itself holds with a long --hold and signals when it has its figures.
 *     While holding, a line every 5 s says how many connections still idle.
 *   - At the end every connection is closed (no DONE/LOGOUT: the server sees
 *     N disconnects, which is what a crash of many clients looks like too). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "wd-load.h"

enum istate { I_CONNECT, I_LOGIN, I_SELECT, I_IDLE_SENT, I_IDLING, I_CLOSED };

struct iconn {
	struct wl_imap *im;
	int index;
	enum istate state;
	double t0;
};

static struct {
	struct iconn *c;
	int target, opened, established, failed, open_now;
	struct wl_stats *stats;
	struct wl_stat *st_setup, *st_fail;
	uv_timer_t ramp, hold, report;
	uv_signal_t stop;
	double t_start, t_ramped;
	bool ramp_done, closing;
	long rss0, hwm0, rss1, hwm1, rss2, hwm2;
	char first_error[192];
} I;

static void fail(struct iconn *c, const char *why)
{
	if (I.first_error[0] == '\0')
		snprintf(I.first_error, sizeof(I.first_error), "%s", why);
	wl_imap_close(c->im, why);
}

static void on_close(struct wl_imap *im, void *ctx, const char *reason)
{
	(void)im;
	struct iconn *c = ctx;
	I.open_now--;
	if (c->state != I_IDLING && !I.closing) {
		I.failed++;
		if (strcmp(reason, "timeout") == 0)
			I.st_setup->timeouts++;
		else
			I.st_setup->errors++;
		if (I.first_error[0] == '\0')
			snprintf(I.first_error, sizeof(I.first_error), "%s", reason);
	} else if (c->state == I_IDLING && !I.closing) {
		I.established--;
		I.st_fail->errors++; /* dropped while idling */
	}
	c->state = I_CLOSED;
	c->im = NULL;
}

static void idle_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)r;
	fail(ctx, "IDLE ended by the server");
	(void)im;
}

static void on_continue(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)r;
	struct iconn *c = ctx;
	if (c->state != I_IDLE_SENT)
		return;
	c->state = I_IDLING;
	wl_imap_timeout(im, 0);
	I.established++;
	wl_stat_record(I.st_setup, (uint64_t)((wl_now_s() - c->t0) * 1e6));
}

static void select_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	struct iconn *c = ctx;
	if (!wl_imap_ok(r)) {
		I.st_setup->no++;
		fail(c, "SELECT refused");
		return;
	}
	c->state = I_IDLE_SENT;
	if (wl_imap_command(im, idle_done, "IDLE") < 0)
		fail(c, "cannot send IDLE");
}

static void login_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	struct iconn *c = ctx;
	if (!wl_imap_ok(r)) {
		I.st_setup->no++;
		char why[160];
		snprintf(why, sizeof(why), "login refused: %.100s", r->head);
		fail(c, why);
		return;
	}
	c->state = I_SELECT;
	if (wl_imap_command(im, select_done, "SELECT \"%s\"", wl_opt.mailbox) < 0)
		fail(c, "cannot send SELECT");
}

static void on_ready(struct wl_imap *im, void *ctx, bool ok)
{
	struct iconn *c = ctx;
	char user[128];
	if (!ok) {
		fail(c, "bad greeting");
		return;
	}
	c->state = I_LOGIN;
	if (wl_imap_login(im, wl_user_name(c->index, user, sizeof(user)), wl_opt.password,
			  login_done) < 0)
		fail(c, "cannot send LOGIN");
}

static const struct wl_imap_events idle_events = {
	.on_ready = on_ready, .on_continue = on_continue, .on_close = on_close,
};

static void memory(long *rss, long *hwm)
{
	*rss = *hwm = -1;
	if (wl_opt.server_pid > 0)
		wl_proc_memory(wl_opt.server_pid, rss, hwm);
}

static void close_all(void)
{
	I.closing = true;
	for (int i = 0; i < I.target; i++)
		if (I.c[i].im != NULL)
			wl_imap_close(I.c[i].im, "done");
	uv_close((uv_handle_t *)&I.ramp, NULL);
	uv_close((uv_handle_t *)&I.hold, NULL);
	uv_close((uv_handle_t *)&I.report, NULL);
	uv_close((uv_handle_t *)&I.stop, NULL);
}

static void end_hold(void)
{
	if (I.closing)
		return;
	memory(&I.rss2, &I.hwm2);
	fprintf(stderr, "  hold ended: %d idling, %d dropped\n", I.established,
		(int)I.st_fail->errors);
	close_all();
}

static void hold_cb(uv_timer_t *t)
{
	(void)t;
	end_hold();
}

static void stop_cb(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	if (!I.ramp_done) /* not holding yet: counted as the ramp's end */
		I.t_ramped = wl_now_s();
	end_hold();
}

static void report_cb(uv_timer_t *t)
{
	(void)t;
	fprintf(stderr, "  holding: %d idling, %d dropped\n", I.established,
		(int)I.st_fail->errors);
}

static void ramp_cb(uv_timer_t *t)
{
	(void)t;
	double now = wl_now_s();
	if (I.opened < I.target) {
		long due = (long)((now - I.t_start) * wl_opt.rate) + 1;
		if (due > I.target)
			due = I.target;
		while (I.opened < due) {
			struct iconn *c = &I.c[I.opened];
			c->index = I.opened++;
			c->t0 = wl_now_s();
			c->state = I_CONNECT;
			c->im = wl_imap_open(wl_opt.host, wl_opt.port, wl_opt.tls, &idle_events, c);
			if (c->im == NULL) {
				I.failed++;
				c->state = I_CLOSED;
				continue;
			}
			I.open_now++;
		}
	}
	static double last_report;
	if (now - last_report >= 2) {
		last_report = now;
		fprintf(stderr, "  %.0f s: opened %d, idling %d, failed %d\n", now - I.t_start,
			I.opened, I.established, I.failed);
	}
	if (!I.ramp_done && I.opened == I.target && I.established + I.failed >= I.target) {
		I.ramp_done = true;
		I.t_ramped = now;
		uv_timer_stop(&I.ramp);
		/* let the server settle a moment before reading its memory */
		uv_timer_start(&I.hold, hold_cb, (uint64_t)(wl_opt.hold * 1000), 0);
		uv_timer_start(&I.report, report_cb, 5000, 5000);
		memory(&I.rss1, &I.hwm1);
		fprintf(stderr, "  ramp done in %.1f s: %d idling, %d failed; holding %.0f s\n",
			now - I.t_start, I.established, I.failed, wl_opt.hold);
	}
}

static void print_kb(const char *what, long rss, long hwm)
{
	if (rss < 0)
		printf("  %-22s unknown\n", what);
	else
		printf("  %-22s VmRSS %8ld KiB   VmHWM %8ld KiB\n", what, rss, hwm);
}

int wl_mode_idle(void)
{
	I.target = wl_opt.clients;
	I.c = calloc((size_t)I.target, sizeof(*I.c));
	I.stats = wl_stats_new();
	if (I.c == NULL || I.stats == NULL)
		return 1;
	I.st_setup = wl_stats_op(I.stats, "idle-setup");
	I.st_fail = wl_stats_op(I.stats, "dropped");
	I.st_fail->setup = true;

	long nofile = wl_raise_nofile();
	long ports = wl_ephemeral_ports();
	long sources = wl_source_count() > 0 ? (long)wl_source_count() : 1;
	printf("wd-load idle: %d connections to %s:%d%s at %.0f/s, hold %.0f s\n", I.target,
	       wl_opt.host, wl_opt.port, wl_opt.tls ? " (TLS)" : "", wl_opt.rate, wl_opt.hold);
	printf("  client limits: RLIMIT_NOFILE %ld, ephemeral ports %ld x %ld source address%s\n",
	       nofile, ports, sources, sources > 1 ? "es" : "");
	if (nofile > 0 && I.target + 32 > nofile)
		printf("  WARNING: the open-file limit allows about %ld connections, not %d\n",
		       nofile - 32, I.target);
	if (ports > 0 && I.target > ports * sources)
		printf("  WARNING: %ld ephemeral ports x %ld source addresses cannot reach %d "
		       "connections to one server port; use --source-ips\n",
		       ports, sources, I.target);
	if (wl_opt.server_pid == 0)
		printf("  (no --server-pid: server memory not measured)\n");
	fflush(stdout);

	memory(&I.rss0, &I.hwm0);
	I.t_start = wl_now_s();
	uv_timer_init(wl_loop, &I.ramp);
	uv_timer_init(wl_loop, &I.hold);
	uv_timer_init(wl_loop, &I.report);
	uv_signal_init(wl_loop, &I.stop);
	uv_signal_start(&I.stop, stop_cb, SIGUSR1);
	uv_timer_start(&I.ramp, ramp_cb, 0, 10);
	uv_run(wl_loop, UV_RUN_DEFAULT);

	char title[96];
	snprintf(title, sizeof(title), "idle, %d connections", I.target);
	wl_stats_print(I.stats, title, I.t_ramped - I.t_start);
	printf("held %d of %d connections (%d failed%s%s)\n", I.established, I.target, I.failed,
	       I.first_error[0] ? ", first error: " : "", I.first_error);
	printf("server memory (pid %d):\n", wl_opt.server_pid);
	print_kb("before", I.rss0, I.hwm0);
	print_kb("after ramp", I.rss1, I.hwm1);
	print_kb("after hold", I.rss2, I.hwm2);
	double per_conn = -1;
	if (I.rss0 >= 0 && I.rss2 >= 0 && I.established > 0) {
		per_conn = (double)(I.rss2 - I.rss0) * 1024.0 / I.established;
		printf("  RSS growth per idling connection: %.0f bytes (%.1f KiB)\n", per_conn,
		       per_conn / 1024.0);
	}
	if (I.established < I.target)
		printf("target NOT reached: %d of %d connections\n", I.established, I.target);
	char extra[512];
	snprintf(extra, sizeof(extra),
		 "\"mode\":\"idle\",\"target\":%d,\"held\":%d,\"failed\":%d,\"ramp_s\":%.3f,"
		 "\"rss_kb_before\":%ld,\"hwm_kb_before\":%ld,\"rss_kb_ramp\":%ld,\"hwm_kb_ramp\":%ld,"
		 "\"rss_kb_after\":%ld,\"hwm_kb_after\":%ld,\"bytes_per_conn\":%.0f",
		 I.target, I.established, I.failed, I.t_ramped - I.t_start, I.rss0, I.hwm0, I.rss1,
		 I.hwm1, I.rss2, I.hwm2, per_conn);
	wl_json_write(I.stats, title, I.t_ramped - I.t_start, extra);
	int rc = I.established == I.target ? 0 : 1;
	free(I.c);
	wl_stats_free(I.stats);
	return rc;
}
