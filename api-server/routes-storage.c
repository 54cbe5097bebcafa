/* Routes: the user's file storage, as WildDuck's lib/api/storage.js and
 * lib/storage-handler.js: files in the GridFS bucket `storage` of the gridfs
 * database (255 KiB chunks), `storage.files` documents with filename,
 * contentType and metadata {user, cid?} (reference §2.15).
 *
 * An upload is either the raw request body (filename, contentType, cid in
 * the query) or JSON {content, encoding: "base64"?, filename, contentType,
 * cid}. A missing content type is guessed from the file name and a missing
 * name made from the date and the type, as WildDuck does. We also write the
 * file's MD5 (`md5`), which WildDuck's listing shows and the current GridFS
 * drivers no longer store. Files are listed by name, paged. */
#include "account.h"
#include "api.h"

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-log.h"
#include "wd-store.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define STORAGE_BUCKET "storage"
#define STORAGE_CHUNK (255 * 1024)

static const struct {
	const char *ext, *type;
} mime_types[] = {
	{ "bin", "application/octet-stream" }, { "txt", "text/plain" }, { "html", "text/html" },
	{ "htm", "text/html" }, { "css", "text/css" }, { "csv", "text/csv" },
	{ "ics", "text/calendar" }, { "eml", "message/rfc822" }, { "json", "application/json" },
	{ "pdf", "application/pdf" }, { "zip", "application/zip" }, { "gz", "application/gzip" },
	{ "xml", "application/xml" }, { "js", "application/javascript" },
	{ "png", "image/png" }, { "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
	{ "gif", "image/gif" }, { "svg", "image/svg+xml" }, { "webp", "image/webp" },
	{ "ico", "image/x-icon" }, { "mp3", "audio/mpeg" }, { "wav", "audio/wav" },
	{ "mp4", "video/mp4" }, { "doc", "application/msword" },
	{ "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
	{ "xls", "application/vnd.ms-excel" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
};

static const char *type_of_name(const char *filename)
{
	const char *dot = strrchr(filename, '.');
	if (dot != NULL)
		for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
			if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
				return mime_types[i].type;
	return "application/octet-stream";
}

static const char *ext_of_type(const char *type)
{
	for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
		if (strcasecmp(type, mime_types[i].type) == 0)
			return mime_types[i].ext;
	return "bin";
}

static mongoc_gridfs_bucket_t *bucket_open(struct api_request *req, mongoc_client_t *client,
					   bson_error_t *error)
{
	mongoc_database_t *db = mongoc_client_get_database(
		client, wd_store_db_name(req->ctx->store, WD_STORE_DB_GRIDFS));
	bson_t *opts = BCON_NEW("bucketName", BCON_UTF8(STORAGE_BUCKET), "chunkSizeBytes",
				BCON_INT32(STORAGE_CHUNK));
	mongoc_gridfs_bucket_t *bucket = mongoc_gridfs_bucket_new(db, opts, NULL, error);
	bson_destroy(opts);
	mongoc_database_destroy(db);
	return bucket;
}

/* The storage.files document of a user's file (a copy), NULL when absent;
   *failed_r when answered. */
static bson_t *file_load(struct api_request *req, const bson_oid_t *user, const bson_oid_t *file,
			 bool *failed_r)
{
	bson_t *filter = BCON_NEW("_id", BCON_OID(file), "metadata.user", BCON_OID(user));
	bson_t *doc = api_find_one(req, WD_STORE_DB_GRIDFS, STORAGE_BUCKET ".files", filter,
				   failed_r);
	bson_destroy(filter);
	return doc;
}

/* ---- POST /users/:user/storage ---- */

static void post_file(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	/* a JSON body carries `content`; any other body is the content */
	const char *content = api_str(req, "content", "");
	bool json = req->content_type != NULL && strstr(req->content_type, "json") != NULL;
	const uint8_t *data = json || req->body_len == 0 ? (const uint8_t *)content : req->body;
	size_t len = json || req->body_len == 0 ? strlen(content) : req->body_len;
	struct wd_buffer decoded = WD_BUFFER_INIT;
	if (len == 0) {
		api_reply_error(req, 400, "InputValidationError", "\"content\" is required");
		return;
	}
	const char *encoding = api_str(req, "encoding", "");
	if (strcmp(encoding, "base64") == 0) {
		if (wd_base64_decode(data, len, &decoded) < 0) {
			wd_buffer_release(&decoded);
			api_reply_error(req, 400, "InputValidationError",
					"\"content\" is not valid base64");
			return;
		}
		data = wd_buffer_bytes(&decoded);
		len = decoded.len;
	}
	const char *filename = api_str(req, "filename", "");
	const char *type = api_str(req, "contentType", "");
	char made[64];
	if (type[0] == '\0')
		type = filename[0] != '\0' ? type_of_name(filename) : "application/octet-stream";
	if (filename[0] == '\0') {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		char date[16];
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		snprintf(made, sizeof(made), "upload-%s.%s", date, ext_of_type(type));
		filename = made;
	}
	bson_t opts = BSON_INITIALIZER, metadata;
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "metadata", &metadata);
	BSON_APPEND_OID(&metadata, "user", &user);
	const char *cid = api_str(req, "cid", "");
	if (cid[0] != '\0')
		BSON_APPEND_UTF8(&metadata, "cid", cid);
	bson_append_document_end(&opts, &metadata);

	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	bson_error_t error;
	bson_value_t id;
	bool ok = false;
	mongoc_gridfs_bucket_t *bucket = bucket_open(req, client, &error);
	mongoc_stream_t *stream = bucket != NULL ? mongoc_gridfs_bucket_open_upload_stream(
							   bucket, filename, &opts, &id, &error)
						 : NULL;
	if (stream != NULL) {
		ok = true;
		for (size_t off = 0; ok && off < len;) {
			size_t n = len - off > STORAGE_CHUNK ? STORAGE_CHUNK : len - off;
			ssize_t w = mongoc_stream_write(stream, (void *)(data + off), n, 0);
			ok = w == (ssize_t)n;
			off += n;
		}
		if (!ok)
			mongoc_gridfs_bucket_stream_error(stream, &error);
		if (mongoc_stream_close(stream) != 0 && ok) {
			mongoc_gridfs_bucket_stream_error(stream, &error);
			ok = false;
		}
		mongoc_stream_destroy(stream);
	}
	if (bucket != NULL)
		mongoc_gridfs_bucket_destroy(bucket);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
	bson_destroy(&opts);
	if (ok) {
		/* WildDuck's files documents carry contentType (and md5) */
		unsigned char md[16];
		unsigned int md_len = 0;
		char md5[33];
		EVP_Digest(data, len, md, &md_len, EVP_md5(), NULL);
		for (unsigned i = 0; i < 16; i++)
			snprintf(md5 + 2 * i, 3, "%02x", md[i]);
		struct api_coll c;
		api_coll_get(req, WD_STORE_DB_GRIDFS, STORAGE_BUCKET ".files", &c);
		bson_t *filter = BCON_NEW("_id", BCON_OID(&id.value.v_oid));
		bson_t *update = BCON_NEW("$set", "{", "contentType", BCON_UTF8(type), "md5",
					  BCON_UTF8(md5), "}");
		ok = mongoc_collection_update_one(c.coll, filter, update, NULL, NULL, &error);
		bson_destroy(filter);
		bson_destroy(update);
		api_coll_put(&c);
	}
	wd_buffer_release(&decoded);
	if (!ok) {
		api_db_failed(req, "upload", &error);
		return;
	}
	api_reply_ok(req, json_pack("{s:b,s:o}", "success", 1, "id",
				    api_json_oid(&id.value.v_oid)));
}

/* ---- GET /users/:user/storage ---- */

static json_t *file_json(const bson_t *doc)
{
	json_t *out = json_object();
	bson_iter_t it, child;
	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		json_object_set_new(out, "id", api_json_oid(bson_iter_oid(&it)));
	json_object_set_new(out, "filename",
			    bson_iter_init_find(&it, doc, "filename") && BSON_ITER_HOLDS_UTF8(&it)
				    ? json_string(bson_iter_utf8(&it, NULL)) : json_false());
	json_object_set_new(out, "contentType",
			    bson_iter_init_find(&it, doc, "contentType") && BSON_ITER_HOLDS_UTF8(&it)
				    ? json_string(bson_iter_utf8(&it, NULL)) : json_false());
	if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "metadata.cid", &child) &&
	    BSON_ITER_HOLDS_UTF8(&child))
		json_object_set_new(out, "cid", json_string(bson_iter_utf8(&child, NULL)));
	json_object_set_new(out, "size", json_integer(bson_iter_init_find(&it, doc, "length") &&
							      BSON_ITER_HOLDS_NUMBER(&it)
							      ? bson_iter_as_int64(&it) : 0));
	if (bson_iter_init_find(&it, doc, "uploadDate"))
		json_object_set_new(out, "created", api_json_from_bson_iter(&it));
	if (bson_iter_init_find(&it, doc, "md5") && BSON_ITER_HOLDS_UTF8(&it))
		json_object_set_new(out, "md5", json_string(bson_iter_utf8(&it, NULL)));
	return out;
}

static void get_files(struct api_request *req)
{
	bson_oid_t user;
	if (!api_require_user(req, &user))
		return;
	const char *query = api_str(req, "query", NULL);
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_OID(&filter, "metadata.user", &user);
	if (query != NULL && query[0] != '\0') {
		char *escaped = api_regex_escape(query);
		bson_t cond;
		BSON_APPEND_DOCUMENT_BEGIN(&filter, "filename", &cond);
		BSON_APPEND_UTF8(&cond, "$regex", escaped != NULL ? escaped : "");
		BSON_APPEND_UTF8(&cond, "$options", "");
		bson_append_document_end(&filter, &cond);
		free(escaped);
	}
	struct api_page page = {
		.kind = "storage",
		.field = "filename",
		.limit = api_int(req, "limit", 20),
		.next = api_str(req, "next", NULL),
		.previous = api_str(req, "previous", NULL),
	};
	struct api_coll c;
	api_coll_get(req, WD_STORE_DB_GRIDFS, STORAGE_BUCKET ".files", &c);
	struct api_page_result result;
	int ret = api_page_find(req, c.coll, &filter, &page, &result);
	api_coll_put(&c);
	bson_destroy(&filter);
	if (ret < 0)
		return;
	json_t *results = json_array();
	for (size_t i = 0; i < result.count; i++)
		json_array_append_new(results, file_json(result.docs[i]));
	json_t *body = json_object();
	json_object_set_new(body, "success", json_true());
	json_object_set_new(body, "query", query != NULL && query[0] != '\0' ? json_string(query)
									    : json_null());
	api_page_reply_fields(req, body, &result, results);
	api_page_result_free(&result);
	api_reply_ok(req, body);
}

/* ---- GET / DELETE /users/:user/storage/:file ---- */

static void get_file(struct api_request *req)
{
	bson_oid_t user, file;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "file", &file);
	bool failed;
	bson_t *doc = file_load(req, &user, &file, &failed);
	if (failed)
		return;
	if (doc == NULL) {
		api_reply_error(req, 404, "FileNotFound", "This file does not exist");
		return;
	}
	bson_iter_t it;
	char type[256] = "application/octet-stream";
	if (bson_iter_init_find(&it, doc, "contentType") && BSON_ITER_HOLDS_UTF8(&it) &&
	    bson_iter_utf8(&it, NULL)[0] != '\0')
		snprintf(type, sizeof(type), "%s", bson_iter_utf8(&it, NULL));
	int64_t length = bson_iter_init_find(&it, doc, "length") && BSON_ITER_HOLDS_NUMBER(&it)
				 ? bson_iter_as_int64(&it) : 0;
	bson_destroy(doc);
	if (length < 0 || (uint64_t)length > req->ctx->max_upload_bytes + (1u << 20)) {
		api_reply_error(req, 500, "InternalDatabaseError", "Stored file has a bad length");
		return;
	}
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	bson_error_t error;
	bson_value_t id = { .value_type = BSON_TYPE_OID };
	bson_oid_copy(&file, &id.value.v_oid);
	uint8_t *data = malloc((size_t)length + 1);
	size_t got = 0;
	bool ok = false;
	mongoc_gridfs_bucket_t *bucket = bucket_open(req, client, &error);
	mongoc_stream_t *stream = bucket != NULL && data != NULL
					  ? mongoc_gridfs_bucket_open_download_stream(bucket, &id,
										      &error)
					  : NULL;
	if (stream != NULL) {
		ok = true;
		while (got < (size_t)length) {
			ssize_t n = mongoc_stream_read(stream, data + got, (size_t)length - got, 1, 0);
			if (n <= 0) {
				ok = n == 0;
				if (!ok)
					mongoc_gridfs_bucket_stream_error(stream, &error);
				break;
			}
			got += (size_t)n;
		}
		mongoc_stream_destroy(stream);
	}
	if (bucket != NULL)
		mongoc_gridfs_bucket_destroy(bucket);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
	if (!ok || got != (size_t)length) {
		free(data);
		if (!ok)
			api_db_failed(req, "download", &error);
		else
			api_reply_error(req, 500, "InternalDatabaseError", "Stored file is incomplete");
		return;
	}
	api_reply_bytes(req, type, data, got, NULL);
	free(data);
}

static void delete_file(struct api_request *req)
{
	bson_oid_t user, file;
	if (!api_require_user(req, &user))
		return;
	api_oid(req, "file", &file);
	bool failed;
	bson_t *doc = file_load(req, &user, &file, &failed);
	if (failed)
		return;
	if (doc == NULL) {
		api_reply_error(req, 404, "FileNotFound", "This file does not exist");
		return;
	}
	bson_destroy(doc);
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	bson_error_t error;
	bson_value_t id = { .value_type = BSON_TYPE_OID };
	bson_oid_copy(&file, &id.value.v_oid);
	mongoc_gridfs_bucket_t *bucket = bucket_open(req, client, &error);
	bool ok = bucket != NULL && mongoc_gridfs_bucket_delete_by_id(bucket, &id, &error);
	if (bucket != NULL)
		mongoc_gridfs_bucket_destroy(bucket);
	wd_store_client_release(store, WD_STORE_DB_GRIDFS, client);
	if (!ok) {
		api_db_failed(req, "delete", &error);
		return;
	}
	api_reply_success(req);
}

/* ---- routes ---- */

static const char *const encodings[] = { "base64", NULL };

static const struct api_field upload_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "filename", API_T_STRING, API_F_EMPTY_OK, 0, 255, NULL, "Name of the file" },
	{ "contentType", API_T_STRING, API_F_EMPTY_OK, 0, 255, NULL,
	  "MIME type of the file. Is detected from the file name by default" },
	{ "encoding", API_T_STRING, API_F_EMPTY_OK, 0, 16, encodings,
	  "Encoding of the content in a JSON body: \"base64\"" },
	{ "content", API_T_STRING, API_F_EMPTY_OK, 0, 0, NULL,
	  "File content (JSON body); a request body that is not JSON is the content itself" },
	{ "cid", API_T_STRING, API_F_EMPTY_OK, 0, 255, NULL, "Content ID" },
	API_FIELDS_END
};

static const struct api_field list_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "query", API_T_STRING, API_F_QUERY | API_F_EMPTY_OK | API_F_TRIM, 0, 255, NULL,
	  "Partial match of a filename" },
	API_PAGE_FIELDS,
	API_FIELDS_END
};

static const struct api_field file_fields[] = {
	{ "user", API_T_USER, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "User ID" },
	{ "file", API_T_OID, API_F_REQUIRED | API_F_PATH, 0, 0, NULL, "ID of the File" },
	API_FIELDS_END
};

const struct api_route api_routes_storage[] = {
	{ API_POST, "/users/:user/storage", post_file, "storage", API_CREATE, API_R_JSON_OR_RAW,
	  upload_fields, "Storage", "Upload file", "uploadFile" },
	{ API_GET, "/users/:user/storage", get_files, "storage", API_READ, 0, list_fields,
	  "Storage", "List stored files", "getFiles" },
	{ API_GET, "/users/:user/storage/:file", get_file, "storage", API_READ, 0, file_fields,
	  "Storage", "Download File", "getFile" },
	{ API_DELETE, "/users/:user/storage/:file", delete_file, "storage", API_DELETE_ACTION, 0,
	  file_fields, "Storage", "Delete a File", "deleteFile" },
	API_ROUTES_END
};
