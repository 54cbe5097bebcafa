/* Logging sink. The stderr format is
 *   2026-11-29T02:50:19.123Z wd-server[1234] warning imap: text
 * one line per message (newlines inside the text are replaced by spaces, so a
 * hostile string cannot forge log lines). Syslog gets "component: text". */
#include "wd-log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "wildduck-c";
static enum wd_log_sink log_sink = WD_LOG_SINK_STDERR;
static enum wd_log_level log_min_level = WD_LOG_INFO;
static wd_log_handler_fn *log_handler;
static void *log_handler_context;

static const char *const level_names[] = { "debug", "info", "warning", "error", "fatal" };
static const int syslog_priorities[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT };

void wd_log_init(const char *ident, enum wd_log_sink sink, enum wd_log_level min_level)
{
	log_ident = ident;
	log_sink = sink;
	log_min_level = min_level;
	if (sink == WD_LOG_SINK_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void wd_log_set_handler(wd_log_handler_fn *handler, void *context)
{
	log_handler = handler;
	log_handler_context = context;
}

void wd_log_set_level(enum wd_log_level min_level)
{
	log_min_level = min_level;
}

int wd_log_enabled(enum wd_log_level level)
{
	return level >= log_min_level;
}

int wd_log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	}
	if (strcasecmp(name, "warn") == 0)
		return WD_LOG_WARNING;
	return -1;
}

void wd_logv(enum wd_log_level level, const char *component, const char *fmt, va_list ap)
{
	if (level < log_min_level)
		return;
	char text[2048];
	vsnprintf(text, sizeof(text), fmt, ap);
	for (char *p = text; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	if (log_handler != NULL) {
		log_handler(level, component, text, log_handler_context);
		return;
	}
	if (log_sink == WD_LOG_SINK_SYSLOG) {
		syslog(syslog_priorities[level], "%s: %s", component, text);
		return;
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	char line[2300];
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s %s: %s\n",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)(tv.tv_usec / 1000), log_ident, (int)getpid(),
			 level_names[level], component, text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ssize_t ret = write(STDERR_FILENO, line, (size_t)n);
	(void)ret;
}

void wd_log(enum wd_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wd_logv(level, component, fmt, ap);
	va_end(ap);
}

void wd_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wd_logv(WD_LOG_FATAL, "panic", fmt, ap);
	va_end(ap);
	abort();
}
