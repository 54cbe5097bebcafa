#ifndef DELIVER_PRIVATE_H
#define DELIVER_PRIVATE_H

/* Internals shared by the files of libwddeliver. One file per step of the
 * pipeline (docs/DELIVERY.md):
 *
 *   deliver.c           create/destroy, settings, the transaction loop
 *   deliver-rcpt.c      RCPT: resolution, account state, quota precheck
 *   deliver-user.c      one recipient user: the pipeline in order
 *   deliver-header.c    header facts from the parsed header (one parse)
 *   deliver-filter.c    filters, domain access lists, the action set
 *   deliver-spam.c      spam evidence from headers, users.spamLevel
 *   deliver-forward.c   forwards (users, forwarded addresses), wdf: limits
 *   deliver-autoreply.c autoreplies: RFC 3834 rules, war:/wda:, composing
 *   deliver-register.c  the address register
 *   deliver-counter.c   Redis counters (ttlcounter) and the settings cache
 *   deliver-report.c    replies and the message-log line
 *   deliver-db.c        documents delivery reads itself, typed field reads
 *   deliver-outbound.c  wiring to wd_outbound_queue()
 *   deliver-messagelog.c the messagelog collection: STORE, FORWARD, AUTOREPLY */

#include "wd-deliver.h"
#include "wd-message-summary.h"
#include "wd-result.h"
#include "wd-store.h"

#include <bson/bson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define DELIVER_LOG "deliver"

/* WildDuck's constants (lib/consts.js). */
#define DELIVER_MAX_FORWARDS 2000
#define DELIVER_AUTOREPLY_INTERVAL_MS (4LL * 3600 * 1000)
#define DELIVER_MAX_RECEIVED 30        /* forwarding refuses a message with this many */
#define DELIVER_MAX_SPAM_HEADERS 16
#define DELIVER_SETTINGS_CACHE_MS 60000
/* Bytes kept free under the store's message limit for the trace headers. */
#define DELIVER_TRACE_ROOM 4096
/* A header value we look at (autoreply subject, references...). */
#define DELIVER_MAX_HEADER_VALUE 4096

struct wd_deliver_settings {
	uint64_t max_size;             /* lmtp.maxMB */
	bool over_quota_defer;         /* lmtp.overQuota = "defer": 452 instead of 552 */
	bool wildcard;                 /* lmtp.wildcard */
	bool forwarded_addresses;      /* lmtp.forwardedAddresses */
	char *spam_headers[DELIVER_MAX_SPAM_HEADERS]; /* lower-case names */
	size_t spam_header_count;
	int spam_header_score;         /* lmtp.spamHeaderScore */
	char *rspamd_header;           /* lower-case name, NULL: off */
	int64_t max_storage;           /* maxStorage (MiB) in bytes, or 1 GiB */
	bool decode_base64;            /* attachments.decodeBase64 */
};

struct wd_deliver {
	struct wd_store *store;
	struct wd_auth *auth;
	struct wd_deliver_settings settings;
	wd_deliver_queue_cb *queue;
	void *queue_context;

	/* settings collection, read at most once a minute (deliver-counter.c) */
	pthread_mutex_t lock;
	int64_t settings_loaded_ms;
	int64_t setting_max_storage;
	int64_t setting_max_forwards;
	int64_t setting_autoreply_interval;
};

struct wd_deliver_rcpt {
	char *address;          /* as given in RCPT TO */
	char *recipient;        /* normalizeAddress(): Delivered-To, meta.to */
	bool forwarded;         /* a forwarded address: no user, only forwarded */
	bson_oid_t user;        /* the owner (users) */
	bson_oid_t address_id;  /* the matching address document */
	char *matched;          /* its address (a wildcard shows as such) */
	bson_t *address_doc;    /* forwarded only: the whole addresses document */
};

/* ---- one transaction ---- */

/* What every recipient of a transaction shares: the message, parsed once. */
struct deliver_txn {
	struct wd_deliver *deliver;
	const struct wd_deliver_envelope *envelope;
	const uint8_t *raw;
	size_t len;
	char *sender;                     /* normalised envelope sender, "" for <> */
	struct wd_message_summary summary;
	char *text_folded;                /* lower-cased plaintext, white space collapsed */
	int spam_score;                   /* 0..100 from the spam headers */
	char *spam_action;                /* Rspamd's action when given (meta.spamAction) */
	/* from the first Received: header (filter-handler's parseReceived) */
	char *received_with, *received_id, *received_from;
	unsigned received_count;
	/* why no autoreply may answer this message, NULL: it may */
	const char *autoreply_refusal;
	char *from_domain;                /* of From (or Sender), for domainaccess */
};

int wd__deliver_txn_init(struct deliver_txn *txn, struct wd_deliver *deliver,
			 const struct wd_deliver_envelope *envelope, const uint8_t *raw, size_t len,
			 char **error_r);
void wd__deliver_txn_clear(struct deliver_txn *txn);

/* What happened to one recipient, for its reply and log line. */
enum deliver_action {
	DELIVER_STORED,
	DELIVER_DROPPED,    /* a filter's delete action (250) */
	DELIVER_FORWARDED,  /* forwarded address: forwarded only (250) */
	DELIVER_REFUSED,    /* 4xx/5xx */
};

struct deliver_outcome {
	enum deliver_action action;
	char reason[160];         /* why refused / dropped, extra notes */
	char mailbox[25];         /* hex id, "" none */
	char message_id[25];      /* stored message _id hex */
	uint32_t uid;
	uint64_t size;
	char user[25];
	unsigned forwarded;       /* forward targets queued */
	bool autoreplied;
	char notes[160];          /* forward/autoreply skips, for the log */
};

/* ---- header facts (deliver-header.c) ---- */

/* The first value of header `key` (lower-case) in the parsedHeader, with
   white space runs collapsed and trimmed; NULL when absent. malloc'd. */
char *wd__deliver_header_first(const bson_t *parsed, const char *key);
/* How many times the header occurs. */
unsigned wd__deliver_header_count(const bson_t *parsed, const char *key);
/* Calls cb for the value of each occurrence (raw, as parsedHeader keeps it)
   up to `max`; stops when cb returns false. */
void wd__deliver_header_each(const bson_t *parsed, const char *key, unsigned max,
			     bool (*cb)(void *context, const char *value), void *context);
/* The addresses of an address header (from, to, cc...), groups flattened,
   in order: cb(context, address, name) until it returns false. */
void wd__deliver_header_addresses(const bson_t *parsed, const char *key,
				  bool (*cb)(void *context, const char *address, const char *name),
				  void *context);
/* Lower-cases (Unicode) and collapses white space runs to one space. */
char *wd__deliver_fold(const char *text);

/* ---- filters (deliver-filter.c) ---- */

enum deliver_action_key {
	ACTION_SPAM,
	ACTION_SEEN,
	ACTION_FLAG,
	ACTION_DELETE,
	ACTION_MAILBOX,
	ACTION_COUNT
};

/* A forward target: {type, value} as in users.targets / action.targets. */
struct deliver_target {
	char *type;   /* "mail", "relay", "http" */
	char *value;
	char *key;    /* de-duplication key: value, or "recipient:value" for relays */
};

/* WildDuck's filterActions map: the first value set for a key wins; `order`
   is when it was set, because the later of spam/mailbox picks the mailbox. */
struct deliver_actions {
	bool set[ACTION_COUNT];
	bool value[ACTION_COUNT];
	unsigned order[ACTION_COUNT];
	unsigned next_order;
	bool has_mailbox_id;
	bson_oid_t mailbox_id;
	struct deliver_target *targets;
	size_t target_count;
	bson_t matched;              /* meta `filters`: ids and block:/allow: strings */
	unsigned matched_count;
};

void wd__deliver_actions_init(struct deliver_actions *actions);
void wd__deliver_actions_clear(struct deliver_actions *actions);
/* Sets a key unless already set (first wins). */
void wd__deliver_actions_set(struct deliver_actions *actions, enum deliver_action_key key,
			     bool value);
/* Sets a key even when set (spamLevel 100), keeping its first order. */
void wd__deliver_actions_force(struct deliver_actions *actions, enum deliver_action_key key,
			       bool value);
/* Adds a target unless one with the same key is there. */
int wd__deliver_actions_add_target(struct deliver_actions *actions, const char *type,
				   const char *value, const char *key);
/* Adds each {type, value} of a targets array; a "relay" target is keyed
   "<relay_recipient>:<value>" when relay_recipient is given (users.targets,
   addresses.targets), every other one by its value. */
void wd__deliver_actions_add_targets(struct deliver_actions *actions, const bson_t *list,
				     const char *relay_recipient);

/* The domain access lists, then the user's enabled filters sorted by _id,
   applied to `actions` as WildDuck does (reference §4.15 steps 2-4).
   `recipient` is the Delivered-To value, `size` the size with the trace
   headers. A database error reading filters is logged and ignored, as in
   WildDuck. */
void wd__deliver_filters_run(const struct deliver_txn *txn, const bson_t *user,
			     const char *recipient, uint64_t size, struct deliver_actions *actions);
/* One filter's query against the message (exposed for tests of the rules). */
bool wd__deliver_filter_matches(const struct deliver_txn *txn, const bson_t *query,
				const char *recipient, uint64_t size);

/* ---- spam (deliver-spam.c) ---- */

/* The transaction's spam score (0..100) from the configured headers. */
void wd__deliver_spam_evidence(struct deliver_txn *txn);
/* users.spamLevel against the score, into actions (step 5). */
void wd__deliver_spam_decide(const struct deliver_txn *txn, const bson_t *user,
			     struct deliver_actions *actions);

/* ---- forwarding (deliver-forward.c) ---- */

/* Forwards for a user (step 6): the filters' targets plus users.targets
   unless deleted; nothing for spam. Queue ids are appended to `outbound`
   (a BSON array being built, *outbound_count its length); what was skipped
   goes to outcome->notes. */
void wd__deliver_forward_user(const struct deliver_txn *txn, const bson_t *user,
			      const char *recipient, struct deliver_actions *actions,
			      bson_t *outbound, unsigned *outbound_count,
			      struct deliver_outcome *outcome);
/* The whole delivery to a forwarded address. */
void wd__deliver_forwarded_address(const struct deliver_txn *txn,
				   const struct wd_deliver_rcpt *rcpt,
				   struct wd_deliver_reply *reply, struct deliver_outcome *outcome);
/* The daily forward counter: may `count` more be forwarded under `limit`?
   Counts them when `count` > 0. Redis down: allowed (as WildDuck). */
bool wd__deliver_forward_allowed(struct wd_deliver *deliver, const char *key, unsigned count,
				 int64_t limit);

/* ---- autoreply (deliver-autoreply.c) ---- */

/* The autoreply of a user (step 7) or of a forwarded address. `autoreply`
   is the autoreplies document (user) or addresses.autoreply (forwarded);
   `id` keys war:/wda:. Returns true with *queue_id_r when one was queued. */
bool wd__deliver_autoreply(const struct deliver_txn *txn, const bson_t *autoreply,
			   const bson_oid_t *id, const bson_oid_t *user, const char *default_name,
			   const char *recipient, char queue_id_r[19],
			   struct deliver_outcome *outcome);
/* For a user: checks users.autoreply and loads the autoreplies document. */
bool wd__deliver_autoreply_user(const struct deliver_txn *txn, const bson_t *user,
				const char *recipient, char queue_id_r[19],
				struct deliver_outcome *outcome);

/* ---- address register (deliver-register.c) ---- */

void wd__deliver_register(const struct deliver_txn *txn, const bson_oid_t *user,
			  const char *special_use);

/* ---- Redis counters and settings (deliver-counter.c) ---- */

/* WildDuck's ttlcounter: false when the counter is already at `limit`;
   else adds `increment` (starting a `window` seconds window at zero). Redis
   unreachable: true. */
bool wd__deliver_ttlcounter(struct wd_deliver *deliver, const char *key, int64_t increment,
			    int64_t limit, int64_t window);
/* Settings collection values with WildDuck's defaults. */
int64_t wd__deliver_setting_max_storage(struct wd_deliver *deliver);
int64_t wd__deliver_setting_max_forwards(struct wd_deliver *deliver);
int64_t wd__deliver_setting_autoreply_interval(struct wd_deliver *deliver);

/* ---- one user recipient (deliver-user.c) ---- */

void wd__deliver_user(const struct deliver_txn *txn, const struct wd_deliver_rcpt *rcpt,
		      struct wd_deliver_reply *reply, struct deliver_outcome *outcome);

/* ---- replies and the log (deliver-report.c) ---- */

void wd__deliver_reply(struct wd_deliver_reply *reply, unsigned code, const char *status,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void wd__deliver_reply_db(struct wd_deliver_reply *reply);
void wd__deliver_reply_over_quota(const struct wd_deliver *deliver,
				  struct wd_deliver_reply *reply);
void wd__deliver_log(const struct deliver_txn *txn, const struct wd_deliver_rcpt *rcpt,
		     const struct wd_deliver_reply *reply, const struct deliver_outcome *outcome);
/* Appends a note ("forward: rate limited") to outcome->notes. */
void wd__deliver_note(struct deliver_outcome *outcome, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- the messagelog collection (deliver-messagelog.c) ----
   Failures are logged, never returned: the log never fails a delivery. */

/* STORE: `message` is the stored copy for `recipient`. */
void wd__deliver_messagelog_store(const struct deliver_txn *txn, const char *recipient,
				  const bson_oid_t *message);
/* FORWARD queued as `queue_id` to the mail targets of `actions`; `parent`
   the stored copy or NULL. */
void wd__deliver_messagelog_forward(const struct deliver_txn *txn, const char *queue_id,
				    const bson_oid_t *parent, const char *recipient,
				    const struct deliver_actions *actions);
/* AUTOREPLY queued as `queue_id` to the sender; `parent` as above. */
void wd__deliver_messagelog_autoreply(const struct deliver_txn *txn, const char *queue_id,
				      const bson_oid_t *parent);

/* ---- small helpers ---- */

int64_t wd__deliver_now_ms(void);
/* ---- documents (deliver-db.c) ---- */

/* The first document matching `query`, copied (bson_destroy it):
   WD_STORE_OK, WD_STORE_ERR_NOT_FOUND, or WD_STORE_ERR_DATABASE (logged). */
int wd__deliver_find_one(struct wd_store *store, enum wd_store_db db, const char *collection,
			 const bson_t *query, bson_t **doc_r);
/* A numeric field of a document as int64 (int32, int64, double), or def. */
int64_t wd__deliver_doc_int(const bson_t *doc, const char *key, int64_t def);
/* A string field, or NULL. */
const char *wd__deliver_doc_str(const bson_t *doc, const char *key);
/* JavaScript truthiness of a field (absent: false). */
bool wd__deliver_doc_bool(const bson_t *doc, const char *key);
const bson_oid_t *wd__deliver_doc_oid(const bson_t *doc, const char *key);
/* An embedded document (array false) or array, as a static view. */
bool wd__deliver_doc_sub(const bson_t *doc, const char *key, bool array, bson_t *sub_r);
/* The effective quota of a user document (users.quota, else the setting). */
int64_t wd__deliver_user_quota(struct wd_deliver *deliver, const bson_t *user);

#endif
