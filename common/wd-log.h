#ifndef WD_LOG_H
#define WD_LOG_H

/* Logging: levels, a component tag per message ("imap", "store", "conn"), and
 * one sink for the process: stderr (default) or syslog. Safe to call from any
 * thread; each message is written with a single write(2) so lines from
 * different threads never interleave. */

#include <stdarg.h>
#include <stdbool.h>

enum wd_log_level {
	WD_LOG_DEBUG,
	WD_LOG_INFO,
	WD_LOG_WARNING,
	WD_LOG_ERROR,
	WD_LOG_FATAL,
};

enum wd_log_sink {
	WD_LOG_SINK_STDERR,
	WD_LOG_SINK_SYSLOG,
};

/* ident is the program name used for syslog and the stderr prefix. */
void wd_log_init(const char *ident, enum wd_log_sink sink, enum wd_log_level min_level);
void wd_log_set_level(enum wd_log_level min_level);
/* stderr lines as JSON objects (log.c describes the fields) instead of text. */
void wd_log_set_json(bool json);
int wd_log_enabled(enum wd_log_level level);
/* "debug", "info", "warning"/"warn", "error", "fatal"; -1 when unknown. */
int wd_log_level_parse(const char *name);

void wd_log(enum wd_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void wd_logv(enum wd_log_level level, const char *component, const char *fmt, va_list ap);

/* For code loaded into another program that has its own log (the Dovecot
   plugins): every message at or above the minimum level goes to `handler`,
   with newlines already replaced, instead of stderr or syslog. NULL
   restores the sink of wd_log_init(). Set it before other threads log. */
typedef void wd_log_handler_fn(enum wd_log_level level, const char *component, const char *text,
			       void *context);
void wd_log_set_handler(wd_log_handler_fn *handler, void *context);

#define wd_debug(component, ...) \
	do { if (wd_log_enabled(WD_LOG_DEBUG)) wd_log(WD_LOG_DEBUG, component, __VA_ARGS__); } while (0)
#define wd_info(component, ...) wd_log(WD_LOG_INFO, component, __VA_ARGS__)
#define wd_warning(component, ...) wd_log(WD_LOG_WARNING, component, __VA_ARGS__)
#define wd_error(component, ...) wd_log(WD_LOG_ERROR, component, __VA_ARGS__)

/* Invariants only (STYLE.md, example 13): bad input is an error, never an assert. */
#define wd_assert(expr) \
	do { if (!(expr)) wd_panic("assertion failed: %s (%s:%d)", #expr, __FILE__, __LINE__); } while (0)
void wd_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
