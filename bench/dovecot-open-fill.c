/* bench/dovecot-open-fill — a big INBOX for bench/dovecot-open.py.
 *
 *   dovecot-open-fill MONGO_URL REDIS_URL USERNAME COUNT
 *
 * Stores three template messages with wd_store_message_add() (so their
 * documents are exactly what libwdstore writes), then clones them with
 * bulk inserts until the user's INBOX holds COUNT messages: each clone gets
 * a new _id, the next UID and MODSEQ, an INTERNALDATE one second apart and
 * flags that vary (a third \Seen, a tenth \Flagged, a seventh $Label1), and
 * the mailbox's uidNext/modifyIndex and the user's storageUsed follow. The
 * templates have no attachments, so no GridFS reference counts are shared.
 * Storing 100,000 messages one by one would take most of an hour on
 * FerretDB; cloning takes a few minutes. Does nothing when the INBOX is
 * already that large. */
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-message.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 500

static const char *const templates[] = {
	"From: Ann Example <ann@example.com>\r\nTo: bench@example.org\r\n"
	"Subject: Quarterly numbers\r\nMessage-ID: <t1@example.com>\r\n"
	"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\n"
	"Hello,\r\n\r\nthe numbers are attached in the next mail.\r\n\r\nAnn\r\n",
	"From: Bob <bob@example.net>\r\nTo: bench@example.org\r\n"
	"Subject: Re: lunch?\r\nMessage-ID: <t2@example.net>\r\n"
	"Date: Tue, 02 Jan 2024 12:30:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n"
	"\r\nSure, noon at the usual place.\r\n> Lunch tomorrow?\r\n",
	"From: Newsletter <news@example.org>\r\nTo: bench@example.org\r\n"
	"Subject: This week's digest\r\nMessage-ID: <t3@example.org>\r\n"
	"Date: Wed, 03 Jan 2024 08:00:00 -0500\r\nMIME-Version: 1.0\r\n"
	"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
	"--b1\r\nContent-Type: text/plain\r\n\r\nDigest text.\r\n"
	"--b1\r\nContent-Type: text/html\r\n\r\n<p>Digest <b>html</b>.</p>\r\n--b1--\r\n",
};

static int64_t doc_int(const bson_t *doc, const char *key)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it) ?
		       bson_iter_as_int64(&it) : 0;
}

/* A copy of `tmpl` with the fields a clone changes replaced. */
static void clone_doc(const bson_t *tmpl, bson_t *out, uint32_t uid, uint32_t modseq,
		      int64_t idate_ms, uint32_t n)
{
	bson_iter_t it;
	bool seen = n % 3 == 0, flagged = n % 10 == 0, label = n % 7 == 0;

	bson_init(out);
	bson_iter_init(&it, tmpl);
	while (bson_iter_next(&it)) {
		const char *key = bson_iter_key(&it);
		if (strcmp(key, "_id") == 0) {
			bson_oid_t id;
			bson_oid_init(&id, NULL);
			BSON_APPEND_OID(out, "_id", &id);
		} else if (strcmp(key, "uid") == 0) {
			BSON_APPEND_INT32(out, "uid", (int32_t)uid);
		} else if (strcmp(key, "modseq") == 0) {
			BSON_APPEND_INT32(out, "modseq", (int32_t)modseq);
		} else if (strcmp(key, "idate") == 0) {
			BSON_APPEND_DATE_TIME(out, "idate", idate_ms);
		} else if (strcmp(key, "flags") == 0) {
			bson_t flags;
			const char *names[3];
			int k = 0;
			if (seen)
				names[k++] = "\\Seen";
			if (flagged)
				names[k++] = "\\Flagged";
			if (label)
				names[k++] = "$Label1";
			BSON_APPEND_ARRAY_BEGIN(out, "flags", &flags);
			for (int i = 0; i < k; i++) {
				char idx[4];
				snprintf(idx, sizeof(idx), "%d", i);
				BSON_APPEND_UTF8(&flags, idx, names[i]);
			}
			bson_append_array_end(out, &flags);
		} else if (strcmp(key, "unseen") == 0) {
			BSON_APPEND_BOOL(out, "unseen", !seen);
		} else if (strcmp(key, "flagged") == 0) {
			BSON_APPEND_BOOL(out, "flagged", flagged);
		} else {
			bson_append_iter(out, key, -1, &it);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s MONGO_URL REDIS_URL USERNAME COUNT\n", argv[0]);
		return 2;
	}
	uint32_t count = (uint32_t)strtoul(argv[4], NULL, 10);
	wd_log_init("dovecot-open-fill", WD_LOG_SINK_STDERR, WD_LOG_WARNING);
	struct wd_config *config = wd_config_new();
	char *error = NULL;
	const char *sqlite = getenv("WD_FERRETDB_SQLITE");
	char value[1024];
	snprintf(value, sizeof(value), "\"%s\"", argv[1]);
	wd_config_set(config, "dbs.mongo", value, "argument", &error);
	snprintf(value, sizeof(value), "\"%s\"", argv[2]);
	wd_config_set(config, "dbs.redis", value, "argument", &error);
	if (sqlite != NULL) {
		snprintf(value, sizeof(value), "\"%s\"", sqlite);
		wd_config_set(config, "dbs.ferretdbSqlite", value, "environment", &error);
	}
	struct wd_store *store = wd_store_open(config, &error);
	wd_config_free(&config);
	if (store == NULL) {
		fprintf(stderr, "store: %s\n", error);
		return 1;
	}
	struct wd_user *user = NULL;
	struct wd_mailbox *inbox = NULL;
	if (wd_store_user_get_by_username(store, argv[3], &user, &error) < 0 ||
	    wd_store_mailbox_get_by_path(store, &user->id, "INBOX", &inbox, &error) < 0) {
		fprintf(stderr, "user %s: %s\n", argv[3], error);
		return 1;
	}
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *messages = wd_store_collection(store, client, WD_STORE_DB_MAIN,
							    "messages");
	mongoc_collection_t *mailboxes = wd_store_collection(store, client, WD_STORE_DB_MAIN,
							     "mailboxes");
	bson_error_t berror;
	/* filled before (only this tool makes the mailbox this big): uidNext
	   says so without counting, which FerretDB does by a full scan */
	if (inbox->uid_next > count) {
		printf("INBOX of %s already filled (uidNext %u)\n", argv[3], inbox->uid_next);
		return 0;
	}
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_OID(&filter, "mailbox", &inbox->id);
	int64_t have = mongoc_collection_count_documents(messages, &filter, NULL, NULL, NULL,
							  &berror);

	/* the templates, stored the ordinary way */
	bson_t *tmpl[3];
	for (int i = 0; i < 3; i++) {
		struct wd_message_add req = { 0 };
		struct wd_message_added added;
		req.raw = (const uint8_t *)templates[i];
		req.len = strlen(templates[i]);
		req.source = "IMPORT";
		if (wd_store_message_add(store, &inbox->id, &req, &added, &error) < 0) {
			fprintf(stderr, "add: %s\n", error);
			return 1;
		}
		bson_t *q = BCON_NEW("_id", BCON_OID(&added.id));
		mongoc_cursor_t *cur = mongoc_collection_find_with_opts(messages, q, NULL, NULL);
		const bson_t *doc;
		if (!mongoc_cursor_next(cur, &doc)) {
			fprintf(stderr, "template %d not found\n", i);
			return 1;
		}
		tmpl[i] = bson_copy(doc);
		mongoc_cursor_destroy(cur);
		bson_destroy(q);
	}
	/* numbering continues from the mailbox as it is now */
	bson_t *q = BCON_NEW("_id", BCON_OID(&inbox->id));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(mailboxes, q, NULL, NULL);
	const bson_t *box;
	if (!mongoc_cursor_next(cur, &box)) {
		fprintf(stderr, "INBOX vanished\n");
		return 1;
	}
	uint32_t uid = (uint32_t)doc_int(box, "uidNext");
	uint32_t modseq = (uint32_t)doc_int(box, "modifyIndex");
	mongoc_cursor_destroy(cur);
	bson_destroy(q);

	uint32_t to_add = count - (uint32_t)have - 3;
	int64_t added_bytes = 0, base_ms = (int64_t)time(NULL) * 1000 - (int64_t)to_add * 1000;
	time_t start = time(NULL);
	for (uint32_t done = 0; done < to_add;) {
		mongoc_bulk_operation_t *bulk =
			mongoc_collection_create_bulk_operation_with_opts(messages, NULL);
		uint32_t n = 0;
		for (; n < BATCH && done < to_add; n++, done++) {
			bson_t doc;
			const bson_t *t = tmpl[done % 3];
			clone_doc(t, &doc, uid++, ++modseq, base_ms + (int64_t)done * 1000, done);
			added_bytes += doc_int(t, "size");
			mongoc_bulk_operation_insert(bulk, &doc);
			bson_destroy(&doc);
		}
		bson_t reply;
		if (!mongoc_bulk_operation_execute(bulk, &reply, &berror)) {
			fprintf(stderr, "bulk insert: %s\n", berror.message);
			return 1;
		}
		bson_destroy(&reply);
		mongoc_bulk_operation_destroy(bulk);
		if (done % 10000 < BATCH)
			fprintf(stderr, "%u/%u cloned (%lds)\n", done, to_add, (long)(time(NULL) - start));
	}
	/* the mailbox and the quota follow */
	bson_t *sel = BCON_NEW("_id", BCON_OID(&inbox->id));
	bson_t *upd = BCON_NEW("$set", "{", "uidNext", BCON_INT32((int32_t)uid), "modifyIndex",
			       BCON_INT32((int32_t)modseq), "}");
	if (!mongoc_collection_update_one(mailboxes, sel, upd, NULL, NULL, &berror)) {
		fprintf(stderr, "mailbox: %s\n", berror.message);
		return 1;
	}
	bson_destroy(sel);
	bson_destroy(upd);
	mongoc_client_t *users_client = wd_store_client(store, WD_STORE_DB_USERS);
	mongoc_collection_t *users =
		wd_store_collection(store, users_client, WD_STORE_DB_USERS, "users");
	sel = BCON_NEW("_id", BCON_OID(&user->id));
	upd = BCON_NEW("$inc", "{", "storageUsed", BCON_INT64(added_bytes), "}");
	mongoc_collection_update_one(users, sel, upd, NULL, NULL, &berror);
	bson_destroy(sel);
	bson_destroy(upd);
	mongoc_collection_destroy(users);
	wd_store_client_release(store, WD_STORE_DB_USERS, users_client);
	printf("INBOX of %s: %u messages, uidNext %u, modifyIndex %u (%lds)\n", argv[3], count,
	       uid, modseq, (long)(time(NULL) - start));
	for (int i = 0; i < 3; i++)
		bson_destroy(tmpl[i]);
	bson_destroy(&filter);
	mongoc_collection_destroy(mailboxes);
	mongoc_collection_destroy(messages);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	wd_mailbox_free(&inbox);
	wd_user_free(&user);
	wd_store_close(&store);
	return 0;
}
