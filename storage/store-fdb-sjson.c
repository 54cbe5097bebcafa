/* FerretDB 1.24's SQLite document encoding ("sjson") back to BSON.
 *
 * FerretDB keeps each document as one JSON text: the values as plain JSON
 * plus a schema under "$s" that restores the BSON types JSON cannot tell
 * apart ({"p": {field: {"t": type, ...}}, "$k": [field order]}; an object's
 * schema is nested under its own "$s", an array's elements under "i", a
 * binary's subtype under "s"). ObjectIds are hex strings, dates milliseconds,
 * binaries base64. This decodes such a text the way FerretDB would answer a
 * find, with an optional inclusion projection, so that a document can be
 * read straight from SQLite (wd-store-fdb.h) instead of asking FerretDB to
 * decode it.
 *
 * It is strict: any type it does not know (timestamp, regex, decimal...),
 * any value that does not fit its schema, a projection it cannot apply
 * exactly (a sub-field of an array, an exclusion) makes it fail, and the
 * caller then runs its ordinary query. The JSON is parsed with libbson, which
 * reads extended-JSON wrappers such as {"$date": …}; such a wrapper in a
 * stored document parses into a type the schema does not expect, which
 * also fails. */
#include "store-private.h"
#include "wd-store-fdb.h"

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

/* How a projection treats the field at `path`. */
enum proj_mode { PROJ_SKIP, PROJ_WHOLE, PROJ_PART };

static enum proj_mode proj_mode(const bson_t *projection, const char *path, size_t path_len,
				bool top_id)
{
	if (projection == NULL)
		return PROJ_WHOLE;
	bson_iter_t it;
	enum proj_mode mode = top_id ? PROJ_WHOLE : PROJ_SKIP; /* _id unless excluded */
	if (!bson_iter_init(&it, projection))
		return PROJ_SKIP;
	while (bson_iter_next(&it)) {
		const char *key = bson_iter_key(&it);
		size_t len = strlen(key);
		if (len == path_len && memcmp(key, path, len) == 0)
			return bson_iter_as_bool(&it) ? PROJ_WHOLE : PROJ_SKIP;
		if (len > path_len && memcmp(key, path, path_len) == 0 && key[path_len] == '.')
			mode = PROJ_PART;
	}
	return mode;
}

/* The schema entry {"t": …} of `key` in an object schema {"p": {…}}. */
static bool schema_field(const bson_iter_t *object_schema, const char *key, bson_iter_t *field)
{
	bson_iter_t p;
	return BSON_ITER_HOLDS_DOCUMENT(object_schema) && bson_iter_recurse(object_schema, &p) &&
	       bson_iter_find(&p, "p") && BSON_ITER_HOLDS_DOCUMENT(&p) &&
	       bson_iter_recurse(&p, field) && bson_iter_find(field, key) &&
	       BSON_ITER_HOLDS_DOCUMENT(field);
}

static const char *schema_type(const bson_iter_t *field)
{
	bson_iter_t t;
	if (!bson_iter_recurse(field, &t) || !bson_iter_find(&t, "t") || !BSON_ITER_HOLDS_UTF8(&t))
		return "";
	return bson_iter_utf8(&t, NULL);
}

static bool schema_child(const bson_iter_t *field, const char *name, bson_iter_t *child)
{
	return bson_iter_recurse(field, child) && bson_iter_find(child, name);
}

static int convert_object(bson_iter_t *value, const bson_iter_t *object_schema, bson_t *out,
			  const bson_t *projection, char *path, size_t path_len, size_t path_size);

/* Append `value` (parsed JSON) as `key` with the BSON type `field` names. */
static int convert_value(bson_iter_t *value, const bson_iter_t *field, const char *key,
			 bson_t *out, const bson_t *projection, char *path, size_t path_len,
			 size_t path_size, bool part)
{
	const char *t = schema_type(field);
	bool number = BSON_ITER_HOLDS_INT32(value) || BSON_ITER_HOLDS_INT64(value);
	if (part && strcmp(t, "object") != 0)
		return WD_ERROR; /* a projection into an array or a scalar */
	if (strcmp(t, "string") == 0 && BSON_ITER_HOLDS_UTF8(value)) {
		uint32_t len;
		const char *s = bson_iter_utf8(value, &len);
		return bson_append_utf8(out, key, -1, s, (int)len) ? WD_OK : WD_ERROR;
	}
	if (strcmp(t, "objectId") == 0 && BSON_ITER_HOLDS_UTF8(value)) {
		uint32_t len;
		const char *s = bson_iter_utf8(value, &len);
		if (len != 24 || !bson_oid_is_valid(s, len))
			return WD_ERROR;
		bson_oid_t oid;
		bson_oid_init_from_string(&oid, s);
		return bson_append_oid(out, key, -1, &oid) ? WD_OK : WD_ERROR;
	}
	if (strcmp(t, "int") == 0 && number) {
		int64_t v = bson_iter_as_int64(value);
		if (v < INT32_MIN || v > INT32_MAX)
			return WD_ERROR;
		return bson_append_int32(out, key, -1, (int32_t)v) ? WD_OK : WD_ERROR;
	}
	if (strcmp(t, "long") == 0 && number)
		return bson_append_int64(out, key, -1, bson_iter_as_int64(value)) ? WD_OK : WD_ERROR;
	if (strcmp(t, "date") == 0 && number)
		return bson_append_date_time(out, key, -1, bson_iter_as_int64(value)) ? WD_OK :
											 WD_ERROR;
	if (strcmp(t, "double") == 0 && (number || BSON_ITER_HOLDS_DOUBLE(value)))
		return bson_append_double(out, key, -1, bson_iter_as_double(value)) ? WD_OK :
											WD_ERROR;
	if (strcmp(t, "bool") == 0 && BSON_ITER_HOLDS_BOOL(value))
		return bson_append_bool(out, key, -1, bson_iter_bool(value)) ? WD_OK : WD_ERROR;
	if (strcmp(t, "null") == 0 && BSON_ITER_HOLDS_NULL(value))
		return bson_append_null(out, key, -1) ? WD_OK : WD_ERROR;
	if (strcmp(t, "binData") == 0 && BSON_ITER_HOLDS_UTF8(value)) {
		bson_iter_t s;
		int subtype = schema_child(field, "s", &s) && BSON_ITER_HOLDS_NUMBER(&s) ?
				      (int)bson_iter_as_int64(&s) :
				      0;
		uint32_t len;
		const char *text = bson_iter_utf8(value, &len);
		struct wd_buffer bin = WD_BUFFER_INIT;
		int ret = wd_base64_decode((const uint8_t *)text, len, &bin) < 0 ||
					  subtype < 0 || subtype > 255 ||
					  !bson_append_binary(out, key, -1, (bson_subtype_t)subtype,
							      bin.len > 0 ? wd_buffer_bytes(&bin) :
									    (const uint8_t *)"",
							      (uint32_t)bin.len) ?
				  WD_ERROR :
				  WD_OK;
		wd_buffer_release(&bin);
		return ret;
	}
	if (strcmp(t, "object") == 0 && BSON_ITER_HOLDS_DOCUMENT(value)) {
		bson_iter_t object_schema, child;
		bson_t sub;
		if (!schema_child(field, "$s", &object_schema) || !bson_iter_recurse(value, &child) ||
		    !bson_append_document_begin(out, key, -1, &sub))
			return WD_ERROR;
		int ret = convert_object(&child, &object_schema, &sub, part ? projection : NULL, path,
					 path_len, path_size);
		return bson_append_document_end(out, &sub) && ret == WD_OK ? WD_OK : WD_ERROR;
	}
	if (strcmp(t, "array") == 0 && BSON_ITER_HOLDS_ARRAY(value)) {
		bson_iter_t items, item, elem;
		bson_t sub;
		if (!schema_child(field, "i", &items) || !BSON_ITER_HOLDS_ARRAY(&items) ||
		    !bson_iter_recurse(&items, &item) || !bson_iter_recurse(value, &elem) ||
		    !bson_append_array_begin(out, key, -1, &sub))
			return WD_ERROR;
		int ret = WD_OK;
		char idx[16];
		const char *idx_key;
		uint32_t i = 0;
		while (ret == WD_OK && bson_iter_next(&elem)) {
			if (!bson_iter_next(&item) || !BSON_ITER_HOLDS_DOCUMENT(&item)) {
				ret = WD_ERROR;
				break;
			}
			bson_uint32_to_string(i++, &idx_key, idx, sizeof(idx));
			ret = convert_value(&elem, &item, idx_key, &sub, NULL, path, path_len,
					    path_size, false);
		}
		return bson_append_array_end(out, &sub) && ret == WD_OK ? WD_OK : WD_ERROR;
	}
	return WD_ERROR;
}

/* The fields of one object in the schema's "$k" order. `path` holds the
   object's dotted path (path_len bytes) for the projection. */
static int convert_object(bson_iter_t *value, const bson_iter_t *object_schema, bson_t *out,
			  const bson_t *projection, char *path, size_t path_len, size_t path_size)
{
	bson_iter_t order, name;
	if (!bson_iter_recurse(object_schema, &order))
		return WD_ERROR;
	if (!bson_iter_find(&order, "$k")) {
		/* an empty object's schema is {} */
		bson_iter_t any = *value;
		return bson_iter_next(&any) ? WD_ERROR : WD_OK;
	}
	if (!BSON_ITER_HOLDS_ARRAY(&order) || !bson_iter_recurse(&order, &name))
		return WD_ERROR;
	while (bson_iter_next(&name)) {
		if (!BSON_ITER_HOLDS_UTF8(&name))
			return WD_ERROR;
		uint32_t key_len;
		const char *key = bson_iter_utf8(&name, &key_len);
		size_t len = path_len + (path_len > 0) + key_len;
		if (len + 1 > path_size)
			return WD_ERROR;
		if (path_len > 0)
			path[path_len] = '.';
		memcpy(path + path_len + (path_len > 0), key, key_len);
		path[len] = '\0';
		enum proj_mode mode = proj_mode(projection, path, len,
						path_len == 0 && strcmp(key, "_id") == 0);
		if (mode == PROJ_SKIP)
			continue;
		bson_iter_t field, v = *value;
		if (!bson_iter_find(&v, key))
			continue; /* listed in the schema but absent: leave it out */
		if (!schema_field(object_schema, key, &field)) {
			/* a projected field the document lacks: null value, null schema */
			if (BSON_ITER_HOLDS_NULL(&v))
				continue;
			return WD_ERROR;
		}
		if (convert_value(&v, &field, key, out, projection, path, len, path_size,
				  mode == PROJ_PART) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

int wd_store_fdb_sjson_to_bson(const char *json, size_t len, const bson_t *projection,
			       bson_t *out)
{
	if (projection != NULL) {
		/* inclusion projections only (and _id: 0) */
		bson_iter_t it;
		if (!bson_iter_init(&it, projection))
			return WD_ERROR;
		while (bson_iter_next(&it)) {
			if (!BSON_ITER_HOLDS_NUMBER(&it) && !BSON_ITER_HOLDS_BOOL(&it))
				return WD_ERROR;
			if (!bson_iter_as_bool(&it) && strcmp(bson_iter_key(&it), "_id") != 0)
				return WD_ERROR;
		}
	}
	bson_error_t error;
	bson_t *doc = bson_new_from_json((const uint8_t *)json, (ssize_t)len, &error);
	if (doc == NULL)
		return WD_ERROR;
	bson_iter_t schema, value;
	char path[1024];
	int ret = WD_ERROR;
	if (bson_iter_init_find(&schema, doc, "$s") && BSON_ITER_HOLDS_DOCUMENT(&schema) &&
	    bson_iter_init(&value, doc))
		ret = convert_object(&value, &schema, out, projection, path, 0, sizeof(path));
	bson_destroy(doc);
	return ret;
}
