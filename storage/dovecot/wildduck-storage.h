#ifndef WILDDUCK_STORAGE_H
#define WILDDUCK_STORAGE_H

/* The `wildduck` mail storage and mailbox list for Dovecot 2.3.19, over
 * libwdstore (storage/wd-store*.h). Private to the plugin's files; see
 * docs/dovecot-storage.md for the design.
 *
 * Objects and who owns what:
 *   wildduck_user     per mail_user (module context): the process-wide
 *                     wd_store it uses, the user's id, settings, and the
 *                     Redis subscriber that wakes IDLE (wildduck-notify.c).
 *   wildduck_storage  the mail_storage of a namespace.
 *   wildduck_mailbox  a mailbox: its backend id and the sync position.
 *                     The Dovecot index (in memory or on a tmpfs INDEX=
 *                     path) is only a cache of the backend: UIDVALIDITY,
 *                     UIDs, flags, keywords and per-message MODSEQs are
 *                     imported from MongoDB (wildduck-sync.c); flag
 *                     changes and expunges made through Dovecot are
 *                     written through libwdstore before imap answers.
 *
 * Every libwdstore call here is blocking; a Dovecot mail process runs one
 * user's commands one after another, as Dovecot's own file storages block
 * on disk I/O. */

/* ABI pin (issue 7): the vfunc tables below are filled with designated
   initializers, but private structs (mail-index-private.h, the index's
   transaction log) change inside 2.3.x, so the plugin is built for
   exactly one Dovecot. meson.build checks DOVECOT_ABI_VERSION too. */
#include "config.h"
#if DOVECOT_VERSION_MAJOR != 2 || DOVECOT_VERSION_MINOR != 3 || DOVECOT_VERSION_MICRO != 19
#error "the wildduck plugins are written for Dovecot 2.3.19 (Debian 12)"
#endif

#include "lib.h"
#include "array.h"
#include "str.h"
#include "index-storage.h"
#include "index-mail.h"
#include "mailbox-list-private.h"

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stdint.h>

#define WILDDUCK_STORAGE_NAME "wildduck"
#define WILDDUCK_LIST_NAME "wildduck"
#define WILDDUCK_HIERARCHY_SEP '/'

struct wd_store;
struct wildduck_notify;
struct wildduck_meta_cache;

/* ---- the user (wildduck-user.c) ---- */

struct wildduck_user {
	union mail_user_module_context module_ctx;
	struct mail_user *user;

	/* set by wildduck_user_connect() */
	struct wd_store *store;
	const char *redis_url;     /* dbs.redis of that store (wd_events) */
	bson_oid_t user_id;
	char user_hex[25];
	bool connected;
	char *connect_error;       /* the last failure, logged once */

	/* settings (plugin { wildduck_* }) */
	unsigned int poll_secs;      /* fallback re-sync while IDLE */
	unsigned int full_sync_secs; /* full re-read of a selected mailbox */
	uoff_t max_message_size;     /* APPEND / LMTP limit */
	bool search_pushdown;
	bool pop3_trash;             /* POP3 DELE moves to \Trash as WildDuck */

	struct wildduck_notify *notify;

	/* the last quota read (wildduck_quota_usage) */
	struct timeval quota_read;
	uint64_t quota_used, quota_limit;
};

struct wildduck_user *wildduck_user_get(struct mail_user *user);
/* Opens the process's store (once) and finds the user's id: the userdb field
   wildduck_user when present, else users.unameview, else the address
   (wd_store_address_resolve). 0, or -1 with *error_r. */
int wildduck_user_connect(struct wildduck_user *wuser, const char **error_r);

/* users.storageUsed and the effective quota in bytes (exported for the
   quota backend plugin). */
int wildduck_quota_usage(struct mail_user *user, uint64_t *used_r, uint64_t *limit_r,
			 const char **error_r) __attribute__((visibility("default")));

void wildduck_user_hooks_init(struct module *module);
void wildduck_user_hooks_deinit(void);

/* ---- storage and mailbox (wildduck-storage.c) ---- */

struct wildduck_storage {
	struct mail_storage storage;
	struct wildduck_user *wuser;
};

/* The index header extension "wildduck": where the index stands relative to
   the backend, so a tmpfs index (or one kept by Dovecot's per-process index
   cache) resumes from the journal instead of re-reading the mailbox. */
struct wildduck_index_header {
	uint8_t mailbox_id[12];
	uint32_t uid_validity;
	uint64_t modseq;          /* backend modifyIndex imported */
	uint64_t highest_modseq;  /* HIGHESTMODSEQ reported (>= modseq) */
	int64_t last_sync_ms;     /* last read of the journal or the mailbox */
	int64_t last_full_ms;     /* last full re-read */
};

/* Per-message data from `messages` (no body): from the index record
   extension, else read in uid order through one cursor (FETCH 1:* is one
   query, not one per message). */
struct wildduck_meta {
	uint32_t uid;
	bson_oid_t id;
	uint64_t size;
	int64_t idate_ms;
	int64_t hdate_ms;
	int64_t saved_ms;         /* meta.time, else idate */
};
/* The record extension "wildduck-msg": what a message's document says
   besides flags and MODSEQ, imported with them, so sizes, dates and the
   _id (for the body and the UIDL) never need a query of their own. */
struct wildduck_index_record {
	uint8_t id[12];
	uint32_t valid;           /* 1 once imported */
	uint64_t size;
	int64_t idate_ms;
	int64_t hdate_ms;
	int64_t saved_ms;
};

struct wildduck_mailbox {
	struct mailbox box;
	struct wildduck_storage *storage;

	bson_oid_t id;            /* mailboxes._id */
	bool have_id;
	uint32_t uid_validity;
	uint32_t uid_next;

	uint32_t hdr_ext_id;      /* "wildduck" header extension */
	uint32_t rec_ext_id;      /* "wildduck-msg" record extension */
	bool exts_registered;
	uint32_t recent_claimed;  /* \Recent claimed up to this UID */
	bool syncing;
	bool sync_failed;
	/* set by the Redis subscriber / the fallback timer */
	bool notified;
	/* the next sync re-reads everything (Redis came back, a gap) */
	bool force_full;

	struct wildduck_meta_cache *meta;
	struct wildduck_meta meta_from_index; /* the last one read from the index */
	struct timeout *to_poll;
};

#define WILDDUCK_MAILBOX(s) container_of(s, struct wildduck_mailbox, box)
#define WILDDUCK_STORAGE(s) container_of(s, struct wildduck_storage, storage)

extern struct mail_storage wildduck_storage;
extern struct mailbox_list wildduck_mailbox_list;
extern struct mail_vfuncs wildduck_mail_vfuncs;

/* The mailbox document for box->name; 1 found, 0 not, -1 error (set on the
   storage). Fills mbox->id/uid_validity/uid_next. */
int wildduck_mailbox_lookup(struct wildduck_mailbox *mbox);
/* The mail_error of a libwdstore result (negative enum
   wd_store_error_kind); MAIL_ERROR_TEMP for a database failure, which is
   logged as critical. */
enum mail_error wildduck_mail_error(int ret);
/* Maps a libwdstore result to a storage / list error; `error` is freed. */
void wildduck_storage_set_error(struct mail_storage *storage, int ret, char *error);
void wildduck_list_set_error(struct mailbox_list *list, int ret, char *error);

/* ---- sync (wildduck-sync.c) ---- */

/* Brings the index in line with the backend: first the changes Dovecot made
   (flags, keywords, expunges) are written through libwdstore, then new,
   changed and expunged messages are imported. `full` re-reads the whole
   mailbox instead of the journal. */
int wildduck_sync(struct wildduck_mailbox *mbox, bool full);
struct mailbox_sync_context *
wildduck_mailbox_sync_init(struct mailbox *box, enum mailbox_sync_flags flags);
/* HIGHESTMODSEQ as the backend numbers it. */
uint64_t wildduck_sync_highest_modseq(struct wildduck_mailbox *mbox);
void wildduck_sync_register_ext(struct wildduck_mailbox *mbox);

/* ---- messages (wildduck-mail.c) ---- */

struct mail *wildduck_mail_alloc(struct mailbox_transaction_context *t,
				 enum mail_fetch_field wanted_fields,
				 struct mailbox_header_lookup_ctx *wanted_headers);
void wildduck_meta_cache_free(struct wildduck_meta_cache **cache);
/* Forget cached entries (after expunges or a re-import). */
void wildduck_meta_cache_reset(struct wildduck_meta_cache *cache);
/* 1 found, 0 not in the backend (expunged), -1 error. */
int wildduck_meta_lookup(struct wildduck_mailbox *mbox, uint32_t uid,
			 const struct wildduck_meta **meta_r, const char **error_r);
/* A cursor over the mailbox's messages in UID order (filter: mailbox plus
   `extra`), projected to the record extension's fields, and with_state
   also uid/modseq/flags. *coll_r is to be destroyed with the cursor. */
mongoc_cursor_t *wildduck_messages_cursor(struct wildduck_mailbox *mbox, mongoc_client_t *client,
					  mongoc_collection_t **coll_r, const bson_t *extra,
					  bool with_state, int32_t batch_size);
/* The document with this _id when it is in this mailbox: 1 (*doc_r to
   bson_destroy), 0 gone or elsewhere, -1 error. */
int wildduck_message_doc_by_id(struct wildduck_mailbox *mbox, const bson_oid_t *id, bson_t **doc_r,
			       const char **error_r);
/* The record extension's fields from a messages document (a projection
   with _id, size, idate, hdate, meta.time). */
void wildduck_index_record_from_doc(const bson_t *doc, struct wildduck_index_record *rec_r);

/* ---- the message stream (istream-wildduck.c) ---- */

struct wd_message_reader;
/* A seekable istream over a libwdstore reader (taken over). */
struct istream *i_stream_create_wildduck(struct wd_message_reader *reader, const char *name);

/* ---- saving, copying (wildduck-save.c) ---- */

struct mail_save_context *wildduck_save_alloc(struct mailbox_transaction_context *t);
int wildduck_save_begin(struct mail_save_context *ctx, struct istream *input);
int wildduck_save_continue(struct mail_save_context *ctx);
int wildduck_save_finish(struct mail_save_context *ctx);
void wildduck_save_cancel(struct mail_save_context *ctx);
int wildduck_copy(struct mail_save_context *ctx, struct mail *mail);
int wildduck_transaction_save_commit_pre(struct mail_save_context *ctx);
void wildduck_transaction_save_commit_post(struct mail_save_context *ctx,
					   struct mail_index_transaction_commit_result *result);
void wildduck_transaction_save_rollback(struct mail_save_context *ctx);

/* ---- SEARCH push-down (wildduck-search.c) ---- */

struct mail_search_context *
wildduck_search_init(struct mailbox_transaction_context *t, struct mail_search_args *args,
		     const enum mail_sort_type *sort_program,
		     enum mail_fetch_field wanted_fields,
		     struct mailbox_header_lookup_ctx *wanted_headers);
int wildduck_search_deinit(struct mail_search_context *ctx);
bool wildduck_search_next_update_seq(struct mail_search_context *ctx);

/* ---- other servers' changes (wildduck-notify.c) ---- */

/* IDLE: wake box->notify_callback when wd_events names the user, and re-sync
   on a timer as a fallback (box->notify_callback NULL: stop). */
void wildduck_notify_changes(struct mailbox *box);
void wildduck_notify_user_deinit(struct wildduck_user *wuser);

#endif
