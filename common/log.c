/* Logging sink. The stderr format is
 *   2026-11-29T02:50:19.123Z wd-server[1234] warning imap: text
 * one line per message (newlines inside the text are replaced by spaces, so a
 * hostile string cannot forge log lines). Syslog gets "component: text".
 *
 * With log.format = "json" each stderr line is one JSON object instead:
 *   {"time":"2026-11-29T02:50:19.123Z","program":"wd-server","pid":1234,
 *    "level":"warning","component":"imap","session":"00d2a1f3c0ffee01",
 *    "msg":"text"}
 * "session" is present when the text starts with a session id (16 hex
 * digits and ": ", how every session logs); strings are escaped, invalid
 * UTF-8 becomes U+FFFD, so every line parses. */
#include "wd-log.h"

#include <stdbool.h>
#include <stdint.h>
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
static bool log_json;
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

void wd_log_set_json(bool json)
{
	log_json = json;
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

/* Appends s as the body of a JSON string (no quotes) at out[*len], at most
   size - 1 bytes in all; invalid UTF-8 becomes U+FFFD. */
static void json_escape(char *out, size_t size, size_t *len, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	while (*p != '\0' && *len + 12 < size) {
		uint8_t c = *p;
		size_t seq = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 && c >= 0xc2 ? 2 :
			     (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 && c <= 0xf4 ? 4 : 0;
		for (size_t i = 1; i < seq; i++) {
			if ((p[i] & 0xc0) != 0x80)
				seq = 0;
		}
		/* overlong 3/4-byte forms, surrogates, above U+10FFFF */
		if ((seq == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) ||
		    (seq == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))))
			seq = 0;
		if (seq == 0) {
			*len += (size_t)snprintf(out + *len, size - *len, "\\ufffd");
			p++;
		} else if (c == '"' || c == '\\') {
			out[(*len)++] = '\\';
			out[(*len)++] = (char)c;
			p++;
		} else if (c < 0x20) {
			*len += (size_t)snprintf(out + *len, size - *len, "\\u%04x", c);
			p++;
		} else {
			memcpy(out + *len, p, seq);
			*len += seq;
			p += seq;
		}
	}
	out[*len] = '\0';
}

static void write_json_line(const char *stamp, enum wd_log_level level, const char *component,
			    const char *text)
{
	char line[8192];
	size_t len = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"program\":\"",
				      stamp);
	json_escape(line, sizeof(line), &len, log_ident);
	len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"pid\":%d,\"level\":\"%s\","
				"\"component\":\"", (int)getpid(), level_names[level]);
	json_escape(line, sizeof(line), &len, component);
	/* a session's lines start with its id: "0123456789abcdef: text" */
	size_t hex = strspn(text, "0123456789abcdef");
	if (hex == 16 && text[16] == ':' && text[17] == ' ') {
		len += (size_t)snprintf(line + len, sizeof(line) - len,
					"\",\"session\":\"%.16s", text);
		text += 18;
	}
	len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
	json_escape(line, sizeof(line) - 3, &len, text);
	memcpy(line + len, "\"}\n", 3);
	len += 3;
	ssize_t ret = write(STDERR_FILENO, line, len);
	(void)ret;
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
	char stamp[80];
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(tv.tv_usec / 1000));
	if (log_json) {
		write_json_line(stamp, level, component, text);
		return;
	}
	char line[2300];
	int n = snprintf(line, sizeof(line), "%s %s[%d] %s %s: %s\n", stamp, log_ident,
			 (int)getpid(), level_names[level], component, text);
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
