/* wdctl gc: one pass of every periodic clean-up, for cron on servers that
 * do not expire data themselves (FerretDB) and for operators who want it
 * now:
 *   1. TTL data (journal 3 h, threads 180 d, authlog and app passwords past
 *      `expires`) when the database does not enforce TTL indexes;
 *   2. retention: expired messages deleted (archived unless copied or their
 *      user was deleted), archived messages past their date purged, in
 *      batches until none is left;
 *   3. counters left by interrupted writes (a process killed between a
 *      store's counter changes and its insert): attachment references and
 *      storageUsed recounted and set where they have not changed for the
 *      settle time (default 60 min, `--settle-minutes`; cmd-check.c);
 *   4. attachment files no message references any more, once their counters
 *      have been at zero for the grace period (default 24 h, as WildDuck).
 * Every step is idempotent, so two runs at once only repeat work. */
#include "wdctl.h"

#include "wd-store-attachment.h"
#include "wd-store-journal.h"
#include "wd-store-message.h"
#include "wd-str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETENTION_BATCH 1000
#define RETENTION_MAX_BATCHES 10000

int wdctl_gc(struct wdctl *ctl, int argc, char **argv)
{
	int64_t grace_hours = 24, settle_minutes = 60;
	for (int i = 0; i < argc; i++) {
		uint64_t value;
		bool grace = strcmp(argv[i], "--grace-hours") == 0;
		if ((grace || strcmp(argv[i], "--settle-minutes") == 0) && i + 1 < argc &&
		    wd_str_to_uint64(argv[i + 1], strlen(argv[i + 1]), &value) == 0 &&
		    value <= 24 * 365 * 60) {
			*(grace ? &grace_hours : &settle_minutes) = (int64_t)value;
			i++;
		} else {
			return wdctl_fail("usage: wdctl gc [--grace-hours N] [--settle-minutes N]");
		}
	}
	if (grace_hours > 24 * 365)
		return wdctl_fail("gc: --grace-hours at most %d", 24 * 365);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	char *error = NULL;

	struct wd_store_expiry_report expiry = { 0 };
	if (wd_store_expire_ttl(ctl->store, now, &expiry, &error) < 0)
		goto fail;
	printf("expired: %lld journal entries, %lld threads, %lld authlog entries, "
	       "%lld app passwords\n",
	       (long long)expiry.journal, (long long)expiry.threads, (long long)expiry.authlog,
	       (long long)expiry.asps);

	struct wd_retention_report total = { 0 };
	for (int batch = 0; batch < RETENTION_MAX_BATCHES; batch++) {
		struct wd_retention_report report = { 0 };
		if (wd_store_retention_gc(ctl->store, now, RETENTION_BATCH, &report, &error) < 0)
			goto fail;
		total.expired += report.expired;
		total.archived += report.archived;
		total.purged += report.purged;
		if (report.expired == 0 && report.purged == 0)
			break;
	}
	printf("retention: %u messages deleted (%u of them archived), %u archived messages "
	       "purged\n",
	       total.expired, total.archived, total.purged);

	unsigned found, repaired;
	if (wdctl_recount_settled(ctl, now - settle_minutes * 60 * 1000, &found, &repaired) != 0)
		return WDCTL_EXIT_FAIL;
	printf("interrupted writes: %u settled counters off, %u set to the recount\n", found,
	       repaired);

	struct wd_attachment_gc_report gc = { 0 };
	if (wd_store_attachment_gc(ctl->store, now, grace_hours * 3600 * 1000, &gc, &error) < 0)
		goto fail;
	printf("attachments: %u unreferenced files removed, %u sets of orphan chunks removed\n",
	       gc.files, gc.orphan_chunk_sets);
	return WDCTL_EXIT_OK;
fail:
	wdctl_fail("gc: %s", error != NULL ? error : "failed");
	free(error);
	return WDCTL_EXIT_FAIL;
}
