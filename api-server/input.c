/* Input checks against a route's field list (input.h), and the typed
 * getters of api.h over the checked input. */
#include "input.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

unsigned api_json_depth(const uint8_t *text, size_t len, unsigned limit)
{
	unsigned depth = 0, max = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = text[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return max;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

static size_t utf8_length(const char *s)
{
	size_t n = 0;
	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static void fail(json_t *details, const char *name, const char *fmt, const char *arg)
{
	if (json_object_get(details, name) != NULL)
		return;
	char text[300];
	char quoted[160];
	snprintf(quoted, sizeof(quoted), "\"%.150s\"", name);
	snprintf(text, sizeof(text), fmt, quoted, arg != NULL ? arg : "");
	json_t *s = json_string(text);
	if (s == NULL) /* a key with invalid UTF-8 cannot come from jansson; be safe */
		s = json_string("invalid input");
	json_object_set_new(details, name, s);
}

int64_t api_parse_date(const char *text)
{
	struct tm tm = { 0 };
	const char *p = strptime(text, "%Y-%m-%d", &tm);
	if (p == NULL)
		return -1;
	int64_t frac_ms = 0, offset_s = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		const char *q = strptime(p + 1, "%H:%M", &tm);
		if (q == NULL)
			return -1;
		p = q;
		if (*p == ':') {
			q = strptime(p + 1, "%S", &tm);
			if (q == NULL)
				return -1;
			p = q;
		}
		if (*p == '.') {
			p++;
			int digits = 0;
			int64_t scale = 100;
			while (isdigit((unsigned char)*p)) {
				if (digits++ < 3) {
					frac_ms += (*p - '0') * scale;
					scale /= 10;
				}
				p++;
			}
			if (digits == 0)
				return -1;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1;
			int hh, mm;
			if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
				return -1;
			offset_s = sign * (hh * 3600 + mm * 60);
			p += 6;
		}
	}
	if (*p != '\0')
		return -1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return ((int64_t)t - offset_s) * 1000 + frac_ms;
}

static bool parse_int_text(const char *text, int64_t *value_r)
{
	if (*text == '\0')
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*value_r = v;
	return true;
}

/* A whole number that int64_t holds; the range is tested first, since
   converting a double outside it is undefined (1e300 in a JSON body). */
static bool real_is_int64(double d)
{
	return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(int64_t)d;
}

static bool bounded(const struct api_field *f)
{
	return f->min != 0 || f->max != 0;
}

/* One field's value: the converted value (new reference), or NULL with a
   message in details. */
static json_t *check_field(const struct api_field *f, json_t *value, json_t *details)
{
	const char *name = f->name;
	if ((f->flags & API_F_NULLABLE) != 0 &&
	    (json_is_null(value) || (json_is_string(value) && json_string_length(value) == 0)))
		return json_null();
	switch (f->type) {
	case API_T_STRING:
	case API_T_EMAIL: {
		if (!json_is_string(value)) {
			fail(details, name, "%s must be a string", NULL);
			return NULL;
		}
		char *s = strdup(json_string_value(value));
		if (s == NULL)
			return NULL;
		if ((f->flags & API_F_TRIM) != 0 || f->type == API_T_EMAIL) {
			char *start = s;
			while (isspace((unsigned char)*start))
				start++;
			memmove(s, start, strlen(start) + 1);
			size_t len = strlen(s);
			while (len > 0 && isspace((unsigned char)s[len - 1]))
				s[--len] = '\0';
		}
		size_t len = utf8_length(s);
		int64_t max = f->max > 0 ? f->max : API_INPUT_DEFAULT_STRING_MAX;
		json_t *out = NULL;
		if (len == 0 && (f->flags & API_F_EMPTY_OK) == 0) {
			fail(details, name, "%s is not allowed to be empty", NULL);
		} else if (len > 0 && (int64_t)len < f->min) {
			char n[32];
			snprintf(n, sizeof(n), "%lld", (long long)f->min);
			fail(details, name, "%s length must be at least %s characters long", n);
		} else if ((int64_t)len > max) {
			char n[32];
			snprintf(n, sizeof(n), "%lld", (long long)max);
			fail(details, name, "%s length must be less than or equal to %s characters long",
			     n);
		} else if (f->type == API_T_EMAIL && len > 0 &&
			   (strchr(s, '@') == NULL || s[0] == '@' || s[strlen(s) - 1] == '@' ||
			    strpbrk(s, " \t\r\n<>,;\"") != NULL)) {
			fail(details, name, "%s must be a valid email", NULL);
		} else {
			if ((f->flags & API_F_LOWERCASE) != 0)
				for (char *p = s; *p != '\0'; p++)
					*p = (char)tolower((unsigned char)*p);
			bool allowed = f->choices == NULL || len == 0;
			for (size_t i = 0; !allowed && f->choices[i] != NULL; i++)
				allowed = strcmp(f->choices[i], s) == 0;
			if (!allowed)
				fail(details, name, "%s must be one of the allowed values", NULL);
			else
				out = json_string(s);
		}
		free(s);
		return out;
	}
	case API_T_INT: {
		int64_t v;
		if (json_is_integer(value)) {
			v = json_integer_value(value);
		} else if (json_is_real(value) && real_is_int64(json_real_value(value))) {
			v = (int64_t)json_real_value(value);
		} else if (!json_is_string(value) || !parse_int_text(json_string_value(value), &v)) {
			fail(details, name, "%s must be a number", NULL);
			return NULL;
		}
		if (bounded(f) && v < f->min) {
			char n[32];
			snprintf(n, sizeof(n), "%lld", (long long)f->min);
			fail(details, name, "%s must be greater than or equal to %s", n);
			return NULL;
		}
		if (bounded(f) && v > f->max) {
			char n[32];
			snprintf(n, sizeof(n), "%lld", (long long)f->max);
			fail(details, name, "%s must be less than or equal to %s", n);
			return NULL;
		}
		return json_integer(v);
	}
	case API_T_BOOL: {
		if (json_is_boolean(value))
			return json_boolean(json_is_true(value));
		const char *s = json_string_value(value);
		if (s != NULL) {
			if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "yes") == 0)
				return json_true();
			if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0)
				return json_false();
		}
		fail(details, name, "%s must be a boolean", NULL);
		return NULL;
	}
	case API_T_OID:
	case API_T_USER: {
		const char *s = json_string_value(value);
		if (s == NULL) {
			fail(details, name, "%s must be a string", NULL);
			return NULL;
		}
		if (strlen(s) != 24) {
			fail(details, name, "%s length must be 24 characters long", NULL);
			return NULL;
		}
		char lower[25];
		for (int i = 0; i < 24; i++) {
			if (!isxdigit((unsigned char)s[i])) {
				fail(details, name, "%s must only contain hexadecimal characters", NULL);
				return NULL;
			}
			lower[i] = (char)tolower((unsigned char)s[i]);
		}
		lower[24] = '\0';
		return json_string(lower);
	}
	case API_T_STRINGS: {
		json_t *array;
		if (json_is_array(value)) {
			array = json_incref(value);
		} else if (json_is_string(value)) { /* a query argument "a,b,c" */
			array = json_array();
			char *copy = strdup(json_string_value(value)), *save = NULL;
			for (char *t = copy != NULL ? strtok_r(copy, ",", &save) : NULL; t != NULL;
			     t = strtok_r(NULL, ",", &save))
				json_array_append_new(array, json_string(t));
			free(copy);
		} else {
			fail(details, name, "%s must be an array", NULL);
			return NULL;
		}
		int64_t max = f->max > 0 ? f->max : API_INPUT_DEFAULT_ARRAY_MAX;
		if ((int64_t)json_array_size(array) > max) {
			char n[32];
			snprintf(n, sizeof(n), "%lld", (long long)max);
			fail(details, name, "%s must contain less than or equal to %s items", n);
			json_decref(array);
			return NULL;
		}
		if ((int64_t)json_array_size(array) < f->min) {
			fail(details, name, "%s does not contain enough items", NULL);
			json_decref(array);
			return NULL;
		}
		size_t i;
		json_t *item;
		json_array_foreach(array, i, item) {
			if (!json_is_string(item) ||
			    utf8_length(json_string_value(item)) > API_INPUT_ARRAY_ITEM_MAX) {
				fail(details, name, "%s items must be strings of at most 1024 characters",
				     NULL);
				json_decref(array);
				return NULL;
			}
		}
		return array;
	}
	case API_T_OBJECT:
	case API_T_ANY: {
		if (f->type == API_T_OBJECT && !json_is_object(value)) {
			fail(details, name, "%s must be of type object", NULL);
			return NULL;
		}
		char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
		size_t len = text != NULL ? strlen(text) : SIZE_MAX;
		free(text);
		int64_t max = f->max > 0 ? f->max : API_INPUT_DEFAULT_OBJECT_MAX;
		if ((int64_t)len > max) {
			fail(details, name, "%s is too large", NULL);
			return NULL;
		}
		return json_incref(value);
	}
	case API_T_DATE: {
		if (json_is_integer(value))
			return json_integer(json_integer_value(value));
		const char *s = json_string_value(value);
		int64_t ms = s != NULL ? api_parse_date(s) : -1;
		if (ms < 0) {
			fail(details, name, "%s must be a valid date", NULL);
			return NULL;
		}
		return json_integer(ms);
	}
	}
	return NULL;
}

static const struct api_field common_fields[] = {
	{ "sess", API_T_STRING, API_F_EMPTY_OK, 0, 255, NULL, "Session identifier for the logs" },
	{ "ip", API_T_STRING, API_F_EMPTY_OK, 0, 64, NULL, "IP address for the logs" },
	API_FIELDS_END
};

static void check_list(const struct api_field *fields, json_t *merged, json_t *input,
		       json_t *details)
{
	for (const struct api_field *f = fields; f != NULL && f->name != NULL; f++) {
		json_t *value = json_object_get(merged, f->name);
		if (value == NULL) {
			if ((f->flags & API_F_REQUIRED) != 0)
				fail(details, f->name, "%s is required", NULL);
			continue;
		}
		json_t *checked = check_field(f, value, details);
		if (checked != NULL)
			json_object_set_new(input, f->name, checked);
		json_object_del(merged, f->name);
	}
}

int api_input_check(struct api_request *req, json_t *path_params, json_t *query,
		    const uint8_t *body, size_t body_len, json_t **details_r)
{
	*details_r = NULL;
	const struct api_route *route = req->route;
	json_t *details = json_object();
	json_t *merged = NULL;
	bool json_body = body_len > 0 && (route->flags & API_R_RAW_BODY) == 0 &&
			 !((route->flags & API_R_JSON_OR_RAW) != 0 &&
			   (req->content_type == NULL || strstr(req->content_type, "json") == NULL));
	if (json_body) {
		json_error_t error;
		if (api_json_depth(body, body_len, API_INPUT_MAX_DEPTH) > API_INPUT_MAX_DEPTH) {
			json_object_set_new(details, "body", json_string("JSON nests too deeply"));
			goto failed;
		}
		merged = json_loadb((const char *)body, body_len, JSON_REJECT_DUPLICATES, &error);
		if (merged == NULL) {
			char text[256];
			snprintf(text, sizeof(text), "Invalid JSON: %s", error.text);
			json_t *message = json_string(text);
			json_object_set_new(details, "body",
					    message != NULL ? message : json_string("Invalid JSON"));
			goto failed;
		}
		if (!json_is_object(merged)) {
			json_object_set_new(details, "body", json_string("Body must be a JSON object"));
			goto failed;
		}
	} else {
		merged = json_object();
	}
	json_object_update(merged, query);
	json_object_update(merged, path_params);

	json_t *input = json_object();
	check_list(route->fields, merged, input, details);
	check_list(common_fields, merged, input, details);
	const char *key;
	json_t *value;
	json_object_foreach(merged, key, value)
		fail(details, key, "%s is not allowed", NULL);
	json_decref(merged);
	merged = NULL;
	if (json_object_size(details) > 0) {
		json_decref(input);
		goto failed;
	}
	json_decref(details);
	req->input = input;
	return 0;
failed:
	json_decref(merged);
	*details_r = details;
	return -1;
}

/* ---- getters ---- */

bool api_has(const struct api_request *req, const char *name)
{
	return json_object_get(req->input, name) != NULL;
}

const char *api_str(const struct api_request *req, const char *name, const char *def)
{
	const char *s = json_string_value(json_object_get(req->input, name));
	return s != NULL ? s : def;
}

int64_t api_int(const struct api_request *req, const char *name, int64_t def)
{
	json_t *v = json_object_get(req->input, name);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

bool api_bool(const struct api_request *req, const char *name, bool def)
{
	json_t *v = json_object_get(req->input, name);
	return json_is_boolean(v) ? json_is_true(v) : def;
}

bool api_oid(const struct api_request *req, const char *name, bson_oid_t *oid)
{
	const char *s = api_str(req, name, NULL);
	if (s == NULL || !bson_oid_is_valid(s, strlen(s)))
		return false;
	bson_oid_init_from_string(oid, s);
	return true;
}

json_t *api_json(const struct api_request *req, const char *name)
{
	return json_object_get(req->input, name);
}
