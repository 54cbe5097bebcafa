/* Every route wd-api serves: one table per resource module, in the order
 * /api-methods and /openapi.json list them. */
#include "api.h"

#include <pthread.h>

extern const struct api_route api_routes_meta[];
extern const struct api_route api_routes_auth[];
extern const struct api_route api_routes_users[];
extern const struct api_route api_routes_addresses[];
extern const struct api_route api_routes_domainaliases[];
extern const struct api_route api_routes_mailboxes[];
extern const struct api_route api_routes_messages[];
extern const struct api_route api_routes_submit[];
extern const struct api_route api_routes_messagelog[];
extern const struct api_route api_routes_filters[];
extern const struct api_route api_routes_autoreply[];
extern const struct api_route api_routes_asps[];
extern const struct api_route api_routes_2fa[];
extern const struct api_route api_routes_storage[];
extern const struct api_route api_routes_updates[];

static const struct api_route *const tables[] = {
	api_routes_meta, api_routes_auth, api_routes_users, api_routes_addresses,
	api_routes_domainaliases, api_routes_mailboxes, api_routes_messages, api_routes_submit,
	api_routes_messagelog,
	api_routes_filters, api_routes_autoreply, api_routes_asps, api_routes_2fa,
	api_routes_storage, api_routes_updates,
};

#define MAX_ROUTES 512

static const struct api_route *all[MAX_ROUTES];
static size_t all_count;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void collect(void)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct api_route *r = tables[t]; r->path != NULL; r++)
			if (all_count < MAX_ROUTES)
				all[all_count++] = r;
}

const struct api_route *const *api_routes_all(size_t *count_r)
{
	pthread_once(&once, collect);
	*count_r = all_count;
	return all;
}
