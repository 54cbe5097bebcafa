/* Log routing into Dovecot (wildduck-dovecot-log.h). */
#include "lib.h"

#include "wildduck-dovecot-log.h"
#include "wd-log.h"

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_t dovecot_thread;

/* A line from another thread: stderr, one write, cut to 1 KiB. */
static bool log_elsewhere(const char *prefix, const char *domain, const char *text)
{
	if (pthread_equal(pthread_self(), dovecot_thread))
		return FALSE;
	char line[1024];
	int n = snprintf(line, sizeof(line), "wildduck %s%s: %s\n", prefix, domain, text);
	if (n > 0) {
		if ((size_t)n >= sizeof(line)) {
			n = sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		ssize_t ret = write(STDERR_FILENO, line, (size_t)n);
		(void)ret;
	}
	return TRUE;
}

static void wd_log_to_dovecot(enum wd_log_level level, const char *component, const char *text,
			      void *context ATTR_UNUSED)
{
	if (log_elsewhere(component, "", text))
		return;
	switch (level) {
	case WD_LOG_DEBUG:
		i_debug("wildduck %s: %s", component, text);
		break;
	case WD_LOG_INFO:
		i_info("wildduck %s: %s", component, text);
		break;
	case WD_LOG_WARNING:
		i_warning("wildduck %s: %s", component, text);
		break;
	case WD_LOG_ERROR:
	case WD_LOG_FATAL:
		i_error("wildduck %s: %s", component, text);
		break;
	}
}

static void mongoc_log_to_dovecot(mongoc_log_level_t level, const char *domain,
				  const char *message, void *context ATTR_UNUSED)
{
	if (level > MONGOC_LOG_LEVEL_WARNING || strstr(message, "\"endSessions\"") != NULL ||
	    log_elsewhere("mongoc ", domain, message))
		return;
	if (level <= MONGOC_LOG_LEVEL_CRITICAL)
		i_error("wildduck mongoc %s: %s", domain, message);
	else
		i_warning("wildduck mongoc %s: %s", domain, message);
}

void wildduck_dovecot_log_init(void)
{
	dovecot_thread = pthread_self();
	wd_log_set_handler(wd_log_to_dovecot, NULL);
	mongoc_log_set_handler(mongoc_log_to_dovecot, NULL);
}

void wildduck_dovecot_log_deinit(void)
{
	mongoc_log_set_handler(NULL, NULL);
	wd_log_set_handler(NULL, NULL);
}
