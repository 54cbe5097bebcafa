/* IMAP SEARCH compiler and evaluator; see wd-store-search.h.
 *
 * compile() returns, for each key, a condition document and whether it is
 * exact. Inexact keys yield a superset: {} for the key itself; AND keeps all
 * children (a conjunction of supersets is a superset); OR of any inexact
 * child stays a union of supersets; NOT of an inexact child can only be {}.
 * The evaluator then decides the whole tree on each candidate. */
#include "wd-store-search.h"
#include "wd-str.h"

#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* Headers WildDuck indexes in `headers` with their full decoded value
   (reference §3.4; list-id is reduced to its <id> so it is not exact). */
static const char *const indexed_headers[] = {
	"to", "cc", "subject", "from", "sender", "reply-to", "message-id", "thread-index",
	"delivered-to",
};

static pthread_once_t locale_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;

static void locale_init(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* Decode one UTF-8 sequence; returns its length, or 0 for an invalid byte. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	if (len == 0 || s[0] > 0xf4)
		return 0;
	uint32_t v = s[0] & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	*cp = v;
	return len;
}

char *wd_search_fold(const char *text)
{
	pthread_once(&locale_once, locale_init);
	size_t len = strlen(text);
	char *out = malloc(len * 2 + 1); /* a lower-case form is never > 2x longer */
	if (out == NULL)
		return NULL;
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)text;
	while (*p != '\0') {
		uint32_t cp;
		size_t used = utf8_decode(p, &cp);
		if (used == 0) {
			out[n++] = (char)*p++;
			continue;
		}
		if (utf8_locale != (locale_t)0)
			cp = (uint32_t)towlower_l((wint_t)cp, utf8_locale);
		else if (cp < 0x80)
			cp = (uint32_t)wd_ascii_lower((char)cp);
		n += wd_utf8_encode(cp, out + n);
		p += used;
	}
	out[n] = '\0';
	return out;
}

char *wd_search_regex_escape(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(len * 2 + 1);
	if (out == NULL)
		return NULL;
	size_t n = 0;
	for (const char *p = text; *p != '\0'; p++) {
		if (strchr("\\^$.|?*+()[]{}-/", *p) != NULL)
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n] = '\0';
	return out;
}

static void append_condition(bson_t *array, uint32_t *index, const bson_t *cond)
{
	char key[16];
	const char *key_str;
	bson_uint32_to_string((*index)++, &key_str, key, sizeof(key));
	bson_append_document(array, key_str, -1, cond);
}

static bool compile_key(const struct wd_search_key *key, const struct wd_store_caps *caps,
			bson_t *cond);

static bool compile_list(const char *op, const struct wd_search_key *key,
			 const struct wd_store_caps *caps, bson_t *cond)
{
	bool exact = true;
	bson_t array;
	uint32_t index = 0;
	bson_append_array_begin(cond, op, -1, &array);
	for (size_t i = 0; i < key->child_count; i++) {
		bson_t child = BSON_INITIALIZER;
		exact &= compile_key(key->children[i], caps, &child);
		append_condition(&array, &index, &child);
		bson_destroy(&child);
	}
	if (index == 0) {
		bson_t all = BSON_INITIALIZER;
		append_condition(&array, &index, &all);
	}
	bson_append_array_end(cond, &array);
	return exact;
}

static void compile_uid(const struct wd_search_key *key, bson_t *cond)
{
	for (size_t i = 0; i < key->range_count; i++) {
		if (key->ranges[i].first <= 1 && key->ranges[i].last == UINT32_MAX)
			return; /* 1:* is everything */
	}
	bson_t array, range, uid;
	uint32_t index = 0;
	bson_append_array_begin(cond, "$or", -1, &array);
	for (size_t i = 0; i < key->range_count; i++) {
		uint32_t first = key->ranges[i].first, last = key->ranges[i].last;
		if (first > last) {
			uint32_t t = first;
			first = last;
			last = t;
		}
		bson_init(&range);
		if (first == last) {
			BSON_APPEND_INT64(&range, "uid", first);
		} else {
			bson_append_document_begin(&range, "uid", -1, &uid);
			BSON_APPEND_INT64(&uid, "$gte", first);
			if (last != UINT32_MAX)
				BSON_APPEND_INT64(&uid, "$lte", last);
			bson_append_document_end(&range, &uid);
		}
		append_condition(&array, &index, &range);
		bson_destroy(&range);
	}
	if (index == 0) { /* an empty set matches nothing */
		bson_t none = BSON_INITIALIZER, in, empty;
		bson_append_document_begin(&none, "_id", -1, &in);
		bson_append_array_begin(&in, "$in", -1, &empty);
		bson_append_array_end(&in, &empty);
		bson_append_document_end(&none, &in);
		append_condition(&array, &index, &none);
		bson_destroy(&none);
	}
	bson_append_array_end(cond, &array);
}

static void compile_flag(const struct wd_search_key *key, bson_t *cond)
{
	/* The boolean mirrors are kept consistent by the store (unlike WildDuck's
	   STORE quirk), so system flags use them and their indexes. */
	static const struct {
		const char *flag, *field;
		bool when_set;
	} mirrors[] = {
		{ "\\Seen", "unseen", false },
		{ "\\Deleted", "undeleted", false },
		{ "\\Flagged", "flagged", true },
		{ "\\Draft", "draft", true },
	};
	for (size_t i = 0; i < sizeof(mirrors) / sizeof(mirrors[0]); i++) {
		if (wd_str_eq_nocase(key->flag, mirrors[i].flag)) {
			BSON_APPEND_BOOL(cond, mirrors[i].field, key->set == mirrors[i].when_set);
			return;
		}
	}
	/* keywords are case-insensitive; stored with the client's spelling */
	char *escaped = wd_search_regex_escape(key->flag);
	/* out of memory aborts in libbson's allocator, as everywhere in BSON */
	char *pattern = bson_strdup_printf("^%s$", escaped != NULL ? escaped : "");
	bson_t match = BSON_INITIALIZER, regex;
	bson_append_document_begin(&match, "flags", -1, &regex);
	BSON_APPEND_UTF8(&regex, "$regex", pattern);
	BSON_APPEND_UTF8(&regex, "$options", "i");
	bson_append_document_end(&match, &regex);
	if (key->set) {
		bson_concat(cond, &match);
	} else {
		bson_t nor;
		uint32_t index = 0;
		bson_append_array_begin(cond, "$nor", -1, &nor);
		append_condition(&nor, &index, &match);
		bson_append_array_end(cond, &nor);
	}
	bson_destroy(&match);
	bson_free(pattern);
	free(escaped);
}

static void append_regex(bson_t *doc, const char *field, const char *value)
{
	char *folded = wd_search_fold(value);
	char *escaped = wd_search_regex_escape(folded);
	bson_t regex;
	bson_append_document_begin(doc, field, -1, &regex);
	BSON_APPEND_UTF8(&regex, "$regex", escaped);
	BSON_APPEND_UTF8(&regex, "$options", "i");
	bson_append_document_end(doc, &regex);
	free(escaped);
	free(folded);
}

static bool compile_header(const struct wd_search_key *key, const struct wd_store_caps *caps,
			   bson_t *cond)
{
	char *name = wd_search_fold(key->name);
	bool indexed = false;
	for (size_t i = 0; i < sizeof(indexed_headers) / sizeof(indexed_headers[0]); i++)
		indexed |= strcmp(name, indexed_headers[i]) == 0;
	if (!indexed) {
		free(name);
		return false; /* superset {}; decided by the evaluator */
	}
	if (key->value[0] == '\0') {
		BSON_APPEND_UTF8(cond, "headers.key", name);
		free(name);
		return true;
	}
	if (caps->elem_match_fields) {
		bson_t elem, match;
		bson_append_document_begin(cond, "headers", -1, &elem);
		bson_append_document_begin(&elem, "$elemMatch", -1, &match);
		BSON_APPEND_UTF8(&match, "key", name);
		append_regex(&match, "value", key->value);
		bson_append_document_end(&elem, &match);
		bson_append_document_end(cond, &elem);
		free(name);
		return true;
	}
	/* Without $elemMatch the key and the value may match different
	   elements: a superset, decided by the evaluator. */
	BSON_APPEND_UTF8(cond, "headers.key", name);
	append_regex(cond, "headers.value", key->value);
	free(name);
	return false;
}

static void compile_range(bson_t *cond, const char *field, const char *op1, int64_t v1,
			  const char *op2, int64_t v2, bool is_date)
{
	bson_t range;
	bson_append_document_begin(cond, field, -1, &range);
	if (is_date)
		BSON_APPEND_DATE_TIME(&range, op1, v1);
	else
		BSON_APPEND_INT64(&range, op1, v1);
	if (op2 != NULL) {
		if (is_date)
			BSON_APPEND_DATE_TIME(&range, op2, v2);
		else
			BSON_APPEND_INT64(&range, op2, v2);
	}
	bson_append_document_end(cond, &range);
}

#define DAY_MS (24LL * 3600 * 1000)

static bool compile_key(const struct wd_search_key *key, const struct wd_store_caps *caps,
			bson_t *cond)
{
	switch (key->op) {
	case WD_SEARCH_ALL:
		return true;
	case WD_SEARCH_AND:
		return compile_list("$and", key, caps, cond);
	case WD_SEARCH_OR: {
		bson_t attempt = BSON_INITIALIZER;
		bool exact = compile_list("$or", key, caps, &attempt);
		bson_concat(cond, &attempt); /* a union of supersets is a superset */
		bson_destroy(&attempt);
		return exact;
	}
	case WD_SEARCH_NOT: {
		bson_t child = BSON_INITIALIZER;
		bool exact = key->child_count == 1 && compile_key(key->children[0], caps, &child);
		if (exact) {
			bson_t nor;
			uint32_t index = 0;
			bson_append_array_begin(cond, "$nor", -1, &nor);
			append_condition(&nor, &index, &child);
			bson_append_array_end(cond, &nor);
		}
		bson_destroy(&child);
		return exact;
	}
	case WD_SEARCH_UID:
		compile_uid(key, cond);
		return true;
	case WD_SEARCH_FLAG:
		compile_flag(key, cond);
		return true;
	case WD_SEARCH_HEADER:
		return compile_header(key, caps, cond);
	case WD_SEARCH_BODY:
	case WD_SEARCH_TEXT:
		return false;
	case WD_SEARCH_BEFORE:
		compile_range(cond, "idate", "$lt", key->day_ms, NULL, 0, true);
		return true;
	case WD_SEARCH_ON:
		compile_range(cond, "idate", "$gte", key->day_ms, "$lt", key->day_ms + DAY_MS, true);
		return true;
	case WD_SEARCH_SINCE:
		compile_range(cond, "idate", "$gte", key->day_ms, NULL, 0, true);
		return true;
	case WD_SEARCH_SENTBEFORE:
		compile_range(cond, "hdate", "$lt", key->day_ms, NULL, 0, true);
		return true;
	case WD_SEARCH_SENTON:
		compile_range(cond, "hdate", "$gte", key->day_ms, "$lt", key->day_ms + DAY_MS, true);
		return true;
	case WD_SEARCH_SENTSINCE:
		compile_range(cond, "hdate", "$gte", key->day_ms, NULL, 0, true);
		return true;
	case WD_SEARCH_LARGER:
		compile_range(cond, "size", "$gt", (int64_t)key->number, NULL, 0, false);
		return true;
	case WD_SEARCH_SMALLER:
		compile_range(cond, "size", "$lt", (int64_t)key->number, NULL, 0, false);
		return true;
	case WD_SEARCH_MODSEQ:
		compile_range(cond, "modseq", "$gte", (int64_t)key->number, NULL, 0, false);
		return true;
	}
	return false;
}

void wd_search_compile(const struct wd_search_key *key, const struct wd_store_caps *caps,
		       bson_t *query, bool *residual_r)
{
	bson_t cond = BSON_INITIALIZER, array;
	*residual_r = !compile_key(key, caps, &cond);
	if (!bson_empty(&cond)) {
		uint32_t index = 0;
		bson_append_array_begin(query, "$and", -1, &array);
		append_condition(&array, &index, &cond);
		bson_append_array_end(query, &array);
	}
	bson_destroy(&cond);
}

/* ---- evaluator ---- */

static bool contains_folded(const char *haystack, const char *needle)
{
	if (needle[0] == '\0')
		return true;
	char *h = wd_search_fold(haystack), *n = wd_search_fold(needle);
	bool found = h != NULL && n != NULL && strstr(h, n) != NULL;
	free(h);
	free(n);
	return found;
}

static int64_t doc_int(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	return bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_NUMBER(&iter) ?
		       bson_iter_as_int64(&iter) : 0;
}

static int64_t doc_date(const bson_t *doc, const char *key)
{
	bson_iter_t iter;
	return bson_iter_init_find(&iter, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&iter) ?
		       bson_iter_date_time(&iter) : 0;
}

static bool has_flag(const bson_t *doc, const char *flag)
{
	bson_iter_t iter, child;
	if (!bson_iter_init_find(&iter, doc, "flags") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
	    !bson_iter_recurse(&iter, &child))
		return false;
	while (bson_iter_next(&child)) {
		if (BSON_ITER_HOLDS_UTF8(&child) && wd_str_eq_nocase(bson_iter_utf8(&child, NULL), flag))
			return true;
	}
	return false;
}

static bool indexed_header_matches(const bson_t *doc, const char *name, const char *value)
{
	bson_iter_t iter, child, field;
	if (!bson_iter_init_find(&iter, doc, "headers") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
	    !bson_iter_recurse(&iter, &child))
		return false;
	while (bson_iter_next(&child)) {
		const char *key = NULL, *v = NULL;
		if (!BSON_ITER_HOLDS_DOCUMENT(&child) || !bson_iter_recurse(&child, &field))
			continue;
		while (bson_iter_next(&field)) {
			if (strcmp(bson_iter_key(&field), "key") == 0 && BSON_ITER_HOLDS_UTF8(&field))
				key = bson_iter_utf8(&field, NULL);
			else if (strcmp(bson_iter_key(&field), "value") == 0 &&
				 BSON_ITER_HOLDS_UTF8(&field))
				v = bson_iter_utf8(&field, NULL);
		}
		if (key != NULL && wd_str_eq_nocase(key, name) &&
		    (value[0] == '\0' || (v != NULL && contains_folded(v, value))))
			return true;
	}
	return false;
}

static bool raw_header_matches(const struct wd_search_message *msg, const char *name,
			       const char *value)
{
	size_t name_len = name != NULL ? strlen(name) : 0;
	for (size_t i = 0; i < msg->header_line_count; i++) {
		const char *line = msg->header_lines[i];
		const char *colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		if (name != NULL) {
			/* field name, ignoring whitespace before the colon */
			size_t len = (size_t)(colon - line);
			while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
				len--;
			if (len != name_len || !wd_mem_eq_nocase(line, name, len))
				continue;
			if (contains_folded(colon + 1, value))
				return true;
		} else if (contains_folded(line, value)) {
			return true;
		}
	}
	return false;
}

bool wd_search_matches(const struct wd_search_key *key, const struct wd_search_message *msg)
{
	const bson_t *doc = msg->doc;
	switch (key->op) {
	case WD_SEARCH_ALL:
		return true;
	case WD_SEARCH_AND:
		for (size_t i = 0; i < key->child_count; i++) {
			if (!wd_search_matches(key->children[i], msg))
				return false;
		}
		return true;
	case WD_SEARCH_OR:
		for (size_t i = 0; i < key->child_count; i++) {
			if (wd_search_matches(key->children[i], msg))
				return true;
		}
		return key->child_count == 0;
	case WD_SEARCH_NOT:
		return key->child_count == 1 && !wd_search_matches(key->children[0], msg);
	case WD_SEARCH_UID: {
		int64_t uid = doc_int(doc, "uid");
		for (size_t i = 0; i < key->range_count; i++) {
			uint32_t a = key->ranges[i].first, b = key->ranges[i].last;
			if (a > b) {
				uint32_t t = a;
				a = b;
				b = t;
			}
			if (uid >= a && uid <= b)
				return true;
		}
		return false;
	}
	case WD_SEARCH_FLAG:
		return has_flag(doc, key->flag) == key->set;
	case WD_SEARCH_HEADER:
		return indexed_header_matches(doc, key->name, key->value) ||
		       raw_header_matches(msg, key->name, key->value);
	case WD_SEARCH_BODY:
		return msg->body_text != NULL && contains_folded(msg->body_text, key->value);
	case WD_SEARCH_TEXT:
		return raw_header_matches(msg, NULL, key->value) ||
		       indexed_header_matches(doc, "subject", key->value) ||
		       (msg->body_text != NULL && contains_folded(msg->body_text, key->value));
	case WD_SEARCH_BEFORE:
		return doc_date(doc, "idate") < key->day_ms;
	case WD_SEARCH_ON:
		return doc_date(doc, "idate") >= key->day_ms && doc_date(doc, "idate") < key->day_ms + DAY_MS;
	case WD_SEARCH_SINCE:
		return doc_date(doc, "idate") >= key->day_ms;
	case WD_SEARCH_SENTBEFORE:
		return doc_date(doc, "hdate") < key->day_ms;
	case WD_SEARCH_SENTON:
		return doc_date(doc, "hdate") >= key->day_ms && doc_date(doc, "hdate") < key->day_ms + DAY_MS;
	case WD_SEARCH_SENTSINCE:
		return doc_date(doc, "hdate") >= key->day_ms;
	case WD_SEARCH_LARGER:
		return doc_int(doc, "size") > (int64_t)key->number;
	case WD_SEARCH_SMALLER:
		return doc_int(doc, "size") < (int64_t)key->number;
	case WD_SEARCH_MODSEQ:
		return doc_int(doc, "modseq") >= (int64_t)key->number;
	}
	return false;
}
