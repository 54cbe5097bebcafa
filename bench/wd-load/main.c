/* main.c — wd-load's command line: options into wl_opt, the loop, the
 * mode dispatch, and the small shared helpers (user names, randomness,
 * clock, source addresses).
 *
 * Usage: wd-load MODE [options]   (MODE: imap, lmtp, pop3, idle, notify)
 * See bench/README.md for examples; `wd-load --help` lists the options.
 *
 * Design: options are global and read-only once parsed (every mode reads the
 * ones it needs; an option a mode does not use is ignored). The random
 * generator is a seeded xorshift so that runs are repeatable by --seed. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wd-load.h"

struct wl_options wl_opt;
uv_loop_t *wl_loop;

static uint64_t rng_state = 88172645463325252ull;

#define MAX_SOURCES 254
static struct sockaddr_in sources[MAX_SOURCES];
static size_t n_sources, next_source;

uint32_t wl_rand_range(uint32_t lo, uint32_t hi)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	if (hi <= lo)
		return lo;
	return lo + (uint32_t)(rng_state % ((uint64_t)hi - lo + 1));
}

double wl_now_s(void)
{
	return (double)uv_hrtime() / 1e9;
}

const char *wl_user_name(int i, char *buf, size_t size)
{
	if (wl_opt.user != NULL) {
		snprintf(buf, size, "%s", wl_opt.user);
		return buf;
	}
	int users = wl_opt.users > 0 ? wl_opt.users : wl_opt.clients;
	if (users < 1)
		users = 1;
	snprintf(buf, size, "%s%d", wl_opt.user_prefix, i % users + 1);
	return buf;
}

const struct sockaddr *wl_next_source(void)
{
	if (n_sources == 0)
		return NULL;
	const struct sockaddr *s = (const struct sockaddr *)&sources[next_source];
	next_source = (next_source + 1) % n_sources;
	return s;
}

size_t wl_source_count(void)
{
	return n_sources;
}

static int parse_sources(const char *text)
{
	char *end;
	long k = strtol(text, &end, 10);
	if (*end == '\0') {
		/* a count: 127.0.0.2 .. 127.0.0.(k+1) */
		if (k < 1 || k > MAX_SOURCES - 1)
			return -1;
		for (long i = 0; i < k; i++) {
			char ip[32];
			snprintf(ip, sizeof(ip), "127.0.0.%ld", i + 2);
			uv_ip4_addr(ip, 0, &sources[n_sources++]);
		}
		return 0;
	}
	char copy[4096];
	snprintf(copy, sizeof(copy), "%s", text);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (n_sources == MAX_SOURCES || uv_ip4_addr(tok, 0, &sources[n_sources]) != 0)
			return -1;
		n_sources++;
	}
	return n_sources > 0 ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: wd-load MODE [options]\n"
		"modes:\n"
		"  imap    N clients log in, SELECT, run a weighted command mix\n"
		"  lmtp    M connections deliver messages of a size mix\n"
		"  pop3    N clients loop USER/PASS, STAT, LIST, UIDL, RETR, QUIT\n"
		"  idle    open and hold N IDLE connections, report server memory\n"
		"  notify  APPEND on server A, time until an IDLE client on B sees EXISTS\n"
		"common options:\n"
		"  --host H --port P     server (default 127.0.0.1; port 9993/2424/9995 by mode)\n"
		"  --tls                 implicit TLS\n"
		"  --clients N           concurrent clients / connections (default 1)\n"
		"  --duration S          measured time (default 10)\n"
		"  --warmup S            unmeasured time before (default 0)\n"
		"  --timeout S           per operation (default 10)\n"
		"  --user NAME           one user for all clients, else PREFIX1..PREFIXn\n"
		"  --user-prefix P       (default user) --users N (default = clients)\n"
		"  --password P          (default pass)  --auth login|plain\n"
		"  --json FILE           write the figures as JSON\n"
		"  --seed N              random seed\n"
		"imap:   --mailbox M (INBOX) --message-size BYTES (4k)\n"
		"        --mix \"fetch-flags=40,fetch-envelope=20,fetch-body=10,fetch-partial=5,\n"
		"               store=10,search=10,append=3,expunge=1,noop=1,idle=0\"\n"
		"lmtp:   --size-mix \"2k=70,20k=25,200k=4,2m=1\" --rcpt user%%d@domain\n"
		"        --users N (recipients 1..N) --from ADDR --count K (0 = by duration)\n"
		"pop3:   --retr K (RETR per session, default 3) --rset (RSET instead of QUIT)\n"
		"idle:   --clients N --rate R (per second, default 200) --hold S (default 10)\n"
		"        --server-pid PID --source-ips K|ip,ip,...\n"
		"notify: --host-a H --port-a P --host-b H --port-b P --count K (default 100)\n"
		"        --background-clients N (imap mix on A meanwhile)\n"
		"        --events-port P --events-user HEX (Redis on 127.0.0.1:P: time from the\n"
		"        wd_events message naming user HEX to B's EXISTS, from-publish)\n");
}

enum {
	O_HOST = 256, O_PORT, O_TLS, O_CLIENTS, O_DURATION, O_WARMUP, O_HOLD, O_RATE, O_TIMEOUT,
	O_USER_PREFIX, O_USER, O_USERS, O_PASSWORD, O_AUTH, O_MAILBOX, O_MIX, O_MSGSIZE,
	O_SIZEMIX, O_RCPT, O_FROM, O_COUNT, O_RETR, O_RSET, O_PID, O_SOURCES, O_BG, O_JSON,
	O_SEED, O_HOSTA, O_PORTA, O_HOSTB, O_PORTB, O_HELP, O_VERBOSE, O_EVPORT, O_EVUSER,
};

static const struct option long_opts[] = {
	{ "host", required_argument, NULL, O_HOST },
	{ "port", required_argument, NULL, O_PORT },
	{ "tls", no_argument, NULL, O_TLS },
	{ "clients", required_argument, NULL, O_CLIENTS },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "hold", required_argument, NULL, O_HOLD },
	{ "rate", required_argument, NULL, O_RATE },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "user-prefix", required_argument, NULL, O_USER_PREFIX },
	{ "user", required_argument, NULL, O_USER },
	{ "users", required_argument, NULL, O_USERS },
	{ "password", required_argument, NULL, O_PASSWORD },
	{ "auth", required_argument, NULL, O_AUTH },
	{ "mailbox", required_argument, NULL, O_MAILBOX },
	{ "mix", required_argument, NULL, O_MIX },
	{ "message-size", required_argument, NULL, O_MSGSIZE },
	{ "size-mix", required_argument, NULL, O_SIZEMIX },
	{ "rcpt", required_argument, NULL, O_RCPT },
	{ "from", required_argument, NULL, O_FROM },
	{ "count", required_argument, NULL, O_COUNT },
	{ "retr", required_argument, NULL, O_RETR },
	{ "rset", no_argument, NULL, O_RSET },
	{ "server-pid", required_argument, NULL, O_PID },
	{ "source-ips", required_argument, NULL, O_SOURCES },
	{ "background-clients", required_argument, NULL, O_BG },
	{ "json", required_argument, NULL, O_JSON },
	{ "seed", required_argument, NULL, O_SEED },
	{ "host-a", required_argument, NULL, O_HOSTA },
	{ "port-a", required_argument, NULL, O_PORTA },
	{ "host-b", required_argument, NULL, O_HOSTB },
	{ "events-port", required_argument, NULL, O_EVPORT },
	{ "events-user", required_argument, NULL, O_EVUSER },
	{ "port-b", required_argument, NULL, O_PORTB },
	{ "verbose", no_argument, NULL, O_VERBOSE },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int num(const char *name, const char *text, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "wd-load: --%s: expected a number in [%g, %g]\n", name, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	wl_opt = (struct wl_options){
		.mode = argv[1], .host = "127.0.0.1", .clients = 1, .duration = 10,
		.hold = 10, .rate = 200, .timeout = 10, .user_prefix = "user",
		.password = "pass", .mailbox = "INBOX",
		.mix = "fetch-flags=40,fetch-envelope=20,fetch-body=10,fetch-partial=5,"
		       "store=10,search=10,append=3,expunge=1,noop=1",
		.message_size = 4096, .size_mix = "2k=70,20k=25,200k=4,2m=1",
		.rcpt = "user%d@localhost", .from = "bench@bench.invalid", .retr = 3,
		.seed = (unsigned)time(NULL),
	};
	double v;
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		const char *name = NULL;
		for (const struct option *o = long_opts; o->name != NULL; o++)
			if (o->val == opt)
				name = o->name;
		switch (opt) {
		case O_HOST: wl_opt.host = optarg; break;
		case O_PORT: if (num(name, optarg, 1, 65535, &v) < 0) return 2; wl_opt.port = (int)v; break;
		case O_TLS: wl_opt.tls = true; break;
		case O_CLIENTS: if (num(name, optarg, 1, 1000000, &v) < 0) return 2; wl_opt.clients = (int)v; break;
		case O_DURATION: if (num(name, optarg, 0.1, 1e6, &v) < 0) return 2; wl_opt.duration = v; break;
		case O_WARMUP: if (num(name, optarg, 0, 1e6, &v) < 0) return 2; wl_opt.warmup = v; break;
		case O_HOLD: if (num(name, optarg, 0, 1e6, &v) < 0) return 2; wl_opt.hold = v; break;
		case O_RATE: if (num(name, optarg, 0.1, 1e7, &v) < 0) return 2; wl_opt.rate = v; break;
		case O_TIMEOUT: if (num(name, optarg, 0.01, 1e5, &v) < 0) return 2; wl_opt.timeout = v; break;
		case O_USER_PREFIX: wl_opt.user_prefix = optarg; break;
		case O_USER: wl_opt.user = optarg; break;
		case O_USERS: if (num(name, optarg, 1, 10000000, &v) < 0) return 2; wl_opt.users = (int)v; break;
		case O_PASSWORD: wl_opt.password = optarg; break;
		case O_AUTH:
			if (strcmp(optarg, "plain") != 0 && strcmp(optarg, "login") != 0) {
				fprintf(stderr, "wd-load: --auth: login or plain\n");
				return 2;
			}
			wl_opt.auth_plain = strcmp(optarg, "plain") == 0;
			break;
		case O_MAILBOX: wl_opt.mailbox = optarg; break;
		case O_MIX: wl_opt.mix = optarg; break;
		case O_MSGSIZE:
			if (wl_parse_size(optarg, &wl_opt.message_size) < 0) {
				fprintf(stderr, "wd-load: --message-size: e.g. 4k, 100k, 1m\n");
				return 2;
			}
			break;
		case O_SIZEMIX: wl_opt.size_mix = optarg; break;
		case O_RCPT: wl_opt.rcpt = optarg; break;
		case O_FROM: wl_opt.from = optarg; break;
		case O_COUNT: if (num(name, optarg, 0, 1e12, &v) < 0) return 2; wl_opt.count = (long)v; break;
		case O_RETR: if (num(name, optarg, 0, 1000, &v) < 0) return 2; wl_opt.retr = (int)v; break;
		case O_RSET: wl_opt.pop3_rset = true; break;
		case O_PID: if (num(name, optarg, 1, 1e9, &v) < 0) return 2; wl_opt.server_pid = (int)v; break;
		case O_SOURCES:
			wl_opt.source_ips = optarg;
			if (parse_sources(optarg) < 0) {
				fprintf(stderr, "wd-load: --source-ips: a count (1..253) or IPv4 list\n");
				return 2;
			}
			break;
		case O_BG: if (num(name, optarg, 0, 100000, &v) < 0) return 2; wl_opt.background_clients = (int)v; break;
		case O_JSON: wl_opt.json = optarg; break;
		case O_SEED: if (num(name, optarg, 0, 4e9, &v) < 0) return 2; wl_opt.seed = (unsigned)v; break;
		case O_HOSTA: wl_opt.host_a = optarg; break;
		case O_PORTA: if (num(name, optarg, 1, 65535, &v) < 0) return 2; wl_opt.port_a = (int)v; break;
		case O_HOSTB: wl_opt.host_b = optarg; break;
		case O_PORTB: if (num(name, optarg, 1, 65535, &v) < 0) return 2; wl_opt.port_b = (int)v; break;
		case O_EVPORT: if (num(name, optarg, 1, 65535, &v) < 0) return 2; wl_opt.events_port = (int)v; break;
		case O_EVUSER: wl_opt.events_user = optarg; break;
		case 'v':
		case O_VERBOSE: wl_opt.verbose = true; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wd-load: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	rng_state ^= (uint64_t)wl_opt.seed * 0x9E3779B97F4A7C15ull;
	if (rng_state == 0)
		rng_state = 1;
	srand(wl_opt.seed);
	signal(SIGPIPE, SIG_IGN);
	wl_loop = uv_default_loop();

	int rc;
	const char *m = wl_opt.mode;
	if (strcmp(m, "imap") == 0) {
		if (wl_opt.port == 0) wl_opt.port = 9993;
		rc = wl_mode_imap();
	} else if (strcmp(m, "lmtp") == 0) {
		if (wl_opt.port == 0) wl_opt.port = 2424;
		rc = wl_mode_lmtp();
	} else if (strcmp(m, "pop3") == 0) {
		if (wl_opt.port == 0) wl_opt.port = 9995;
		rc = wl_mode_pop3();
	} else if (strcmp(m, "idle") == 0) {
		if (wl_opt.port == 0) wl_opt.port = 9993;
		rc = wl_mode_idle();
	} else if (strcmp(m, "notify") == 0) {
		rc = wl_mode_notify();
	} else {
		fprintf(stderr, "wd-load: unknown mode %s\n", m);
		usage(stderr);
		return 2;
	}
	wl_transport_cleanup();
	return rc;
}
