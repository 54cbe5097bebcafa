/* Fixed-window request counting per client address (rate.h): an open
 * addressing table under one mutex; a request costs one hash and one probe
 * sequence. */
#include "rate.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TABLE_SIZE (API_RATE_MAX_CLIENTS * 2) /* load factor <= 1/2 */

struct slot {
	char client[46]; /* "" = free */
	uint32_t window; /* window number (seconds / window length) */
	uint32_t count;
};

struct api_rate {
	pthread_mutex_t lock;
	unsigned limit, window_seconds;
	unsigned used;
	struct slot *slots;
};

struct api_rate *api_rate_create(unsigned limit, unsigned window_seconds)
{
	struct api_rate *rate = calloc(1, sizeof(*rate));
	if (rate == NULL)
		return NULL;
	rate->limit = limit;
	rate->window_seconds = window_seconds > 0 ? window_seconds : 60;
	pthread_mutex_init(&rate->lock, NULL);
	if (limit > 0) {
		rate->slots = calloc(TABLE_SIZE, sizeof(*rate->slots));
		if (rate->slots == NULL) {
			free(rate);
			return NULL;
		}
	}
	return rate;
}

void api_rate_destroy(struct api_rate **rate)
{
	if (*rate == NULL)
		return;
	pthread_mutex_destroy(&(*rate)->lock);
	free((*rate)->slots);
	free(*rate);
	*rate = NULL;
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* Drops every slot of a past window (called when the table is full). */
static void sweep(struct api_rate *rate, uint32_t window)
{
	struct slot *old = rate->slots;
	struct slot *fresh = calloc(TABLE_SIZE, sizeof(*fresh));
	if (fresh == NULL) {
		memset(old, 0, TABLE_SIZE * sizeof(*old));
		rate->used = 0;
		return;
	}
	rate->used = 0;
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		if (old[i].client[0] == '\0' || old[i].window != window)
			continue;
		size_t j = hash(old[i].client) % TABLE_SIZE;
		while (fresh[j].client[0] != '\0')
			j = (j + 1) % TABLE_SIZE;
		fresh[j] = old[i];
		rate->used++;
	}
	free(old);
	rate->slots = fresh;
	if (rate->used >= API_RATE_MAX_CLIENTS) { /* all current: start over */
		memset(rate->slots, 0, TABLE_SIZE * sizeof(*rate->slots));
		rate->used = 0;
	}
}

bool api_rate_allow(struct api_rate *rate, const char *client)
{
	if (rate == NULL || rate->limit == 0)
		return true;
	uint32_t window = (uint32_t)(time(NULL) / rate->window_seconds);
	pthread_mutex_lock(&rate->lock);
	size_t i = hash(client) % TABLE_SIZE;
	while (rate->slots[i].client[0] != '\0' && strcmp(rate->slots[i].client, client) != 0)
		i = (i + 1) % TABLE_SIZE;
	struct slot *slot = &rate->slots[i];
	if (slot->client[0] == '\0') {
		if (rate->used >= API_RATE_MAX_CLIENTS) {
			sweep(rate, window);
			pthread_mutex_unlock(&rate->lock);
			return api_rate_allow(rate, client);
		}
		snprintf(slot->client, sizeof(slot->client), "%s", client);
		slot->window = window;
		slot->count = 0;
		rate->used++;
	}
	if (slot->window != window) {
		slot->window = window;
		slot->count = 0;
	}
	bool allowed = slot->count < rate->limit;
	if (allowed)
		slot->count++;
	pthread_mutex_unlock(&rate->lock);
	return allowed;
}
