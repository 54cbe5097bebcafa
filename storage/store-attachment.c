/* GridFS attachment storage with de-duplication; see wd-store-attachment.h.
 *
 * GridFS is written by hand (chunks, then the files document) rather than
 * through mongoc's bucket API, because WildDuck's files have a Binary _id and
 * a null filename, and because the reader must fetch one chunk at a time and
 * re-encode decoded base64 on the fly.
 *
 * Counter updates run under the "att:<hash>" update lock where the server's
 * updates are not atomic (FerretDB). */
#include "wd-store-attachment.h"
#include "store-private.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-log.h"
#include "wd-result.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define FILES "attachments.files"
#define CHUNKS "attachments.chunks"
#define MAX_UPLOAD_ATTEMPTS 100

static void hash_hex(const uint8_t hash[WD_ATTACHMENT_HASH_LEN], char *hex)
{
	for (int i = 0; i < WD_ATTACHMENT_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
}

static int lock_file(struct wd_store *store, const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
		     struct wd_store_lock *lock, char **error_r)
{
	char name[4 + 2 * WD_ATTACHMENT_HASH_LEN + 1] = "att:";
	hash_hex(hash, name + 4);
	return wd__store_lock(store, name, lock, error_r);
}

/* Chunk ids are strings "<hash hex>:<n>": every chunk is found by _id, and
   FerretDB 1.x answers only a lone string or ObjectId _id from an index (any
   other filter, {files_id, n} included, scans every chunk with its data).
   Derived ids also make an upload that repeats after a crash overwrite its
   leftovers instead of colliding. GridFS readers (WildDuck's) look chunks up
   by {files_id, n}, which works with any _id. */
#define CHUNK_ID_LEN (2 * WD_ATTACHMENT_HASH_LEN + 12)

static void chunk_id(const uint8_t hash[WD_ATTACHMENT_HASH_LEN], uint32_t n, char *id)
{
	for (int i = 0; i < WD_ATTACHMENT_HASH_LEN; i++)
		snprintf(id + 2 * i, 3, "%02x", hash[i]);
	snprintf(id + 2 * WD_ATTACHMENT_HASH_LEN, 12, ":%u", n);
}

struct files_ctx {
	struct wd_store *store;
	mongoc_client_t *client;
	mongoc_collection_t *files;
	mongoc_collection_t *chunks;
};

static void ctx_open(struct files_ctx *ctx, struct wd_store *store)
{
	ctx->store = store;
	ctx->client = wd_store_client(store, WD_STORE_DB_GRIDFS);
	ctx->files = wd_store_collection(store, ctx->client, WD_STORE_DB_GRIDFS, FILES);
	ctx->chunks = wd_store_collection(store, ctx->client, WD_STORE_DB_GRIDFS, CHUNKS);
}

static void ctx_close(struct files_ctx *ctx)
{
	mongoc_collection_destroy(ctx->chunks);
	mongoc_collection_destroy(ctx->files);
	wd_store_client_release(ctx->store, WD_STORE_DB_GRIDFS, ctx->client);
}

/* $inc the counters of one file; *found_r false when it does not exist. */
static int counters_inc(struct files_ctx *ctx, const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
			int sign, uint32_t magic, bool *found_r, char **error_r)
{
	struct wd_store_lock lock;
	if (lock_file(ctx->store, hash, &lock, error_r) < 0)
		return WD_ERROR;
	bson_t *query = BCON_NEW("_id", BCON_BIN(BSON_SUBTYPE_BINARY, hash, WD_ATTACHMENT_HASH_LEN));
	bson_t *update = BCON_NEW("$inc", "{", "metadata.c", BCON_INT32(sign), "metadata.m",
				  BCON_INT32(sign * (int32_t)magic), "}", "$set", "{", "metadata.cu",
				  BCON_DATE_TIME(wd__now_ms()), "}");
	bson_t reply;
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_collection_update_one(ctx->files, query, update, NULL, &reply, &error)) {
		*error_r = wd__store_error("cannot update attachment counters: %s", error.message);
		ret = WD_ERROR;
	} else {
		bson_iter_t iter;
		*found_r = bson_iter_init_find(&iter, &reply, "matchedCount") &&
			   bson_iter_as_int64(&iter) > 0;
	}
	bson_destroy(&reply);
	bson_destroy(update);
	bson_destroy(query);
	wd__store_unlock(ctx->store, &lock);
	return ret;
}

/* Decide how to store a body: decoded base64 when that round-trips exactly. */
static bool decode_exactly(const struct wd_attachment_put *put, struct wd_buffer *decoded,
			   uint32_t *line_len_r)
{
	if (!put->decode_base64 || put->transfer_encoding == NULL ||
	    strcmp(put->transfer_encoding, "base64") != 0 || put->len == 0)
		return false;
	const uint8_t *crlf = memchr(put->body, '\r', put->len);
	size_t line_len = crlf != NULL ? (size_t)(crlf - put->body) : put->len;
	if (line_len == 0 || line_len > 998)
		return false;
	if (wd_base64_decode(put->body, put->len, decoded) < 0)
		return false;
	struct wd_buffer again = WD_BUFFER_INIT;
	bool same = wd_base64_encode(wd_buffer_bytes(decoded), decoded->len, line_len, &again) == 0 &&
		    again.len == put->len && memcmp(wd_buffer_bytes(&again), put->body, put->len) == 0;
	wd_buffer_release(&again);
	if (!same) {
		wd_buffer_release(decoded);
		return false;
	}
	*line_len_r = (uint32_t)line_len;
	return true;
}

/* Remove chunks of `hash` written before `older_than_ms` (a chunk's `t`
   field; chunks without it, written by other servers, count as old). Only
   called for hashes that have no files document. */
static void remove_stale_chunks(struct files_ctx *ctx, const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
				int64_t older_than_ms)
{
	bson_t *filter = BCON_NEW("files_id", BCON_BIN(BSON_SUBTYPE_BINARY, hash, WD_ATTACHMENT_HASH_LEN),
				  "$or", "[", "{", "t", "{", "$lt", BCON_DATE_TIME(older_than_ms), "}", "}",
				  "{", "t", "{", "$exists", BCON_BOOL(false), "}", "}", "]");
	bson_error_t error;
	if (!mongoc_collection_delete_many(ctx->chunks, filter, NULL, NULL, &error))
		wd_warning("store", "cannot remove stale attachment chunks: %s", error.message);
	bson_destroy(filter);
}

static bool is_duplicate_key(const bson_error_t *error)
{
	return error->code == 11000;
}

/* Writes chunks then the files document. WD_AGAIN when another uploader got
   there first (duplicate key): the caller references its file instead. */
static int upload(struct files_ctx *ctx, const struct wd_attachment_put *put,
		  const uint8_t hash[WD_ATTACHMENT_HASH_LEN], struct wd_attachment_ref *ref,
		  char **error_r)
{
	struct wd_buffer decoded = WD_BUFFER_INIT;
	uint32_t line_len = 0;
	ref->decoded = decode_exactly(put, &decoded, &line_len);
	const uint8_t *data = ref->decoded ? wd_buffer_bytes(&decoded) : put->body;
	size_t len = ref->decoded ? decoded.len : put->len;

	int ret = WD_OK;
	bson_error_t error;
	int64_t written = wd__now_ms();
	bson_t *upsert = BCON_NEW("upsert", BCON_BOOL(true));
	for (size_t n = 0, offset = 0; offset < len || (len == 0 && n == 0); n++) {
		size_t size = len - offset < WD_ATTACHMENT_CHUNK_SIZE ? len - offset :
									WD_ATTACHMENT_CHUNK_SIZE;
		char id[CHUNK_ID_LEN];
		chunk_id(hash, (uint32_t)n, id);
		bson_t *selector = BCON_NEW("_id", BCON_UTF8(id));
		bson_t *chunk = BCON_NEW("_id", BCON_UTF8(id),
					 "files_id", BCON_BIN(BSON_SUBTYPE_BINARY, hash, WD_ATTACHMENT_HASH_LEN),
					 "n", BCON_INT32((int32_t)n), "data",
					 BCON_BIN(BSON_SUBTYPE_BINARY, data + offset, (uint32_t)size),
					 "t", BCON_DATE_TIME(written));
		bool ok = mongoc_collection_replace_one(ctx->chunks, selector, chunk, upsert, NULL, &error);
		bson_destroy(chunk);
		bson_destroy(selector);
		if (!ok) {
			ret = is_duplicate_key(&error) ? WD_AGAIN : WD_ERROR;
			break;
		}
		offset += size;
		if (len == 0)
			break;
	}
	bson_destroy(upsert);
	if (ret == WD_OK) {
		unsigned char digest[SHA256_DIGEST_LENGTH];
		SHA256(data, len, digest);
		char content_hash[64];
		EVP_EncodeBlock((unsigned char *)content_hash, digest, sizeof(digest));
		/* 32 bytes are 44 base64 characters */
		memcpy(ref->content_hash, content_hash, 45);
		bson_t files = BSON_INITIALIZER, metadata;
		BSON_APPEND_BINARY(&files, "_id", BSON_SUBTYPE_BINARY, hash, WD_ATTACHMENT_HASH_LEN);
		BSON_APPEND_INT32(&files, "length", (int32_t)len);
		BSON_APPEND_INT32(&files, "chunkSize", WD_ATTACHMENT_CHUNK_SIZE);
		BSON_APPEND_DATE_TIME(&files, "uploadDate", wd__now_ms());
		BSON_APPEND_NULL(&files, "filename");
		BSON_APPEND_UTF8(&files, "contentType",
				 put->content_type != NULL ? put->content_type : "application/octet-stream");
		bson_append_document_begin(&files, "metadata", -1, &metadata);
		BSON_APPEND_INT32(&metadata, "m", (int32_t)put->magic);
		BSON_APPEND_INT32(&metadata, "c", 1);
		BSON_APPEND_DATE_TIME(&metadata, "cu", wd__now_ms());
		BSON_APPEND_INT32(&metadata, "esize", (int32_t)put->len);
		BSON_APPEND_UTF8(&metadata, "transferEncoding",
				 put->transfer_encoding != NULL ? put->transfer_encoding : "7bit");
		if (ref->decoded) {
			BSON_APPEND_BOOL(&metadata, "decoded", true);
			BSON_APPEND_INT32(&metadata, "lineLen", (int32_t)line_len);
		}
		BSON_APPEND_UTF8(&metadata, "fileContentHash", content_hash);
		bson_append_document_end(&files, &metadata);
		if (!mongoc_collection_insert_one(ctx->files, &files, NULL, NULL, &error))
			ret = is_duplicate_key(&error) ? WD_AGAIN : WD_ERROR;
		bson_destroy(&files);
	}
	if (ret == WD_ERROR)
		*error_r = wd__store_error("cannot store attachment: %s", error.message);
	wd_buffer_release(&decoded);
	return ret;
}

int wd_store_attachment_put(struct wd_store *store, const struct wd_attachment_put *put,
			    struct wd_attachment_ref *ref_r, char **error_r)
{
	memset(ref_r, 0, sizeof(*ref_r));
	SHA256(put->body, put->len, ref_r->hash);
	struct files_ctx ctx;
	ctx_open(&ctx, store);
	int ret = WD_ERROR;
	for (int attempt = 0; attempt < MAX_UPLOAD_ATTEMPTS; attempt++) {
		bool found = false;
		if (counters_inc(&ctx, ref_r->hash, 1, put->magic, &found, error_r) < 0)
			break;
		if (found) {
			ret = WD_OK;
			break;
		}
		/* Upload under the file's lock, so that on servers without atomic
		   updates nobody increments a file that is half written. */
		struct wd_store_lock lock;
		if (lock_file(store, ref_r->hash, &lock, error_r) < 0)
			break;
		ret = upload(&ctx, put, ref_r->hash, ref_r, error_r);
		wd__store_unlock(store, &lock);
		if (ret != WD_AGAIN) {
			ref_r->created = ret == WD_OK;
			break;
		}
		/* someone else is uploading the same body: wait and reference it */
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		ret = WD_ERROR;
		if (attempt + 1 == MAX_UPLOAD_ATTEMPTS)
			*error_r = wd__store_error("attachment upload kept colliding");
	}
	ctx_close(&ctx);
	return ret;
}

static int change_refs(struct wd_store *store, const uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN],
		       size_t count, int sign, uint32_t magic, char **error_r)
{
	struct files_ctx ctx;
	ctx_open(&ctx, store);
	int ret = WD_OK;
	for (size_t i = 0; i < count && ret == WD_OK; i++) {
		bool found;
		ret = counters_inc(&ctx, hashes[i], sign, magic, &found, error_r);
		if (ret == WD_OK && !found) {
			char hex[2 * WD_ATTACHMENT_HASH_LEN + 1];
			hash_hex(hashes[i], hex);
			wd_warning("store", "attachment %s is referenced but does not exist", hex);
		}
	}
	ctx_close(&ctx);
	return ret;
}

int wd_store_attachment_addref(struct wd_store *store, const uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN],
			       size_t count, uint32_t magic, char **error_r)
{
	return change_refs(store, hashes, count, 1, magic, error_r);
}

int wd_store_attachment_release(struct wd_store *store,
				const uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN], size_t count,
				uint32_t magic, char **error_r)
{
	return change_refs(store, hashes, count, -1, magic, error_r);
}

/* The files document of `hash` (copied into *doc_r); found_r false if absent. */
static int find_file(struct files_ctx *ctx, const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
		     bool *found_r, bson_t *doc_r, char **error_r)
{
	bson_t *query = BCON_NEW("_id", BCON_BIN(BSON_SUBTYPE_BINARY, hash, WD_ATTACHMENT_HASH_LEN));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(ctx->files, query, NULL, NULL);
	const bson_t *doc;
	bson_error_t error;
	int ret = WD_OK;
	*found_r = mongoc_cursor_next(cursor, &doc);
	if (*found_r)
		bson_copy_to(doc, doc_r);
	else if (mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__store_error("cannot read attachment: %s", error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	return ret;
}

static int64_t doc_int(const bson_t *doc, const char *dotted)
{
	bson_iter_t iter, found;
	if (bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, dotted, &found) &&
	    BSON_ITER_HOLDS_NUMBER(&found))
		return bson_iter_as_int64(&found);
	return 0;
}

static bool doc_bool(const bson_t *doc, const char *dotted)
{
	bson_iter_t iter, found;
	return bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, dotted, &found) &&
	       BSON_ITER_HOLDS_BOOL(&found) && bson_iter_bool(&found);
}

int wd_store_attachment_counters(struct wd_store *store, const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
				 bool *found_r, int64_t *c_r, int64_t *m_r, char **error_r)
{
	struct files_ctx ctx;
	ctx_open(&ctx, store);
	bson_t doc;
	int ret = find_file(&ctx, hash, found_r, &doc, error_r);
	if (ret == WD_OK && *found_r) {
		*c_r = doc_int(&doc, "metadata.c");
		*m_r = doc_int(&doc, "metadata.m");
		bson_destroy(&doc);
	}
	ctx_close(&ctx);
	return ret;
}

/* ---- reading ---- */

struct wd_attachment_reader {
	struct files_ctx ctx;
	uint8_t hash[WD_ATTACHMENT_HASH_LEN];
	uint64_t stored_length;  /* bytes in GridFS */
	uint64_t encoded_length; /* bytes of the original body */
	uint32_t chunk_size;
	bool decoded;
	uint32_t line_len;
	/* position */
	uint32_t next_chunk;
	uint64_t skip;           /* output bytes still to drop after a seek */
	size_t column;           /* decoded: characters on the current output line */
	bool eof;
};

struct wd_attachment_reader *wd_store_attachment_open(struct wd_store *store,
						      const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
						      char **error_r)
{
	struct wd_attachment_reader *reader = calloc(1, sizeof(*reader));
	if (reader == NULL) {
		*error_r = wd__store_error("out of memory");
		return NULL;
	}
	ctx_open(&reader->ctx, store);
	memcpy(reader->hash, hash, WD_ATTACHMENT_HASH_LEN);
	bson_t doc;
	bool found;
	if (find_file(&reader->ctx, hash, &found, &doc, error_r) < 0 || !found) {
		if (!found && *error_r == NULL)
			*error_r = wd__store_error("attachment does not exist");
		wd_attachment_reader_close(&reader);
		return NULL;
	}
	reader->stored_length = (uint64_t)doc_int(&doc, "length");
	reader->chunk_size = (uint32_t)doc_int(&doc, "chunkSize");
	reader->encoded_length = (uint64_t)doc_int(&doc, "metadata.esize");
	reader->decoded = doc_bool(&doc, "metadata.decoded");
	reader->line_len = (uint32_t)doc_int(&doc, "metadata.lineLen");
	bson_destroy(&doc);
	if (!reader->decoded)
		reader->encoded_length = reader->stored_length;
	if (reader->chunk_size == 0 || (reader->decoded && reader->line_len == 0)) {
		*error_r = wd__store_error("attachment has an invalid files document");
		wd_attachment_reader_close(&reader);
		return NULL;
	}
	reader->eof = reader->encoded_length == 0;
	return reader;
}

uint64_t wd_attachment_reader_size(const struct wd_attachment_reader *reader)
{
	return reader->encoded_length;
}

int wd_attachment_reader_seek(struct wd_attachment_reader *reader, uint64_t offset, char **error_r)
{
	(void)error_r;
	reader->eof = offset >= reader->encoded_length;
	if (!reader->decoded) {
		reader->next_chunk = (uint32_t)(offset / reader->chunk_size);
		reader->skip = offset % reader->chunk_size;
		return WD_OK;
	}
	/* Encoded position → base64 character → the quad (3 decoded bytes) it
	   belongs to. Chunks hold a multiple of 3 bytes, so quads never straddle
	   chunks; restart at the chunk holding the quad and drop the rest. */
	uint64_t stride = (uint64_t)reader->line_len + 2;
	uint64_t line = offset / stride, col = offset % stride;
	uint64_t chars = line * reader->line_len + (col < reader->line_len ? col : reader->line_len);
	uint64_t decoded_offset = chars / 4 * 3;
	reader->next_chunk = (uint32_t)(decoded_offset / reader->chunk_size);
	uint64_t start_char = (uint64_t)reader->next_chunk * reader->chunk_size / 3 * 4;
	uint64_t start_pos = start_char / reader->line_len * stride + start_char % reader->line_len;
	reader->column = start_char % reader->line_len;
	reader->skip = offset - start_pos;
	return WD_OK;
}

/* Appends `data` to out after dropping what a seek asked to skip. */
static int emit(struct wd_attachment_reader *reader, struct wd_buffer *out, const uint8_t *data,
		size_t len)
{
	if (reader->skip >= len) {
		reader->skip -= len;
		return WD_OK;
	}
	data += reader->skip;
	len -= reader->skip;
	reader->skip = 0;
	return wd_buffer_append(out, data, len);
}

static int encode_chunk(struct wd_attachment_reader *reader, const uint8_t *data, size_t len,
			struct wd_buffer *out)
{
	struct wd_buffer quads = WD_BUFFER_INIT;
	struct wd_buffer folded = WD_BUFFER_INIT;
	int ret = wd_base64_encode(data, len, 0, &quads);
	/* fold into lines of line_len, continuing the previous chunk's line */
	size_t breaks = quads.len / reader->line_len + 1;
	uint8_t *dst = ret == WD_OK ? wd_buffer_reserve(&folded, quads.len + 2 * breaks) : NULL;
	if (dst == NULL)
		ret = WD_ERROR;
	const uint8_t *q = wd_buffer_bytes(&quads);
	size_t n = 0;
	for (size_t i = 0; ret == WD_OK && i < quads.len;) {
		if (reader->column == reader->line_len) {
			dst[n++] = '\r';
			dst[n++] = '\n';
			reader->column = 0;
		}
		size_t take = reader->line_len - reader->column;
		if (take > quads.len - i)
			take = quads.len - i;
		memcpy(dst + n, q + i, take);
		n += take;
		i += take;
		reader->column += take;
	}
	if (ret == WD_OK) {
		wd_buffer_commit(&folded, n);
		ret = emit(reader, out, wd_buffer_bytes(&folded), folded.len);
	}
	wd_buffer_release(&folded);
	wd_buffer_release(&quads);
	return ret;
}

int wd_attachment_reader_read(struct wd_attachment_reader *reader, struct wd_buffer *out,
			      bool *eof_r, char **error_r)
{
	*eof_r = reader->eof;
	if (reader->eof)
		return WD_OK;
	char id[CHUNK_ID_LEN];
	chunk_id(reader->hash, reader->next_chunk, id);
	bson_t *query = BCON_NEW("_id", BCON_UTF8(id));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(reader->ctx.chunks, query, NULL, NULL);
	const bson_t *doc;
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_cursor_next(cursor, &doc)) {
		if (mongoc_cursor_error(cursor, &error))
			*error_r = wd__store_error("cannot read attachment chunk: %s", error.message);
		else
			*error_r = wd__store_error("attachment chunk %u is missing", reader->next_chunk);
		ret = WD_ERROR;
	} else {
		bson_iter_t iter;
		const uint8_t *data = NULL;
		uint32_t len = 0;
		bson_subtype_t subtype;
		if (bson_iter_init_find(&iter, doc, "data") && BSON_ITER_HOLDS_BINARY(&iter))
			bson_iter_binary(&iter, &subtype, &len, &data);
		uint64_t chunks = (reader->stored_length + reader->chunk_size - 1) / reader->chunk_size;
		bool last = reader->next_chunk + 1 >= chunks;
		ret = reader->decoded ? encode_chunk(reader, data, len, out) :
					emit(reader, out, data, len);
		reader->next_chunk++;
		if (last)
			reader->eof = true;
		if (ret < 0)
			*error_r = wd__store_error("out of memory");
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	*eof_r = reader->eof;
	return ret;
}

void wd_attachment_reader_close(struct wd_attachment_reader **_reader)
{
	struct wd_attachment_reader *reader = *_reader;
	if (reader == NULL)
		return;
	*_reader = NULL;
	ctx_close(&reader->ctx);
	free(reader);
}

/* ---- garbage collection ---- */

static int gc_files(struct files_ctx *ctx, int64_t before_ms, unsigned *deleted_r, char **error_r)
{
	bson_t *query = BCON_NEW("metadata.c", BCON_INT32(0), "metadata.m", BCON_INT32(0),
				 "metadata.cu", "{", "$lt", BCON_DATE_TIME(before_ms), "}");
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1000), "projection", "{", "_id", BCON_INT32(1),
				"length", BCON_INT32(1), "chunkSize", BCON_INT32(1), "}");
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(ctx->files, query, opts, NULL);
	const bson_t *doc;
	int ret = WD_OK;
	while (ret == WD_OK && mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		const uint8_t *id;
		uint32_t len;
		bson_subtype_t subtype;
		if (!bson_iter_init_find(&iter, doc, "_id") || !BSON_ITER_HOLDS_BINARY(&iter))
			continue;
		bson_iter_binary(&iter, &subtype, &len, &id);
		if (len != WD_ATTACHMENT_HASH_LEN)
			continue;
		uint8_t hash[WD_ATTACHMENT_HASH_LEN];
		memcpy(hash, id, sizeof(hash));
		int64_t length = doc_int(doc, "length"), chunk_size = doc_int(doc, "chunkSize");
		uint32_t chunks = chunk_size > 0 ? (uint32_t)((length + chunk_size - 1) / chunk_size) : 0;
		if (chunks == 0)
			chunks = 1;
		struct wd_store_lock lock;
		if (lock_file(ctx->store, hash, &lock, error_r) < 0) {
			ret = WD_ERROR;
			break;
		}
		/* re-check under the lock: a message may have referenced it since */
		bson_t *del = BCON_NEW("_id", BCON_BIN(BSON_SUBTYPE_BINARY, hash, WD_ATTACHMENT_HASH_LEN),
				       "metadata.c", BCON_INT32(0), "metadata.m", BCON_INT32(0));
		bson_t reply;
		bson_error_t error;
		if (mongoc_collection_delete_one(ctx->files, del, NULL, &reply, &error)) {
			bson_iter_t count;
			if (bson_iter_init_find(&count, &reply, "deletedCount") &&
			    bson_iter_as_int64(&count) > 0) {
				for (uint32_t n = 0; n < chunks; n++) {
					char cid[CHUNK_ID_LEN];
					chunk_id(hash, n, cid);
					bson_t *one = BCON_NEW("_id", BCON_UTF8(cid));
					if (!mongoc_collection_delete_one(ctx->chunks, one, NULL, NULL, &error))
						wd_warning("store", "cannot delete attachment chunk: %s",
							   error.message);
					bson_destroy(one);
				}
				(*deleted_r)++;
			}
		} else {
			*error_r = wd__store_error("cannot delete attachment: %s", error.message);
			ret = WD_ERROR;
		}
		bson_destroy(&reply);
		bson_destroy(del);
		wd__store_unlock(ctx->store, &lock);
	}
	bson_error_t error;
	if (ret == WD_OK && mongoc_cursor_error(cursor, &error)) {
		*error_r = wd__store_error("cannot list attachments: %s", error.message);
		ret = WD_ERROR;
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	bson_destroy(query);
	return ret;
}

/* Chunks whose files document does not exist: scan the chunks' distinct
   files_id values and check each against the files collection. */
static int gc_orphan_chunks(struct files_ctx *ctx, int64_t before_ms, unsigned *sets_r,
			    char **error_r)
{
	bson_t *cmd = BCON_NEW("distinct", BCON_UTF8(CHUNKS), "key", BCON_UTF8("files_id"));
	bson_t reply;
	bson_error_t error;
	if (!mongoc_client_command_simple(ctx->client, wd_store_db_name(ctx->store, WD_STORE_DB_GRIDFS),
					  cmd, NULL, &reply, &error)) {
		bson_destroy(cmd);
		bson_destroy(&reply);
		*error_r = wd__store_error("cannot list attachment chunks: %s", error.message);
		return WD_ERROR;
	}
	bson_destroy(cmd);
	bson_iter_t iter, values;
	if (bson_iter_init_find(&iter, &reply, "values") && bson_iter_recurse(&iter, &values)) {
		while (bson_iter_next(&values)) {
			if (!BSON_ITER_HOLDS_BINARY(&values))
				continue;
			const uint8_t *id;
			uint32_t len;
			bson_subtype_t subtype;
			bson_iter_binary(&values, &subtype, &len, &id);
			if (len != WD_ATTACHMENT_HASH_LEN)
				continue;
			uint8_t hash[WD_ATTACHMENT_HASH_LEN];
			memcpy(hash, id, sizeof(hash));
			struct wd_store_lock lock;
			if (lock_file(ctx->store, hash, &lock, error_r) < 0)
				break;
			bool found;
			bson_t doc;
			if (find_file(ctx, hash, &found, &doc, error_r) == WD_OK) {
				if (found) {
					bson_destroy(&doc);
				} else {
					remove_stale_chunks(ctx, hash, before_ms);
					(*sets_r)++;
				}
			}
			wd__store_unlock(ctx->store, &lock);
		}
	}
	bson_destroy(&reply);
	return WD_OK;
}

int wd_store_attachment_gc(struct wd_store *store, int64_t now, int64_t grace_ms,
			   struct wd_attachment_gc_report *report, char **error_r)
{
	memset(report, 0, sizeof(*report));
	struct files_ctx ctx;
	ctx_open(&ctx, store);
	int ret = gc_files(&ctx, now - grace_ms, &report->files, error_r);
	if (ret == WD_OK)
		ret = gc_orphan_chunks(&ctx, now - grace_ms, &report->orphan_chunk_sets, error_r);
	ctx_close(&ctx);
	if (report->files + report->orphan_chunk_sets > 0)
		wd_info("store", "attachment GC: %u unreferenced files, %u sets of orphan chunks removed",
			report->files, report->orphan_chunk_sets);
	return ret;
}
