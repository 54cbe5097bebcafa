/* Threading (reference §4.5): messages share a thread when they share a
 * reference id (Message-ID, In-Reply-To, References, Thread-Index) AND have
 * the same normalised subject, exactly as WildDuck decides it, so threads
 * written by Node and C processes agree. */
#include "store-private.h"
#include "wd-store-fdb.h"
#include "wd-store-thread.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-str.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define MAX_IDS 10

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *wd_thread_subject(const char *subject)
{
	/* collapse whitespace */
	char *s = malloc(strlen(subject) + 1);
	size_t n = 0;
	bool space = false;
	for (const char *p = subject; *p != '\0'; p++) {
		if (is_space(*p)) {
			space = n > 0;
			continue;
		}
		if (space)
			s[n++] = ' ';
		space = false;
		s[n++] = *p;
	}
	s[n] = '\0';
	/* strip prefixes and tags until nothing changes */
	bool changed = true;
	while (changed) {
		changed = false;
		char *p = s;
		static const char *const prefixes[] = { "re", "fwd", "fw" };
		for (size_t i = 0; i < 3 && !changed; i++) {
			size_t len = strlen(prefixes[i]);
			if (!wd_str_has_prefix_nocase(p, prefixes[i]))
				continue;
			const char *q = p + len;
			while (*q == ' ')
				q++;
			if (*q == ':') {
				q++;
				while (*q == ' ')
					q++;
				memmove(s, q, strlen(q) + 1);
				changed = true;
			}
		}
		if (!changed && s[0] == '[') {
			char *close = strchr(s, ']');
			if (close != NULL && close[1] != '\0') {
				char *q = close + 1;
				while (*q == ' ')
					q++;
				if (*q != '\0') {
					memmove(s, q, strlen(q) + 1);
					changed = true;
				}
			}
		}
		size_t len = strlen(s);
		if (len >= 5 && wd_mem_eq_nocase(s + len - 5, "(fwd)", 5)) {
			s[len - 5] = '\0';
			while (len > 5 && s[strlen(s) - 1] == ' ')
				s[strlen(s) - 1] = '\0';
			changed = true;
		}
	}
	return s;
}

size_t wd_thread_ids(const char *message_id, const char *in_reply_to, const char *thread_index,
		     const char *references, char ids[][32])
{
	char index22[23] = "";
	if (thread_index != NULL)
		snprintf(index22, sizeof(index22), "%s", thread_index);
	size_t total = 4 + (message_id ? strlen(message_id) : 0) +
		       (in_reply_to ? strlen(in_reply_to) : 0) + strlen(index22) +
		       (references ? strlen(references) : 0);
	char *joined = malloc(total + 1);
	snprintf(joined, total + 1, "%s %s %s %s", message_id ? message_id : "",
		 in_reply_to ? in_reply_to : "", index22, references ? references : "");
	size_t count = 0;
	char *save = NULL;
	for (char *tok = strtok_r(joined, " \t\r\n", &save); tok != NULL && count < MAX_IDS;
	     tok = strtok_r(NULL, " \t\r\n", &save)) {
		/* strip '<' and '>' */
		size_t n = 0;
		for (char *p = tok; *p != '\0'; p++) {
			if (*p != '<' && *p != '>')
				tok[n++] = *p;
		}
		tok[n] = '\0';
		if (n == 0)
			continue;
		unsigned char digest[SHA_DIGEST_LENGTH];
		SHA1((const unsigned char *)tok, n, digest);
		char b64[32];
		int len = EVP_EncodeBlock((unsigned char *)b64, digest, sizeof(digest));
		while (len > 0 && b64[len - 1] == '=')
			b64[--len] = '\0';
		bool dup = false;
		for (size_t i = 0; i < count && !dup; i++)
			dup = strcmp(ids[i], b64) == 0;
		if (!dup)
			snprintf(ids[count++], 32, "%s", b64);
	}
	free(joined);
	return count;
}

int wd_store_thread_get(struct wd_store *store, const bson_oid_t *user, const char *subject,
			const char ids[][32], size_t id_count, bson_oid_t *thread_r, char **error_r)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	int64_t now = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	char lock_name[32] = "th:";
	bson_oid_to_string(user, lock_name + 3);
	struct wd_store_lock lock;
	if (wd__store_lock(store, lock_name, &lock, error_r) < 0)
		return WD_ERROR;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "threads");
	int ret = WD_OK;
	bool found = false;
	bson_error_t error;
	char key[16];
	const char *key_str;
	if (id_count > 0) {
		bson_t query = BSON_INITIALIZER, ids_cond, in, update = BSON_INITIALIZER, add, each, arr, set;
		BSON_APPEND_OID(&query, "user", user);
		bson_append_document_begin(&query, "ids", -1, &ids_cond);
		bson_append_array_begin(&ids_cond, "$in", -1, &in);
		for (size_t i = 0; i < id_count; i++) {
			bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
			BSON_APPEND_UTF8(&in, key_str, ids[i]);
		}
		bson_append_array_end(&ids_cond, &in);
		bson_append_document_end(&query, &ids_cond);
		BSON_APPEND_UTF8(&query, "subject", subject);
		bson_append_document_begin(&update, "$addToSet", -1, &add);
		bson_append_document_begin(&add, "ids", -1, &each);
		bson_append_array_begin(&each, "$each", -1, &arr);
		for (size_t i = 0; i < id_count; i++) {
			bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
			BSON_APPEND_UTF8(&arr, key_str, ids[i]);
		}
		bson_append_array_end(&each, &arr);
		bson_append_document_end(&add, &each);
		bson_append_document_end(&update, &add);
		bson_append_document_begin(&update, "$set", -1, &set);
		BSON_APPEND_DATE_TIME(&set, "updated", now);
		bson_append_document_end(&update, &set);
		mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
		mongoc_find_and_modify_opts_set_update(opts, &update);
		/* FerretDB/SQLite: the match from SQLite's index, then an update by
		   _id (the one filter FerretDB does not answer with a scan) */
		int fret = wd_store_fdb_thread_find(store, user, subject, ids, id_count, &found,
						    thread_r);
		if (fret == WD_OK && found) {
			bson_t *by_id = BCON_NEW("_id", BCON_OID(thread_r));
			if (!mongoc_collection_update_one(coll, by_id, &update, NULL, NULL, &error)) {
				*error_r = wd__store_error("thread update failed: %s", error.message);
				ret = WD_ERROR;
			}
			bson_destroy(by_id);
		} else if (fret != WD_OK) {
			bson_t reply;
			if (mongoc_collection_find_and_modify_with_opts(coll, &query, opts, &reply,
									&error)) {
				bson_iter_t iter, idit;
				if (bson_iter_init_find(&iter, &reply, "value") &&
				    BSON_ITER_HOLDS_DOCUMENT(&iter) && bson_iter_recurse(&iter, &idit) &&
				    bson_iter_find(&idit, "_id") && BSON_ITER_HOLDS_OID(&idit)) {
					bson_oid_copy(bson_iter_oid(&idit), thread_r);
					found = true;
				}
			} else {
				*error_r = wd__store_error("thread lookup failed: %s", error.message);
				ret = WD_ERROR;
			}
			bson_destroy(&reply);
		}
		mongoc_find_and_modify_opts_destroy(opts);
		bson_destroy(&update);
		bson_destroy(&query);
	}
	if (ret == WD_OK && !found) {
		bson_oid_init(thread_r, NULL);
		bson_t doc = BSON_INITIALIZER, arr;
		BSON_APPEND_OID(&doc, "_id", thread_r);
		BSON_APPEND_OID(&doc, "user", user);
		BSON_APPEND_UTF8(&doc, "subject", subject);
		bson_append_array_begin(&doc, "ids", -1, &arr);
		for (size_t i = 0; i < id_count; i++) {
			bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
			BSON_APPEND_UTF8(&arr, key_str, ids[i]);
		}
		bson_append_array_end(&doc, &arr);
		BSON_APPEND_DATE_TIME(&doc, "updated", now);
		if (!mongoc_collection_insert_one(coll, &doc, NULL, NULL, &error)) {
			*error_r = wd__store_error("cannot create thread: %s", error.message);
			ret = WD_ERROR;
		}
		bson_destroy(&doc);
	}
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	wd__store_unlock(store, &lock);
	return ret;
}
