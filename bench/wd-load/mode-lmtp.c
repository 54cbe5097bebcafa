/* mode-lmtp.c — the lmtp mode: M connections deliver messages of a size mix
 * (--size-mix "2k=70,20k=25,200k=4,2m=1") to one recipient each
 * (--rcpt "user%d@domain", %d = 1..--users, random), for --count messages
 * in all or for --duration seconds.
 *
 * Per connection: greeting, LHLO, then per message MAIL FROM (with SIZE= when
 * the LHLO reply advertises SIZE), RCPT TO, DATA, the message, "." and the
 * recipient's reply; QUIT at the end. Commands are
 * not pipelined: every step waits for its reply (what a simple MTA does).
 *
 * Reported: messages/s, MB/s, latency per message (MAIL FROM written to the
 * final reply) p50/p90/p99/max, and a count of the reply codes: the final
 * per-recipient reply as "<code> <enhanced>", refusals at other steps as
 * "<step> <code>".
 *
 * Design: the SMTP reply reader takes whole lines from the transport
 * (wl_conn_take_line, bounded) and treats "ddd-" as continuation and "ddd "
 * as the last line. A message is built when it is sent and freed after it was
 * queued (the transport copies it), so memory is one message per connection. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wd-load.h"

enum lstate { L_GREETING, L_LHLO, L_MAIL, L_RCPT, L_DATA, L_BODY, L_QUIT, L_DONE };
static const char *const step_names[] = { "greeting", "lhlo", "mail", "rcpt", "data", "body",
					  "quit", "done" };

struct lclient {
	struct wl_conn *conn;
	int index;
	enum lstate state;
	double t0;
	size_t size;
	bool open;
	bool size_ext; /* the LHLO reply advertised SIZE (RFC 1870) */
};

static struct {
	struct wl_stats *stats;
	struct wl_stat *st_msg, *st_conn;
	struct wl_size_mix *mix;
	struct lclient *cl;
	int active;
	long started, delivered;
	uint64_t bytes;
	double start, warmup_end, end;
	uint64_t serial;
} L;

static void rcpt_for(char *buf, size_t size)
{
	const char *pat = wl_opt.rcpt;
	const char *d = strstr(pat, "%d");
	if (d == NULL) {
		snprintf(buf, size, "%s", pat);
		return;
	}
	int users = wl_opt.users > 0 ? wl_opt.users : 1;
	snprintf(buf, size, "%.*s%u%s", (int)(d - pat), pat, wl_rand_range(1, (uint32_t)users),
		 d + 2);
}

static bool more_to_send(void)
{
	if (wl_opt.count > 0)
		return L.started < wl_opt.count;
	return wl_now_s() < L.end;
}

static void next_message(struct lclient *c)
{
	if (!more_to_send()) {
		c->state = L_QUIT;
		wl_conn_printf(c->conn, "QUIT\r\n");
		wl_conn_timeout(c->conn, wl_opt.timeout);
		return;
	}
	L.started++;
	c->state = L_MAIL;
	c->t0 = wl_now_s();
	c->size = wl_size_mix_pick(L.mix);
	/* SIZE= only to a server that announced the extension: one that did not
	   (Dovecot 2.3's LMTP) refuses the parameter with 555 */
	if (c->size_ext)
		wl_conn_printf(c->conn, "MAIL FROM:<%s> SIZE=%zu\r\n", wl_opt.from, c->size);
	else
		wl_conn_printf(c->conn, "MAIL FROM:<%s>\r\n", wl_opt.from);
	wl_conn_timeout(c->conn, wl_opt.timeout);
}

static void send_body(struct lclient *c)
{
	char to[256];
	rcpt_for(to, sizeof(to));
	size_t len;
	char *msg = wl_message_make(c->size, wl_opt.from, to, ++L.serial, &len);
	if (msg == NULL) {
		wl_conn_close(c->conn, "out of memory");
		return;
	}
	c->state = L_BODY;
	wl_conn_write(c->conn, msg, len);
	wl_conn_write(c->conn, ".\r\n", 3);
	free(msg);
	c->size = len;
	/* a 2 MB message over a busy loopback: the timeout covers the transfer */
	wl_conn_timeout(c->conn, wl_opt.timeout + (double)len / (1 << 20));
}

static void enhanced(const char *line, char *out, size_t size)
{
	/* "250 2.1.5 <...>": the enhanced code when it looks like one */
	const char *p = line + 4;
	size_t n = strspn(p, "0123456789.");
	if (strlen(line) > 4 && n >= 5 && n < 12)
		snprintf(out, size, "%.3s %.*s", line, (int)n, p);
	else
		snprintf(out, size, "%.3s", line);
}

static void on_reply(struct lclient *c, int code, const char *line)
{
	char tag[48];
	bool ok = code >= 200 && code < 400;
	switch (c->state) {
	case L_GREETING:
		if (code != 220)
			goto refused;
		c->state = L_LHLO;
		c->size_ext = false;
		wl_conn_printf(c->conn, "LHLO wd-load.bench.invalid\r\n");
		wl_conn_timeout(c->conn, wl_opt.timeout);
		return;
	case L_LHLO:
		if (!ok)
			goto refused;
		next_message(c);
		return;
	case L_MAIL:
		if (!ok)
			goto refused_msg;
		c->state = L_RCPT;
		char to[256];
		rcpt_for(to, sizeof(to));
		wl_conn_printf(c->conn, "RCPT TO:<%s>\r\n", to);
		wl_conn_timeout(c->conn, wl_opt.timeout);
		return;
	case L_RCPT:
		if (!ok)
			goto refused_msg;
		c->state = L_DATA;
		wl_conn_printf(c->conn, "DATA\r\n");
		wl_conn_timeout(c->conn, wl_opt.timeout);
		return;
	case L_DATA:
		if (code != 354)
			goto refused_msg;
		send_body(c);
		return;
	case L_BODY:
		enhanced(line, tag, sizeof(tag));
		wl_stats_code(L.stats, tag);
		if (c->t0 >= L.warmup_end) {
			if (code >= 200 && code < 300) {
				wl_stat_record(L.st_msg, (uint64_t)((wl_now_s() - c->t0) * 1e6));
				L.st_msg->bytes += c->size;
				L.delivered++;
			} else {
				L.st_msg->no++;
			}
		}
		next_message(c);
		return;
	case L_QUIT:
	case L_DONE:
		c->state = L_DONE;
		wl_conn_close(c->conn, "quit");
		return;
	}
	return;
refused_msg:
	snprintf(tag, sizeof(tag), "%s %d", step_names[c->state], code);
	wl_stats_code(L.stats, tag);
	L.st_msg->no++;
	/* RSET and go on with the next message */
	wl_conn_printf(c->conn, "RSET\r\n");
	c->state = L_LHLO; /* the RSET reply leads to next_message */
	wl_conn_timeout(c->conn, wl_opt.timeout);
	return;
refused:
	snprintf(tag, sizeof(tag), "%s %d", step_names[c->state], code);
	wl_stats_code(L.stats, tag);
	L.st_conn->errors++;
	wl_conn_close(c->conn, "refused");
}

static void on_input(struct wl_conn *conn, void *ctx)
{
	struct lclient *c = ctx;
	char line[1024];
	int r;
	while (c->open && (r = wl_conn_take_line(conn, line, sizeof(line))) != 0) {
		if (r < 0) {
			wl_conn_close(conn, "reply line too long");
			return;
		}
		if (strlen(line) < 3 || line[0] < '1' || line[0] > '5') {
			wl_conn_close(conn, "malformed reply");
			return;
		}
		/* "250-SIZE", "250 SIZE 52428800": any line of the LHLO reply */
		if (c->state == L_LHLO && strlen(line) >= 8 && strncasecmp(line + 4, "SIZE", 4) == 0 &&
		    (line[8] == '\0' || line[8] == ' '))
			c->size_ext = true;
		if (line[3] == '-')
			continue; /* multi-line reply goes on */
		on_reply(c, atoi(line), line);
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
	struct lclient *c = ctx;
	c->open = false;
	L.active--;
	if (c->state != L_DONE && c->state != L_QUIT) {
		if (c->state >= L_MAIL && c->state <= L_BODY) {
			if (strcmp(reason, "timeout") == 0)
				L.st_msg->timeouts++;
			else
				L.st_msg->errors++;
		} else {
			L.st_conn->errors++;
		}
		if (wl_opt.verbose || L.st_conn->errors + L.st_msg->errors < 5)
			fprintf(stderr, "lmtp connection %d closed at %s: %s\n", c->index,
				step_names[c->state], reason);
	}
}

static const struct wl_conn_callbacks lmtp_cb = {
	.on_connect = on_connect, .on_input = on_input, .on_close = on_close,
};

int wl_mode_lmtp(void)
{
	char *err = NULL;
	L.mix = wl_size_mix_parse(wl_opt.size_mix, &err);
	if (L.mix == NULL) {
		fprintf(stderr, "wd-load: --size-mix: %s\n", err != NULL ? err : "out of memory");
		return 2;
	}
	L.stats = wl_stats_new();
	L.cl = calloc((size_t)wl_opt.clients, sizeof(*L.cl));
	if (L.stats == NULL || L.cl == NULL)
		return 1;
	L.st_msg = wl_stats_op(L.stats, "message");
	L.st_conn = wl_stats_op(L.stats, "connection");
	L.st_conn->setup = true;
	wl_raise_nofile();
	L.start = wl_now_s();
	L.warmup_end = L.start + (wl_opt.count > 0 ? 0 : wl_opt.warmup);
	L.end = L.warmup_end + wl_opt.duration;
	printf("wd-load lmtp: %d connections to %s:%d%s, %s, rcpt %s, sizes %s\n", wl_opt.clients,
	       wl_opt.host, wl_opt.port, wl_opt.tls ? " (TLS)" : "",
	       wl_opt.count > 0 ? "by count" : "by duration", wl_opt.rcpt, wl_opt.size_mix);
	fflush(stdout);
	for (int i = 0; i < wl_opt.clients; i++) {
		struct lclient *c = &L.cl[i];
		c->index = i;
		c->open = true;
		c->conn = wl_conn_open(wl_opt.host, wl_opt.port, wl_opt.tls, wl_next_source(),
				       &lmtp_cb, c);
		if (c->conn == NULL) {
			c->open = false;
			continue;
		}
		L.active++;
		wl_conn_timeout(c->conn, wl_opt.timeout);
	}
	uv_run(wl_loop, UV_RUN_DEFAULT);
	double secs = wl_now_s() - L.warmup_end;
	if (wl_opt.count == 0 && secs > wl_opt.duration)
		secs = wl_opt.duration;
	char title[96];
	snprintf(title, sizeof(title), "lmtp, %d connections", wl_opt.clients);
	wl_stats_print(L.stats, title, secs);
	double mb = (double)L.st_msg->bytes / (1024.0 * 1024.0);
	printf("delivered %ld messages, %.1f MB: %.1f messages/s, %.2f MB/s\n", L.delivered, mb,
	       secs > 0 ? (double)L.delivered / secs : 0, secs > 0 ? mb / secs : 0);
	char extra[256];
	snprintf(extra, sizeof(extra),
		 "\"mode\":\"lmtp\",\"connections\":%d,\"delivered\":%ld,\"messages_per_s\":%.3f,"
		 "\"mb_per_s\":%.3f",
		 wl_opt.clients, L.delivered, secs > 0 ? (double)L.delivered / secs : 0,
		 secs > 0 ? mb / secs : 0);
	wl_json_write(L.stats, title, secs, extra);
	int rc = L.st_msg->no + L.st_msg->errors + L.st_msg->timeouts + L.st_conn->errors == 0 &&
			 L.delivered > 0 ? 0 : 1;
	free(L.cl);
	wl_stats_free(L.stats);
	wl_size_mix_free(L.mix);
	return rc;
}
