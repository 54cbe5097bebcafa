/* Integration tests (suite imap): the selected-mailbox view loaded from the
 * real stack, and change sync from the journal and from a full re-sync
 * giving the same view; \Recent claims across threads; VANISHED (EARLIER)
 * from a loaded view. Needs WD_MONGO_URL and WD_REDIS_URL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "imap-sync.h"
#include "imap-test-stack.h"
#include "imap-view.h"
#include "wd-store-user.h"

#include <pthread.h>

static const char raw[] = "From: a@example.com\r\nTo: b@example.com\r\nSubject: view\r\n\r\n"
			  "body\r\n";

static bson_oid_t new_mailbox(void)
{
	static int n;
	char path[32], *error = NULL;
	bson_oid_t id;
	struct wd_mailbox_create opts = { 0 };
	snprintf(path, sizeof(path), "View%d", ++n);
	if (wd_store_mailbox_create(store, &user, path, &opts, &id, &error) < 0)
		fail_msg("mailbox: %s", error);
	return id;
}

static uint32_t add(const bson_oid_t *mailbox, const char *flag)
{
	const char *flags[1] = { flag };
	struct wd_message_add req = { .raw = (const uint8_t *)raw, .len = strlen(raw),
				      .flags = flags, .flag_count = flag ? 1 : 0,
				      .source = "IMAP", .session_id = "other" };
	struct wd_message_added added;
	char *error = NULL;
	if (wd_store_message_add(store, mailbox, &req, &added, &error) < 0)
		fail_msg("add: %s", error);
	return added.uid;
}

static void store_flag(const bson_oid_t *mailbox, const uint32_t *uids, size_t count,
		       const char *flag, const char *session)
{
	const char *flags[1] = { flag };
	struct wd_flags_change change = { .uids = uids, .uid_count = count, .op = WD_FLAGS_ADD,
					  .flags = flags, .flag_count = 1, .session_id = session };
	struct wd_flags_result result = { 0 };
	char *error = NULL;
	if (wd_store_message_flags(store, mailbox, &change, &result, &error) < 0)
		fail_msg("store: %s", error);
	free(result.modified);
}

static void expunge(const bson_oid_t *mailbox, const uint32_t *uids, size_t count)
{
	uint32_t *gone = NULL;
	size_t n = 0;
	char *error = NULL;
	store_flag(mailbox, uids, count, "\\Deleted", "other");
	if (wd_store_message_expunge(store, mailbox, uids, count, "other", &gone, &n, &error) < 0)
		fail_msg("expunge: %s", error);
	assert_int_equal(n, count);
	free(gone);
}

static struct wd_imap_view *load(const bson_oid_t *mailbox, uint64_t *modseq_r)
{
	struct wd_imap_view *view = NULL;
	char *error = NULL;
	if (wd_imap_view_load(store, mailbox, &view, modseq_r, &error) < 0)
		fail_msg("load: %s", error);
	return view;
}

static void assert_same_view(const struct wd_imap_view *a, const struct wd_imap_view *b)
{
	assert_int_equal(wd_imap_view_count(a), wd_imap_view_count(b));
	for (uint32_t seq = 1; seq <= wd_imap_view_count(a); seq++)
		assert_int_equal(wd_imap_view_uid(a, seq), wd_imap_view_uid(b, seq));
}

static size_t count_lines(const char *text, const char *what)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

static void test_load_state(void **state)
{
	(void)state;
	bson_oid_t box = new_mailbox();
	struct wd_imap_view *view = NULL;
	struct wd_imap_mailbox_state st;
	char *error = NULL;

	/* empty */
	assert_int_equal(wd_imap_view_load_state(store, &box, &view, &st, &error), WD_OK);
	assert_int_equal(st.exists, 0);
	assert_int_equal(st.uid_next, 1);
	assert_int_equal(st.first_unseen, 0);
	assert_true(st.uid_validity > 0);
	wd_imap_mailbox_state_free(&st);
	wd_imap_view_destroy(&view);

	for (int i = 0; i < 12; i++)
		add(&box, i < 3 ? "\\Seen" : NULL);
	uint32_t five = 5;
	store_flag(&box, &five, 1, "$Work", "other");
	assert_int_equal(wd_imap_view_load_state(store, &box, &view, &st, &error), WD_OK);
	assert_int_equal(st.exists, 12);
	assert_int_equal(wd_imap_view_count(view), 12);
	assert_int_equal(st.uid_next, 13);
	assert_int_equal(st.first_unseen, 4);
	assert_true(st.highest_modseq >= 13);
	bool work = false;
	for (size_t i = 0; i < st.flag_count; i++)
		work |= strcmp(st.flags[i], "$Work") == 0;
	assert_true(work);
	assert_int_equal(wd_imap_view_uid(view, 12), 12);
	wd_imap_mailbox_state_free(&st);
	wd_imap_view_destroy(&view);

	/* an unknown mailbox */
	bson_oid_t nobody;
	bson_oid_init(&nobody, NULL);
	assert_int_equal(wd_imap_view_load_state(store, &nobody, &view, &st, &error),
			 WD_STORE_ERR_NOT_FOUND);
	assert_null(view);
	free(error);
}

/* Catch up from the journal and from a full re-sync: the same view, the
   same expunges and EXISTS; the session's own FETCH entries not repeated. */
static void test_journal_and_full_agree(void **state)
{
	(void)state;
	bson_oid_t box = new_mailbox();
	for (int i = 0; i < 30; i++)
		add(&box, NULL);
	uint64_t m0, m1;
	struct wd_imap_view *by_journal = load(&box, &m0), *by_full = load(&box, &m1);
	assert_int_equal(m0, m1);
	assert_int_equal(wd_imap_view_count(by_journal), 30);

	/* other sessions work on the mailbox */
	for (int i = 0; i < 5; i++)
		add(&box, NULL);
	uint32_t three = 3, four = 4;
	store_flag(&box, &three, 1, "\\Flagged", "other");
	store_flag(&box, &four, 1, "\\Seen", "me"); /* this session's own STORE */
	static const uint32_t gone[] = { 10, 11, 12, 13, 14, 20 };
	expunge(&box, gone, WD_N_ELEMENTS(gone));
	uint32_t brief = add(&box, NULL);
	expunge(&box, &brief, 1);
	uint64_t now_modseq;
	struct wd_imap_view *now = load(&box, &now_modseq);
	assert_int_equal(wd_imap_view_count(now), 29);

	/* from the journal */
	struct wd_imap_sync *sj = wd_imap_sync_create(m0), *sf = wd_imap_sync_create(m1);
	struct wd_imap_changes *changes = NULL;
	char *error = NULL;
	assert_int_equal(wd_imap_sync_read_journal(store, &box, m0, "me", false, &changes, &error),
			 WD_OK);
	assert_null(changes->current);
	assert_int_equal(wd_imap_sync_add(sj, by_journal, changes), WD_OK);
	assert_int_equal(wd_imap_sync_modseq(sj), now_modseq);
	/* a SEARCH by sequence number is running: no EXPUNGE yet */
	struct wd_buffer out = WD_BUFFER_INIT;
	assert_int_equal(wd_imap_sync_emit(sj, by_journal, WD_IMAP_SYNC_CONDSTORE, &out), WD_OK);
	assert_int_equal(wd_imap_view_count(by_journal), 35); /* the brief one never shown */
	assert_true(wd_imap_sync_is_expunged(sj, 20));
	assert_int_equal(wd_imap_sync_emit(sj, by_journal,
					   WD_IMAP_SYNC_CONDSTORE | WD_IMAP_SYNC_EXPUNGE_OK, &out),
			 WD_OK);
	assert_int_equal(wd_buffer_append(&out, "", 1), WD_OK);
	const char *text = (const char *)wd_buffer_bytes(&out);
	assert_non_null(strstr(text, "* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ ("));
	assert_null(strstr(text, "UID 4 ")); /* ignore = this session */
	assert_null(strstr(text, "UID 10 ")); /* expunged: no FETCH for its \Deleted */
	assert_non_null(strstr(text, "* 35 EXISTS\r\n"));
	assert_int_equal(count_lines(text, " EXPUNGE\r\n"), 6);
	assert_non_null(strstr(text, "* 10 EXPUNGE\r\n* 10 EXPUNGE\r\n* 10 EXPUNGE\r\n"));
	assert_same_view(by_journal, now);
	wd_buffer_release(&out);

	/* from a full re-sync */
	assert_int_equal(wd_imap_sync_read_full(store, &box, m1, false, &changes, &error), WD_OK);
	assert_non_null(changes->current);
	assert_int_equal(wd_imap_sync_add(sf, by_full, changes), WD_OK);
	assert_int_equal(wd_imap_sync_modseq(sf), now_modseq);
	assert_int_equal(wd_imap_sync_emit(sf, by_full, WD_IMAP_SYNC_EXPUNGE_OK, &out), WD_OK);
	assert_int_equal(wd_buffer_append(&out, "", 1), WD_OK);
	text = (const char *)wd_buffer_bytes(&out);
	assert_non_null(strstr(text, "* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\n"));
	assert_non_null(strstr(text, "* 29 EXISTS\r\n"));
	assert_int_equal(count_lines(text, " EXPUNGE\r\n"), 6);
	assert_same_view(by_full, now);
	wd_buffer_release(&out);

	/* nothing new: both reads come back empty */
	assert_int_equal(wd_imap_sync_read_journal(store, &box, wd_imap_sync_modseq(sj), "me",
						   false, &changes, &error),
			 WD_OK);
	assert_int_equal(changes->count, 0);
	assert_int_equal(wd_imap_sync_add(sj, by_journal, changes), WD_OK);
	assert_false(wd_imap_sync_pending(sj, WD_IMAP_SYNC_EXPUNGE_OK));
	assert_int_equal(wd_imap_sync_read_full(store, &box, wd_imap_sync_modseq(sf), false,
						&changes, &error),
			 WD_OK);
	assert_int_equal(wd_imap_sync_add(sf, by_full, changes), WD_OK);
	assert_false(wd_imap_sync_pending(sf, WD_IMAP_SYNC_EXPUNGE_OK));

	/* QRESYNC SELECT of a client that knew 1:35 */
	struct wd_arena *arena = wd_arena_create(0);
	assert_int_equal(wd_imap_sync_vanished_earlier(now, arena, NULL, brief + 1, &out), WD_OK);
	assert_int_equal(wd_buffer_append(&out, "", 1), WD_OK);
	char expected[64];
	snprintf(expected, sizeof(expected), "* VANISHED (EARLIER) 10:14,20,%u\r\n", brief);
	assert_string_equal((const char *)wd_buffer_bytes(&out), expected);
	wd_buffer_release(&out);
	wd_arena_destroy(&arena);

	wd_imap_sync_destroy(&sj);
	wd_imap_sync_destroy(&sf);
	wd_imap_view_destroy(&by_journal);
	wd_imap_view_destroy(&by_full);
	wd_imap_view_destroy(&now);
}

/* ---- \Recent: each UID claimed by exactly one of many racing sessions ---- */

#define CLAIM_THREADS 4
#define CLAIM_UIDS 120

static bson_oid_t claim_box;
static int claimed[CLAIM_UIDS + 1];
static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;

static void *claim_thread(void *arg)
{
	(void)arg;
	for (uint32_t last = 1; last <= CLAIM_UIDS; last++) {
		uint32_t first;
		if (wd_imap_recent_claim(store, &claim_box, last, &first) < 0)
			return (void *)1;
		pthread_mutex_lock(&claim_lock);
		for (uint32_t uid = first; uid <= last; uid++)
			claimed[uid]++;
		pthread_mutex_unlock(&claim_lock);
	}
	return NULL;
}

static void test_recent_claims(void **state)
{
	(void)state;
	pthread_t threads[CLAIM_THREADS];
	uint32_t first;

	claim_box = new_mailbox();
	for (int i = 0; i < CLAIM_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, claim_thread, NULL), 0);
	for (int i = 0; i < CLAIM_THREADS; i++) {
		void *ret;
		pthread_join(threads[i], &ret);
		assert_null(ret);
	}
	for (uint32_t uid = 1; uid <= CLAIM_UIDS; uid++)
		assert_int_equal(claimed[uid], 1);
	/* nothing left to claim; a lower watermark never lowers it */
	assert_int_equal(wd_imap_recent_claim(store, &claim_box, CLAIM_UIDS, &first), WD_OK);
	assert_true(first > CLAIM_UIDS);
	assert_int_equal(wd_imap_recent_claim(store, &claim_box, 5, &first), WD_OK);
	assert_true(first > 5);
	assert_int_equal(wd_imap_recent_claim(store, &claim_box, CLAIM_UIDS + 3, &first), WD_OK);
	assert_int_equal(first, CLAIM_UIDS + 1);

	/* a journal read claims the new messages for the reading session only */
	bson_oid_t box = new_mailbox();
	add(&box, NULL);
	assert_int_equal(wd_imap_recent_claim(store, &box, 1, &first), WD_OK); /* SELECT */
	assert_int_equal(first, 1);
	add(&box, NULL);
	add(&box, NULL);
	struct wd_imap_changes *changes = NULL;
	char *error = NULL;
	assert_int_equal(wd_imap_sync_read_journal(store, &box, 0, "me", true, &changes, &error),
			 WD_OK);
	assert_int_equal(changes->recent_first, 2);
	assert_int_equal(changes->recent_last, 3);
	wd_imap_changes_free(&changes);
	assert_int_equal(wd_imap_sync_read_journal(store, &box, 0, "other", true, &changes,
						   &error),
			 WD_OK);
	assert_int_equal(changes->recent_first, 0);
	wd_imap_changes_free(&changes);
}

/* A mailbox the size of a real INBOX loads in one streamed query. */
static void test_load_many(void **state)
{
	(void)state;
	bson_oid_t box = new_mailbox();
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
	/* minimal documents: what the loader reads (uid, unseen, mailbox) */
	for (int32_t uid = 1; uid <= 5000; uid++) {
		if (uid % 100 == 0)
			continue; /* a gap every 100 */
		bson_t *doc = BCON_NEW("mailbox", BCON_OID(&box), "uid", BCON_INT32(uid),
				       "unseen", BCON_BOOL(uid >= 4321));
		mongoc_bulk_operation_insert(bulk, doc);
		bson_destroy(doc);
	}
	bson_error_t berr;
	assert_true(mongoc_bulk_operation_execute(bulk, NULL, &berr));
	mongoc_bulk_operation_destroy(bulk);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);

	struct wd_imap_view *view = NULL;
	struct wd_imap_mailbox_state st;
	char *error = NULL;
	assert_int_equal(wd_imap_view_load_state(store, &box, &view, &st, &error), WD_OK);
	assert_int_equal(st.exists, 4950);
	assert_int_equal(st.first_unseen, 4321 - 43);
	assert_int_equal(wd_imap_view_uid(view, 99), 99);
	assert_int_equal(wd_imap_view_uid(view, 100), 101);
	assert_true(wd_imap_view_memory(view) < 8 * 1024);
	wd_imap_mailbox_state_free(&st);
	wd_imap_view_destroy(&view);
}

int main(void)
{
	int ret = test_stack_open("view");
	if (ret != 0)
		return ret;
	char username[64], address[96], *error = NULL;
	snprintf(username, sizeof(username), "view%d", (int)getpid());
	snprintf(address, sizeof(address), "%s@example.com", username);
	struct wd_user_create req = { .username = username, .address = address };
	if (wd_store_user_create(store, &req, &user, &error) < 0) {
		fprintf(stderr, "setup: %s\n", error);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_state),
		cmocka_unit_test(test_journal_and_full_agree),
		cmocka_unit_test(test_recent_claims),
		cmocka_unit_test(test_load_many),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	test_stack_drop();
	return failed;
}
