#ifndef WD_LOAD_H
#define WD_LOAD_H
/* wd-load: a load generator for wd-server (IMAP, LMTP, POP3), one process,
 * one libuv loop, many client connections.
 *
 * Layers, one file each:
 *   transport.c    a client TCP connection with optional TLS (memory BIOs), an
 *                  operation timeout and a bounded plaintext input buffer
 *   imap-reader.c  sans-I/O IMAP response reader: tagged / untagged /
 *                  continuation responses, literals {n} skipped while streaming
 *   imap-client.c  an IMAP session on a transport: tags, one command in flight,
 *                  EXISTS / EXPUNGE bookkeeping, login and select helpers
 *   stats.c        per-operation latency histograms (log-linear, fixed size),
 *                  reply-code counters, table and JSON output
 *   message.c      synthetic RFC 5322 messages of a requested size, size mixes
 *   sysinfo.c      RLIMIT_NOFILE, /proc/PID/status, ephemeral port range
 *   mode-*.c       one benchmark mode each (imap, lmtp, pop3, idle, notify)
 *   main.c         options and dispatch
 *
 * Everything runs on the loop thread; no locks. Memory per connection is
 * bounded by the input limit plus the largest message it is sending. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "wd-buffer.h"

/* ---------- options (main.c) ---------- */
struct wl_options {
	const char *mode;
	const char *host;
	int port;
	const char *host_a, *host_b; /* notify */
	int port_a, port_b;
	int events_port;             /* notify: Redis port for wd_events (0: none) */
	const char *events_user;     /* notify: the notify user's id (24 hex digits) */
	bool tls;
	int clients;
	double duration, warmup, hold, rate;
	double timeout;              /* seconds per operation */
	const char *user_prefix;     /* user%d style prefix: <prefix><n> */
	const char *user;            /* one user for all clients (overrides prefix) */
	int users;                   /* users 1..users (default = clients) */
	const char *password;
	bool auth_plain;             /* AUTHENTICATE PLAIN instead of LOGIN */
	const char *mailbox;
	const char *mix;
	size_t message_size;
	const char *size_mix;
	const char *rcpt;            /* lmtp: recipient pattern, %d = user number */
	const char *from;
	long count;                  /* lmtp: messages in all (0 = by duration); notify: K */
	int retr;                    /* pop3: RETR per session */
	bool pop3_rset;              /* pop3: end a loop with RSET instead of QUIT */
	int server_pid;
	const char *source_ips;
	int background_clients;
	const char *json;
	unsigned seed;
	bool verbose;
};
extern struct wl_options wl_opt;
extern uv_loop_t *wl_loop;

/* user name for client `i` (0-based), into buf */
const char *wl_user_name(int i, char *buf, size_t size);
/* uniformly random integer in [lo, hi] */
uint32_t wl_rand_range(uint32_t lo, uint32_t hi);
double wl_now_s(void);       /* monotonic seconds */
int wl_parse_size(const char *text, size_t *size_r); /* 2k, 20k, 2m, 1234 */
/* next source address for outgoing connections (NULL = let the kernel pick) */
const struct sockaddr *wl_next_source(void);
size_t wl_source_count(void); /* 0 = none given */

/* ---------- transport.c ---------- */
struct wl_conn;
struct wl_conn_callbacks {
	void (*on_connect)(struct wl_conn *conn, void *ctx);     /* TCP (and TLS) up */
	void (*on_input)(struct wl_conn *conn, void *ctx);       /* plaintext buffered */
	void (*on_close)(struct wl_conn *conn, void *ctx, const char *reason);
};
/* Starts connecting; callbacks come later. NULL only on allocation failure. */
struct wl_conn *wl_conn_open(const char *host, int port, bool tls,
			     const struct sockaddr *source,
			     const struct wl_conn_callbacks *cb, void *ctx);
const uint8_t *wl_conn_input(struct wl_conn *conn, size_t *len_r);
void wl_conn_consume(struct wl_conn *conn, size_t n);
/* Takes one line (up to LF, CR LF stripped, truncated to size-1) out of the
   input: 1 taken, 0 no complete line yet, -1 more than 64 KiB without LF. */
int wl_conn_take_line(struct wl_conn *conn, char *buf, size_t size);
int wl_conn_write(struct wl_conn *conn, const void *data, size_t len);
int wl_conn_printf(struct wl_conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* (Re)arm the operation timeout; 0 disarms. On expiry the connection closes
   with reason "timeout". */
void wl_conn_timeout(struct wl_conn *conn, double seconds);
/* Closes (callbacks stop except on_close, called once); memory is freed
   after libuv released the handles. */
void wl_conn_close(struct wl_conn *conn, const char *reason);
size_t wl_conn_open_count(void);
void wl_transport_cleanup(void);

/* ---------- imap-reader.c ---------- */
enum wl_imap_kind { WL_IMAP_UNTAGGED, WL_IMAP_TAGGED, WL_IMAP_CONTINUATION };
#define WL_IMAP_HEAD_MAX 512
struct wl_imap_response {
	enum wl_imap_kind kind;
	char tag[32];           /* tagged responses */
	char word[16];          /* OK NO BAD BYE PREAUTH, or untagged keyword (EXISTS, FETCH...) */
	bool has_number;        /* "* <n> WORD" */
	uint32_t number;
	char head[WL_IMAP_HEAD_MAX]; /* first line, truncated, NUL-terminated */
	size_t literals;        /* number of literals in the response */
	uint64_t literal_bytes;
	uint64_t total_bytes;
};
struct wl_imap_reader {
	int state;              /* line / literal */
	int lit_state;          /* recognising {n} or {n+} before CRLF */
	uint64_t lit_n, lit_left;
	bool first_line;
	size_t head_len;
	struct wl_imap_response resp;
};
void wl_imap_reader_init(struct wl_imap_reader *r);
/* Consumes bytes of `data` up to the end of one response at most; returns the
   number consumed and sets *done_r when r->resp is complete (then call
   wl_imap_reader_init before the next one). Never fails: lines of any length
   and literals of any size are streamed; only the head is kept. */
size_t wl_imap_reader_feed(struct wl_imap_reader *r, const uint8_t *data, size_t len,
			   bool *done_r);

/* ---------- stats.c ---------- */
#define WL_HIST_BUCKETS (64 + 36 * 32)
struct wl_stat {
	char name[24];
	uint64_t count, no, bad, timeouts, errors;  /* errors = other failures */
	uint64_t bytes;
	bool setup;             /* login / select...: not in TOTAL */
	uint64_t max_us;
	double sum_us;
	uint32_t hist[WL_HIST_BUCKETS];
};
struct wl_stats;
struct wl_stats *wl_stats_new(void);
struct wl_stat *wl_stats_op(struct wl_stats *s, const char *name);
void wl_stat_record(struct wl_stat *st, uint64_t us);
double wl_stat_percentile(const struct wl_stat *st, double p); /* ms */
void wl_stats_code(struct wl_stats *s, const char *code);       /* count a reply code */
/* Table to stdout; `seconds` is the measured interval for rates. */
void wl_stats_print(struct wl_stats *s, const char *title, double seconds);
/* JSON object appended to an open file: {"title":..., "seconds":..., "ops":{...}, "codes":{...}} */
void wl_stats_json(struct wl_stats *s, FILE *f, const char *title, double seconds,
		   const char *extra_json);
size_t wl_stats_count(struct wl_stats *s);
struct wl_stat *wl_stats_at(struct wl_stats *s, size_t i);
void wl_stats_free(struct wl_stats *s);
/* no TOTAL row (figures that do not add up, e.g. two views of one latency) */
void wl_stats_hide_total(struct wl_stats *s);
/* Writes --json FILE when set: one object with the given sections. */
int wl_json_write(struct wl_stats *s, const char *title, double seconds, const char *extra_json);

/* ---------- message.c ---------- */
/* A message of about `size` bytes (headers + body, CRLF lines, no line starts
   with '.'). Returns a malloc'd buffer and its length. */
char *wl_message_make(size_t size, const char *from, const char *to, uint64_t serial,
		      size_t *len_r);
struct wl_size_mix;
struct wl_size_mix *wl_size_mix_parse(const char *text, char **error_r);
size_t wl_size_mix_pick(const struct wl_size_mix *mix);
void wl_size_mix_free(struct wl_size_mix *mix);

/* ---------- sysinfo.c ---------- */
/* Raises RLIMIT_NOFILE to the hard limit; returns the soft limit now in force. */
long wl_raise_nofile(void);
/* VmRSS / VmHWM of a process in KiB; -1 when unreadable. */
int wl_proc_memory(int pid, long *rss_kb_r, long *hwm_kb_r);
/* number of ephemeral ports (ip_local_port_range), -1 unknown */
long wl_ephemeral_ports(void);

/* ---------- imap-client.c ---------- */
struct wl_imap;
typedef void wl_imap_done_fn(struct wl_imap *im, void *ctx, const struct wl_imap_response *tagged);
struct wl_imap_events {
	/* connected, greeting read (ok = false: BYE / bad greeting) */
	void (*on_ready)(struct wl_imap *im, void *ctx, bool ok);
	/* any untagged response while no handler claims it (EXISTS...) */
	void (*on_untagged)(struct wl_imap *im, void *ctx, const struct wl_imap_response *r);
	/* continuation request "+ ..." */
	void (*on_continue)(struct wl_imap *im, void *ctx, const struct wl_imap_response *r);
	void (*on_close)(struct wl_imap *im, void *ctx, const char *reason);
};
struct wl_imap *wl_imap_open(const char *host, int port, bool tls,
			     const struct wl_imap_events *ev, void *ctx);
/* Sends "<tag> <command>\r\n" (printf style); `done` runs on the tagged reply. */
int wl_imap_command(struct wl_imap *im, wl_imap_done_fn *done, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int wl_imap_send_raw(struct wl_imap *im, const void *data, size_t len);
void wl_imap_timeout(struct wl_imap *im, double seconds);
void wl_imap_close(struct wl_imap *im, const char *reason);
uint32_t wl_imap_exists(const struct wl_imap *im);
uint32_t wl_imap_uidnext(const struct wl_imap *im);
/* the AUTHENTICATE PLAIN / LOGIN command for user+password, per --auth */
int wl_imap_login(struct wl_imap *im, const char *user, const char *password,
		  wl_imap_done_fn *done);
bool wl_imap_ok(const struct wl_imap_response *tagged);

/* ---------- modes ---------- */
int wl_mode_imap(void);
int wl_mode_lmtp(void);
int wl_mode_pop3(void);
int wl_mode_idle(void);
int wl_mode_notify(void);
/* imap workers inside another mode (notify background load) */
struct wl_imap_run;
/* client i logs in as wl_user_name(i + user_offset) */
struct wl_imap_run *wl_imap_run_start(const char *host, int port, int clients, int user_offset,
				      struct wl_stats *stats, double warmup_end, double end);
void wl_imap_run_free(struct wl_imap_run *run);
void wl_imap_run_stop(struct wl_imap_run *run);
int wl_imap_run_active(const struct wl_imap_run *run);
/* clients still logging in or selecting (0: all run the mix or failed) */
int wl_imap_run_pending(const struct wl_imap_run *run);

#endif
