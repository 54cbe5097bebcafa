/* The fake delivery pipeline of the engine tests (fake-deliver.h). */
#include "fake-deliver.h"

#include "wd-deliver.h"
#include "wd-result.h"
#include "wd-str.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wd_deliver {
	int unused;
};

struct wd_deliver_rcpt {
	char address[300];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_delivery *deliveries;
static size_t delivery_count;
static uint64_t max_size;
static long rcpts_alive;

struct wd_deliver *wd_deliver_create(struct wd_store *store, struct wd_auth *auth,
				     const struct wd_config *config, char **error_r)
{
	return calloc(1, sizeof(struct wd_deliver));
}

void wd_deliver_destroy(struct wd_deliver **deliver)
{
	free(*deliver);
	*deliver = NULL;
}

static void set_reply(struct wd_deliver_reply *reply, unsigned code, const char *status,
		      const char *text)
{
	reply->code = code;
	wd_strlcpy(reply->status, status, sizeof(reply->status));
	wd_strlcpy(reply->text, text, sizeof(reply->text));
}

struct wd_deliver_rcpt *wd_deliver_check_rcpt(struct wd_deliver *deliver, const char *address,
					      struct wd_deliver_reply *reply_r)
{
	if (wd_str_has_prefix(address, "unknown")) {
		set_reply(reply_r, 550, "5.1.1", "Unknown recipient");
		return NULL;
	}
	if (wd_str_has_prefix(address, "full")) {
		set_reply(reply_r, 452, "4.2.2", "Mailbox full");
		return NULL;
	}
	if (wd_str_has_prefix(address, "slowrcpt"))
		usleep(300 * 1000);
	struct wd_deliver_rcpt *rcpt = calloc(1, sizeof(*rcpt));
	wd_strlcpy(rcpt->address, address, sizeof(rcpt->address));
	pthread_mutex_lock(&lock);
	rcpts_alive++;
	pthread_mutex_unlock(&lock);
	set_reply(reply_r, 250, "2.1.5", "OK");
	return rcpt;
}

void wd_deliver_rcpt_free(struct wd_deliver_rcpt **rcpt)
{
	if (*rcpt == NULL)
		return;
	free(*rcpt);
	*rcpt = NULL;
	pthread_mutex_lock(&lock);
	rcpts_alive--;
	pthread_mutex_unlock(&lock);
}

const char *wd_deliver_rcpt_address(const struct wd_deliver_rcpt *rcpt)
{
	return rcpt->address;
}

int wd_deliver_message(struct wd_deliver *deliver, const struct wd_deliver_envelope *envelope,
		       struct wd_deliver_rcpt *const *rcpts, size_t count, const uint8_t *raw,
		       size_t len, struct wd_deliver_reply *replies)
{
	for (size_t i = 0; i < count; i++) {
		const char *address = rcpts[i]->address;
		if (wd_str_has_prefix(address, "slow"))
			usleep(500 * 1000);
		if (wd_str_has_prefix(address, "quota")) {
			set_reply(&replies[i], 552, "5.2.2", "Mailbox over quota");
			continue;
		}
		struct fake_delivery d = { 0 };
		wd_strlcpy(d.mail_from, envelope->mail_from, sizeof(d.mail_from));
		wd_strlcpy(d.helo, envelope->helo, sizeof(d.helo));
		wd_strlcpy(d.rcpt, address, sizeof(d.rcpt));
		wd_strlcpy(d.transaction_id, envelope->transaction_id, sizeof(d.transaction_id));
		d.raw = malloc(len + 1);
		memcpy(d.raw, raw, len);
		d.len = len;
		pthread_mutex_lock(&lock);
		deliveries = realloc(deliveries, (delivery_count + 1) * sizeof(*deliveries));
		deliveries[delivery_count++] = d;
		pthread_mutex_unlock(&lock);
		replies[i].code = 250;
		wd_strlcpy(replies[i].status, "2.0.0", sizeof(replies[i].status));
		snprintf(replies[i].text, sizeof(replies[i].text), "Saved for %.200s", address);
	}
	return WD_OK;
}

uint64_t wd_deliver_max_size(const struct wd_deliver *deliver)
{
	pthread_mutex_lock(&lock);
	uint64_t max = max_size;
	pthread_mutex_unlock(&lock);
	return max;
}

const char *wd_deliver_version(void)
{
	return "fake";
}

size_t fake_deliver_count(void)
{
	pthread_mutex_lock(&lock);
	size_t n = delivery_count;
	pthread_mutex_unlock(&lock);
	return n;
}

int fake_deliver_get(size_t i, struct fake_delivery *out)
{
	int ret = WD_ERROR;
	pthread_mutex_lock(&lock);
	if (i < delivery_count) {
		*out = deliveries[i];
		out->raw = malloc(out->len + 1);
		memcpy(out->raw, deliveries[i].raw, out->len);
		ret = WD_OK;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

void fake_deliver_reset(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < delivery_count; i++)
		free(deliveries[i].raw);
	free(deliveries);
	deliveries = NULL;
	delivery_count = 0;
	max_size = 0;
	pthread_mutex_unlock(&lock);
}

void fake_deliver_set_max_size(uint64_t max)
{
	pthread_mutex_lock(&lock);
	max_size = max;
	pthread_mutex_unlock(&lock);
}

long fake_deliver_rcpts_alive(void)
{
	pthread_mutex_lock(&lock);
	long n = rcpts_alive;
	pthread_mutex_unlock(&lock);
	return n;
}
