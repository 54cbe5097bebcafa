/* libwddeliver: the settings, and one DATA transaction (wd-deliver.h).
 *
 * The transaction parses the message once (wd_message_summary_build: the
 * indexed headers, parsedHeader, plaintext and attachment list the store
 * will write), derives what every recipient shares (sender, spam evidence,
 * Received: facts, whether an autoreply may answer), then delivers to each
 * recipient in turn. Recipients that resolve to the same user or forwarded
 * address are delivered once; the others get the first one's reply, as
 * WildDuck's MX plugin keeps one entry per user. */
#include "deliver-private.h"
#include "wd-auth.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-mime-tree.h"
#include "wd-result.h"
#include "wd-store-user.h"
#include "wd-str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define DEFAULT_MAX_MB 25
#define DEFAULT_SPAM_HEADER_SCORE 50

static const char *const default_spam_headers[] = { "X-Spam-Status", "X-Spam-Flag", "X-Spam" };

int64_t wd__deliver_now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static char *lower_dup(const char *s)
{
	char *out = strdup(s);
	if (out != NULL)
		for (char *p = out; *p != '\0'; p++)
			*p = wd_ascii_lower(*p);
	return out;
}

static bool header_name_valid(const char *name)
{
	if (name[0] == '\0' || strlen(name) > 99)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

static int add_spam_header(struct wd_deliver_settings *s, const char *name, char **error_r)
{
	if (name[0] == '\0')
		return WD_OK; /* "" switches the header off */
	if (!header_name_valid(name) || s->spam_header_count == DELIVER_MAX_SPAM_HEADERS) {
		*error_r = strdup("lmtp.spamHeader: expected header names (letters, digits, '-'), "
				  "at most 16");
		return WD_ERROR;
	}
	s->spam_headers[s->spam_header_count++] = lower_dup(name);
	return WD_OK;
}

static int read_spam_headers(struct wd_deliver_settings *s, const struct wd_config *config,
			     char **error_r)
{
	const struct wd_config_value *value = wd_config_lookup(config, "lmtp.spamHeader");
	if (value == NULL) {
		for (size_t i = 0; i < WD_N_ELEMENTS(default_spam_headers); i++)
			add_spam_header(s, default_spam_headers[i], error_r);
		return WD_OK;
	}
	const char *name;
	if (wd_config_value_type(value) == WD_CONFIG_ARRAY) {
		for (size_t i = 0; i < wd_config_array_count(value); i++) {
			if (wd_config_value_string(wd_config_array_get(value, i), &name) < 0) {
				*error_r = strdup("lmtp.spamHeader: expected a string or an array of strings");
				return WD_ERROR;
			}
			if (add_spam_header(s, name, error_r) < 0)
				return WD_ERROR;
		}
		return WD_OK;
	}
	if (wd_config_value_string(value, &name) < 0) {
		*error_r = strdup("lmtp.spamHeader: expected a string or an array of strings");
		return WD_ERROR;
	}
	return add_spam_header(s, name, error_r);
}

static int read_settings(struct wd_deliver_settings *s, const struct wd_config *config,
			 char **error_r)
{
	const char *error = NULL;
	int64_t max_mb, score, max_storage_mb;
	const char *over_quota, *rspamd;
	if (wd_config_get_int(config, "lmtp.maxMB", DEFAULT_MAX_MB, &max_mb, &error) < 0 ||
	    wd_config_get_string(config, "lmtp.overQuota", "reject", &over_quota, &error) < 0 ||
	    wd_config_get_bool(config, "lmtp.wildcard", true, &s->wildcard, &error) < 0 ||
	    wd_config_get_bool(config, "lmtp.forwardedAddresses", true, &s->forwarded_addresses,
			       &error) < 0 ||
	    wd_config_get_int(config, "lmtp.spamHeaderScore", DEFAULT_SPAM_HEADER_SCORE, &score,
			      &error) < 0 ||
	    wd_config_get_string(config, "lmtp.rspamdHeader", "X-Rspamd-Action", &rspamd,
				 &error) < 0 ||
	    wd_config_get_int(config, "maxStorage", 0, &max_storage_mb, &error) < 0 ||
	    wd_config_get_bool(config, "attachments.decodeBase64", true, &s->decode_base64,
			       &error) < 0) {
		*error_r = strdup(error);
		return WD_ERROR;
	}
	if (max_mb <= 0 || max_mb > 64) {
		/* the store takes at most 64 MiB with the trace headers */
		*error_r = strdup("lmtp.maxMB: expected 1 to 64");
		return WD_ERROR;
	}
	s->max_size = (uint64_t)max_mb * 1024 * 1024;
	/* the store parses at most WD_MIME_MAX_MESSAGE_SIZE, trace headers included */
	if (s->max_size > WD_MIME_MAX_MESSAGE_SIZE - DELIVER_TRACE_ROOM)
		s->max_size = WD_MIME_MAX_MESSAGE_SIZE - DELIVER_TRACE_ROOM;
	if (strcmp(over_quota, "reject") == 0) {
		s->over_quota_defer = false;
	} else if (strcmp(over_quota, "defer") == 0) {
		s->over_quota_defer = true;
	} else {
		*error_r = strdup("lmtp.overQuota: expected \"reject\" or \"defer\"");
		return WD_ERROR;
	}
	if (score < 0 || score > 100) {
		*error_r = strdup("lmtp.spamHeaderScore: expected 0 to 100");
		return WD_ERROR;
	}
	s->spam_header_score = (int)score;
	if (rspamd[0] != '\0') {
		if (!header_name_valid(rspamd)) {
			*error_r = strdup("lmtp.rspamdHeader: expected a header name");
			return WD_ERROR;
		}
		s->rspamd_header = lower_dup(rspamd);
	}
	s->max_storage = max_storage_mb > 0 ? max_storage_mb * 1024 * 1024 : WD_DEFAULT_MAX_STORAGE;
	return read_spam_headers(s, config, error_r);
}

static void settings_clear(struct wd_deliver_settings *s)
{
	for (size_t i = 0; i < s->spam_header_count; i++)
		free(s->spam_headers[i]);
	free(s->rspamd_header);
	memset(s, 0, sizeof(*s));
}

struct wd_deliver *wd_deliver_create(struct wd_store *store, struct wd_auth *auth,
				     const struct wd_config *config, char **error_r)
{
	*error_r = NULL;
	struct wd_deliver *deliver = calloc(1, sizeof(*deliver));
	if (deliver == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	deliver->store = store;
	deliver->auth = auth;
	pthread_mutex_init(&deliver->lock, NULL);
	if (read_settings(&deliver->settings, config, error_r) < 0) {
		wd_deliver_destroy(&deliver);
		return NULL;
	}
	return deliver;
}

void wd_deliver_destroy(struct wd_deliver **deliver_p)
{
	struct wd_deliver *deliver = *deliver_p;
	if (deliver == NULL)
		return;
	*deliver_p = NULL;
	settings_clear(&deliver->settings);
	pthread_mutex_destroy(&deliver->lock);
	free(deliver);
}

void wd_deliver_set_queue(struct wd_deliver *deliver, wd_deliver_queue_cb *queue, void *context)
{
	deliver->queue = queue;
	deliver->queue_context = context;
}

uint64_t wd_deliver_max_size(const struct wd_deliver *deliver)
{
	return deliver->settings.max_size;
}

/* ---- the transaction ---- */

/* filter-handler's parseReceived(): the first "from", "by", "with", "id",
   "for" followed by a value, in a white-space separated Received: value. */
static void parse_received(const char *value, char **with_r, char **id_r, char **from_r)
{
	static const char *const keys[] = { "from", "by", "with", "id", "for" };
	char *copy = strdup(value), *save = NULL;
	if (copy == NULL)
		return;
	char *prev = NULL;
	for (char *tok = strtok_r(copy, " \t\r\n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (prev == NULL) {
			for (size_t i = 0; i < WD_N_ELEMENTS(keys); i++)
				if (wd_str_eq_nocase(tok, keys[i]))
					prev = tok;
			continue;
		}
		char **slot = wd_str_eq_nocase(prev, "with") ? with_r :
			      wd_str_eq_nocase(prev, "id")   ? id_r :
			      wd_str_eq_nocase(prev, "from") ? from_r : NULL;
		if (slot != NULL && *slot == NULL)
			*slot = strdup(tok);
		prev = NULL;
	}
	free(copy);
}

struct received_ctx {
	unsigned index;
	char *first_id;
	struct deliver_txn *txn;
};

static bool received_cb(void *context, const char *value)
{
	struct received_ctx *ctx = context;
	struct deliver_txn *txn = ctx->txn;
	if (ctx->index++ == 0) {
		parse_received(value, &txn->received_with, &txn->received_id, &txn->received_from);
		return txn->received_id == NULL; /* WildDuck reads the second when the first has no id */
	}
	/* the second Received: replaces every value, as WildDuck's second parse */
	char *with = NULL, *id = NULL, *from = NULL;
	parse_received(value, &with, &id, &from);
	free(txn->received_with);
	free(txn->received_id);
	free(txn->received_from);
	txn->received_with = with;
	txn->received_id = id;
	txn->received_from = from;
	return false;
}

struct from_ctx {
	char *domain;
};

static bool from_cb(void *context, const char *address, const char *name)
{
	struct from_ctx *ctx = context;
	const char *at = strrchr(address, '@');
	ctx->domain = wd_domain_normalize(at != NULL ? at + 1 : address);
	return false;
}

/* A sender the normaliser refused, kept as given but safe for a header
   line and a BSON string: control characters, '<', '>' and bytes of
   invalid UTF-8 become '?'. */
static char *printable(const char *s)
{
	char *out = strdup(s);
	if (out == NULL)
		return NULL;
	size_t len = strlen(out);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)out[i];
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || i + n > len ||
		    !bson_utf8_validate(out + i, n, false)) {
			out[i++] = '?';
			continue;
		}
		i += n;
	}
	return out;
}

/* RFC 3834 and WildDuck's autoreply.js: messages no autoreply answers. */
static const char *autoreply_refusal(const struct deliver_txn *txn)
{
	const bson_t *parsed = txn->summary.parsed_header;
	if (txn->sender[0] == '\0')
		return "null sender";
	const char *s = txn->sender;
	char *folded = lower_dup(s);
	bool robot = folded != NULL &&
		     (strstr(folded, "mailer-daemon") != NULL || strstr(folded, "noreply") != NULL ||
		      strstr(folded, "no-reply") != NULL);
	/* RFC 3834 §2: list owners and request addresses are not answered */
	const char *at = folded != NULL ? strrchr(folded, '@') : NULL;
	if (folded != NULL && at != NULL &&
	    (wd_str_has_prefix(folded, "owner-") ||
	     (at - folded >= 8 && strncmp(at - 8, "-request", 8) == 0)))
		robot = true;
	free(folded);
	if (robot)
		return "automatic sender";
	const char *refusal = NULL;
	char *v = wd__deliver_header_first(parsed, "auto-submitted");
	if (v != NULL && !wd_str_eq_nocase(v, "no"))
		refusal = "auto-submitted";
	free(v);
	v = refusal == NULL ? wd__deliver_header_first(parsed, "precedence") : NULL;
	if (v != NULL && (wd_str_eq_nocase(v, "list") || wd_str_eq_nocase(v, "junk") ||
			  wd_str_eq_nocase(v, "bulk")))
		refusal = "precedence";
	free(v);
	if (refusal == NULL && (wd__deliver_header_count(parsed, "list-unsubscribe") > 0 ||
				wd__deliver_header_count(parsed, "list-id") > 0))
		refusal = "mailing list";
	v = refusal == NULL ? wd__deliver_header_first(parsed, "x-auto-response-suppress") : NULL;
	if (v != NULL) {
		char *lower = lower_dup(v);
		if (lower != NULL && (strstr(lower, "oof") != NULL || strstr(lower, "autoreply") != NULL))
			refusal = "x-auto-response-suppress";
		free(lower);
	}
	free(v);
	return refusal;
}

int wd__deliver_txn_init(struct deliver_txn *txn, struct wd_deliver *deliver,
			 const struct wd_deliver_envelope *envelope, const uint8_t *raw, size_t len,
			 char **error_r)
{
	memset(txn, 0, sizeof(*txn));
	txn->deliver = deliver;
	txn->envelope = envelope;
	txn->raw = raw;
	txn->len = len;
	const char *from = envelope->mail_from != NULL ? envelope->mail_from : "";
	const char *norm_error;
	if (from[0] == '\0' || wd_address_normalize(from, 0, &txn->sender, &norm_error) < 0)
		txn->sender = printable(from); /* "" or a sender the normaliser refuses */
	if (txn->sender == NULL || wd_message_summary_build(raw, len, &txn->summary, error_r) < 0) {
		if (*error_r == NULL)
			*error_r = strdup("out of memory");
		wd__deliver_txn_clear(txn);
		return WD_ERROR;
	}
	txn->text_folded = wd__deliver_fold(txn->summary.text);
	if (txn->text_folded == NULL) {
		*error_r = strdup("out of memory");
		wd__deliver_txn_clear(txn);
		return WD_ERROR;
	}
	const bson_t *parsed = txn->summary.parsed_header;
	struct received_ctx rctx = { .txn = txn };
	wd__deliver_header_each(parsed, "received", 2, received_cb, &rctx);
	txn->received_count = wd__deliver_header_count(parsed, "received");
	struct from_ctx fctx = { 0 };
	wd__deliver_header_addresses(parsed, "from", from_cb, &fctx);
	if (fctx.domain == NULL)
		wd__deliver_header_addresses(parsed, "sender", from_cb, &fctx);
	txn->from_domain = fctx.domain;
	wd__deliver_spam_evidence(txn);
	txn->autoreply_refusal = autoreply_refusal(txn);
	return WD_OK;
}

void wd__deliver_txn_clear(struct deliver_txn *txn)
{
	free(txn->sender);
	wd_message_summary_clear(&txn->summary);
	free(txn->text_folded);
	free(txn->spam_action);
	free(txn->received_with);
	free(txn->received_id);
	free(txn->received_from);
	free(txn->from_domain);
	memset(txn, 0, sizeof(*txn));
}

/* The earlier recipient delivering to the same user / forwarded address. */
static ssize_t same_target(struct wd_deliver_rcpt *const *rcpts, size_t i)
{
	for (size_t k = 0; k < i; k++) {
		if (rcpts[k] == NULL || rcpts[k]->forwarded != rcpts[i]->forwarded)
			continue;
		const bson_oid_t *a = rcpts[k]->forwarded ? &rcpts[k]->address_id : &rcpts[k]->user;
		const bson_oid_t *b = rcpts[i]->forwarded ? &rcpts[i]->address_id : &rcpts[i]->user;
		if (bson_oid_equal(a, b))
			return (ssize_t)k;
	}
	return -1;
}

int wd_deliver_message(struct wd_deliver *deliver, const struct wd_deliver_envelope *envelope,
		       struct wd_deliver_rcpt *const *rcpts, size_t count, const uint8_t *raw,
		       size_t len, struct wd_deliver_reply *replies)
{
	if (deliver == NULL || envelope == NULL || (count > 0 && (rcpts == NULL || replies == NULL)) ||
	    (raw == NULL && len > 0))
		return WD_ERROR;
	if (len > deliver->settings.max_size) {
		for (size_t i = 0; i < count; i++)
			wd__deliver_reply(&replies[i], 552, "5.3.4", "Message too large");
		return WD_OK;
	}
	struct deliver_txn txn;
	char *error = NULL;
	if (wd__deliver_txn_init(&txn, deliver, envelope, raw != NULL ? raw : (const uint8_t *)"",
				 len, &error) < 0) {
		wd_error(DELIVER_LOG, "txn=%s cannot read the message: %s",
			 envelope->transaction_id != NULL ? envelope->transaction_id : "-", error);
		free(error);
		for (size_t i = 0; i < count; i++)
			wd__deliver_reply(&replies[i], 451, "4.3.0",
					  "Cannot process the message now, try again later");
		return WD_OK;
	}
	struct deliver_outcome *outcomes = calloc(count > 0 ? count : 1, sizeof(*outcomes));
	for (size_t i = 0; i < count; i++) {
		struct deliver_outcome *outcome = &outcomes[i];
		outcome->action = DELIVER_REFUSED;
		if (rcpts[i] == NULL || outcomes == NULL) {
			wd__deliver_reply(&replies[i], 451, "4.3.0", "Cannot deliver now, try again later");
			continue;
		}
		ssize_t same = same_target(rcpts, i);
		if (same >= 0) {
			replies[i] = replies[same];
			*outcome = outcomes[same];
			snprintf(outcome->reason, sizeof(outcome->reason), "same delivery as <%s>",
				 rcpts[same]->address);
		} else if (rcpts[i]->forwarded) {
			wd__deliver_forwarded_address(&txn, rcpts[i], &replies[i], outcome);
		} else {
			wd__deliver_user(&txn, rcpts[i], &replies[i], outcome);
		}
		wd__deliver_log(&txn, rcpts[i], &replies[i], outcome);
	}
	free(outcomes);
	wd__deliver_txn_clear(&txn);
	return WD_OK;
}
