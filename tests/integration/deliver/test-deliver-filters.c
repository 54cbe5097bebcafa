/* Integration test (suite lmtp): WildDuck's filters, domain access lists,
 * spam decision and quota against the real stack — every filter condition
 * (from/sender, to/cc/delivered-to, subject, listId, text, ha, size in both
 * directions, all conditions together, disabled filters), every action
 * (seen, flag, delete, spam, mailbox and its INBOX fallback, targets),
 * first-set-wins and the spam/mailbox order, block/allow lists, spam
 * headers and Rspamd actions against users.spamLevel, and the quota
 * boundary (exactly at quota stored, one byte over refused, 552 or 452). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "deliver-test.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENDER "news@example.net"

static const char plain[] =
	"From: Alice Example <alice@example.net>\r\n"
	"To: Bob <bob@example.org>\r\n"
	"Subject: Weekly   REPORT for you\r\n"
	"Message-ID: <f1@example.net>\r\n"
	"\r\n"
	"Hello   World, this is the report.\r\n";

static const char with_cc_sender[] =
	"Sender: Robot <robot@lists.example.net>\r\n"
	"From: someone@elsewhere.example\r\n"
	"To: nobody@example.org\r\n"
	"Cc: Carol <carol@cc.example>\r\n"
	"List-ID: Some list <list.example.com>\r\n"
	"Subject: =?utf-8?q?K=C3=A4se?= news\r\n"
	"\r\n"
	"short\r\n";

static const char with_attachment[] =
	"From: alice@example.net\r\n"
	"To: bob@example.org\r\n"
	"Subject: file\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
	"\r\n"
	"--b1\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"see attached\r\n"
	"--b1\r\n"
	"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
	"\r\n"
	"AAECAwQFBgcICQ==\r\n"
	"--b1--\r\n";

struct who {
	bson_oid_t id;
	char address[200];
};

static struct who user(const char *name)
{
	struct who w;
	w.id = make_user(name, w.address);
	return w;
}

/* Delivers `raw` and says whether the stored copy got \Flagged (the
   action of every condition test). */
static bool flagged_after(struct wd_deliver *deliver, const struct who *w, const char *raw)
{
	struct wd_deliver_reply reply;
	assert_int_equal(deliver_one(deliver, SENDER, w->address, raw, &reply), 250);
	char *flags = last_flags(&w->id, "INBOX");
	assert_non_null(flags);
	bool flagged = strstr(flags, "\\Flagged") != NULL;
	free(flags);
	return flagged;
}

static bool condition(struct wd_deliver *deliver, const struct who *w, const char *query,
		      const char *raw)
{
	filters_clear(&w->id);
	filter_add(&w->id, query, "{\"flag\": true}", false);
	return flagged_after(deliver, w, raw);
}

static void test_conditions(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	struct who w = user("cond");
	/* from: substring of From, any case; Sender counts as From */
	assert_true(condition(deliver, &w, "{\"headers\": {\"from\": \"ALICE@example\"}}", plain));
	assert_false(condition(deliver, &w, "{\"headers\": {\"from\": \"mallory\"}}", plain));
	assert_true(condition(deliver, &w, "{\"headers\": {\"from\": \"robot@lists\"}}", with_cc_sender));
	/* ... unless the filter names sender itself */
	assert_false(condition(deliver, &w,
			       "{\"headers\": {\"from\": \"robot@lists\", \"sender\": \"x\"}}",
			       with_cc_sender));
	/* to: To, Cc, and the Delivered-To that delivery adds */
	assert_true(condition(deliver, &w, "{\"headers\": {\"to\": \"bob@example.org\"}}", plain));
	assert_true(condition(deliver, &w, "{\"headers\": {\"to\": \"carol@cc\"}}", with_cc_sender));
	char query[400];
	snprintf(query, sizeof(query), "{\"headers\": {\"to\": \"%s\"}}", w.address);
	assert_true(condition(deliver, &w, query, with_cc_sender));
	assert_false(condition(deliver, &w, "{\"headers\": {\"to\": \"dave@\"}}", plain));
	/* subject: decoded, white space collapsed, any case */
	assert_true(condition(deliver, &w, "{\"headers\": {\"subject\": \"weekly report\"}}", plain));
	assert_true(condition(deliver, &w, "{\"headers\": {\"subject\": \"K\\u00c4SE\"}}",
			      with_cc_sender));
	assert_false(condition(deliver, &w, "{\"headers\": {\"subject\": \"monthly\"}}", plain));
	/* listId: the <id> part on both sides */
	assert_true(condition(deliver, &w, "{\"headers\": {\"listId\": \"<list.example.com>\"}}",
			      with_cc_sender));
	assert_true(condition(deliver, &w, "{\"headers\": {\"listId\": \"list.example\"}}",
			      with_cc_sender));
	assert_false(condition(deliver, &w, "{\"headers\": {\"listId\": \"list.example\"}}", plain));
	/* text: plaintext, lower-cased, white space collapsed */
	assert_true(condition(deliver, &w, "{\"text\": \"hello world\"}", plain));
	assert_false(condition(deliver, &w, "{\"text\": \"goodbye\"}", plain));
	assert_true(condition(deliver, &w, "{\"text\": \"see attached\"}", with_attachment));
	/* ha: true needs an attachment; false is not enforced */
	assert_true(condition(deliver, &w, "{\"ha\": true}", with_attachment));
	assert_false(condition(deliver, &w, "{\"ha\": true}", plain));
	assert_true(condition(deliver, &w, "{\"ha\": false}", with_attachment));
	/* size, with the trace headers: > 0 at least, < 0 at most */
	size_t big = delivered_size(w.address, SENDER, with_attachment);
	size_t small = delivered_size(w.address, SENDER, with_cc_sender);
	snprintf(query, sizeof(query), "{\"size\": %zu}", big);
	assert_true(condition(deliver, &w, query, with_attachment));
	assert_false(condition(deliver, &w, query, with_cc_sender));
	snprintf(query, sizeof(query), "{\"size\": %zu}", big + 1);
	assert_false(condition(deliver, &w, query, with_attachment));
	snprintf(query, sizeof(query), "{\"size\": -%zu}", small);
	assert_true(condition(deliver, &w, query, with_cc_sender));
	assert_false(condition(deliver, &w, query, with_attachment));
	snprintf(query, sizeof(query), "{\"size\": -%zu}", small - 1);
	assert_false(condition(deliver, &w, query, with_cc_sender));
	/* every condition must hold */
	assert_true(condition(deliver, &w,
			      "{\"headers\": {\"from\": \"alice\", \"subject\": \"report\"}, "
			      "\"text\": \"the report\"}", plain));
	assert_false(condition(deliver, &w,
			       "{\"headers\": {\"from\": \"alice\", \"subject\": \"invoice\"}}", plain));
	/* a disabled filter does nothing */
	filters_clear(&w.id);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", "{\"flag\": true}", true);
	assert_false(flagged_after(deliver, &w, plain));
	wd_deliver_destroy(&deliver);
}

/* The `filters` field of the newest message in INBOX / Junk, as text. */
static char *matched_filters(const bson_oid_t *user, const char *which)
{
	bson_t *doc = last_in(user, which);
	assert_non_null(doc);
	bson_iter_t iter, list;
	char *out = calloc(1, 1024);
	assert_true(bson_iter_init_find(&iter, doc, "filters"));
	assert_true(bson_iter_recurse(&iter, &list));
	while (bson_iter_next(&list)) {
		char hex[25];
		if (out[0] != '\0')
			strcat(out, ",");
		if (BSON_ITER_HOLDS_OID(&list)) {
			bson_oid_to_string(bson_iter_oid(&list), hex);
			strcat(out, hex);
		} else {
			strncat(out, bson_iter_utf8(&list, NULL), 300);
		}
	}
	bson_destroy(doc);
	return out;
}

static void test_actions(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	struct wd_deliver_reply reply;
	struct who w = user("act");
	/* seen + flag */
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", "{\"seen\": true, \"flag\": true}",
		   false);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	char *flags = last_flags(&w.id, "INBOX");
	assert_string_equal(flags, "\\Seen \\Flagged");
	free(flags);
	bson_t *doc = last_in(&w.id, "INBOX");
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, doc, "unseen"));
	assert_false(bson_iter_bool(&iter));
	assert_true(bson_iter_init_find(&iter, doc, "flagged"));
	assert_true(bson_iter_bool(&iter));
	bson_destroy(doc);

	/* first set wins, even a false value; ids of every matching filter */
	filters_clear(&w.id);
	bson_oid_t f1 = filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}",
				   "{\"seen\": false}", false);
	bson_oid_t f2 = filter_add(&w.id, "{\"headers\": {\"subject\": \"report\"}}",
				   "{\"seen\": true, \"flag\": true}", false);
	filter_add(&w.id, "{\"headers\": {\"subject\": \"nomatch\"}}", "{\"delete\": true}", false);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	flags = last_flags(&w.id, "INBOX");
	assert_string_equal(flags, "\\Flagged");
	free(flags);
	char expect[100], h1[25], h2[25];
	bson_oid_to_string(&f1, h1);
	bson_oid_to_string(&f2, h2);
	snprintf(expect, sizeof(expect), "%s,%s", h1, h2);
	char *matched = matched_filters(&w.id, "INBOX");
	assert_string_equal(matched, expect);
	free(matched);

	/* mailbox: a filter's target; a target that no longer exists is INBOX */
	filters_clear(&w.id);
	bson_oid_t trash = mailbox_of(&w.id, "\\Trash");
	char hex[25], action[200];
	bson_oid_to_string(&trash, hex);
	snprintf(action, sizeof(action), "{\"mailbox\": {\"$oid\": \"%s\"}}", hex);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", action, false);
	int64_t inbox = count_in(&w.id, "INBOX");
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(count_in(&w.id, "\\Trash"), 1);
	assert_int_equal(count_in(&w.id, "INBOX"), inbox);
	filters_clear(&w.id);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}",
		   "{\"mailbox\": {\"$oid\": \"0123456789abcdef01234567\"}}", false);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(count_in(&w.id, "INBOX"), inbox + 1);

	/* spam → Junk (junk: true); of spam and mailbox the later one wins */
	filters_clear(&w.id);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", "{\"spam\": true}", false);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(count_in(&w.id, "\\Junk"), 1);
	doc = last_in(&w.id, "\\Junk");
	assert_true(bson_iter_init_find(&iter, doc, "junk"));
	assert_true(bson_iter_bool(&iter));
	bson_destroy(doc);
	filters_clear(&w.id);
	snprintf(action, sizeof(action), "{\"spam\": true, \"mailbox\": {\"$oid\": \"%s\"}}", hex);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", action, false);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(count_in(&w.id, "\\Trash"), 2);
	filters_clear(&w.id);
	snprintf(action, sizeof(action), "{\"mailbox\": {\"$oid\": \"%s\"}, \"spam\": true}", hex);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", action, false);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(count_in(&w.id, "\\Junk"), 2);

	/* delete: 250, nothing stored, quota untouched */
	filters_clear(&w.id);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", "{\"delete\": true}", false);
	int64_t used = storage_used(&w.id);
	bson_oid_t before = last_id(&w.id, "INBOX");
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_string_equal(reply.status, "2.0.0");
	assert_non_null(strstr(reply.text, "dropped"));
	bson_oid_t after = last_id(&w.id, "INBOX");
	assert_true(bson_oid_equal(&before, &after));
	assert_int_equal(storage_used(&w.id), used);
	/* a non-matching message still arrives */
	assert_int_equal(deliver_one(deliver, SENDER, w.address, with_cc_sender, &reply), 250);
	after = last_id(&w.id, "INBOX");
	assert_false(bson_oid_equal(&before, &after));
	wd_deliver_destroy(&deliver);
}

static void test_forward_targets(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	struct wd_deliver_reply reply;
	struct who w = user("fwd");
	/* filter targets accumulate (de-duplicated) and join users.targets */
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}",
		   "{\"targets\": [{\"type\": \"mail\", \"value\": \"one@remote.example\"}]}", false);
	filter_add(&w.id, "{\"headers\": {\"subject\": \"report\"}}",
		   "{\"targets\": [{\"type\": \"mail\", \"value\": \"one@remote.example\"}, "
		   "{\"type\": \"mail\", \"value\": \"two@remote.example\"}]}", false);
	bson_t *set = BCON_NEW("targets", "[", "{", "type", BCON_UTF8("mail"), "value",
			       BCON_UTF8("user-target@remote.example"), "}", "]");
	user_set(&w.id, set);
	bson_destroy(set);
	capture_reset();
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(captured_count, 1);
	assert_int_equal(captured[0].to_count, 3);
	assert_string_equal(captured[0].to[0], "one@remote.example");
	assert_string_equal(captured[0].to[1], "two@remote.example");
	assert_string_equal(captured[0].to[2], "user-target@remote.example");
	assert_string_equal(captured[0].reason, "forward");
	assert_string_equal(captured[0].forwarded_for, w.address);
	/* forwarded as it arrived: no trace headers of ours */
	assert_string_equal(captured[0].raw, plain);
	bson_t *doc = last_in(&w.id, "INBOX");
	bson_iter_t iter;
	assert_true(bson_iter_init_find(&iter, doc, "outbound"));
	assert_true(bson_iter_init_find(&iter, doc, "forwardTargets"));
	bson_destroy(doc);
	/* the daily counter counted them */
	char hex[25];
	bson_oid_to_string(&w.id, hex);
	assert_int_equal(test_redis_int("GET wdf:%s", hex), 3);

	/* delete + filter target = redirect: not stored, users.targets unused */
	filters_clear(&w.id);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}",
		   "{\"delete\": true, \"targets\": [{\"type\": \"mail\", \"value\": "
		   "\"redirect@remote.example\"}]}", false);
	capture_reset();
	int64_t inbox = count_in(&w.id, "INBOX");
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(count_in(&w.id, "INBOX"), inbox);
	assert_int_equal(captured_count, 1);
	assert_int_equal(captured[0].to_count, 1);
	assert_string_equal(captured[0].to[0], "redirect@remote.example");

	/* never for spam */
	filters_clear(&w.id);
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", "{\"spam\": true}", false);
	capture_reset();
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(captured_count, 0);

	/* the daily limit (users.forwards) stops forwarding, not delivery */
	filters_clear(&w.id);
	set = BCON_NEW("forwards", BCON_INT32(3));
	user_set(&w.id, set);
	bson_destroy(set);
	capture_reset();
	inbox = count_in(&w.id, "INBOX");
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(captured_count, 0);
	assert_int_equal(count_in(&w.id, "INBOX"), inbox + 1);

	/* a queue that fails or reports a loop: stored all the same */
	test_redis_int("DEL wdf:%s", hex);
	capture_fail_with(WD_ERROR);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	capture_fail_with(-2);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(count_in(&w.id, "INBOX"), inbox + 3);
	capture_reset();
	wd_deliver_destroy(&deliver);
}

static const char *spam_message(const char *headers, char *buf, size_t size)
{
	snprintf(buf, size, "%sFrom: alice@example.net\r\nSubject: offer\r\n\r\nbuy now\r\n", headers);
	return buf;
}

/* Where a message with these headers goes: 'J' Junk, 'I' INBOX. */
static char where(struct wd_deliver *deliver, const struct who *w, const char *headers)
{
	char buf[1000];
	int64_t junk = count_in(&w->id, "\\Junk"), inbox = count_in(&w->id, "INBOX");
	struct wd_deliver_reply reply;
	assert_int_equal(deliver_one(deliver, SENDER, w->address,
				     spam_message(headers, buf, sizeof(buf)), &reply), 250);
	if (count_in(&w->id, "\\Junk") == junk + 1)
		return 'J';
	assert_int_equal(count_in(&w->id, "INBOX"), inbox + 1);
	return 'I';
}

static void set_spam_level(const struct who *w, int level)
{
	bson_t *set = BCON_NEW("spamLevel", BCON_INT32(level));
	user_set(&w->id, set);
	bson_destroy(set);
}

static void test_spam(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	struct who w = user("spam");
	/* SpamAssassin-style headers at the default level 50 */
	assert_int_equal(where(deliver, &w, ""), 'I');
	assert_int_equal(where(deliver, &w, "X-Spam-Status: Yes, score=9.1 required=5.0\r\n"), 'J');
	assert_int_equal(where(deliver, &w, "X-Spam-Status: No, score=0.1\r\n"), 'I');
	assert_int_equal(where(deliver, &w, "X-Spam-Flag: YES\r\n"), 'J');
	assert_int_equal(where(deliver, &w, "X-Spam: yes\r\n"), 'J');
	/* the topmost header is the one our MTA added */
	assert_int_equal(where(deliver, &w, "X-Spam-Status: No\r\nX-Spam-Status: Yes\r\n"), 'I');
	/* Rspamd actions scored as WildDuck scores them */
	assert_int_equal(where(deliver, &w, "X-Rspamd-Action: add header\r\n"), 'I');
	assert_int_equal(where(deliver, &w, "X-Rspamd-Action: rewrite subject\r\n"), 'J');
	assert_int_equal(where(deliver, &w, "X-Rspamd-Action: reject\r\n"), 'J');
	assert_int_equal(where(deliver, &w, "X-Rspamd-Action: no action\r\n"), 'I');
	bson_t *doc = last_in(&w.id, "INBOX");
	bson_iter_t top, iter;
	assert_true(bson_iter_init(&top, doc) && bson_iter_find_descendant(&top, "meta.spamAction", &iter));
	assert_string_equal(bson_iter_utf8(&iter, NULL), "no action");
	bson_destroy(doc);
	/* users.spamLevel */
	set_spam_level(&w, 20);
	assert_int_equal(where(deliver, &w, "X-Rspamd-Action: add header\r\n"), 'J');
	set_spam_level(&w, 80);
	assert_int_equal(where(deliver, &w, "X-Rspamd-Action: reject\r\n"), 'I');
	assert_int_equal(where(deliver, &w, "X-Spam-Status: Yes\r\n"), 'I');
	set_spam_level(&w, 0);
	assert_int_equal(where(deliver, &w, ""), 'J');
	set_spam_level(&w, 100);
	assert_int_equal(where(deliver, &w, "X-Spam-Status: Yes\r\nX-Rspamd-Action: reject\r\n"), 'I');
	/* a filter's spam action decides before the level ... */
	set_spam_level(&w, 50);
	filter_add(&w.id, "{\"headers\": {\"subject\": \"offer\"}}", "{\"spam\": false}", false);
	assert_int_equal(where(deliver, &w, "X-Spam-Status: Yes\r\n"), 'I');
	set_spam_level(&w, 0);
	assert_int_equal(where(deliver, &w, ""), 'I');
	/* ... except at 100, which overrides even a filter */
	filters_clear(&w.id);
	filter_add(&w.id, "{\"headers\": {\"subject\": \"offer\"}}", "{\"spam\": true}", false);
	set_spam_level(&w, 100);
	assert_int_equal(where(deliver, &w, ""), 'I');
	filters_clear(&w.id);
	set_spam_level(&w, 50);
	wd_deliver_destroy(&deliver);

	/* configured headers only */
	deliver = deliver_open("[lmtp]\nspamHeader = \"X-Custom-Spam\"\nrspamdHeader = \"\"\n"
			       "spamHeaderScore = 60\n");
	assert_int_equal(where(deliver, &w, "X-Spam-Status: Yes\r\n"), 'I');
	assert_int_equal(where(deliver, &w, "X-Rspamd-Action: reject\r\n"), 'I');
	assert_int_equal(where(deliver, &w, "X-Custom-Spam: YES please\r\n"), 'J');
	set_spam_level(&w, 61);
	assert_int_equal(where(deliver, &w, "X-Custom-Spam: YES please\r\n"), 'I');
	wd_deliver_destroy(&deliver);
	deliver = deliver_open("[lmtp]\nspamHeader = []\n");
	set_spam_level(&w, 50);
	assert_int_equal(where(deliver, &w, "X-Spam-Status: Yes\r\n"), 'I');
	wd_deliver_destroy(&deliver);
}

static void test_domain_access(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	struct who w = user("tags");
	char buf[1000];
	/* without tags the lists are not consulted */
	bson_oid_t block = insert_json("domainaccess",
				       "{\"tag\": \"VIP\", \"tagview\": \"vip\", \"domain\": "
				       "\"blocked.example\", \"action\": \"block\"}");
	insert_json("domainaccess", "{\"tag\": \"vip\", \"tagview\": \"vip\", \"domain\": "
				    "\"trusted.example\", \"action\": \"allow\"}");
	struct wd_deliver_reply reply;
	const char *blocked = "From: x@Blocked.Example\r\nSubject: s\r\n\r\nb\r\n";
	assert_int_equal(deliver_one(deliver, SENDER, w.address, blocked, &reply), 250);
	assert_int_equal(count_in(&w.id, "\\Junk"), 0);
	bson_t *set = BCON_NEW("tags", "[", BCON_UTF8("VIP"), "]", "tagsview", "[",
			       BCON_UTF8("vip"), "]");
	user_set(&w.id, set);
	bson_destroy(set);
	/* block: spam (the tag written in capitals is found too) */
	assert_int_equal(deliver_one(deliver, SENDER, w.address, blocked, &reply), 250);
	assert_int_equal(count_in(&w.id, "\\Junk"), 1);
	char hex[25], expect[100];
	bson_oid_to_string(&block, hex);
	snprintf(expect, sizeof(expect), "block:VIP:%s", hex);
	char *matched = matched_filters(&w.id, "\\Junk");
	assert_string_equal(matched, expect);
	free(matched);
	/* Sender when there is no From address */
	assert_int_equal(deliver_one(deliver, SENDER, w.address,
				     "Sender: y@blocked.example\r\nSubject: s\r\n\r\nb\r\n", &reply), 250);
	assert_int_equal(count_in(&w.id, "\\Junk"), 2);
	/* allow: not spam whatever the headers say */
	snprintf(buf, sizeof(buf), "X-Spam-Status: Yes\r\nFrom: a@trusted.example\r\n\r\nb\r\n");
	int64_t inbox = count_in(&w.id, "INBOX");
	assert_int_equal(deliver_one(deliver, SENDER, w.address, buf, &reply), 250);
	assert_int_equal(count_in(&w.id, "INBOX"), inbox + 1);
	assert_int_equal(count_in(&w.id, "\\Junk"), 2);
	wd_deliver_destroy(&deliver);
}

static void test_quota(void **state)
{
	(void)state;
	struct wd_deliver *deliver = deliver_open(NULL);
	struct wd_deliver_reply reply;
	struct who w = user("quota");
	size_t size = delivered_size(w.address, SENDER, plain);
	/* exactly at quota afterwards: stored */
	bson_t *set = BCON_NEW("quota", BCON_INT64((int64_t)size + 100), "storageUsed",
			       BCON_INT32(100));
	user_set(&w.id, set);
	bson_destroy(set);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	assert_int_equal(storage_used(&w.id), (int64_t)size + 100);
	/* now at quota: refused at RCPT */
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 552);
	assert_string_equal(reply.status, "5.2.2");
	/* one byte over: refused at DATA, nothing stored */
	set = BCON_NEW("quota", BCON_INT64((int64_t)size + 99), "storageUsed", BCON_INT32(100));
	user_set(&w.id, set);
	bson_destroy(set);
	int64_t inbox = count_in(&w.id, "INBOX");
	struct wd_deliver_reply rcpt, data;
	const char *address = w.address;
	transaction(deliver, SENDER, &address, 1, plain, &rcpt, &data);
	assert_int_equal(rcpt.code, 250);
	assert_int_equal(data.code, 552);
	assert_string_equal(data.status, "5.2.2");
	assert_int_equal(count_in(&w.id, "INBOX"), inbox);
	assert_int_equal(storage_used(&w.id), 100);
	/* a delete action needs no room */
	filter_add(&w.id, "{\"headers\": {\"from\": \"alice\"}}", "{\"delete\": true}", false);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 250);
	filters_clear(&w.id);
	wd_deliver_destroy(&deliver);
	/* lmtp.overQuota = "defer": 452 4.2.2 */
	deliver = deliver_open("[lmtp]\noverQuota = \"defer\"\n");
	transaction(deliver, SENDER, &address, 1, plain, &rcpt, &data);
	assert_int_equal(data.code, 452);
	assert_string_equal(data.status, "4.2.2");
	set = BCON_NEW("storageUsed", BCON_INT64((int64_t)size + 99));
	user_set(&w.id, set);
	bson_destroy(set);
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 452);
	wd_deliver_destroy(&deliver);
	/* quota 0: the setting const:max:storage, else maxStorage */
	set = BCON_NEW("quota", BCON_INT32(0), "storageUsed", BCON_INT32(0));
	user_set(&w.id, set);
	bson_destroy(set);
	deliver = deliver_open("maxStorage = 0\n");
	insert_json("settings", "{\"key\": \"const:max:storage\", \"value\": \"10\"}");
	assert_int_equal(deliver_one(deliver, SENDER, w.address, plain, &reply), 552);
	wd_deliver_destroy(&deliver);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conditions),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_forward_targets),
		cmocka_unit_test(test_spam),
		cmocka_unit_test(test_domain_access),
		cmocka_unit_test(test_quota),
	};
	return test_stack_run("deliver-filters", tests, WD_N_ELEMENTS(tests), "deliverf", NULL);
}
