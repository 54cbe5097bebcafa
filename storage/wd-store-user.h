#ifndef WD_STORE_USER_H
#define WD_STORE_USER_H

/* Users, their e-mail addresses and their mailboxes, in WildDuck's documents
 * (reference §2.1 users, §2.2 addresses, §2.3 domainaliases, §2.4
 * deletedusers, §2.8 mailboxes; algorithms §4.13 and §4.16).
 *
 * Blocking calls for worker threads, thread-safe like the rest of
 * libwdstore. Every database step borrows a pooled client for that step only,
 * so a call never holds two clients at once.
 *
 * Return convention: 0 on success, otherwise a negative
 * `enum wd_store_error_kind` value, and then *error_r holds a malloc'd
 * message for the log or the client (free it). WD_STORE_ERR_DATABASE equals
 * WD_ERROR, so `ret < 0` tests keep working for callers that do not care
 * about the kind. The pure helpers (normalisation, validation) return 0 or
 * WD_STORE_ERR_INVALID / WD_STORE_ERR_LIMIT with a static message in
 * *error_r instead.
 *
 * What this module does not do yet (other modules own it): hashing
 * passwords, the auth log ("account created", "delete user"), webhooks
 * events, Redis feature-flag sets and message counters. */

#include "wd-store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wd_store_error_kind {
	WD_STORE_OK = 0,
	WD_STORE_ERR_DATABASE = -1,      /* server unreachable or unexpected reply */
	WD_STORE_ERR_NOT_FOUND = -2,     /* no such user / address / mailbox */
	WD_STORE_ERR_EXISTS = -3,        /* username, address or path already taken */
	WD_STORE_ERR_LIMIT = -4,         /* a limit of reference §5 would be exceeded */
	WD_STORE_ERR_INVALID = -5,       /* malformed input */
	WD_STORE_ERR_NOT_PERMITTED = -6, /* e.g. deleting INBOX or the main address */
};

/* "database", "not found", ... for a return value (any negative value). */
const char *wd_store_error_kind_name(int ret);

/* WildDuck's constants (lib/consts.js, reference §5). */
#define WD_MAX_MAILBOXES 1500            /* per user, setting const:max:mailboxes */
#define WD_MAX_MAILBOX_NAME_LENGTH 512   /* per path level, in UTF-16 code units */
#define WD_MAX_SUB_MAILBOXES 128         /* path levels */
#define WD_MAX_WILDCARD_LENGTH 32        /* literal part of a wildcard address */
#define WD_MAX_USERNAME_LENGTH 128
#define WD_JUNK_RETENTION_MS (30LL * 24 * 3600 * 1000)
#define WD_DEFAULT_MAX_STORAGE (1024LL * 1024 * 1024) /* quota 0 means this */
#define WD_DEFAULT_SPAM_LEVEL 50

/* ---- Normalisation (pure; reference §4.13) ---- */

enum wd_address_flags {
	WD_ADDRESS_REMOVE_LABEL = 0x1, /* drop a trailing "+label" of the local part */
	WD_ADDRESS_REMOVE_DOTS = 0x2,  /* drop every "." of the local part */
};

/* WildDuck's normalizeAddress(): split at the last '@'; the local part is
   NFC-normalised, lower-cased (full Unicode) and trimmed, then the flags
   apply; the domain goes through wd_domain_normalize(). Unlike WildDuck,
   input without '@', with an empty local part or domain, with invalid UTF-8,
   control characters or white space inside, or longer than 512 bytes is
   refused (WD_STORE_ERR_INVALID) instead of turning into "@text". */
int wd_address_normalize(const char *address, unsigned flags, char **result_r,
			 const char **error_r);
/* WildDuck's normalizeDomain(): lower-case and trim; a domain that starts
   with "xn--" is converted from punycode to Unicode (NFC, lower-case), and
   kept as it was when that fails. Only a leading "xn--" triggers the
   conversion, exactly as in WildDuck, so both compute the same addrview.
   NULL for invalid UTF-8 or when out of memory. */
char *wd_domain_normalize(const char *domain);
/* WildDuck's uview(): with an '@', the dots before the first '@' are removed;
   without, all dots; then everything is lower-cased. NULL for invalid UTF-8. */
char *wd_uview(const char *value);
/* addrview of an address as stored: uview(normalizeAddress(address)). */
int wd_address_addrview(const char *address, char **addrview_r, const char **error_r);
/* WildDuck's API username grammar: [a-z0-9-]+ groups joined by one of
   "._=:", optionally "@" and a second such part; 1..128 characters. Upper
   case ASCII is accepted (the API lower-cases it). */
int wd_username_validate(const char *username, const char **error_r);

/* imap-core's normalizeMailbox(): one leading and one trailing '/' are
   trimmed and a first level "INBOX" in any case becomes "INBOX". The result
   is malloc'd (NULL only when out of memory). */
char *wd_mailbox_path_normalize(const char *path);
/* A normalised path that may be stored: valid UTF-8, no control characters,
   no empty level, at most WD_MAX_SUB_MAILBOXES levels (WD_STORE_ERR_LIMIT)
   of at most WD_MAX_MAILBOX_NAME_LENGTH UTF-16 code units each, as
   JavaScript counts them (WD_STORE_ERR_LIMIT). */
int wd_mailbox_path_validate(const char *path, const char **error_r);

/* ---- Users (reference §2.1) ---- */

enum wd_scope {
	WD_SCOPE_IMAP = 0x1,
	WD_SCOPE_POP3 = 0x2,
	WD_SCOPE_SMTP = 0x4,
};

/* A new user. Zero means "WildDuck's default" for every field, except
   spam_level (use WD_DEFAULT_SPAM_LEVEL). Numbers are written the way
   WildDuck's JavaScript numbers are: int32 when they fit, else double. */
struct wd_user_create {
	const char *username;      /* required, see wd_username_validate() */
	const char *name;          /* NULL: null */
	const char *language;      /* NULL: null */
	/* An already hashed password (PHC / crypt string; hashing is the auth
	   module's job), or NULL/"": password login impossible. */
	const char *password_hash;
	bool require_password_change; /* store it as tempPassword instead */

	/* Main address. NULL: the username when it is an address, else
	   "<username>@<email_domain>" (email_domain NULL: the host name), as
	   WildDuck does. A "+label" is dropped. Never a wildcard. */
	const char *address;
	const char *email_domain;
	bool empty_address;        /* no address at all */
	/* More addresses of the user (normal, no wildcards, no '+'). */
	const char *const *extra_addresses;
	size_t extra_address_count;

	/* Default mailbox names (NULL: English as WildDuck's translation "en";
	   the translated names of other languages are not built in). */
	const char *sent_name, *trash_name, *drafts_name, *junk_name;

	/* bytes; 0 = setting const:max:storage (WD_DEFAULT_MAX_STORAGE), stored
	   as 0 like WildDuck so a later change of the setting applies */
	int64_t quota;
	int64_t retention;         /* ms for new mailboxes; 0 = none */
	int64_t recipients, forwards, filters, received_max;
	int64_t imap_max_upload, imap_max_download, pop3_max_download;
	int64_t pop3_max_messages, imap_max_connections;
	int spam_level;            /* 0..100 (clamped) */
	unsigned disabled_scopes;  /* enum wd_scope bits */
	bool upload_sent_messages, encrypt_messages, encrypt_forwarded;
	const char *metadata;      /* JSON object text, validated by the caller; NULL: "" */
	const char *internal_data; /* same */

	/* Use this _id instead of a new one (restoring, migrating, tests). */
	const bson_oid_t *user_id;
};

/* Creates the users document, the five default mailboxes and the
   addresses, in WildDuck's order (user inserted inactive, mailboxes,
   addresses, then activated with its address and password). A taken
   username or address fails with WD_STORE_ERR_EXISTS ("username already
   exists", "address already exists: x"); when any step after the first
   insert fails, everything written so far is deleted again. */
int wd_store_user_create(struct wd_store *store, const struct wd_user_create *req,
			 bson_oid_t *user_id_r, char **error_r);

struct wd_user {
	bson_oid_t id;
	char *username;
	char *unameview;
	char *name;     /* NULL when null */
	char *address;  /* "" when none */
	char *language; /* NULL when null */
	int64_t quota;  /* 0 = the default */
	int64_t storage_used;
	int64_t retention;
	int spam_level;
	int auth_version;
	bool activated, disabled, suspended;
	int64_t created_ms;
	bson_t *doc;    /* the whole document, for every other field */
};

struct wd_user_list {
	struct wd_user *items;
	size_t count;
};

int wd_store_user_get(struct wd_store *store, const bson_oid_t *user_id, struct wd_user **user_r,
		      char **error_r);
/* By username: {unameview: uview(username)}. Address lookups go through
   wd_store_address_resolve(). */
int wd_store_user_get_by_username(struct wd_store *store, const char *username,
				  struct wd_user **user_r, char **error_r);
/* Up to `limit` users (0: 20, at most 2500) in _id order, after `after`
   (NULL: from the start); page on with the last id. */
int wd_store_user_list(struct wd_store *store, const bson_oid_t *after, unsigned limit,
		       struct wd_user_list *list_r, char **error_r);
void wd_user_free(struct wd_user **user);
void wd_user_list_free(struct wd_user_list *list);

struct wd_user_delete_report {
	int64_t addresses;
	int64_t mailboxes;
	int64_t messages;  /* marked for the garbage collector */
};
/* As WildDuck's DELETE /users/:user: the users document is copied to
   `deletedusers` with deleteInfo {deletedAt, mainAddress, addresses: [the
   address documents]}, then the user and its addresses are deleted. What
   WildDuck leaves to its user-delete task is done at once: the mailboxes,
   application passwords, filters, autoreplies and address register entries
   are deleted, and every message is marked {exp: true, userDeleted: true,
   rdate: now + 14 d}, so wd_store_retention_gc() removes them (without
   archiving) and releases their attachments. */
int wd_store_user_delete(struct wd_store *store, const bson_oid_t *user_id,
			 struct wd_user_delete_report *report_r, char **error_r);

/* ---- Addresses (reference §2.2, §2.3, §4.13) ---- */

struct wd_address {
	bson_oid_t id;
	bool has_user;     /* false for a forwarded address (no owner) */
	bson_oid_t user;
	char *address;
	char *addrview;
	char *name;        /* NULL when null or absent */
	bool main;         /* wd_store_address_list() only: it is users.address */
	int64_t created_ms;
};

struct wd_address_list {
	struct wd_address *items;
	size_t count;
};

struct wd_address_add {
	const char *name;     /* NULL: null */
	bool main;            /* make it users.address (also when the user has none) */
	/* Allow "*@domain", "*suffix@domain", "prefix*@domain" (literal part at
	   most WD_MAX_WILDCARD_LENGTH) and "user@*". Never with main. */
	bool allow_wildcard;
};

/* Adds a normal address to a user. Refused: '+' in it, a wildcard unless
   allowed, an existing addrview (WD_STORE_ERR_EXISTS). */
int wd_store_address_add(struct wd_store *store, const bson_oid_t *user_id, const char *address,
			 const struct wd_address_add *opts, bson_oid_t *address_id_r,
			 char **error_r);
/* Makes an address of the user its main address (users.address). */
int wd_store_address_set_main(struct wd_store *store, const bson_oid_t *user_id,
			      const bson_oid_t *address_id, char **error_r);
/* Removes an address of the user; not its main address (NOT_PERMITTED). */
int wd_store_address_remove(struct wd_store *store, const bson_oid_t *user_id,
			    const bson_oid_t *address_id, char **error_r);
/* The user's addresses in addrview order, `main` set on the main one. */
int wd_store_address_list(struct wd_store *store, const bson_oid_t *user_id,
			  struct wd_address_list *list_r, char **error_r);

enum wd_resolve_flags {
	/* also the wildcard steps (MX delivery, /addresses/resolve); LMTP RCPT
	   and login do without */
	WD_RESOLVE_WILDCARD = 0x1,
};
/* Which address document an incoming address means, in this order:
   1. when the input has a "+label": its addrview with the label kept
      (WildDuck never stores such an address, other writers might);
   2. the addrview without label and dots ("j.doe+x@X.org" -> "jdoe@x.org");
   3. the same local part on the target domain of a domain alias;
   4. with WD_RESOLVE_WILDCARD, the wildcard addresses of the domain and of
      the alias target: domain before alias target, the longest literal
      part first, "prefix*" before "*suffix" on equal length;
   5. with WD_RESOLVE_WILDCARD, "local@*".
   WD_STORE_ERR_NOT_FOUND when nothing matches, also for unparsable input.
   A forwarded address comes back with has_user false. *error_r is set to
   NULL first. */
int wd_store_address_resolve(struct wd_store *store, const char *address, unsigned flags,
			     struct wd_address **address_r, char **error_r);
void wd_address_free(struct wd_address **address);
void wd_address_list_free(struct wd_address_list *list);

/* Domain aliases: any x@alias resolves as x@domain. Both are normalised
   with wd_domain_normalize(); an existing alias is WD_STORE_ERR_EXISTS. */
int wd_store_domainalias_add(struct wd_store *store, const char *alias, const char *domain,
			     bson_oid_t *id_r, char **error_r);
int wd_store_domainalias_remove(struct wd_store *store, const char *alias, char **error_r);

/* ---- Mailboxes (reference §2.8, §4.16) ---- */

struct wd_mailbox {
	bson_oid_t id;
	bson_oid_t user;
	char *path;
	char *special_use;  /* "\\Sent", ...; NULL when null or absent */
	uint32_t uid_validity;
	uint32_t uid_next;
	uint64_t modify_index;
	bool subscribed;
	bool hidden;
	bool encrypt_messages;
	int64_t retention;  /* ms; 0 when 0, null or absent */
	char **flags;       /* custom keywords */
	size_t flag_count;
};

struct wd_mailbox_list {
	struct wd_mailbox *items;
	size_t count;
};

struct wd_mailbox_create {
	const char *special_use; /* "\\Sent", "\\Trash", "\\Drafts", "\\Junk" or NULL */
	bool hidden;
	bool encrypt_messages;
	int64_t retention;       /* ms; 0: the user's default retention */
	unsigned max_mailboxes;  /* 0: WD_MAX_MAILBOXES */
};

/* A new subscribed mailbox: uidValidity = now in seconds, uidNext 1,
   modifyIndex 0, flags [], retention as the user's unless given, `hidden`
   and `encryptMessages` as WildDuck's API writes them. Path normalised and
   validated first. EXISTS for a taken path or special use, LIMIT for a
   user who has max_mailboxes already, NOT_FOUND for an unknown user. A
   journal CREATE entry is written and the user notified. */
int wd_store_mailbox_create(struct wd_store *store, const bson_oid_t *user_id, const char *path,
			    const struct wd_mailbox_create *opts, bson_oid_t *mailbox_id_r,
			    char **error_r);
/* Renames a mailbox and, unlike WildDuck, every mailbox below it ("a/x"
   follows "a"). Refused: INBOX and hidden mailboxes (NOT_PERMITTED), a path
   inside the mailbox itself (INVALID), a target taken by any mailbox that
   does not move (EXISTS), children pushed past the limits (LIMIT). A
   conflict that appears while renaming (another writer) undoes the renames
   done so far. *renamed_r (may be NULL) counts the renamed mailboxes. */
int wd_store_mailbox_rename(struct wd_store *store, const bson_oid_t *user_id,
			    const bson_oid_t *mailbox_id, const char *new_path, unsigned *renamed_r,
			    char **error_r);
/* Deletes one mailbox (not its children: storage is flat) as WildDuck does:
   INBOX, special-use and hidden mailboxes are refused (NOT_PERMITTED); the
   filters that file into it are deleted; its messages are marked {exp: true,
   rdate: now - 24 h} so that the garbage collector removes them first. */
int wd_store_mailbox_delete(struct wd_store *store, const bson_oid_t *user_id,
			    const bson_oid_t *mailbox_id, char **error_r);
/* IMAP SUBSCRIBE / UNSUBSCRIBE of an existing mailbox (NOT_FOUND else). */
int wd_store_mailbox_subscribe(struct wd_store *store, const bson_oid_t *user_id,
			       const char *path, bool subscribed, char **error_r);

enum wd_mailbox_list_flags {
	WD_MAILBOX_LIST_SUBSCRIBED = 0x1, /* only subscribed ones (LSUB) */
	WD_MAILBOX_LIST_HIDDEN = 0x2,     /* include hidden ones (IMAP LIST does not) */
};
/* The user's mailboxes in path order. */
int wd_store_mailbox_list(struct wd_store *store, const bson_oid_t *user_id, unsigned flags,
			  struct wd_mailbox_list *list_r, char **error_r);
/* By path (normalised first, so "inbox" finds INBOX). */
int wd_store_mailbox_get_by_path(struct wd_store *store, const bson_oid_t *user_id,
				 const char *path, struct wd_mailbox **mailbox_r, char **error_r);
/* By id; user_id NULL: whoever owns it. */
int wd_store_mailbox_get_by_id(struct wd_store *store, const bson_oid_t *user_id,
			       const bson_oid_t *mailbox_id, struct wd_mailbox **mailbox_r,
			       char **error_r);
int wd_store_mailbox_get_by_special_use(struct wd_store *store, const bson_oid_t *user_id,
					const char *special_use, struct wd_mailbox **mailbox_r,
					char **error_r);
/* WildDuck's cached counters of a mailbox (total:<id>, unseen:<id> in
   Redis for 24 h, kept by every journal writer; counted from `messages` and
   cached when absent). */
int wd_store_mailbox_counters(struct wd_store *store, const bson_oid_t *mailbox, int64_t *total_r,
			      int64_t *unseen_r, char **error_r);
void wd_mailbox_free(struct wd_mailbox **mailbox);
void wd_mailbox_list_free(struct wd_mailbox_list *list);

#endif
