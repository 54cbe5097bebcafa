/* WildDuck's index set (reference §1.1, indexes.yaml) as data, and its
 * creation. Keys are written "field:direction" separated by commas, where
 * direction is 1, -1, "hashed" or "text"; partial filters are extended JSON.
 * Each index is created with its own createIndexes command: a server that
 * rejects one kind (FerretDB 1.x: text, partial, sparse, hashed) still gets
 * all the others, and the rejection is logged once with the server's reason. */
#include "wd-store.h"
#include "store-private.h"
#include "wd-log.h"
#include "wd-result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNIQUE 0x1
#define SPARSE 0x2

struct index_spec {
	enum wd_store_db db;
	const char *collection;
	const char *name;
	const char *keys;
	unsigned flags;
	int ttl_seconds;     /* -1: not a TTL index */
	const char *partial; /* partialFilterExpression as JSON, or NULL */
};

#define U WD_STORE_DB_USERS
#define M WD_STORE_DB_MAIN
#define G WD_STORE_DB_GRIDFS

static const struct index_spec wildduck_indexes[] = {
	{ U, "users", "users", "username:1", 0, -1, NULL },
	{ U, "users", "users_dotless", "unameview:1", UNIQUE, -1, NULL },
	{ U, "users", "show_new", "created:-1", 0, -1, NULL },
	{ U, "users", "users_tags", "tagsview:1", SPARSE, -1, NULL },
	{ U, "addresses", "address_dotless", "addrview:1", UNIQUE, -1, NULL },
	{ U, "addresses", "address_tags", "tagsview:1", SPARSE, -1, NULL },
	{ U, "addresses", "address_paging", "addrview:1,_id:1", 0, -1, NULL },
	{ U, "addresses", "user", "user:1", 0, -1, NULL },
	{ U, "domainaliases", "domainalias", "alias:1", UNIQUE, -1, NULL },
	{ U, "domainaliases", "domainlist", "domain:1", 0, -1, NULL },
	{ U, "asps", "asps_user", "user:1", 0, -1, NULL },
	{ U, "asps", "entry_autoexpire", "expires:1", 0, 0, NULL },
	{ U, "authlog", "user", "user:1,_id:-1", 0, -1, NULL },
	{ U, "authlog", "insert", "user:1,created:1,key:1", 0, -1, NULL },
	{ U, "authlog", "user_by_ip", "user:1,ip:1,_id:-1", 0, -1, "{\"ip\": true}" },
	{ U, "authlog", "by_ip", "ip:1", SPARSE, -1, NULL },
	{ U, "authlog", "user_hashed", "user:hashed", 0, -1, NULL },
	{ U, "authlog", "entry_autoexpire", "expires:1", 0, 0, NULL },
	{ M, "filters", "user", "user:1", 0, -1, NULL },
	{ M, "filters", "forward_target", "action.targets.value:1", 0, -1, NULL },
	{ M, "domainaccess", "by_tag", "tagview:1,action:1,domain:1", 0, -1, NULL },
	{ M, "autoreplies", "autoreply", "user:1,start:1,end:1", 0, -1, NULL },
	{ M, "mailboxes", "user_path", "user:1,path:1", UNIQUE, -1, NULL },
	{ M, "mailboxes", "user_subscribed", "user:1,subscribed:1", 0, -1, NULL },
	{ M, "mailboxes", "find_by_type", "user:1,specialUse:1", 0, -1, NULL },
	{ M, "messages", "mailbox_uid_shard", "_id:1,mailbox:1,uid:1", 0, -1, NULL },
	{ M, "messages", "user_messages_by_thread", "user:1,thread:1", 0, -1, NULL },
	{ M, "messages", "mailbox_uid", "mailbox:1,uid:1,_id:1", 0, -1, NULL },
	{ M, "messages", "mailbox_uid_reverse", "mailbox:1,uid:-1,_id:-1", 0, -1, NULL },
	{ M, "messages", "mailbox_modseq_uid", "mailbox:1,modseq:1,uid:1", 0, -1, NULL },
	{ M, "messages", "mailbox_flags", "mailbox:1,flags:1", 0, -1, NULL },
	{ M, "messages", "by_idate", "mailbox:1,idate:1", 0, -1, NULL },
	{ M, "messages", "by_idate_reverse_uid", "mailbox:1,idate:-1,_id:-1", 0, -1, NULL },
	{ M, "messages", "by_hdate", "mailbox:1,hdate:1,msgid:1", 0, -1, NULL },
	{ M, "messages", "by_size", "mailbox:1,size:1", 0, -1, NULL },
	{ M, "messages", "by_headers", "mailbox:1,headers.key:1,headers.value:1", 0, -1, NULL },
	{ M, "messages", "fulltext", "user:1,headers.value:text,text:text", 0, -1,
	  "{\"searchable\": true}" },
	{ M, "messages", "mailbox_unseen_flag", "mailbox:1,unseen:1", 0, -1, NULL },
	{ M, "messages", "user_unseen_flag", "user:1,unseen:1", 0, -1, "{\"searchable\": true}" },
	{ M, "messages", "mailbox_undeleted_flag", "mailbox:1,undeleted:1", 0, -1, NULL },
	{ M, "messages", "mailbox_flagged_flag", "mailbox:1,flagged:1", 0, -1, NULL },
	{ M, "messages", "user_flagged_flag", "user:1,flagged:1", 0, -1, NULL },
	{ M, "messages", "user_searchable_flag", "user:1,searchable:1", 0, -1, NULL },
	{ M, "messages", "mailbox_draft_flag", "mailbox:1,draft:1", 0, -1, NULL },
	{ M, "messages", "has_attachment", "mailbox:1,ha:1", 0, -1, NULL },
	{ M, "messages", "retention_time", "exp:1,rdate:1", 0, -1, "{\"exp\": true}" },
	{ M, "addressregister", "by_address", "user:1,addrview:1,updated:-1", 0, -1, NULL },
	{ M, "addressregister", "by_name", "user:1,name:1,updated:-1", 0, -1, NULL },
	{ M, "archived", "user_messages", "user:1,_id:1", 0, -1, NULL },
	{ M, "archived", "user_messages_desc", "user:1,_id:-1", 0, -1, NULL },
	{ M, "archived", "user_messages_archived", "user:1,archived:1", 0, -1, NULL },
	{ M, "archived", "retention_time", "exp:1,rdate:1", 0, -1, "{\"exp\": true}" },
	{ G, "storage.files", "storage_id_hashed", "_id:hashed", 0, -1, NULL },
	{ G, "storage.chunks", "chunks_shard", "files_id:hashed", 0, -1, NULL },
	{ G, "storage.files", "user_files", "metadata.user:1,filename:1", 0, -1, NULL },
	{ G, "attachments.files", "attachment_id_hashed", "_id:hashed", 0, -1, NULL },
	{ G, "attachments.files", "related_attachments_cu", "metadata.c:1,metadata.m:1,metadata.cu:1",
	  0, -1, NULL },
	{ G, "attachments.chunks", "chunks_shard", "files_id:hashed", 0, -1, NULL },
	{ G, "attachments.chunks", "files_id_1_n_1", "files_id:1,n:1", UNIQUE, -1, NULL },
	{ M, "dkim", "dkim_paging", "domain:1,_id:1", 0, -1, NULL },
	{ M, "dkim", "dkim_primary", "domain:1", UNIQUE, -1, NULL },
	{ M, "journal", "mailbox_modseq", "mailbox:1,modseq:1", 0, -1, NULL },
	{ M, "journal", "user_limit_id", "user:1,_id:1", 0, -1, NULL },
	{ M, "journal", "user_limit_id_reverse", "user:1,_id:-1", 0, -1, NULL },
	{ M, "journal", "journal_autoexpire", "created:1", 0, 10800, NULL },
	{ M, "threads", "thread_shard", "user:hashed", 0, -1, NULL },
	{ M, "threads", "thread", "user:1,ids:1", 0, -1, NULL },
	{ M, "threads", "thread_autoexpire", "updated:1", 0, 15552000, NULL },
	/* WildDuck 1.x's message log (wd-store-messagelog.h); FerretDB rejects the
	   hashed and sparse ones and keeps the TTL index without enforcing it */
	{ M, "messagelog", "messagelog_id_hashed", "id:hashed", 0, -1, NULL },
	{ M, "messagelog", "messagelog_parent", "parentId:1", SPARSE, -1, NULL },
	{ M, "messagelog", "messagelog_queue", "queueId:1", SPARSE, -1, NULL },
	{ M, "messagelog", "messagelog_autoexpire", "created:1", 0, 15552000, NULL },
	{ M, "tasks", "task", "locked:1,lockedUntil:1", 0, -1, NULL },
	{ M, "tasks", "task_user", "task:1,user:1", 0, -1, NULL },
	{ M, "certs", "servername", "servername:1", UNIQUE, -1, NULL },
	{ M, "certs", "servername_version", "servername:1,v:1", 0, -1, NULL },
	{ M, "certs", "servername_alt", "altNames:1,v:1", 0, -1, NULL },
	{ M, "certs", "renewal_check", "acme:1,expires:1,_acme.lastRenewalCheck:1", 0, -1, NULL },
	{ M, "certs", "garbage_check", "acme:1,updated:1,expires:1,autogenerated:1", 0, -1, NULL },
	{ M, "audits", "user_expire_time", "user:1,expires:1", 0, -1, NULL },
	{ M, "audits", "expire_time", "expires:1,deleted:1", 0, -1, NULL },
	{ G, "audit.files", "audit_id_hashed", "_id:hashed", 0, -1, NULL },
	{ G, "audit.chunks", "audit_shard", "files_id:hashed", 0, -1, NULL },
	{ G, "audit.files", "audit_files", "metadata.audit:1,metadata.date:1", 0, -1, NULL },
	{ G, "audit.files", "audit_files_queue", "metadata.info.queueId:1", 0, -1, NULL },
	{ G, "audit.files", "audit_files_expire", "metadata.info.expires:1", 0, -1, NULL },
	{ G, "audit.files", "audit_files_addresses",
	  "metadata.audit:1,metadata.addresses.type:1,metadata.addresses.name:1,"
	  "metadata.addresses.address:1", 0, -1, NULL },
	{ G, "audit.files", "audit_files_subject", "metadata.subject:1", 0, -1, NULL },
	{ M, "bimi", "by_type", "type:1,url:1", UNIQUE, -1, NULL },
	/* WildDuck creates webhooks indexes in the main database (reference §1). */
	{ M, "webhooks", "by_type", "type:1,user:1", 0, -1, NULL },
	{ M, "webhooks", "by_user_type", "user:1,type:1", 0, -1, NULL },
	{ M, "settings", "key_unique", "key:1,enumerable:1", UNIQUE, -1, NULL },
	{ M, "settings", "enumerable_key", "enumerable:1,key:1", 0, -1, NULL },
};

#undef U
#undef M
#undef G

/* "a:1,b.c:-1,d:hashed" → {a: 1, "b.c": -1, d: "hashed"} */
static void append_keys(bson_t *doc, const char *spec)
{
	bson_t keys;
	bson_append_document_begin(doc, "key", -1, &keys);
	const char *p = spec;
	while (*p != '\0') {
		const char *colon = strchr(p, ':');
		const char *end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		char field[128], dir[16];
		snprintf(field, sizeof(field), "%.*s", (int)(colon - p), p);
		snprintf(dir, sizeof(dir), "%.*s", (int)(end - colon - 1), colon + 1);
		if (strcmp(dir, "1") == 0 || strcmp(dir, "-1") == 0)
			BSON_APPEND_INT32(&keys, field, atoi(dir));
		else
			BSON_APPEND_UTF8(&keys, field, dir);
		p = *end == ',' ? end + 1 : end;
	}
	bson_append_document_end(doc, &keys);
}

/* Codes meaning "it is already there": IndexOptionsConflict, IndexKeySpecsConflict. */
static bool already_exists(const bson_error_t *error)
{
	return error->code == 85 || error->code == 86;
}

static int create_index(struct wd_store *store, const struct index_spec *spec, bool *created_r,
			char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, spec->db);
	bson_t cmd = BSON_INITIALIZER, indexes, index, reply;
	BSON_APPEND_UTF8(&cmd, "createIndexes", spec->collection);
	bson_append_array_begin(&cmd, "indexes", -1, &indexes);
	bson_append_document_begin(&indexes, "0", -1, &index);
	append_keys(&index, spec->keys);
	BSON_APPEND_UTF8(&index, "name", spec->name);
	if ((spec->flags & UNIQUE) != 0)
		BSON_APPEND_BOOL(&index, "unique", true);
	if ((spec->flags & SPARSE) != 0)
		BSON_APPEND_BOOL(&index, "sparse", true);
	if (spec->ttl_seconds >= 0)
		BSON_APPEND_INT32(&index, "expireAfterSeconds", spec->ttl_seconds);
	if (spec->partial != NULL) {
		bson_t *filter = bson_new_from_json((const uint8_t *)spec->partial, -1, NULL);
		wd_assert(filter != NULL);
		BSON_APPEND_DOCUMENT(&index, "partialFilterExpression", filter);
		bson_destroy(filter);
	}
	bson_append_document_end(&indexes, &index);
	bson_append_array_end(&cmd, &indexes);

	bson_error_t error;
	bool ok = mongoc_client_command_simple(client, wd_store_db_name(store, spec->db), &cmd,
					       NULL, &reply, &error);
	bson_destroy(&cmd);
	bson_destroy(&reply);
	wd_store_client_release(store, spec->db, client);
	*created_r = ok || already_exists(&error);
	if (ok || *created_r)
		return WD_OK;
	/* Connection-level failures are errors; a server's refusal is not. */
	if (error.domain != MONGOC_ERROR_SERVER && error.domain != MONGOC_ERROR_WRITE_CONCERN) {
		*error_r = NULL;
		if (asprintf(error_r, "cannot create index %s.%s: %s", spec->collection, spec->name,
			     error.message) < 0)
			*error_r = NULL;
		return WD_ERROR;
	}
	wd_warning("store", "index %s.%s.%s %s rejected by the server: %s",
		   wd_store_db_name(store, spec->db), spec->collection, spec->name, spec->keys,
		   error.message);
	return WD_OK;
}

int wd_store_ensure_indexes(struct wd_store *store, struct wd_store_index_report *report,
			    char **error_r)
{
	memset(report, 0, sizeof(*report));
	*error_r = NULL;
	for (size_t i = 0; i < WD_N_ELEMENTS(wildduck_indexes); i++) {
		bool created;
		if (create_index(store, &wildduck_indexes[i], &created, error_r) < 0)
			return WD_ERROR;
		if (created)
			report->created++;
		else
			report->rejected++;
	}
	wd_info("store", "indexes: %u present, %u rejected by the server", report->created,
		report->rejected);
	const char *sqlite_dir = wd__store_ferretdb_sqlite(store);
	if (wd_store_caps(store)->ferretdb && sqlite_dir != NULL)
		wd__store_ferretdb_id_indexes(store, sqlite_dir);
	return WD_OK;
}
