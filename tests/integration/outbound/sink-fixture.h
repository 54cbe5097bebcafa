#ifndef SINK_FIXTURE_H
#define SINK_FIXTURE_H

/* tests/clients/smtpsink.py driven from C tests: start it with the answers
 * it should give (its --reply etc. options), read back what it recorded.
 * The sink dies with the test process (PR_SET_PDEATHSIG), also after a
 * failed assertion. Static functions: each test stays one translation
 * unit. Needs WD_SOURCE_DIR (set by meson's test environment). */

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static inline int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Wait until cond() holds (polling every 20 ms), at most ms. */
#define WAIT_FOR(cond, ms)                                                          \
	do {                                                                        \
		int64_t until_ = mono_ms() + (ms);                                  \
		while (!(cond) && mono_ms() < until_)                               \
			sleep_ms(20);                                               \
	} while (0)

struct sink {
	pid_t pid;
	int port;
	char dir[256];
};

static inline void sink_start(struct sink *s, const char *const *extra)
{
	const char *src = getenv("WD_SOURCE_DIR");
	char script[1024];
	snprintf(script, sizeof(script), "%s/tests/clients/smtpsink.py", src != NULL ? src : ".");
	snprintf(s->dir, sizeof(s->dir), "/tmp/wd-sink-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	const char *argv[32] = { "python3", script, "--dir", s->dir };
	size_t n = 4;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		/* the sink ends with this test process, even after a failed assertion */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		char log[300];
		snprintf(log, sizeof(log), "%s/sink.log", s->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	char line[256] = "";
	size_t len = 0;
	struct pollfd p = { .fd = fds[0], .events = POLLIN };
	while (len < sizeof(line) - 1 && strchr(line, '\n') == NULL && poll(&p, 1, 15000) > 0) {
		ssize_t r = read(fds[0], line + len, sizeof(line) - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		line[len] = '\0';
	}
	close(fds[0]);
	const char *port = strstr(line, "\"port\": ");
	assert_non_null(port);
	s->port = atoi(port + 8);
	assert_true(s->port > 0);
}

static inline void sink_stop(struct sink *s)
{
	kill(s->pid, SIGTERM);
	waitpid(s->pid, NULL, 0);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
	assert_int_equal(system(cmd), 0);
}

static inline int sink_count(const struct sink *s)
{
	DIR *d = opendir(s->dir);
	int n = 0;
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		n += l > 5 && strcmp(e->d_name + l - 5, ".json") == 0;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

static inline char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)len + 1);
	size_t got = fread(buf, 1, (size_t)len, f);
	fclose(f);
	buf[got] = '\0';
	if (len_r != NULL)
		*len_r = got;
	return buf;
}

static inline char *sink_record(const struct sink *s, int n, const char *ext, size_t *len_r)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%06d.%s", s->dir, n, ext);
	return read_file(path, len_r);
}

static inline char *sink_events(const struct sink *s)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/events.jsonl", s->dir);
	char *text = read_file(path, NULL);
	return text != NULL ? text : strdup("");
}

static inline int count_substr(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

#endif
