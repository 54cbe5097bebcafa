/* mode-pop3.c — the pop3 mode: N clients loop over POP3 sessions:
 * connect, greeting, USER, PASS, STAT, LIST, UIDL, RETR of --retr random
 * messages, then QUIT and a new session; with --rset the session stays open
 * and RSET starts the next round at STAT.
 *
 * Timed operations: login (connect to the PASS reply), stat, list, uidl,
 * retr (bytes counted), quit / rset. -ERR replies count as NO.
 *
 * Design: status lines come from wl_conn_take_line; multi-line answers (LIST,
 * UIDL, RETR) are streamed through a four-state scanner that looks for
 * "CRLF . CRLF" at a line start, consuming input as it goes, so a message of
 * any size costs no memory. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "wd-load.h"

enum pstate { P_GREETING, P_USER, P_PASS, P_STAT, P_LIST, P_UIDL, P_RETR, P_END, P_DONE };
enum { M_MID, M_BOL, M_DOT, M_DOTCR };

struct pclient {
	struct wl_conn *conn;
	int index;
	enum pstate state;
	bool open, multi;   /* multi: inside a multi-line answer */
	int mstate;
	uint64_t mbytes;
	double t0, tlogin;
	uint32_t count;
	int retr_left;
	bool measured;
};

static struct {
	struct wl_stats *stats;
	struct wl_stat *st[P_DONE];
	struct pclient *cl;
	double warmup_end, end;
	int active, sessions;
} P;

static void pop3_connect(struct pclient *c);

static void send_cmd(struct pclient *c, enum pstate st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void send_cmd(struct pclient *c, enum pstate st, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	strcat(line, "\r\n");
	c->state = st;
	if (st != P_PASS) /* login is timed from the connect */
		c->t0 = wl_now_s();
	wl_conn_write(c->conn, line, strlen(line));
	wl_conn_timeout(c->conn, wl_opt.timeout);
}

static bool in_window(double t)
{
	return t >= P.warmup_end && t < P.end;
}

static void record(struct pclient *c, bool ok, uint64_t bytes)
{
	struct wl_stat *st = P.st[c->state];
	double t0 = c->state == P_PASS ? c->tlogin : c->t0;
	if (st == NULL || !in_window(t0))
		return;
	if (ok) {
		wl_stat_record(st, (uint64_t)((wl_now_s() - t0) * 1e6));
		st->bytes += bytes;
	} else {
		st->no++;
	}
}

static void next_step(struct pclient *c)
{
	char user[128];
	bool over = wl_now_s() >= P.end;
	switch (c->state) {
	case P_GREETING:
		send_cmd(c, P_USER, "USER %s", wl_user_name(c->index, user, sizeof(user)));
		return;
	case P_USER:
		send_cmd(c, P_PASS, "PASS %s", wl_opt.password);
		return;
	case P_PASS:
		P.sessions++;
		send_cmd(c, P_STAT, "STAT");
		return;
	case P_STAT:
		send_cmd(c, P_LIST, "LIST");
		return;
	case P_LIST:
		send_cmd(c, P_UIDL, "UIDL");
		return;
	case P_UIDL:
	case P_RETR:
		if (!over && c->retr_left > 0 && c->count > 0) {
			c->retr_left--;
			send_cmd(c, P_RETR, "RETR %u", wl_rand_range(1, c->count));
			return;
		}
		if (wl_opt.pop3_rset && !over)
			send_cmd(c, P_END, "RSET");
		else
			send_cmd(c, P_END, "QUIT");
		return;
	case P_END:
		if (wl_opt.pop3_rset && !over) {
			c->retr_left = wl_opt.retr;
			send_cmd(c, P_STAT, "STAT");
			return;
		}
		c->state = P_DONE;
		wl_conn_close(c->conn, "quit");
		return;
	case P_DONE:
		return;
	}
}

/* streams a multi-line answer; true when its terminating line was seen */
static bool scan_multi(struct pclient *c)
{
	size_t len;
	const uint8_t *data = wl_conn_input(c->conn, &len);
	size_t i = 0;
	bool end = false;
	while (i < len && !end) {
		if (c->mstate == M_MID) {
			const uint8_t *lf = memchr(data + i, '\n', len - i);
			if (lf == NULL) {
				i = len;
				break;
			}
			i = (size_t)(lf - data) + 1;
			c->mstate = M_BOL;
			continue;
		}
		uint8_t ch = data[i++];
		switch (c->mstate) {
		case M_BOL:
			c->mstate = ch == '.' ? M_DOT : ch == '\n' ? M_BOL : M_MID;
			break;
		case M_DOT:
			if (ch == '\n')
				end = true;
			c->mstate = ch == '\r' ? M_DOTCR : M_MID;
			break;
		case M_DOTCR:
			if (ch == '\n')
				end = true;
			c->mstate = M_MID;
			break;
		}
	}
	c->mbytes += i;
	wl_conn_consume(c->conn, i);
	return end;
}

static void on_input(struct wl_conn *conn, void *ctx)
{
	struct pclient *c = ctx;
	char line[1024];
	while (c->open && c->state != P_DONE) {
		if (c->multi) {
			if (!scan_multi(c))
				return;
			c->multi = false;
			record(c, true, c->mbytes);
			next_step(c);
			continue;
		}
		int r = wl_conn_take_line(conn, line, sizeof(line));
		if (r == 0)
			return;
		if (r < 0) {
			wl_conn_close(conn, "reply line too long");
			return;
		}
		bool ok = strncmp(line, "+OK", 3) == 0;
		if (!ok && strncmp(line, "-ERR", 4) != 0) {
			wl_conn_close(conn, "malformed reply");
			return;
		}
		if (c->state == P_GREETING || c->state == P_USER || c->state == P_PASS) {
			if (!ok) {
				record(c, false, 0);
				if (wl_opt.verbose || c->index == 0)
					fprintf(stderr, "pop3 client %d: %s\n", c->index, line);
				wl_conn_close(conn, "login refused");
				return;
			}
			if (c->state == P_PASS)
				record(c, true, 0);
			next_step(c);
			continue;
		}
		if (c->state == P_STAT && ok)
			c->count = (uint32_t)strtoul(line + 3, NULL, 10);
		if (ok && (c->state == P_LIST || c->state == P_UIDL || c->state == P_RETR)) {
			c->multi = true;
			c->mstate = M_BOL;
			c->mbytes = 0;
			continue;
		}
		record(c, ok, 0);
		next_step(c);
	}
}

static void on_connect(struct wl_conn *conn, void *ctx)
{
	(void)ctx;
	wl_conn_timeout(conn, wl_opt.timeout);
}

static void on_close(struct wl_conn *conn, void *ctx, const char *reason)
{
	(void)conn;
	struct pclient *c = ctx;
	c->open = false;
	P.active--;
	if (c->state != P_DONE) {
		struct wl_stat *st = P.st[c->state] != NULL ? P.st[c->state] : P.st[P_PASS];
		if (strcmp(reason, "timeout") == 0)
			st->timeouts++;
		else if (strcmp(reason, "login refused") != 0)
			st->errors++;
		if (wl_opt.verbose || st->errors + st->timeouts < 5)
			fprintf(stderr, "pop3 client %d closed: %s\n", c->index, reason);
		return; /* a failed client does not come back */
	}
	if (wl_now_s() < P.end)
		pop3_connect(c);
}

static const struct wl_conn_callbacks pop3_cb = {
	.on_connect = on_connect, .on_input = on_input, .on_close = on_close,
};

static void pop3_connect(struct pclient *c)
{
	c->state = P_GREETING;
	c->multi = false;
	c->retr_left = wl_opt.retr;
	c->tlogin = c->t0 = wl_now_s();
	c->open = true;
	c->conn = wl_conn_open(wl_opt.host, wl_opt.port, wl_opt.tls, wl_next_source(), &pop3_cb, c);
	if (c->conn == NULL) {
		c->open = false;
		return;
	}
	P.active++;
	wl_conn_timeout(c->conn, wl_opt.timeout);
}

int wl_mode_pop3(void)
{
	P.stats = wl_stats_new();
	P.cl = calloc((size_t)wl_opt.clients, sizeof(*P.cl));
	if (P.stats == NULL || P.cl == NULL)
		return 1;
	P.st[P_PASS] = wl_stats_op(P.stats, "login");
	P.st[P_STAT] = wl_stats_op(P.stats, "stat");
	P.st[P_LIST] = wl_stats_op(P.stats, "list");
	P.st[P_UIDL] = wl_stats_op(P.stats, "uidl");
	P.st[P_RETR] = wl_stats_op(P.stats, "retr");
	P.st[P_END] = wl_stats_op(P.stats, wl_opt.pop3_rset ? "rset/quit" : "quit");
	P.st[P_GREETING] = P.st[P_USER] = P.st[P_PASS];
	wl_raise_nofile();
	double start = wl_now_s();
	P.warmup_end = start + wl_opt.warmup;
	P.end = P.warmup_end + wl_opt.duration;
	printf("wd-load pop3: %d clients on %s:%d%s, %d RETR per session, %s\n", wl_opt.clients,
	       wl_opt.host, wl_opt.port, wl_opt.tls ? " (TLS)" : "", wl_opt.retr,
	       wl_opt.pop3_rset ? "RSET loops" : "QUIT + reconnect");
	fflush(stdout);
	for (int i = 0; i < wl_opt.clients; i++) {
		P.cl[i].index = i;
		pop3_connect(&P.cl[i]);
	}
	uv_run(wl_loop, UV_RUN_DEFAULT);
	double secs = wl_now_s() - P.warmup_end;
	if (secs > wl_opt.duration)
		secs = wl_opt.duration;
	char title[96];
	snprintf(title, sizeof(title), "pop3, %d clients", wl_opt.clients);
	wl_stats_print(P.stats, title, secs);
	printf("sessions logged in: %d\n", P.sessions);
	char extra[128];
	snprintf(extra, sizeof(extra), "\"mode\":\"pop3\",\"clients\":%d,\"sessions\":%d",
		 wl_opt.clients, P.sessions);
	wl_json_write(P.stats, title, secs, extra);
	int failures = 0;
	for (size_t i = 0; i < wl_stats_count(P.stats); i++) {
		const struct wl_stat *st = wl_stats_at(P.stats, i);
		failures += (int)(st->no + st->bad + st->timeouts + st->errors);
	}
	free(P.cl);
	wl_stats_free(P.stats);
	return failures == 0 && P.sessions > 0 ? 0 : 1;
}
