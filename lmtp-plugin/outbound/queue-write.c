/* wd_outbound_queue(): one message into ZoneMTA's queue, as WildDuck's
 * maildropper push() writes it (reference §2.16), in this order:
 *
 *   1. split the header block from the body (queue-headers.c); compute
 *      parsedEnvelope, add Message-ID and Date when missing (Date also when
 *      it does not parse or is before 1970), remove Bcc;
 *   2. forwards only: the loop check, which may add X-WildDuck-Seen;
 *   3. the body, unchanged, into GridFS bucket `sender.gfs` as
 *      "message <queue id>" with metadata {created, data: envelope}, where
 *      the envelope carries the header lines, the DKIM body hash and the
 *      body size; then contentType "message/rfc822" (mongoc's bucket API
 *      has no option for it);
 *   4. one `sender.collection` entry per recipient, unlocked and due now.
 *
 * The file exists with its metadata before any entry refers to it, as
 * ZoneMTA requires (an entry whose file has no metadata is deleted by its
 * sender). A failure after step 3 removes the file; a crash leaves an
 * orphan file that the sender's garbage pass (or ZoneMTA's) removes.
 *
 * Input checks: recipients and the sender must be single addresses without
 * white space, control characters or angle brackets (they become SMTP
 * commands), at most 512 bytes, valid UTF-8; at most 1000 recipients; the
 * message at most 64 MiB (WildDuck's MAX_ALLOWED_MESSAGE_SIZE); no NUL in
 * the header block on servers that refuse NUL in strings (FerretDB). */
#include "outbound-private.h"
#include "wd-buffer.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store.h"

#include <glib.h>
#include <gmime/gmime.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG "outbound"
#define MAX_MESSAGE_SIZE (64 * 1024 * 1024)
#define MAX_ADDRESS_LEN 512
#define MAX_RECIPIENTS 1000
#define UPLOAD_WRITE_TIMEOUT_MS 60000

/* An address that may go into "MAIL FROM:<...>" / "RCPT TO:<...>". */
static bool valid_address(const char *a, bool allow_empty)
{
	size_t len = strlen(a);
	if ((len == 0 && !allow_empty) || len > MAX_ADDRESS_LEN || !g_utf8_validate(a, (gssize)len, NULL))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
			return false;
	}
	return true;
}

/* JSON.stringify() of a string (quotes included) */
static int json_string(struct wd_buffer *out, const char *s)
{
	if (wd_buffer_append(out, "\"", 1) < 0)
		return WD_ERROR;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		int ret;
		switch (*p) {
		case '"': ret = wd_buffer_append(out, "\\\"", 2); break;
		case '\\': ret = wd_buffer_append(out, "\\\\", 2); break;
		case '\b': ret = wd_buffer_append(out, "\\b", 2); break;
		case '\f': ret = wd_buffer_append(out, "\\f", 2); break;
		case '\n': ret = wd_buffer_append(out, "\\n", 2); break;
		case '\r': ret = wd_buffer_append(out, "\\r", 2); break;
		case '\t': ret = wd_buffer_append(out, "\\t", 2); break;
		default:
			ret = *p < 0x20 ? wd_buffer_printf(out, "\\u%04x", *p)
					: wd_buffer_append(out, p, 1);
		}
		if (ret < 0)
			return WD_ERROR;
	}
	return wd_buffer_append(out, "\"", 1);
}

/* JSON.stringify(deliveries): [{"to":..., "forwardedFor":...}, ...] */
static char *deliveries_json(const struct wd_outbound_message *msg)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	bool ok = wd_buffer_append(&out, "[", 1) == 0;
	for (size_t i = 0; ok && i < msg->to_count; i++) {
		ok = (i == 0 || wd_buffer_append(&out, ",", 1) == 0) &&
		     wd_buffer_append_str(&out, "{\"to\":") == 0 && json_string(&out, msg->to[i]) == 0;
		if (ok && msg->forwarded_for != NULL)
			ok = wd_buffer_append_str(&out, ",\"forwardedFor\":") == 0 &&
			     json_string(&out, msg->forwarded_for) == 0;
		ok = ok && wd_buffer_append(&out, "}", 1) == 0;
	}
	ok = ok && wd_buffer_append(&out, "]", 1) == 0;
	size_t len;
	char *json = ok ? (char *)wd_buffer_steal(&out, &len) : NULL;
	wd_buffer_release(&out);
	return json;
}

/* new Date().toUTCString().replace(/GMT/, '+0000') */
static void utc_date(int64_t now_ms, char out[40])
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
		 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

static bool date_usable(const char *value)
{
	if (value == NULL || value[0] == '\0')
		return false;
	wd__outbound_gmime_init();
	GDateTime *dt = g_mime_utils_header_decode_date(value);
	if (dt == NULL)
		return false;
	bool ok = g_date_time_to_unix(dt) >= 1;
	g_date_time_unref(dt);
	return ok;
}

/* maildropper's updateHeaders(), minus parsedEnvelope (done before, on the
   headers as given): *message_id_r and *date_r get the values kept or set. */
static int update_headers(struct wd_outbound *ob, struct wd_headers *h, const char *from,
			  int64_t now_ms, char **message_id_r, char **date_r)
{
	const struct wd_header_line *hl = wd__headers_find(h, "message-id", 0);
	char *mid = hl != NULL ? wd__header_value(hl) : NULL;
	if (mid == NULL || mid[0] == '\0') {
		free(mid);
		unsigned char r[16];
		if (RAND_bytes(r, sizeof(r)) != 1)
			return WD_ERROR;
		r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
		r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
		const char *at = strrchr(from, '@');
		const char *domain = at != NULL ? at + 1 : from;
		mid = wd__outbound_error(
			"<%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x@%s>",
			r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
			r[13], r[14], r[15], domain[0] != '\0' ? domain : ob->set.hostname);
		wd__headers_remove(h, "message-id");
		if (wd__headers_prepend(h, "Message-ID", mid) < 0) {
			free(mid);
			return WD_ERROR;
		}
	}
	*message_id_r = mid;

	hl = wd__headers_find(h, "date", 0);
	char *date = hl != NULL ? wd__header_value(hl) : NULL;
	if (!date_usable(date)) {
		free(date);
		date = malloc(40);
		if (date == NULL)
			return WD_ERROR;
		utc_date(now_ms, date);
		wd__headers_remove(h, "date");
		if (wd__headers_prepend(h, "Date", date) < 0) {
			free(date);
			return WD_ERROR;
		}
	}
	*date_r = date;
	wd__headers_remove(h, "bcc");
	return WD_OK;
}

static void append_number(bson_t *doc, const char *key, int64_t n)
{
	if (n >= INT32_MIN && n <= INT32_MAX)
		BSON_APPEND_INT32(doc, key, (int32_t)n);
	else
		BSON_APPEND_DOUBLE(doc, key, (double)n);
}

static void append_strings(bson_t *doc, const char *key, const char *const *list, size_t count)
{
	bson_t array;
	bson_append_array_begin(doc, key, -1, &array);
	for (size_t i = 0; i < count; i++) {
		char index[16];
		const char *k;
		bson_uint32_to_string((uint32_t)i, &k, index, sizeof(index));
		BSON_APPEND_UTF8(&array, k, list[i]);
	}
	bson_append_array_end(doc, &array);
}

struct prepared {
	char id[WD_QUEUE_ID_SIZE];
	int64_t now_ms;
	const uint8_t *body;
	size_t body_len;
	bson_t envelope;
};

static void build_envelope(struct wd_outbound *ob, const struct wd_outbound_message *msg,
			   struct prepared *p, const struct wd_headers *h, const bson_t *parsed,
			   const char *body_hash, const char *message_id, const char *date)
{
	bson_t *e = &p->envelope, dkim;
	bson_init(e);
	BSON_APPEND_UTF8(e, "id", p->id);
	BSON_APPEND_UTF8(e, "from", msg->from);
	if (msg->forwarded_for != NULL)
		append_strings(e, "to", &msg->forwarded_for, 1);
	else
		append_strings(e, "to", msg->to, msg->to_count);
	BSON_APPEND_UTF8(e, "interface", msg->interface != NULL ? msg->interface : "maildrop");
	BSON_APPEND_UTF8(e, "transtype", "API");
	BSON_APPEND_DOUBLE(e, "time", (double)p->now_ms);
	bson_append_document_begin(e, "dkim", -1, &dkim);
	BSON_APPEND_UTF8(&dkim, "hashAlgo", "sha256");
	BSON_APPEND_UTF8(&dkim, "bodyHash", body_hash);
	bson_append_document_end(e, &dkim);
	if (msg->user != NULL) {
		char hex[25];
		bson_oid_to_string(msg->user, hex);
		BSON_APPEND_UTF8(e, "userId", hex);
	}
	if (msg->user_email != NULL)
		BSON_APPEND_UTF8(e, "user", msg->user_email);
	if (msg->parent_id != NULL)
		BSON_APPEND_UTF8(e, "parentId", msg->parent_id);
	if (msg->reason != NULL)
		BSON_APPEND_UTF8(e, "reason", msg->reason);
	BSON_APPEND_UTF8(e, "origin", msg->origin != NULL ? msg->origin : "127.0.0.1");
	wd__headers_append_bson(h, e, "headers");
	bson_iter_t it;
	if (bson_iter_init_find(&it, parsed, "parsedEnvelope"))
		bson_append_iter(e, "parsedEnvelope", -1, &it);
	BSON_APPEND_UTF8(e, "messageId", message_id);
	BSON_APPEND_UTF8(e, "date", date);
	append_number(e, "bodySize", (int64_t)p->body_len);
}

static bool header_has_nul(const struct wd_headers *h)
{
	for (size_t i = 0; i < h->count; i++) {
		if (memchr(h->lines[i].line, '\0', h->lines[i].len) != NULL)
			return true;
	}
	return false;
}

static int check_message(const struct wd_outbound_message *msg, char **error_r)
{
	if (msg->from == NULL || !valid_address(msg->from, true)) {
		*error_r = wd__outbound_error("invalid envelope sender");
		return WD_ERROR;
	}
	if (msg->to_count == 0 || msg->to == NULL) {
		*error_r = wd__outbound_error("No valid recipients");
		return WD_ERROR;
	}
	if (msg->to_count > MAX_RECIPIENTS) {
		*error_r = wd__outbound_error("too many recipients (%zu, at most %d)", msg->to_count,
					      MAX_RECIPIENTS);
		return WD_ERROR;
	}
	for (size_t i = 0; i < msg->to_count; i++) {
		if (msg->to[i] == NULL || !valid_address(msg->to[i], false)) {
			*error_r = wd__outbound_error("invalid recipient address");
			return WD_ERROR;
		}
	}
	if (msg->forwarded_for != NULL && !valid_address(msg->forwarded_for, false)) {
		*error_r = wd__outbound_error("invalid forwarded_for address");
		return WD_ERROR;
	}
	const char *optional[] = { msg->reason, msg->interface, msg->parent_id, msg->origin,
				   msg->user_email };
	for (size_t i = 0; i < WD_N_ELEMENTS(optional); i++) {
		if (optional[i] != NULL && !g_utf8_validate(optional[i], -1, NULL)) {
			*error_r = wd__outbound_error("invalid UTF-8 in the message's description");
			return WD_ERROR;
		}
	}
	if (msg->raw == NULL && msg->len > 0) {
		*error_r = wd__outbound_error("no message");
		return WD_ERROR;
	}
	if (msg->len > MAX_MESSAGE_SIZE) {
		*error_r = wd__outbound_error("message too large (%zu bytes, at most %d)", msg->len,
					      MAX_MESSAGE_SIZE);
		return WD_ERROR;
	}
	return WD_OK;
}

/* ---- database writes ---- */

mongoc_gridfs_bucket_t *wd__outbound_bucket(struct wd_outbound *ob, mongoc_client_t *client,
					    char **error_r)
{
	mongoc_database_t *db =
		mongoc_client_get_database(client, wd_store_db_name(ob->store, WD_STORE_DB_SENDER));
	bson_t *opts = BCON_NEW("bucketName", BCON_UTF8(ob->set.gfs));
	bson_error_t error;
	mongoc_gridfs_bucket_t *bucket = mongoc_gridfs_bucket_new(db, opts, NULL, &error);
	bson_destroy(opts);
	mongoc_database_destroy(db);
	if (bucket == NULL)
		*error_r = wd__outbound_error("GridFS bucket %s: %s", ob->set.gfs, error.message);
	return bucket;
}

static int upload(struct wd_outbound *ob, mongoc_client_t *client, struct prepared *p,
		  bson_value_t *file_id_r, char **error_r)
{
	mongoc_gridfs_bucket_t *bucket = wd__outbound_bucket(ob, client, error_r);
	if (bucket == NULL)
		return WD_ERROR;
	char filename[64];
	snprintf(filename, sizeof(filename), "message %s", p->id);
	bson_t opts = BSON_INITIALIZER, metadata;
	bson_append_document_begin(&opts, "metadata", -1, &metadata);
	BSON_APPEND_DATE_TIME(&metadata, "created", p->now_ms);
	BSON_APPEND_DOCUMENT(&metadata, "data", &p->envelope);
	bson_append_document_end(&opts, &metadata);
	bson_error_t error;
	mongoc_stream_t *stream =
		mongoc_gridfs_bucket_open_upload_stream(bucket, filename, &opts, file_id_r, &error);
	bson_destroy(&opts);
	int ret = WD_ERROR;
	if (stream == NULL) {
		*error_r = wd__outbound_error("GridFS upload: %s", error.message);
		goto out;
	}
	size_t done = 0;
	while (done < p->body_len) {
		ssize_t n = mongoc_stream_write(stream, (void *)(p->body + done), p->body_len - done,
						UPLOAD_WRITE_TIMEOUT_MS);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (done < p->body_len || mongoc_stream_close(stream) != 0) {
		if (!mongoc_gridfs_bucket_stream_error(stream, &error))
			bson_set_error(&error, 0, 0, "write failed");
		*error_r = wd__outbound_error("GridFS upload: %s", error.message);
		if (done < p->body_len)
			mongoc_gridfs_bucket_abort_upload(stream);
		mongoc_stream_destroy(stream);
		goto out;
	}
	mongoc_stream_destroy(stream);
	ret = WD_OK;
out:
	mongoc_gridfs_bucket_destroy(bucket);
	return ret;
}

static int set_content_type(struct wd_outbound *ob, mongoc_client_t *client,
			    const bson_value_t *file_id, char **error_r)
{
	char files[256];
	snprintf(files, sizeof(files), "%s.files", ob->set.gfs);
	mongoc_collection_t *coll = wd_store_collection(ob->store, client, WD_STORE_DB_SENDER, files);
	bson_t filter = BSON_INITIALIZER;
	BSON_APPEND_VALUE(&filter, "_id", file_id);
	bson_t *update = BCON_NEW("$set", "{", "contentType", BCON_UTF8("message/rfc822"), "}");
	bson_error_t error;
	bool ok = mongoc_collection_update_one(coll, &filter, update, NULL, NULL, &error);
	if (!ok)
		*error_r = wd__outbound_error("%s: %s", files, error.message);
	bson_destroy(update);
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	return ok ? WD_OK : WD_ERROR;
}

static int insert_entries(struct wd_outbound *ob, mongoc_client_t *client,
			  const struct wd_outbound_message *msg, const struct prepared *p,
			  char **error_r)
{
	bson_t *docs[MAX_RECIPIENTS];
	for (size_t i = 0; i < msg->to_count; i++) {
		const char *to = msg->to[i];
		const char *at = strrchr(to, '@');
		const char *domain_src = at != NULL ? at + 1 : to;
		char domain[MAX_ADDRESS_LEN + 1];
		size_t n = 0;
		for (const char *c = domain_src; *c != '\0'; c++) {
			if (*c != '[' && *c != ']')
				domain[n++] = *c;
		}
		domain[n] = '\0';
		char seq[24];
		snprintf(seq, sizeof(seq), "%03zx", i + 1);
		docs[i] = BCON_NEW("id", BCON_UTF8(p->id), "seq", BCON_UTF8(seq), "domain",
				   BCON_UTF8(domain), "sendingZone", BCON_UTF8(ob->set.zone),
				   "assigned", BCON_UTF8("no"), "recipient", BCON_UTF8(to),
				   "locked", BCON_BOOL(false), "lockTime", BCON_INT32(0),
				   "queued", BCON_DATE_TIME(p->now_ms), "created",
				   BCON_DATE_TIME(p->now_ms));
	}
	mongoc_collection_t *coll =
		wd_store_collection(ob->store, client, WD_STORE_DB_SENDER, ob->set.collection);
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	bson_error_t error;
	bool ok = mongoc_collection_insert_many(coll, (const bson_t **)docs, msg->to_count, opts,
						NULL, &error);
	if (!ok)
		*error_r = wd__outbound_error("%s: %s", ob->set.collection, error.message);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	for (size_t i = 0; i < msg->to_count; i++)
		bson_destroy(docs[i]);
	return ok ? WD_OK : WD_ERROR;
}

int wd__outbound_remove_file(struct wd_outbound *ob, mongoc_client_t *client,
			     const bson_value_t *file_id, char **error_r)
{
	mongoc_gridfs_bucket_t *bucket = wd__outbound_bucket(ob, client, error_r);
	if (bucket == NULL)
		return WD_ERROR;
	bson_error_t error;
	bool ok = mongoc_gridfs_bucket_delete_by_id(bucket, file_id, &error);
	if (!ok)
		*error_r = wd__outbound_error("GridFS delete: %s", error.message);
	mongoc_gridfs_bucket_destroy(bucket);
	return ok ? WD_OK : WD_ERROR;
}

static int store(struct wd_outbound *ob, const struct wd_outbound_message *msg,
		 struct prepared *p, char **error_r)
{
	mongoc_client_t *client = wd_store_client(ob->store, WD_STORE_DB_SENDER);
	bson_value_t file_id;
	int ret = upload(ob, client, p, &file_id, error_r);
	if (ret == WD_OK) {
		ret = set_content_type(ob, client, &file_id, error_r);
		if (ret == WD_OK)
			ret = insert_entries(ob, client, msg, p, error_r);
		if (ret < 0) {
			char *ignored = NULL;
			if (wd__outbound_remove_file(ob, client, &file_id, &ignored) < 0)
				wd_warning(LOG, "%s: the file of a failed queue write stays for the "
					   "garbage pass: %s", p->id, ignored);
			free(ignored);
		}
		bson_value_destroy(&file_id);
	}
	wd_store_client_release(ob->store, WD_STORE_DB_SENDER, client);
	return ret;
}

int wd_outbound_queue(struct wd_outbound *ob, const struct wd_outbound_message *msg,
		      char queue_id_r[19], char **error_r)
{
	queue_id_r[0] = '\0';
	if (check_message(msg, error_r) < 0)
		return WD_ERROR;
	struct wd_headers h;
	size_t body_offset;
	const uint8_t *raw = msg->raw != NULL ? msg->raw : (const uint8_t *)"";
	if (wd__headers_split(raw, msg->len, &h, &body_offset) < 0) {
		*error_r = wd__outbound_error("out of memory");
		return WD_ERROR;
	}
	if (!wd_store_caps(ob->store)->nul_in_strings && header_has_nul(&h)) {
		wd__headers_free(&h);
		*error_r = wd__outbound_error("the header block holds a NUL byte, which the "
					      "database refuses");
		return WD_ERROR;
	}
	wd__outbound_ensure_indexes(ob);

	struct prepared p = { .now_ms = wd__outbound_now_ms(), .body = raw + body_offset,
			      .body_len = msg->len - body_offset };
	bson_t parsed = BSON_INITIALIZER;
	char *message_id = NULL, *date = NULL, *json = NULL;
	char body_hash[45];
	int ret = WD_ERROR;
	wd__queue_parsed_envelope(&h, &parsed);
	if (update_headers(ob, &h, msg->from, p.now_ms, &message_id, &date) < 0 ||
	    wd__body_hash_relaxed(p.body, p.body_len, body_hash) < 0) {
		*error_r = wd__outbound_error("out of memory");
		goto out;
	}
	if (msg->reason != NULL && strcmp(msg->reason, "forward") == 0) {
		bool looped = false;
		json = deliveries_json(msg);
		if (json == NULL || wd__loop_check(ob->set.loop_secret, &h, json, &looped) < 0) {
			*error_r = wd__outbound_error("out of memory");
			goto out;
		}
		if (looped) {
			*error_r = wd__outbound_error("Message loop detected");
			ret = WD_OUTBOUND_LOOP;
			goto out;
		}
	}
	wd__queue_id_next(ob, p.id);
	build_envelope(ob, msg, &p, &h, &parsed, body_hash, message_id, date);
	ret = store(ob, msg, &p, error_r);
	bson_destroy(&p.envelope);
	if (ret == WD_OK) {
		memcpy(queue_id_r, p.id, WD_QUEUE_ID_SIZE);
		atomic_fetch_add(&ob->stat_queued, 1);
		wd_info(LOG, "%s queued from=<%s> to=%zu reason=%s message-id=%s", p.id, msg->from,
			msg->to_count, msg->reason != NULL ? msg->reason : "-", message_id);
		wd_outbound_sender_wake(ob);
	}
out:
	free(json);
	free(message_id);
	free(date);
	bson_destroy(&parsed);
	wd__headers_free(&h);
	return ret;
}
