/* The spam decision (reference §4.15 step 5).
 *
 * Evidence, once per transaction, from headers the MTA's filter added (the
 * first occurrence of each, which is the topmost, the one our own MTA
 * prepended):
 *   - lmtp.rspamdHeader (default X-Rspamd-Action): Rspamd's action, scored
 *     as WildDuck's MX plugin scores meta.spamAction: "reject" 75,
 *     "rewrite subject" / "soft reject" / "greylist" 50, "add header" 25,
 *     anything else 0;
 *   - lmtp.spamHeader (default X-Spam-Status, X-Spam-Flag, X-Spam): a
 *     value starting with "yes" (any case) scores lmtp.spamHeaderScore
 *     (default 50: spam at the default spamLevel, like "rewrite subject").
 * The transaction's score is the highest of these.
 *
 * Per user, WildDuck's rule on users.spamLevel (only when it is a number
 * >= 0): 0 marks everything spam unless a filter or access list decided;
 * 100 marks nothing spam and overrides even them; otherwise, when nothing
 * decided yet, spam when score >= spamLevel. */
#include "deliver-private.h"
#include "wd-str.h"

#include <stdlib.h>
#include <string.h>

static int rspamd_score(const char *action)
{
	if (wd_str_eq_nocase(action, "reject"))
		return 75;
	if (wd_str_eq_nocase(action, "rewrite subject") || wd_str_eq_nocase(action, "soft reject") ||
	    wd_str_eq_nocase(action, "greylist"))
		return 50;
	if (wd_str_eq_nocase(action, "add header"))
		return 25;
	return 0;
}

void wd__deliver_spam_evidence(struct deliver_txn *txn)
{
	const struct wd_deliver_settings *s = &txn->deliver->settings;
	const bson_t *parsed = txn->summary.parsed_header;
	int score = 0;
	if (s->rspamd_header != NULL) {
		char *action = wd__deliver_header_first(parsed, s->rspamd_header);
		if (action != NULL) {
			score = rspamd_score(action);
			txn->spam_action = action;
		}
	}
	for (size_t i = 0; i < s->spam_header_count; i++) {
		char *value = wd__deliver_header_first(parsed, s->spam_headers[i]);
		if (value != NULL && wd_str_has_prefix_nocase(value, "yes") &&
		    s->spam_header_score > score)
			score = s->spam_header_score;
		free(value);
	}
	txn->spam_score = score;
}

void wd__deliver_spam_decide(const struct deliver_txn *txn, const bson_t *user,
			     struct deliver_actions *actions)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, user, "spamLevel") || !BSON_ITER_HOLDS_NUMBER(&iter))
		return;
	double level = bson_iter_as_double(&iter);
	if (level < 0)
		return;
	bool spam = false;
	if (level == 0) {
		spam = true;
	} else if (level == 100) {
		wd__deliver_actions_force(actions, ACTION_SPAM, false);
		return;
	} else if (!actions->set[ACTION_SPAM]) {
		spam = txn->spam_score >= level;
	}
	if (spam)
		wd__deliver_actions_set(actions, ACTION_SPAM, true);
}
