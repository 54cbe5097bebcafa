/* JSON out of BSON and back (api.h helpers), in the forms WildDuck's API
 * sends: ObjectIds as 24 lower-case hex digits, dates as ISO strings with
 * milliseconds, binary as base64. Also the cursor strings of paged lists
 * and the :user check most handlers start with. */
#include "api.h"

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

json_t *api_json_date(int64_t ms)
{
	time_t seconds = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int millis = (int)(ms - (int64_t)seconds * 1000);
	struct tm tm;
	if (gmtime_r(&seconds, &tm) == NULL)
		return json_null();
	char text[80];
	snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
	return json_string(text);
}

json_t *api_json_oid(const bson_oid_t *oid)
{
	char hex[25];
	bson_oid_to_string(oid, hex);
	return json_string(hex);
}

static json_t *from_bson_container(const bson_iter_t *iter, bool array)
{
	bson_iter_t child;
	if (!bson_iter_recurse(iter, &child))
		return NULL;
	json_t *out = array ? json_array() : json_object();
	while (bson_iter_next(&child)) {
		json_t *value = api_json_from_bson_iter(&child);
		if (value == NULL)
			value = json_null();
		if (array)
			json_array_append_new(out, value);
		else
			json_object_set_new(out, bson_iter_key(&child), value);
	}
	return out;
}

json_t *api_json_from_bson_iter(const bson_iter_t *iter)
{
	switch (bson_iter_type(iter)) {
	case BSON_TYPE_UTF8: {
		uint32_t len;
		const char *s = bson_iter_utf8(iter, &len);
		json_t *v = json_stringn(s, len);
		return v != NULL ? v : json_string(""); /* not UTF-8: nothing to show */
	}
	case BSON_TYPE_INT32:
		return json_integer(bson_iter_int32(iter));
	case BSON_TYPE_INT64:
		return json_integer(bson_iter_int64(iter));
	case BSON_TYPE_DOUBLE: {
		double d = bson_iter_double(iter);
		if (d == (double)(json_int_t)d && d > -9e15 && d < 9e15)
			return json_integer((json_int_t)d);
		return json_real(d);
	}
	case BSON_TYPE_BOOL:
		return json_boolean(bson_iter_bool(iter));
	case BSON_TYPE_OID:
		return api_json_oid(bson_iter_oid(iter));
	case BSON_TYPE_DATE_TIME:
		return api_json_date(bson_iter_date_time(iter));
	case BSON_TYPE_NULL:
	case BSON_TYPE_UNDEFINED:
		return json_null();
	case BSON_TYPE_DOCUMENT:
		return from_bson_container(iter, false);
	case BSON_TYPE_ARRAY:
		return from_bson_container(iter, true);
	case BSON_TYPE_BINARY: {
		uint32_t len;
		const uint8_t *data;
		bson_subtype_t subtype;
		bson_iter_binary(iter, &subtype, &len, &data);
		struct wd_buffer out = WD_BUFFER_INIT;
		json_t *v = wd_base64_encode(data, len, 0, &out) == 0
				    ? json_stringn((const char *)wd_buffer_bytes(&out), out.len)
				    : json_null();
		wd_buffer_release(&out);
		return v;
	}
	case BSON_TYPE_DECIMAL128: {
		bson_decimal128_t dec;
		char text[BSON_DECIMAL128_STRING];
		bson_iter_decimal128(iter, &dec);
		bson_decimal128_to_string(&dec, text);
		return json_string(text);
	}
	default:
		return json_null();
	}
}

json_t *api_json_from_bson(const bson_t *doc, const char *const *keys)
{
	json_t *out = json_object();
	bson_iter_t iter;
	if (doc == NULL || !bson_iter_init(&iter, doc))
		return out;
	while (bson_iter_next(&iter)) {
		const char *key = bson_iter_key(&iter);
		bool wanted = keys == NULL;
		for (size_t i = 0; !wanted && keys[i] != NULL; i++)
			wanted = strcmp(keys[i], key) == 0;
		if (!wanted)
			continue;
		json_t *value = api_json_from_bson_iter(&iter);
		json_object_set_new(out, key, value != NULL ? value : json_null());
	}
	return out;
}

bool api_bson_append_json(bson_t *doc, const char *key, const json_t *value)
{
	switch (json_typeof(value)) {
	case JSON_OBJECT: {
		bson_t child;
		const char *k;
		json_t *v;
		if (!bson_append_document_begin(doc, key, -1, &child))
			return false;
		json_object_foreach((json_t *)value, k, v)
			if (!api_bson_append_json(&child, k, v))
				return false;
		return bson_append_document_end(doc, &child);
	}
	case JSON_ARRAY: {
		bson_t child;
		size_t i;
		json_t *v;
		if (!bson_append_array_begin(doc, key, -1, &child))
			return false;
		json_array_foreach(value, i, v) {
			char index[24];
			snprintf(index, sizeof(index), "%zu", i);
			if (!api_bson_append_json(&child, index, v))
				return false;
		}
		return bson_append_array_end(doc, &child);
	}
	case JSON_STRING:
		return bson_append_utf8(doc, key, -1, json_string_value(value),
					(int)json_string_length(value));
	case JSON_INTEGER: {
		json_int_t i = json_integer_value(value);
		if (i >= INT32_MIN && i <= INT32_MAX)
			return bson_append_int32(doc, key, -1, (int32_t)i);
		return bson_append_double(doc, key, -1, (double)i); /* as a JavaScript number */
	}
	case JSON_REAL:
		return bson_append_double(doc, key, -1, json_real_value(value));
	case JSON_TRUE:
	case JSON_FALSE:
		return bson_append_bool(doc, key, -1, json_is_true(value));
	case JSON_NULL:
		return bson_append_null(doc, key, -1);
	}
	return false;
}

bool api_require_user(struct api_request *req, bson_oid_t *user_r)
{
	if (!api_oid(req, "user", user_r)) {
		api_reply_error(req, 400, "InputValidationError", "\"user\" is required");
		return false;
	}
	/* a user token's user was read by the access check of this request */
	if (req->has_token_user && bson_oid_equal(user_r, &req->token_user))
		return true;
	struct wd_user *user = NULL;
	char *error = NULL;
	int ret = wd_store_user_get(req->ctx->store, user_r, &user, &error);
	if (ret < 0) {
		api_reply_store_error(req, ret, ret == WD_STORE_ERR_NOT_FOUND
						     ? "This user does not exist" : error,
				      "UserNotFound");
		free(error);
		return false;
	}
	wd_user_free(&user);
	return true;
}

/* Cursors: "<kind>:<value>" in base64url, so clients treat them as opaque
   as WildDuck's. */
char *api_cursor_encode(const char *kind, const char *value)
{
	char *plain = NULL;
	if (asprintf(&plain, "%s:%s", kind, value) < 0)
		return NULL;
	struct wd_buffer out = WD_BUFFER_INIT;
	int ret = wd_base64_encode((const uint8_t *)plain, strlen(plain), 0, &out);
	free(plain);
	size_t len = 0;
	char *b64 = ret == 0 ? (char *)wd_buffer_steal(&out, &len) : NULL;
	wd_buffer_release(&out);
	if (b64 == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	while (len > 0 && b64[len - 1] == '=')
		b64[--len] = '\0';
	return b64;
}

char *api_cursor_decode(const char *kind, const char *cursor)
{
	size_t len = strlen(cursor);
	if (len == 0 || len > 1024)
		return NULL;
	char *b64 = malloc(len + 4);
	if (b64 == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		b64[i] = cursor[i] == '-' ? '+' : cursor[i] == '_' ? '/' : cursor[i];
	while (len % 4 != 0)
		b64[len++] = '=';
	b64[len] = '\0';
	struct wd_buffer out = WD_BUFFER_INIT;
	int ret = wd_base64_decode((const uint8_t *)b64, len, &out);
	free(b64);
	size_t out_len = 0;
	uint8_t *plain = ret == 0 ? wd_buffer_steal(&out, &out_len) : NULL;
	wd_buffer_release(&out);
	if (plain == NULL)
		return NULL;
	size_t kind_len = strlen(kind);
	char *value = NULL;
	if (out_len > kind_len && memcmp(plain, kind, kind_len) == 0 && plain[kind_len] == ':' &&
	    memchr(plain, '\0', out_len) == NULL)
		value = strndup((const char *)plain + kind_len + 1, out_len - kind_len - 1);
	free(plain);
	return value;
}
