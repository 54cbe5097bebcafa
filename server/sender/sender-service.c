/* The outbound sender as a service of wd-server (wd-service.h).
 *
 * Enabled by sender.enabled (default false: the queue is still written by
 * LMTP delivery and the API, for an external ZoneMTA to deliver). The
 * service is `once`: one sender per process, on the first loop, whatever
 * workers.loops says; any number of wd-server processes may each run one
 * on the same queue (docs/OUTBOUND.md). The sender is a thread of its own
 * (libwdoutbound's wd_outbound_sender_start), because its database calls
 * and SMTP exchanges are blocking; the loop only starts and stops it.
 *
 * It counts as one session while it runs, so that wd-server's shutdown
 * waits for it; shutdown stops the thread at once (an SMTP exchange in
 * progress is abandoned and its entry unlocked) and the count drops to 0. */
#include "wd-config.h"
#include "wd-outbound.h"
#include "wd-result.h"
#include "wd-service.h"

#include <stdlib.h>
#include <string.h>

struct sender_service {
	struct wd_outbound *outbound;
};

static int service_create(const struct wd_server_deps *deps, void **instance_r, char **error_r)
{
	*instance_r = NULL;
	bool enabled = false;
	const char *error = NULL;
	if (wd_config_get_bool(deps->config, "sender.enabled", false, &enabled, &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	if (!enabled)
		return WD_OK;
	struct sender_service *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*error_r = strdup("out of memory");
		return WD_ERROR;
	}
	s->outbound = wd_outbound_create(deps->store, deps->config, error_r);
	if (s->outbound == NULL || wd_outbound_sender_start(s->outbound, error_r) < 0) {
		wd_outbound_destroy(&s->outbound);
		free(s);
		return WD_ERROR;
	}
	*instance_r = s;
	return WD_OK;
}

static void service_describe(void *instance, char *buf, size_t size)
{
	struct sender_service *s = instance;
	wd_outbound_describe(s->outbound, buf, size);
}

static void service_shutdown(void *instance)
{
	struct sender_service *s = instance;
	wd_outbound_sender_stop(s->outbound);
}

static unsigned service_session_count(void *instance)
{
	struct sender_service *s = instance;
	return wd_outbound_sender_running(s->outbound) ? 1 : 0;
}

static void service_destroy(void **instance)
{
	struct sender_service *s = *instance;
	*instance = NULL;
	if (s == NULL)
		return;
	wd_outbound_destroy(&s->outbound);
	free(s);
}

const struct wd_service wd_outbound_service = {
	.name = "sender",
	.once = true,
	.create = service_create,
	.describe = service_describe,
	.shutdown = service_shutdown,
	.session_count = service_session_count,
	.destroy = service_destroy,
};
