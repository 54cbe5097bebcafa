#ifndef API_RATE_H
#define API_RATE_H

/* Requests per client address (rate.c): a fixed window per address, kept
 * in memory of this process (each wd-api instance limits on its own; put a
 * proxy in front for a cluster-wide limit). The table holds at most
 * API_RATE_MAX_CLIENTS addresses; when it is full the oldest windows are
 * dropped, so memory stays bounded whatever the number of clients. */

#include <stdbool.h>

#define API_RATE_MAX_CLIENTS 65536

struct api_rate;

/* limit 0: everything is allowed. */
struct api_rate *api_rate_create(unsigned limit, unsigned window_seconds);
void api_rate_destroy(struct api_rate **rate);
/* Counts one request from `client`; false once the window's limit is used. */
bool api_rate_allow(struct api_rate *rate, const char *client);

#endif
