/* Messages as WildDuck's API shows them (message-json.h).
 *
 * The stored parsedHeader keeps header values as they were written, so the
 * display names of addresses may hold RFC 2047 encoded words; WildDuck's
 * API decodes them on the way out (tools.decodeAddresses), and so do we,
 * with iconv for the charsets (glibc knows all the usual ones). An encoded
 * word that cannot be decoded stays as it is, as libmime leaves it. */
#include "message-json.h"

#include "js-string.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"
#include "wd-store-message.h"
#include "wd-store-search.h"
#include "wd-store-update-lock.h"
#include "wd-store-user.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ENCODED_WORD 1024

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The bytes of one encoded word's text (B or Q) appended to `out`. */
static bool word_bytes(char encoding, const char *text, size_t len, struct wd_buffer *out)
{
	if (encoding == 'b' || encoding == 'B') {
		/* pad what senders leave unpadded */
		char padded[MAX_ENCODED_WORD + 4];
		if (len > MAX_ENCODED_WORD)
			return false;
		memcpy(padded, text, len);
		while (len % 4 != 0)
			padded[len++] = '=';
		return wd_base64_decode((const uint8_t *)padded, len, out) == WD_OK;
	}
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=' && i + 2 < len && hex_value(text[i + 1]) >= 0 &&
			   hex_value(text[i + 2]) >= 0) {
			c = (char)(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
			i += 2;
		}
		wd_buffer_append(out, &c, 1);
	}
	return true;
}

/* Decoded text appended as JSON can carry it: the bytes read as UTF-8 the
   way Node does (each ill-formed sequence one U+FFFD), NUL as U+FFFD too,
   since the result is a C string. Without this an encoded word holding
   invalid UTF-8 (=?utf-8?q?=FF?=) made the whole name vanish from the
   answer: jansson refuses such a string. */
static bool append_text(struct wd_buffer *out, const uint8_t *bytes, size_t len)
{
	char *dst = (char *)wd_buffer_reserve(out, 3 * len + 1);
	if (dst == NULL)
		return false;
	wd_buffer_commit(out, wd__js_utf8_from_bytes(dst, bytes, len, true));
	return true;
}

static bool to_utf8(const char *charset, const struct wd_buffer *in, struct wd_buffer *out)
{
	char cs[64];
	size_t n = strcspn(charset, "*"); /* RFC 2231 language suffix */
	if (n >= sizeof(cs))
		return false;
	memcpy(cs, charset, n);
	cs[n] = '\0';
	if (strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "us-ascii") == 0 ||
	    strcasecmp(cs, "utf8") == 0)
		return append_text(out, wd_buffer_bytes(in), in->len);
	iconv_t cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return false;
	char *src = (char *)wd_buffer_bytes(in);
	size_t src_left = in->len;
	struct wd_buffer converted = WD_BUFFER_INIT;
	bool ok = true;
	while (src_left > 0 && ok) {
		char chunk[512], *dst = chunk;
		size_t dst_left = sizeof(chunk);
		size_t r = iconv(cd, &src, &src_left, &dst, &dst_left);
		wd_buffer_append(&converted, chunk, sizeof(chunk) - dst_left);
		if (r == (size_t)-1 && errno != E2BIG)
			ok = false;
	}
	iconv_close(cd);
	ok = ok && append_text(out, wd_buffer_bytes(&converted), converted.len);
	wd_buffer_release(&converted);
	return ok;
}

/* Parses "=?cs?e?text?=" at s; returns its length (0 when not one). */
static size_t encoded_word(const char *s, const char **cs, size_t *cs_len, char *enc,
			   const char **text, size_t *text_len)
{
	if (s[0] != '=' || s[1] != '?')
		return 0;
	const char *p = s + 2, *q = strchr(p, '?');
	if (q == NULL || q == p || q - p > 60)
		return 0;
	*cs = p;
	*cs_len = (size_t)(q - p);
	if (strchr("bBqQ", q[1]) == NULL || q[1] == '\0' || q[2] != '?')
		return 0;
	*enc = q[1];
	*text = q + 3;
	const char *end = strstr(*text, "?=");
	if (end == NULL || (size_t)(end - *text) > MAX_ENCODED_WORD)
		return 0;
	for (const char *c = *text; c < end; c++)
		if (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
			return 0;
	*text_len = (size_t)(end - *text);
	return (size_t)(end + 2 - s);
}

char *api_mime_decode_words(const char *text)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	const char *s = text;
	bool after_word = false;
	while (*s != '\0') {
		const char *cs, *wtext;
		size_t cs_len, text_len;
		char enc;
		size_t n = encoded_word(s, &cs, &cs_len, &enc, &wtext, &text_len);
		if (n > 0) {
			char charset[64];
			struct wd_buffer bytes = WD_BUFFER_INIT;
			bool ok = cs_len < sizeof(charset);
			if (ok) {
				memcpy(charset, cs, cs_len);
				charset[cs_len] = '\0';
				size_t mark = out.len;
				ok = word_bytes(enc, wtext, text_len, &bytes) &&
				     to_utf8(charset, &bytes, &out);
				if (!ok && out.len > mark) /* drop a partial conversion */
					out.len = mark;
			}
			wd_buffer_release(&bytes);
			if (!ok)
				wd_buffer_append(&out, s, n);
			s += n;
			after_word = ok;
			continue;
		}
		if (after_word) {
			/* white space between two encoded words disappears */
			size_t ws = strspn(s, " \t\r\n");
			if (ws > 0 && encoded_word(s + ws, &cs, &cs_len, &enc, &wtext, &text_len) > 0) {
				s += ws;
				continue;
			}
		}
		wd_buffer_append(&out, s, 1);
		s++;
		after_word = false;
	}
	size_t len;
	char *result = (char *)wd_buffer_steal(&out, &len);
	wd_buffer_release(&out);
	return result != NULL ? result : strdup("");
}

int64_t api_bson_int(const bson_t *doc, const char *key, int64_t def)
{
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_NUMBER(&iter))
		return bson_iter_as_int64(&iter);
	return def;
}

const char *api_bson_str(const bson_t *doc, const char *dotted)
{
	bson_iter_t iter, found;
	if (bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, dotted, &found) &&
	    BSON_ITER_HOLDS_UTF8(&found))
		return bson_iter_utf8(&found, NULL);
	return NULL;
}

static bool bson_bool(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	return bson_iter_init_find(&iter, doc, key) && bson_iter_as_bool(&iter);
}

bool api_parsed_header(const bson_t *doc, bson_t *parsed_header_r)
{
	bson_iter_t iter, found;
	const uint8_t *data;
	uint32_t len;
	if (!bson_iter_init(&iter, doc) ||
	    !bson_iter_find_descendant(&iter, "mimeTree.parsedHeader", &found) ||
	    !BSON_ITER_HOLDS_DOCUMENT(&found))
		return false;
	bson_iter_document(&found, &len, &data);
	return bson_init_static(parsed_header_r, data, len);
}

/* One address object (or group) decoded, as tools.decodeAddresses leaves it. */
static json_t *address_json(bson_iter_t *iter)
{
	json_t *o = api_json_from_bson_iter(iter);
	if (!json_is_object(o))
		return o;
	json_t *name = json_object_get(o, "name");
	char *decoded = api_mime_decode_words(json_is_string(name) ? json_string_value(name) : "");
	json_t *value = decoded != NULL ? json_string(decoded) : NULL;
	json_object_set_new(o, "name", value != NULL ? value : json_string(""));
	free(decoded);
	json_t *group = json_object_get(o, "group");
	if (json_is_array(group)) {
		size_t i;
		json_t *member;
		json_array_foreach(group, i, member) {
			json_t *n = json_object_get(member, "name");
			if (!json_is_string(n))
				continue;
			char *d = api_mime_decode_words(json_string_value(n));
			json_t *v = d != NULL ? json_string(d) : NULL;
			if (v != NULL)
				json_object_set_new(member, "name", v);
			free(d);
		}
	}
	return o;
}

json_t *api_addresses_json(const bson_t *parsed_header, const char *key)
{
	bson_iter_t iter, child;
	if (parsed_header == NULL || !bson_iter_init_find(&iter, parsed_header, key))
		return NULL;
	json_t *list = json_array();
	if (BSON_ITER_HOLDS_ARRAY(&iter) && bson_iter_recurse(&iter, &child)) {
		while (bson_iter_next(&child))
			if (BSON_ITER_HOLDS_DOCUMENT(&child))
				json_array_append_new(list, address_json(&child));
	} else if (BSON_ITER_HOLDS_DOCUMENT(&iter)) {
		json_array_append_new(list, address_json(&iter));
	} else {
		json_decref(list);
		return NULL;
	}
	return list;
}

static bool has_flag(const bson_t *doc, const char *flag)
{
	bson_iter_t iter, child;
	if (!bson_iter_init_find(&iter, doc, "flags") || !bson_iter_recurse(&iter, &child))
		return false;
	while (bson_iter_next(&child))
		if (BSON_ITER_HOLDS_UTF8(&child) &&
		    strcasecmp(bson_iter_utf8(&child, NULL), flag) == 0)
			return true;
	return false;
}

static void set_from_doc(json_t *out, const char *name, const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	json_t *value = NULL;
	if (bson_iter_init_find(&iter, doc, key))
		value = api_json_from_bson_iter(&iter);
	json_object_set_new(out, name, value != NULL ? value : json_null());
}

/* The references header split on white space (a repeated header is an
   array: its values joined first, as JavaScript's toString with commas). */
static json_t *references_json(const bson_t *parsed_header)
{
	json_t *list = json_array();
	bson_iter_t iter, child;
	if (parsed_header == NULL || !bson_iter_init_find(&iter, parsed_header, "references"))
		return list;
	struct wd_buffer text = WD_BUFFER_INIT;
	if (BSON_ITER_HOLDS_UTF8(&iter)) {
		wd_buffer_append_str(&text, bson_iter_utf8(&iter, NULL));
	} else if (BSON_ITER_HOLDS_ARRAY(&iter) && bson_iter_recurse(&iter, &child)) {
		bool first = true;
		while (bson_iter_next(&child)) {
			if (!first)
				wd_buffer_append_str(&text, ",");
			first = false;
			if (BSON_ITER_HOLDS_UTF8(&child))
				wd_buffer_append_str(&text, bson_iter_utf8(&child, NULL));
		}
	}
	wd_buffer_append(&text, "", 1);
	char *s = (char *)wd_buffer_bytes(&text), *save = NULL;
	for (char *t = strtok_r(s, " \t\r\n", &save); t != NULL; t = strtok_r(NULL, " \t\r\n", &save))
		json_array_append_new(list, json_string(t));
	wd_buffer_release(&text);
	return list;
}

void api_message_common(const bson_t *doc, const bson_t *parsed_header, json_t *out)
{
	bool forwarded = has_flag(doc, "$Forwarded");
	json_object_set_new(out, "answered", json_boolean(has_flag(doc, "\\Answered") && !forwarded));
	json_object_set_new(out, "forwarded", json_boolean(forwarded));
	json_object_set_new(out, "references", references_json(parsed_header));
	bson_iter_t iter, ct;
	if (parsed_header != NULL && bson_iter_init_find(&iter, parsed_header, "content-type") &&
	    BSON_ITER_HOLDS_DOCUMENT(&iter) && bson_iter_recurse(&iter, &ct)) {
		json_t *full = api_json_from_bson_iter(&iter);
		json_t *content_type = json_object();
		json_t *value = json_object_get(full, "value");
		json_object_set_new(content_type, "value",
				    value != NULL ? json_incref(value) : json_string(""));
		if (json_is_true(json_object_get(full, "hasParams")) &&
		    json_object_get(full, "params") != NULL)
			json_object_set(content_type, "params", json_object_get(full, "params"));
		json_object_set_new(out, "contentType", content_type);
		const char *subtype = json_string_value(json_object_get(full, "subtype"));
		if (subtype != NULL && strcmp(subtype, "encrypted") == 0)
			json_object_set_new(out, "encrypted", json_true());
		json_decref(full);
	}
	/* metaData: meta.custom, a JSON string (tools.formatMetaData) */
	bson_iter_t custom;
	if (bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, "meta.custom", &custom)) {
		json_t *meta = NULL;
		if (BSON_ITER_HOLDS_UTF8(&custom)) {
			const char *s = bson_iter_utf8(&custom, NULL);
			meta = json_loads(s, JSON_DECODE_ANY, NULL);
			if (meta == NULL && s[0] != '\0')
				meta = json_string(s);
		} else {
			meta = api_json_from_bson_iter(&custom);
		}
		if (meta == NULL || json_is_null(meta) || json_is_false(meta)) {
			json_decref(meta);
			meta = json_object();
		}
		json_object_set_new(out, "metaData", meta);
	}
}

/* attachments with their GridFS hash added (hex of attachmentMap[id]) */
static json_t *attachments_json(const bson_t *doc)
{
	bson_iter_t iter;
	json_t *list = NULL;
	if (bson_iter_init_find(&iter, doc, "attachments"))
		list = api_json_from_bson_iter(&iter);
	if (!json_is_array(list)) {
		json_decref(list);
		return json_array();
	}
	size_t i;
	json_t *entry;
	json_array_foreach(list, i, entry) {
		const char *id = json_string_value(json_object_get(entry, "id"));
		char path[96];
		bson_iter_t found;
		if (id == NULL || strlen(id) > 40)
			continue;
		snprintf(path, sizeof(path), "mimeTree.attachmentMap.%s", id);
		if (bson_iter_init(&iter, doc) && bson_iter_find_descendant(&iter, path, &found) &&
		    BSON_ITER_HOLDS_BINARY(&found)) {
			const uint8_t *data;
			uint32_t len;
			bson_iter_binary(&found, NULL, &len, &data);
			char hex[2 * 64 + 1];
			for (uint32_t k = 0; k < len && k < 64; k++)
				snprintf(hex + 2 * k, 3, "%02x", data[k]);
			hex[2 * (len < 64 ? len : 64)] = '\0';
			json_object_set_new(entry, "hash", json_string(hex));
		}
	}
	return list;
}

json_t *api_message_listing(const bson_t *doc)
{
	bson_t ph_doc;
	const bson_t *ph = api_parsed_header(doc, &ph_doc) ? &ph_doc : NULL;
	json_t *out = json_object();
	json_object_set_new(out, "id", json_integer(api_bson_int(doc, "uid", 0)));
	set_from_doc(out, "mailbox", doc, "mailbox");
	set_from_doc(out, "thread", doc, "thread");
	json_t *from = api_addresses_json(ph, "from");
	if (from == NULL || json_array_size(from) == 0) {
		json_decref(from);
		from = api_addresses_json(ph, "sender");
	}
	if (from == NULL || json_array_size(from) == 0) {
		json_decref(from);
		const char *meta_from = api_bson_str(doc, "meta.from");
		from = json_pack("[{s:s,s:s}]", "name", "", "address", meta_from != NULL ? meta_from : "");
	}
	json_object_set(out, "from", json_array_get(from, 0));
	json_decref(from);
	static const char *const lists[] = { "to", "cc", "bcc" };
	for (size_t i = 0; i < 3; i++) {
		json_t *l = api_addresses_json(ph, lists[i]);
		json_object_set_new(out, lists[i], l != NULL ? l : json_array());
	}
	set_from_doc(out, "messageId", doc, "msgid");
	set_from_doc(out, "subject", doc, "subject");
	set_from_doc(out, "date", doc, "hdate");
	set_from_doc(out, "idate", doc, "idate");
	set_from_doc(out, "intro", doc, "intro");
	json_object_set_new(out, "attachments", json_boolean(bson_bool(doc, "ha")));
	json_object_set_new(out, "attachmentsList", attachments_json(doc));
	json_object_set_new(out, "size", json_integer(api_bson_int(doc, "size", 0)));
	json_object_set_new(out, "seen", json_boolean(!bson_bool(doc, "unseen")));
	json_object_set_new(out, "deleted", json_boolean(!bson_bool(doc, "undeleted")));
	json_object_set_new(out, "flagged", json_boolean(bson_bool(doc, "flagged")));
	json_object_set_new(out, "draft", json_boolean(bson_bool(doc, "draft")));
	api_message_common(doc, ph, out);
	return out;
}

json_t *api_message_attachments(const bson_t *doc)
{
	return attachments_json(doc);
}

bool api_message_find(struct api_request *req, const bson_oid_t *mailbox, uint32_t uid,
		      const bson_oid_t *user, const bson_t *projection, const char *not_found,
		      bson_t *doc_r)
{
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *query = BCON_NEW("mailbox", BCON_OID(mailbox), "uid", BCON_INT64(uid));
	bson_t opts = BSON_INITIALIZER;
	BSON_APPEND_INT64(&opts, "limit", 1);
	if (projection != NULL)
		BSON_APPEND_DOCUMENT(&opts, "projection", projection);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, &opts, NULL);
	const bson_t *doc;
	bool found = false;
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		found = bson_iter_init_find(&iter, doc, "user") && BSON_ITER_HOLDS_OID(&iter) &&
			bson_oid_equal(bson_iter_oid(&iter), user);
		if (found)
			bson_copy_to(doc, doc_r);
	}
	bson_error_t error;
	bool failed = mongoc_cursor_error(cursor, &error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(&opts);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (failed) {
		if (found)
			bson_destroy(doc_r);
		api_reply_store_error(req, WD_STORE_ERR_DATABASE, error.message, "MessageNotFound");
		return false;
	}
	if (!found) {
		api_reply_error(req, 404, "MessageNotFound", "%s",
				not_found != NULL ? not_found : "This message does not exist");
		return false;
	}
	return true;
}

bool api_uid_range_parse(const char *text, struct wd_search_uid_range *ranges, size_t max,
			 size_t *count_r)
{
	*count_r = 0;
	if (text == NULL || *text == '\0' || strlen(text) > 8192)
		return false;
	const char *p = text;
	char *end;
	if (strchr(text, ':') != NULL) {
		if (!isdigit((unsigned char)*p))
			return false;
		unsigned long long a = strtoull(p, &end, 10);
		if (*end != ':' || a > UINT32_MAX)
			return false;
		p = end + 1;
		unsigned long long b = UINT32_MAX;
		if (strcmp(p, "*") != 0) {
			if (!isdigit((unsigned char)*p))
				return false;
			b = strtoull(p, &end, 10);
			if (*end != '\0' || b > UINT32_MAX)
				return false;
		}
		if (max < 1)
			return false;
		ranges[0].first = (uint32_t)(a < b ? a : b);
		ranges[0].last = (uint32_t)(a < b ? b : a);
		*count_r = 1;
		return true;
	}
	while (*p != '\0') {
		if (!isdigit((unsigned char)*p) || *count_r >= max)
			return false;
		unsigned long long v = strtoull(p, &end, 10);
		if (v > UINT32_MAX || (*end != ',' && *end != '\0'))
			return false;
		ranges[*count_r].first = ranges[*count_r].last = (uint32_t)v;
		(*count_r)++;
		p = *end == ',' ? end + 1 : end;
		if (*end == ',' && *p == '\0')
			return false;
	}
	return *count_r > 0;
}

void api_uid_range_append(bson_t *query, const struct wd_search_uid_range *ranges, size_t count)
{
	if (count == 1 && ranges[0].first == ranges[0].last) {
		BSON_APPEND_INT64(query, "uid", ranges[0].first);
		return;
	}
	bson_t cond, list;
	bson_append_document_begin(query, "uid", -1, &cond);
	if (count == 1) {
		BSON_APPEND_INT64(&cond, "$gte", ranges[0].first);
		if (ranges[0].last != UINT32_MAX)
			BSON_APPEND_INT64(&cond, "$lte", ranges[0].last);
	} else {
		bson_append_array_begin(&cond, "$in", -1, &list);
		for (size_t i = 0; i < count; i++) {
			char key[16];
			const char *k;
			bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
			BSON_APPEND_INT64(&list, k, ranges[i].first);
		}
		bson_append_array_end(&cond, &list);
	}
	bson_append_document_end(query, &cond);
}

int api_message_uids(struct api_request *req, const bson_t *query, size_t max, uint32_t **uids_r,
		     size_t *count_r, char **error_r)
{
	struct wd_store *store = req->ctx->store;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *opts = BCON_NEW("projection", "{", "uid", BCON_INT32(1), "}", "sort", "{", "uid",
				BCON_INT32(1), "}", "limit", BCON_INT64((int64_t)max));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	uint32_t *uids = NULL;
	size_t count = 0, alloc = 0;
	const bson_t *doc;
	int ret = WD_OK;
	while (mongoc_cursor_next(cursor, &doc)) {
		if (count == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			uint32_t *n = realloc(uids, alloc * sizeof(*uids));
			if (n == NULL) {
				ret = WD_ERROR;
				*error_r = strdup("out of memory");
				break;
			}
			uids = n;
		}
		uids[count++] = (uint32_t)api_bson_int(doc, "uid", 0);
	}
	bson_error_t error;
	if (ret == WD_OK && mongoc_cursor_error(cursor, &error)) {
		ret = WD_ERROR;
		*error_r = strdup(error.message);
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	if (ret != WD_OK) {
		free(uids);
		uids = NULL;
		count = 0;
	}
	*uids_r = uids;
	*count_r = count;
	return ret;
}

bool api_mailbox_require(struct api_request *req, const bson_oid_t *user,
			 const bson_oid_t *mailbox)
{
	struct wd_mailbox *mb = NULL;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_id(req->ctx->store, user, mailbox, &mb, &error);
	wd_mailbox_free(&mb);
	if (ret < 0) {
		api_reply_store_error(req, ret,
				      ret == WD_STORE_ERR_NOT_FOUND ? "This mailbox does not exist" : error,
				      "NoSuchMailbox");
		free(error);
		return false;
	}
	return true;
}

/* \Deleted + UID EXPUNGE of `uids`: archived unless drafts (or copied). */
int api_messages_delete(struct api_request *req, const bson_oid_t *mailbox, const uint32_t *uids,
		       size_t count, size_t *deleted_r, char **error_r)
{
	*deleted_r = 0;
	if (count == 0)
		return WD_OK;
	const char *flags[] = { "\\Deleted" };
	int ret = api_message_flags(req, mailbox, uids, count, WD_FLAGS_ADD, flags, 1, error_r);
	if (ret < 0)
		return ret;
	uint32_t *expunged = NULL;
	size_t n = 0;
	ret = wd_store_message_expunge(req->ctx->store, mailbox, uids, count, NULL, &expunged, &n,
				       error_r);
	free(expunged);
	*deleted_r = n;
	return ret;
}

int api_message_read_all(struct api_request *req, const bson_oid_t *id, size_t max,
			 struct wd_buffer *out, char **error_r)
{
	struct wd_message_reader *reader = wd_store_message_open_id(req->ctx->store, id, error_r);
	if (reader == NULL)
		return WD_ERROR;
	int ret = WD_OK;
	if (wd_message_reader_size(reader) > max) {
		*error_r = strdup("message too large");
		ret = WD_ERROR;
	}
	bool eof = false;
	while (ret == WD_OK && !eof)
		ret = wd_message_reader_read(reader, out, &eof, error_r) < 0 ? WD_ERROR : WD_OK;
	wd_message_reader_close(&reader);
	return ret;
}

int api_message_flags(struct api_request *req, const bson_oid_t *mailbox, const uint32_t *uids,
		      size_t count, enum wd_flags_op op, const char *const *flags, size_t flag_count,
		      char **error_r)
{
	if (count == 0 || flag_count == 0)
		return WD_OK;
	struct wd_flags_change change = {
		.uids = uids, .uid_count = count, .op = op, .flags = flags, .flag_count = flag_count,
	};
	struct wd_flags_result result;
	memset(&result, 0, sizeof(result));
	int ret = wd_store_message_flags(req->ctx->store, mailbox, &change, &result, error_r);
	free(result.modified);
	return ret;
}

int api_update_locked(struct api_request *req, const bson_oid_t *mailbox, const char *collection,
		      const bson_t *filter, const bson_t *update, bool many, int64_t *matched_r,
		      char **error_r)
{
	struct wd_store *store = req->ctx->store;
	char name[32] = "mb:";
	bson_oid_to_string(mailbox, name + 3);
	struct wd_store_update_lock *lock = NULL;
	if (wd_store_update_lock(store, name, &lock, error_r) < 0)
		return WD_ERROR;
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, collection);
	bson_t reply;
	bson_error_t error;
	int ret = WD_OK;
	bool ok = many ? mongoc_collection_update_many(coll, filter, update, NULL, &reply, &error) :
			 mongoc_collection_update_one(coll, filter, update, NULL, &reply, &error);
	if (!ok) {
		*error_r = strdup(error.message);
		ret = WD_ERROR;
	} else if (matched_r != NULL) {
		bson_iter_t iter;
		*matched_r = bson_iter_init_find(&iter, &reply, "matchedCount") ?
				     bson_iter_as_int64(&iter) : 0;
	}
	bson_destroy(&reply);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	wd_store_update_unlock(store, &lock);
	return ret;
}
