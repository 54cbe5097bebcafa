/* Per-user connection leases across instances (imap-lease.h): the
 * release and renewal jobs. Jobs carry copies of what they need (user ids,
 * holder names), never session pointers, so a session may be gone by the
 * time its release runs. */
#include "imap-lease.h"

#include "imap-session.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-lease.h"
#include "wd-worker-pool.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lease_entry {
	bson_oid_t user;
	char holder[WD_IMAP_LEASE_HOLDER_MAX];
};

/* One job: release one lease, or renew many (sorted by user). */
struct lease_job {
	struct wd_work work;
	struct wd_store *store;
	bool renew;
	size_t count;
	struct lease_entry entries[];
};

void wd_imap_lease_holder(const struct wd_imap_session *session, char *buf, unsigned size)
{
	snprintf(buf, size, "%s:%s", session->server->instance_id, session->id);
}

static void lease_work(struct wd_work *work)
{
	struct lease_job *job = work->context;
	if (!job->renew) {
		wd_store_lease_release(job->store, WD_IMAP_LEASE_KIND, &job->entries[0].user,
				       job->entries[0].holder);
		return;
	}
	const char **holders = malloc(job->count * sizeof(*holders));
	if (holders == NULL)
		return;
	size_t failed = 0;
	for (size_t start = 0; start < job->count;) {
		size_t end = start;
		while (end < job->count &&
		       bson_oid_equal(&job->entries[end].user, &job->entries[start].user)) {
			holders[end - start] = job->entries[end].holder;
			end++;
		}
		if (wd_store_lease_renew(job->store, WD_IMAP_LEASE_KIND, &job->entries[start].user,
					 holders, end - start,
					 WD_IMAP_LEASE_MS) != WD_LEASE_GRANTED)
			failed++;
		start = end;
	}
	if (failed > 0)
		wd_warning("imap", "connection leases: %zu users not renewed (Redis unreachable)",
			   failed);
	free(holders);
}

static void lease_done(struct wd_work *work, int status)
{
	free(work->context);
}

static void submit(struct wd_imap_server *server, struct lease_job *job)
{
	const char *error;
	job->store = server->deps.store;
	job->work.work = lease_work;
	job->work.done = lease_done;
	job->work.context = job;
	if (wd_worker_pool_submit(server->deps.pool, server->deps.queue, &job->work, &error) < 0) {
		/* the lease runs out by itself */
		wd_warning("imap", "connection lease job refused: %s", error);
		free(job);
	}
}

void wd_imap_lease_drop(struct wd_imap_server *server, const bson_oid_t *user,
			const char *holder)
{
	struct lease_job *job = calloc(1, sizeof(*job) + sizeof(struct lease_entry));
	if (job == NULL)
		return;
	job->count = 1;
	bson_oid_copy(user, &job->entries[0].user);
	snprintf(job->entries[0].holder, sizeof(job->entries[0].holder), "%s", holder);
	submit(server, job);
}

void wd_imap_lease_release(struct wd_imap_session *session)
{
	if (!session->leased)
		return;
	session->leased = false;
	char holder[WD_IMAP_LEASE_HOLDER_MAX];
	wd_imap_lease_holder(session, holder, sizeof(holder));
	wd_imap_lease_drop(session->server, &session->user, holder);
}

static int entry_compare(const void *a, const void *b)
{
	return bson_oid_compare(&((const struct lease_entry *)a)->user,
				&((const struct lease_entry *)b)->user);
}

static void renew_timer(uv_timer_t *timer)
{
	struct wd_imap_server *server = timer->data;
	size_t count = 0;
	for (struct wd_imap_session *s = server->sessions; s != NULL; s = s->next)
		count += s->leased;
	if (count == 0)
		return;
	struct lease_job *job = calloc(1, sizeof(*job) + count * sizeof(struct lease_entry));
	if (job == NULL)
		return;
	job->renew = true;
	for (struct wd_imap_session *s = server->sessions; s != NULL; s = s->next) {
		if (!s->leased)
			continue;
		struct lease_entry *e = &job->entries[job->count++];
		bson_oid_copy(&s->user, &e->user);
		wd_imap_lease_holder(s, e->holder, sizeof(e->holder));
	}
	qsort(job->entries, job->count, sizeof(job->entries[0]), entry_compare);
	submit(server, job);
}

int wd_imap_lease_start(struct wd_imap_server *server)
{
	uint8_t random[8];
	if (RAND_bytes(random, sizeof(random)) != 1)
		return WD_ERROR;
	snprintf(server->instance_id, sizeof(server->instance_id),
		 "%02x%02x%02x%02x%02x%02x%02x%02x", random[0], random[1], random[2], random[3],
		 random[4], random[5], random[6], random[7]);
	uv_timer_init(server->deps.loop, &server->lease_timer);
	server->lease_timer.data = server;
	server->lease_timer_started = true;
	return uv_timer_start(&server->lease_timer, renew_timer, WD_IMAP_LEASE_RENEW_MS,
			      WD_IMAP_LEASE_RENEW_MS) == 0 ?
		       WD_OK :
		       WD_ERROR;
}

void wd_imap_lease_stop(struct wd_imap_server *server)
{
	if (!server->lease_timer_started)
		return;
	server->lease_timer_started = false;
	uv_timer_stop(&server->lease_timer);
	if (!uv_is_closing((uv_handle_t *)&server->lease_timer))
		uv_close((uv_handle_t *)&server->lease_timer, NULL);
}
