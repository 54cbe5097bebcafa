/* Autoreplies (reference §2.14, §4.15 step 7; WildDuck's autoreply.js),
 * with the rules of RFC 3834.
 *
 * No autoreply answers (deliver.c decides once per transaction): the null
 * sender; senders containing "mailer-daemon", "noreply" or "no-reply"
 * (WildDuck's test), and, from RFC 3834 §2, "owner-…" and "…-request"
 * senders; Auto-Submitted other than "no"; Precedence list, junk or bulk;
 * List-Unsubscribe, and (RFC 3834 §2, stricter than WildDuck) List-Id;
 * X-Auto-Response-Suppress with OOF or AutoReply. Nor spam, nor a user
 * without users.autoreply, nor an autoreply that is off or outside its
 * start/end.
 *
 * Once per sender per interval (const:autoreply:interval, 4 h): the sender
 * goes into the sorted set war:<autoreply id> with ZADD NX after entries
 * older than the interval are pruned; only a new member gets a reply.
 * Redis unreachable: no reply (better none than one per message). Then
 * WildDuck's wda:<id> counter (limit = the interval, so in effect none).
 *
 * The reply, composed as WildDuck's MailComposer does it: From the
 * autoreply's name (else the user's) and the recipient address the message
 * came to; To the sender; Subject "Auto: <autoreply subject>", or
 * "Auto: Re: <original subject>" without one; Auto-Submitted: auto-replied;
 * X-WD-Autoreply-For: <transaction id> (WildDuck names the stored message,
 * which does not exist yet when we queue); In-Reply-To the original
 * Message-ID and References it plus the original References; text and/or
 * html as multipart/alternative. Envelope sender <> (RFC 3834 §3.3). */
#include "deliver-private.h"
#include "wd-log.h"
#include "wd-outbound.h"
#include "wd-store-user.h"
#include "wd-store.h"

#include <gmime/gmime.h>
#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTOREPLY_COUNTER_WINDOW 86400

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
	g_mime_init();
}

/* A Date field of the autoreply (start/end), or 0 when false/absent. */
static int64_t doc_date(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	if (!bson_iter_init_find(&iter, doc, key) || !BSON_ITER_HOLDS_DATE_TIME(&iter))
		return 0;
	return bson_iter_date_time(&iter);
}

/* war:<id>: true when `sender` was not answered within the interval. */
static bool first_in_interval(struct wd_deliver *deliver, const char *id_hex, const char *sender,
			      int64_t interval)
{
	char key[64], min[32], now_s[32], expire[32];
	int64_t now = wd__deliver_now_ms();
	snprintf(key, sizeof(key), "war:%s", id_hex);
	snprintf(min, sizeof(min), "%lld", (long long)(now - interval));
	snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
	/* WildDuck passes the interval in ms to EXPIRE: we keep its value */
	snprintf(expire, sizeof(expire), "%lld", (long long)interval);
	const char *prune[] = { "ZREMRANGEBYSCORE", key, "-inf", min };
	const char *add[] = { "ZADD", key, "NX", now_s, sender };
	const char *ttl[] = { "EXPIRE", key, expire };
	struct redisReply *reply = wd_store_redis_argv(deliver->store, 4, prune, NULL);
	if (reply == NULL)
		return false;
	freeReplyObject(reply);
	reply = wd_store_redis_argv(deliver->store, 5, add, NULL);
	if (reply == NULL)
		return false;
	bool added = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
	freeReplyObject(reply);
	reply = wd_store_redis_argv(deliver->store, 3, ttl, NULL);
	if (reply != NULL)
		freeReplyObject(reply);
	return added;
}

static GMimeObject *text_part(const char *subtype, const char *text)
{
	GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
	g_mime_text_part_set_text(part, text);
	g_mime_object_encode(GMIME_OBJECT(part), GMIME_ENCODING_CONSTRAINT_7BIT);
	return GMIME_OBJECT(part);
}

static GMimeObject *body(const char *text, const char *html)
{
	bool has_text = text != NULL && text[0] != '\0', has_html = html != NULL && html[0] != '\0';
	if (has_text && has_html) {
		GMimeMultipart *alt = g_mime_multipart_new_with_subtype("alternative");
		GMimeObject *t = text_part("plain", text), *h = text_part("html", html);
		g_mime_multipart_add(alt, t);
		g_mime_multipart_add(alt, h);
		g_object_unref(t);
		g_object_unref(h);
		return GMIME_OBJECT(alt);
	}
	if (has_html)
		return text_part("html", html);
	return text_part("plain", has_text ? text : "");
}

/* The reply as CRLF text (g_free it), or NULL. */
static char *compose(const struct deliver_txn *txn, const bson_t *autoreply, const char *name,
		     const char *from_address)
{
	pthread_once(&gmime_once, gmime_init_once);
	const bson_t *parsed = txn->summary.parsed_header;
	GMimeMessage *message = g_mime_message_new(TRUE);
	GMimeObject *object = GMIME_OBJECT(message);
	g_mime_message_add_mailbox(message, GMIME_ADDRESS_TYPE_FROM, name != NULL ? name : "",
				   from_address);
	g_mime_message_add_mailbox(message, GMIME_ADDRESS_TYPE_TO, "", txn->sender);

	const char *subject = wd__deliver_doc_str(autoreply, "subject");
	char *line;
	if (subject != NULL && subject[0] != '\0') {
		line = g_strdup_printf("Auto: %s", subject);
	} else {
		char *original = wd__deliver_header_first(parsed, "subject");
		if (original != NULL && strlen(original) > DELIVER_MAX_HEADER_VALUE)
			original[DELIVER_MAX_HEADER_VALUE] = '\0';
		char *decoded = g_mime_utils_header_decode_text(NULL, original != NULL ? original : "");
		/* a subject cut inside a UTF-8 character ends before it */
		const char *end;
		if (!g_utf8_validate(decoded, -1, &end))
			decoded[end - decoded] = '\0';
		line = g_strdup_printf("Auto: Re: %s", decoded);
		g_free(decoded);
		free(original);
	}
	/* an encoded CR or LF in the original subject stays out of our header */
	for (char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	g_mime_message_set_subject(message, line, "utf-8");
	g_free(line);

	unsigned char r[16];
	RAND_bytes(r, sizeof(r));
	const char *at = strrchr(from_address, '@');
	char id[200];
	snprintf(id, sizeof(id),
		 "<%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x@%.120s>", r[0],
		 r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
		 r[14], r[15], at != NULL ? at + 1 : "localhost");
	g_mime_object_set_header(object, "Message-ID", id, NULL);
	GDateTime *now = g_date_time_new_now_utc();
	g_mime_message_set_date(message, now);
	g_date_time_unref(now);

	g_mime_object_set_header(object, "Auto-Submitted", "auto-replied", NULL);
	const char *txn_id = txn->envelope->transaction_id;
	if (txn_id != NULL && txn_id[0] != '\0')
		g_mime_object_set_header(object, "X-WD-Autoreply-For", txn_id, NULL);
	char *msgid = wd__deliver_header_first(parsed, "message-id");
	char *references = wd__deliver_header_first(parsed, "references");
	if (msgid != NULL && msgid[0] != '\0' && strlen(msgid) < DELIVER_MAX_HEADER_VALUE) {
		g_mime_object_set_header(object, "In-Reply-To", msgid, NULL);
		char *refs = references != NULL && strlen(references) < DELIVER_MAX_HEADER_VALUE ?
				     g_strdup_printf("%s %s", msgid, references) :
				     g_strdup(msgid);
		g_mime_object_set_header(object, "References", g_strstrip(refs), NULL);
		g_free(refs);
	}
	free(msgid);
	free(references);

	GMimeObject *part = body(wd__deliver_doc_str(autoreply, "text"),
				 wd__deliver_doc_str(autoreply, "html"));
	g_mime_message_set_mime_part(message, part);
	g_object_unref(part);
	GMimeFormatOptions *options = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(options, GMIME_NEWLINE_FORMAT_DOS);
	char *text = g_mime_object_to_string(object, options);
	g_mime_format_options_free(options);
	g_object_unref(message);
	return text;
}

bool wd__deliver_autoreply(const struct deliver_txn *txn, const bson_t *autoreply,
			   const bson_oid_t *id, const bson_oid_t *user, const char *default_name,
			   const char *recipient, char queue_id_r[19],
			   struct deliver_outcome *outcome)
{
	struct wd_deliver *deliver = txn->deliver;
	if (txn->autoreply_refusal != NULL) {
		wd__deliver_note(outcome, "no autoreply: %s", txn->autoreply_refusal);
		return false;
	}
	if (!wd__deliver_doc_bool(autoreply, "status"))
		return false;
	int64_t now = wd__deliver_now_ms(), start = doc_date(autoreply, "start"),
		end = doc_date(autoreply, "end");
	if ((start != 0 && start > now) || (end != 0 && end < now))
		return false;
	if (deliver->queue == NULL) {
		wd__deliver_note(outcome, "no autoreply: no outbound queue");
		return false;
	}
	char hex[25], key[64];
	bson_oid_to_string(id, hex);
	int64_t interval = wd__deliver_setting_autoreply_interval(deliver);
	if (!first_in_interval(deliver, hex, txn->sender, interval)) {
		wd__deliver_note(outcome, "no autoreply: sender answered within the interval");
		return false;
	}
	snprintf(key, sizeof(key), "wda:%s", hex);
	if (!wd__deliver_ttlcounter(deliver, key, 1, interval, AUTOREPLY_COUNTER_WINDOW)) {
		wd__deliver_note(outcome, "no autoreply: counter limit");
		return false;
	}
	const char *name = wd__deliver_doc_str(autoreply, "name");
	if (name == NULL || name[0] == '\0')
		name = default_name;
	char *text = compose(txn, autoreply, name, recipient);
	if (text == NULL) {
		wd__deliver_note(outcome, "autoreply failed: cannot compose");
		return false;
	}
	const char *to[] = { txn->sender };
	struct wd_outbound_message msg = {
		.from = "",
		.to = to,
		.to_count = 1,
		.raw = (const uint8_t *)text,
		.len = strlen(text),
		.reason = "autoreply",
		.interface = "autoreplies",
		.user = user,
		.parent_id = txn->envelope->transaction_id,
		.origin = txn->envelope->remote_ip,
	};
	char *error = NULL;
	int ret = deliver->queue(deliver->queue_context, &msg, queue_id_r, &error);
	g_free(text);
	if (ret != WD_OK) {
		wd__deliver_note(outcome, "autoreply failed: %s", error != NULL ? error : "unknown");
		free(error);
		return false;
	}
	wd__deliver_note(outcome, "autoreply queued as %s", queue_id_r);
	return true;
}

bool wd__deliver_autoreply_user(const struct deliver_txn *txn, const bson_t *user,
				const char *recipient, char queue_id_r[19],
				struct deliver_outcome *outcome)
{
	if (!wd__deliver_doc_bool(user, "autoreply"))
		return false;
	const bson_oid_t *user_id = wd__deliver_doc_oid(user, "_id");
	if (user_id == NULL)
		return false;
	bson_t *query = BCON_NEW("user", BCON_OID(user_id));
	bson_t *autoreply = NULL;
	int ret = wd__deliver_find_one(txn->deliver->store, WD_STORE_DB_MAIN, "autoreplies", query,
				       &autoreply);
	bson_destroy(query);
	if (ret == WD_STORE_ERR_DATABASE)
		wd__deliver_note(outcome, "no autoreply: database error");
	if (autoreply == NULL)
		return false;
	bool ok = false;
	const bson_oid_t *id = wd__deliver_doc_oid(autoreply, "_id");
	if (id != NULL)
		ok = wd__deliver_autoreply(txn, autoreply, id, user_id,
					   wd__deliver_doc_str(user, "name"), recipient, queue_id_r,
					   outcome);
	bson_destroy(autoreply);
	return ok;
}
