/* The LMTP service of wd-server (wd-service.h): reads the settings,
 * creates the delivery pipeline with its outbound queue, and the server.
 * Kept apart from the engine so that the engine links against any
 * implementation of wd-deliver.h (the engine tests use a fake one). */
#include "lmtp-server.h"

#include "wd-deliver.h"
#include "wd-outbound.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lmtp_service {
	struct wd_lmtp_server *server;
	/* where the pipeline queues forwards and autoreplies; outlives it */
	struct wd_outbound *outbound;
};

static void service_destroy(void **instance)
{
	struct lmtp_service *service = *instance;
	*instance = NULL;
	if (service == NULL)
		return;
	wd_lmtp_server_destroy(&service->server); /* and the pipeline */
	wd_outbound_destroy(&service->outbound);
	free(service);
}

static int service_create(const struct wd_server_deps *deps, void **instance_r, char **error_r)
{
	struct wd_lmtp_settings set;
	const char *error = NULL;
	*instance_r = NULL;
	if (wd_lmtp_settings_read(deps->config, &set, &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	if (!set.enabled)
		return WD_OK;
	/* every loop listens on the first loop's port (SO_REUSEPORT) */
	if (deps->first != NULL)
		set.port = wd_lmtp_server_port(((struct lmtp_service *)deps->first)->server);
	struct lmtp_service *service = calloc(1, sizeof(*service));
	if (service == NULL) {
		*error_r = strdup("out of memory");
		return WD_ERROR;
	}
	struct wd_deliver *deliver = wd_deliver_create(deps->store, deps->auth, deps->config,
						       error_r);
	if (deliver == NULL) {
		free(service);
		return WD_ERROR;
	}
	/* forwards and autoreplies go to the outbound queue (ZoneMTA's format),
	   which wd-server's sender (sender.enabled) or a ZoneMTA delivers */
	service->outbound = wd_outbound_create(deps->store, deps->config, error_r);
	if (service->outbound == NULL) {
		wd_deliver_destroy(&deliver);
		free(service);
		return WD_ERROR;
	}
	wd_deliver_set_outbound(deliver, service->outbound);
	service->server = wd_lmtp_server_create(deps, &set, deliver, error_r);
	if (service->server == NULL) {
		void *instance = service;
		service_destroy(&instance);
		return WD_ERROR;
	}
	*instance_r = service;
	return WD_OK;
}

static void service_describe(void *instance, char *buf, size_t size)
{
	wd_lmtp_server_describe(((struct lmtp_service *)instance)->server, buf, size);
}

static void service_shutdown(void *instance)
{
	wd_lmtp_server_shutdown(((struct lmtp_service *)instance)->server);
}

static unsigned service_session_count(void *instance)
{
	return wd_lmtp_server_session_count(((struct lmtp_service *)instance)->server);
}

const struct wd_service wd_lmtp_service = {
	.name = "lmtp",
	.create = service_create,
	.describe = service_describe,
	.shutdown = service_shutdown,
	.session_count = service_session_count,
	.destroy = service_destroy,
};
