/* mode-imap.c — the imap mode: N clients, each logs in, SELECTs a mailbox
 * and loops over a weighted mix of commands for the measured time.
 *
 * The mix (--mix "fetch-flags=40,...") names these operations:
 *   fetch-flags     FETCH a:b (UID FLAGS), a random range of up to 20
 *   fetch-envelope  FETCH a:b (UID ENVELOPE BODYSTRUCTURE INTERNALDATE
 *                   RFC822.SIZE), up to 10
 *   fetch-body      FETCH n (UID BODY.PEEK[]), one whole message
 *   fetch-partial   FETCH n (BODY.PEEK[]<0.2048>)
 *   store           STORE n +FLAGS / -FLAGS (\Flagged)
 *   search          SEARCH UNSEEN / FLAGGED / SUBJECT <word> / LARGER 10000
 *   append          APPEND <mailbox> (\Seen) {size} of --message-size bytes,
 *                   synchronising literal (waits for "+")
 *   expunge         STORE n +FLAGS.SILENT (\Deleted) then EXPUNGE, timed
 *                   together
 *   noop            NOOP
 *   idle            IDLE, "+", DONE, tagged OK (enter/leave cost)
 * Sequence numbers are drawn from the client's current EXISTS count (kept
 * up to date from untagged EXISTS / EXPUNGE); with an empty mailbox an
 * operation that needs a message becomes an append.
 *
 * Design:
 *   - Every client is a small state machine driven by the IMAP session's
 *     callbacks; nothing blocks and there is one command in flight per
 *     client (closed-loop load: N clients = N outstanding commands).
 *   - The imap mode opens its window (--warmup, then --duration) once all
 *     clients have logged in and selected (or failed): a SELECT of a big
 *     mailbox can take seconds, and login storms are not what the mix
 *     measures (login and select have rows of their own).
 *   - An operation is timed from the moment its first command is written
 *     to its final tagged reply. Operations that start before the warm-up
 *     ends are not recorded. NO / BAD / timeouts / lost connections are
 *     counted per operation.
 *   - When the time is up each client finishes its operation, sends LOGOUT
 *     and closes; a grace timer (--timeout) closes whatever is left.
 *   - The run is reusable: the notify mode starts one as background load
 *     (wl_imap_run_start) on its own stats. */
#include <stdlib.h>
#include <string.h>

#include "wd-load.h"

enum op {
	OP_FETCH_FLAGS, OP_FETCH_ENV, OP_FETCH_BODY, OP_FETCH_PARTIAL, OP_STORE, OP_SEARCH,
	OP_APPEND, OP_EXPUNGE, OP_NOOP, OP_IDLE, OP_N
};
static const char *const op_names[OP_N] = {
	"fetch-flags", "fetch-envelope", "fetch-body", "fetch-partial", "store", "search",
	"append", "expunge", "noop", "idle",
};

enum phase { PH_CONNECT, PH_LOGIN, PH_SELECT, PH_RUN, PH_LOGOUT, PH_DONE };

struct client {
	struct wl_imap_run *run;
	int index;
	struct wl_imap *im;
	enum phase phase;
	enum op op;
	int step;
	double t0;
	uint64_t bytes;
};

struct wl_imap_run {
	const char *host;
	int port;
	int n, user_offset;
	struct client *cl;
	struct wl_stats *stats;
	struct wl_stat *st[OP_N], *st_login, *st_select, *st_conn;
	unsigned weight[OP_N], total;
	double warmup_end, end;
	int active, ready;
	int pending;           /* clients not yet running the mix nor failed */
	bool from_ready;       /* the window starts when pending reaches 0 */
	bool stopping;
	char *msg;
	size_t msg_len;
	uv_timer_t timer;
	bool timer_closed;
};

static void next_op(struct client *c);

/* one client less to wait for; the last one opens the measured window */
static void settled(struct wl_imap_run *run)
{
	if (--run->pending > 0 || !run->from_ready)
		return;
	double now = wl_now_s();
	run->warmup_end = now + wl_opt.warmup;
	run->end = run->warmup_end + wl_opt.duration;
}

static bool measured(const struct client *c)
{
	return c->t0 >= c->run->warmup_end && c->t0 < c->run->end;
}

static void count_failure(struct wl_stat *st, const struct wl_imap_response *r)
{
	if (r != NULL && strcmp(r->word, "NO") == 0)
		st->no++;
	else if (r != NULL && strcmp(r->word, "BAD") == 0)
		st->bad++;
	else
		st->errors++;
}

static void op_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	struct client *c = ctx;
	(void)im;
	if (c->op == OP_EXPUNGE && c->step == 0 && wl_imap_ok(r)) {
		c->step = 1;
		wl_imap_command(c->im, op_done, "EXPUNGE");
		return;
	}
	struct wl_stat *st = c->run->st[c->op];
	if (measured(c)) {
		if (wl_imap_ok(r)) {
			wl_stat_record(st, (uint64_t)((wl_now_s() - c->t0) * 1e6));
			st->bytes += c->bytes;
		} else {
			count_failure(st, r);
		}
	}
	next_op(c);
}

static enum op pick(struct wl_imap_run *run)
{
	uint32_t r = wl_rand_range(0, run->total - 1);
	for (int i = 0; i < OP_N; i++) {
		if (r < run->weight[i])
			return (enum op)i;
		r -= run->weight[i];
	}
	return OP_NOOP;
}

static void logout_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)r;
	struct client *c = ctx;
	c->phase = PH_DONE;
	wl_imap_close(im, "logout");
}

static void next_op(struct client *c)
{
	struct wl_imap_run *run = c->run;
	double now = wl_now_s();
	if (run->stopping || now >= run->end) {
		c->phase = PH_LOGOUT;
		if (wl_imap_command(c->im, logout_done, "LOGOUT") < 0)
			wl_imap_close(c->im, "logout");
		return;
	}
	uint32_t exists = wl_imap_exists(c->im);
	c->op = pick(run);
	if (exists == 0 && c->op != OP_NOOP && c->op != OP_APPEND && c->op != OP_IDLE &&
	    c->op != OP_SEARCH)
		c->op = OP_APPEND;
	c->step = 0;
	c->bytes = 0;
	c->t0 = now;
	uint32_t a = exists > 0 ? wl_rand_range(1, exists) : 1;
	uint32_t b;
	int rc = 0;
	switch (c->op) {
	case OP_FETCH_FLAGS:
		b = a + wl_rand_range(0, 19);
		rc = wl_imap_command(c->im, op_done, "FETCH %u:%u (UID FLAGS)", a,
				     b > exists ? exists : b);
		break;
	case OP_FETCH_ENV:
		b = a + wl_rand_range(0, 9);
		rc = wl_imap_command(c->im, op_done,
				     "FETCH %u:%u (UID ENVELOPE BODYSTRUCTURE INTERNALDATE RFC822.SIZE)",
				     a, b > exists ? exists : b);
		break;
	case OP_FETCH_BODY:
		rc = wl_imap_command(c->im, op_done, "FETCH %u (UID BODY.PEEK[])", a);
		break;
	case OP_FETCH_PARTIAL:
		rc = wl_imap_command(c->im, op_done, "FETCH %u (UID BODY.PEEK[]<0.2048>)", a);
		break;
	case OP_STORE:
		rc = wl_imap_command(c->im, op_done, "STORE %u %cFLAGS (\\Flagged)", a,
				     wl_rand_range(0, 1) ? '+' : '-');
		break;
	case OP_SEARCH:
		switch (wl_rand_range(0, 3)) {
		case 0: rc = wl_imap_command(c->im, op_done, "SEARCH UNSEEN"); break;
		case 1: rc = wl_imap_command(c->im, op_done, "SEARCH FLAGGED"); break;
		case 2: rc = wl_imap_command(c->im, op_done, "SEARCH SUBJECT \"message %u\"", a); break;
		default: rc = wl_imap_command(c->im, op_done, "SEARCH LARGER 10000"); break;
		}
		break;
	case OP_APPEND:
		rc = wl_imap_command(c->im, op_done, "APPEND \"%s\" (\\Seen) {%zu}", wl_opt.mailbox,
				     run->msg_len);
		break;
	case OP_EXPUNGE:
		rc = wl_imap_command(c->im, op_done, "STORE %u +FLAGS.SILENT (\\Deleted)", a);
		break;
	case OP_NOOP:
		rc = wl_imap_command(c->im, op_done, "NOOP");
		break;
	case OP_IDLE:
		rc = wl_imap_command(c->im, op_done, "IDLE");
		break;
	case OP_N:
		break;
	}
	if (rc < 0)
		wl_imap_close(c->im, "cannot send command");
}

static void on_continue(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)r;
	struct client *c = ctx;
	if (c->phase != PH_RUN || c->step != 0)
		return;
	if (c->op == OP_APPEND) {
		c->step = 1;
		wl_imap_send_raw(im, c->run->msg, c->run->msg_len);
		wl_imap_send_raw(im, "\r\n", 2);
	} else if (c->op == OP_IDLE) {
		c->step = 1;
		wl_imap_send_raw(im, "DONE\r\n", 6);
	}
}

static void on_untagged(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	(void)im;
	struct client *c = ctx;
	c->bytes += r->literal_bytes;
}

static void select_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	struct client *c = ctx;
	if (!wl_imap_ok(r)) {
		count_failure(c->run->st_select, r);
		wl_imap_close(im, "SELECT failed");
		return;
	}
	wl_stat_record(c->run->st_select, (uint64_t)((wl_now_s() - c->t0) * 1e6));
	c->phase = PH_RUN;
	c->run->ready++;
	settled(c->run);
	next_op(c);
}

static void login_done(struct wl_imap *im, void *ctx, const struct wl_imap_response *r)
{
	struct client *c = ctx;
	if (!wl_imap_ok(r)) {
		count_failure(c->run->st_login, r);
		if (wl_opt.verbose)
			fprintf(stderr, "client %d: login failed: %s\n", c->index, r->head);
		wl_imap_close(im, "login failed");
		return;
	}
	double now = wl_now_s();
	wl_stat_record(c->run->st_login, (uint64_t)((now - c->t0) * 1e6));
	c->phase = PH_SELECT;
	c->t0 = now;
	if (wl_imap_command(im, select_done, "SELECT \"%s\"", wl_opt.mailbox) < 0)
		wl_imap_close(im, "cannot send SELECT");
}

static void on_ready(struct wl_imap *im, void *ctx, bool ok)
{
	struct client *c = ctx;
	if (!ok) {
		c->run->st_login->errors++;
		wl_imap_close(im, "bad greeting");
		return;
	}
	char user[128];
	c->phase = PH_LOGIN;
	c->t0 = wl_now_s();
	if (wl_imap_login(im, wl_user_name(c->index + c->run->user_offset, user, sizeof(user)),
			  wl_opt.password,
			  login_done) < 0)
		wl_imap_close(im, "cannot send LOGIN");
}

static void on_close(struct wl_imap *im, void *ctx, const char *reason)
{
	(void)im;
	struct client *c = ctx;
	struct wl_imap_run *run = c->run;
	c->im = NULL;
	run->active--;
	if (c->phase == PH_RUN && !run->stopping) {
		struct wl_stat *st = run->st[c->op];
		if (strcmp(reason, "timeout") == 0)
			st->timeouts++;
		else
			st->errors++;
		run->st_conn->errors++;
		if (wl_opt.verbose)
			fprintf(stderr, "client %d: closed during %s: %s\n", c->index,
				op_names[c->op], reason);
	} else if (c->phase < PH_RUN) {
		settled(run);
		if (strcmp(reason, "timeout") == 0)
			run->st_conn->timeouts++;
		else if (strcmp(reason, "login failed") != 0 && strcmp(reason, "SELECT failed") != 0)
			run->st_conn->errors++;
		if (wl_opt.verbose || c->index == 0)
			fprintf(stderr, "client %d: closed before the mix started: %s\n", c->index,
				reason);
	}
	c->phase = PH_DONE;
	if (run->active == 0 && !run->timer_closed) {
		run->timer_closed = true;
		uv_close((uv_handle_t *)&run->timer, NULL);
	}
}

static const struct wl_imap_events client_events = {
	.on_ready = on_ready,
	.on_untagged = on_untagged,
	.on_continue = on_continue,
	.on_close = on_close,
};

static void run_timer(uv_timer_t *t)
{
	struct wl_imap_run *run = t->data;
	double now = wl_now_s();
	if (now >= run->end && !run->stopping) {
		run->stopping = true;
		/* idle clients (none in a closed loop) would wait forever otherwise */
	}
	if (now >= run->end + wl_opt.timeout + 1) {
		for (int i = 0; i < run->n; i++)
			if (run->cl[i].im != NULL)
				wl_imap_close(run->cl[i].im, "grace time over");
	}
}

static int parse_mix(struct wl_imap_run *run, const char *text)
{
	const char *p = text;
	while (*p != '\0') {
		size_t nl = strcspn(p, "=,");
		int found = -1;
		for (int i = 0; i < OP_N; i++)
			if (strlen(op_names[i]) == nl && strncmp(p, op_names[i], nl) == 0)
				found = i;
		if (found < 0) {
			fprintf(stderr, "wd-load: --mix: unknown operation '%.*s'\n", (int)nl, p);
			return -1;
		}
		p += nl;
		unsigned long w = 1;
		if (*p == '=') {
			char *end;
			w = strtoul(p + 1, &end, 10);
			if (end == p + 1 || w > 1000000) {
				fprintf(stderr, "wd-load: --mix: bad weight\n");
				return -1;
			}
			p = end;
		}
		if (*p == ',')
			p++;
		else if (*p != '\0') {
			fprintf(stderr, "wd-load: --mix: expected ','\n");
			return -1;
		}
		run->weight[found] = (unsigned)w;
	}
	run->total = 0;
	for (int i = 0; i < OP_N; i++)
		run->total += run->weight[i];
	if (run->total == 0) {
		fprintf(stderr, "wd-load: --mix: all weights are 0\n");
		return -1;
	}
	return 0;
}

struct wl_imap_run *wl_imap_run_start(const char *host, int port, int clients, int user_offset,
				      struct wl_stats *stats, double warmup_end, double end)
{
	struct wl_imap_run *run = calloc(1, sizeof(*run));
	if (run == NULL)
		return NULL;
	if (parse_mix(run, wl_opt.mix) < 0) {
		free(run);
		return NULL;
	}
	run->cl = calloc((size_t)clients, sizeof(*run->cl));
	run->msg = wl_message_make(wl_opt.message_size, wl_opt.from, "bench@bench.invalid", 1,
				   &run->msg_len);
	if (run->cl == NULL || run->msg == NULL) {
		free(run->cl);
		free(run->msg);
		free(run);
		return NULL;
	}
	run->host = host;
	run->port = port;
	run->n = clients;
	run->user_offset = user_offset;
	run->stats = stats;
	run->warmup_end = warmup_end;
	run->end = end;
	run->pending = clients;
	/* end = 0: the window (warm-up, then duration) opens once every client
	   has logged in and selected, or failed */
	if (end <= 0) {
		run->from_ready = true;
		run->warmup_end = run->end = 1e300;
	}
	run->st_login = wl_stats_op(stats, "login");
	run->st_select = wl_stats_op(stats, "select");
	for (int i = 0; i < OP_N; i++)
		if (run->weight[i] > 0)
			run->st[i] = wl_stats_op(stats, op_names[i]);
	/* operations with weight 0 can still happen (append on an empty mailbox) */
	for (int i = 0; i < OP_N; i++)
		if (run->st[i] == NULL)
			run->st[i] = wl_stats_op(stats, op_names[i]);
	run->st_conn = wl_stats_op(stats, "connection");
	run->st_login->setup = run->st_select->setup = run->st_conn->setup = true;
	uv_timer_init(wl_loop, &run->timer);
	run->timer.data = run;
	uv_timer_start(&run->timer, run_timer, 100, 100);
	for (int i = 0; i < clients; i++) {
		struct client *c = &run->cl[i];
		c->run = run;
		c->index = i;
		c->phase = PH_CONNECT;
		c->im = wl_imap_open(host, port, wl_opt.tls, &client_events, c);
		if (c->im != NULL)
			run->active++;
		else
			run->st_conn->errors++;
	}
	if (run->active == 0) {
		run->timer_closed = true;
		uv_close((uv_handle_t *)&run->timer, NULL);
	}
	return run;
}

void wl_imap_run_stop(struct wl_imap_run *run)
{
	run->stopping = true;
	run->end = wl_now_s();
}

int wl_imap_run_active(const struct wl_imap_run *run)
{
	return run->active;
}

int wl_imap_run_pending(const struct wl_imap_run *run)
{
	return run->pending;
}

void wl_imap_run_free(struct wl_imap_run *run)
{
	free(run->cl);
	free(run->msg);
	free(run);
}

int wl_mode_imap(void)
{
	struct wl_stats *stats = wl_stats_new();
	if (stats == NULL)
		return 1;
	wl_raise_nofile();
	printf("wd-load imap: %d clients on %s:%d%s, warm-up %.0f s, %.0f s measured, mix %s\n",
	       wl_opt.clients, wl_opt.host, wl_opt.port, wl_opt.tls ? " (TLS)" : "",
	       wl_opt.warmup, wl_opt.duration, wl_opt.mix);
	fflush(stdout);
	struct wl_imap_run *run = wl_imap_run_start(wl_opt.host, wl_opt.port, wl_opt.clients, 0,
						    stats, 0, 0);
	if (run == NULL) {
		wl_stats_free(stats);
		return 2;
	}
	uv_run(wl_loop, UV_RUN_DEFAULT);
	double measured_s = wl_now_s() - run->warmup_end;
	if (measured_s > wl_opt.duration)
		measured_s = wl_opt.duration;
	if (measured_s < 0)
		measured_s = 0;
	char title[128];
	snprintf(title, sizeof(title), "imap, %d clients", wl_opt.clients);
	wl_stats_print(stats, title, measured_s);
	printf("clients that ran the mix: %d of %d\n", run->ready, wl_opt.clients);
	char extra[128];
	snprintf(extra, sizeof(extra), "\"mode\":\"imap\",\"clients\":%d,\"clients_ready\":%d",
		 wl_opt.clients, run->ready);
	wl_json_write(stats, title, measured_s, extra);
	int rc = run->ready == wl_opt.clients ? 0 : 1;
	wl_imap_run_free(run);
	wl_stats_free(stats);
	return rc;
}
