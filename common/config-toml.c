/* TOML v1.0 reader for wd-config, with WildDuck-style includes.
 *
 * Design: a hand-written recursive-descent parser over a byte range that is
 * not NUL-terminated (file contents, fuzz inputs). Every read of the text goes
 * through peek()/peek_at(), which return -1 past the end, so no input can make
 * it read out of bounds. Before parsing, one pass checks the whole text for
 * invalid UTF-8 and for control characters: TOML allows none except tab and
 * the LF / CRLF line ends anywhere (not in comments, not in strings), so the
 * parser proper only deals with ASCII structure and copies other bytes as
 * they are, and may assume that every CR is followed by LF.
 *
 * The parser builds the value tree directly, without tokens or an AST: each
 * key path is walked from the current table and TOML's definition rules are
 * checked on the way with per-node flags (config-private.h): a [header]
 * defines a table once; dotted keys extend only tables that dotted keys
 * created; inline tables and array literals are closed; [[a]] appends only to
 * an array that [[a]] created. The first error stops the parse.
 *
 * Limits against hostile input: a document is at most 4 MiB; no value is
 * deeper than 64 levels below the root (key parts, [header] parts, arrays and
 * inline tables all count), which bounds the recursion here and in every tree
 * walk; a number or date token is at most 128 bytes; includes nest at most 8
 * deep, and one load reads at most 256 files and 32 MiB. Tables with more than
 * a few keys get a hash index, so a document with a million keys in one table
 * is read in linear time.
 *
 * Includes: a comment that is alone on its line, `# @include "path"` (blanks
 * allowed around '#' and '@include'; a basic or literal string), reads another
 * file. A relative path is taken from the directory of the including file, or
 * from the current directory for text parsed from memory. A path with * ? or [
 * is a glob(3) pattern: the matches are included in sorted order and no match
 * is not an error, as with WildDuck's include of every .toml file in
 * plugins/. Each included document is parsed on its own (its own line numbers
 * and redefinition checks), at the depth of the table in effect at the include
 * line (the last [header], or the root), then deep-merged into that table.
 * Cycles are found by comparing realpath()s of the files being read.
 *
 * Merge rule, "the later definition wins": tables merge recursively; any other
 * value from the include replaces what the including file defined above the
 * include line (an array of tables is replaced, not appended to); and every
 * value that came from an include is marked INCLUDED, so that a definition
 * below the include line in the including file replaces it, or extends it when
 * both are tables, instead of being reported as a redefinition. Within one
 * file a redefinition is an error, as TOML requires.
 *
 * Messages are "name:line: what is wrong". Errors about a whole file (cannot
 * read it, too large) have no line: "name: what is wrong". An error inside an
 * included file names that file and ends with "(included from name:line)". */
#include "config-private.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest number or date-time token: the longest valid date-time is 35 bytes
   plus fraction digits; longer tokens are typos or attacks. */
#define MAX_TOKEN 128
/* Tables get a hash index from this many entries on. */
#define INDEX_MIN_ENTRIES 8

/* ---- Value tree ---- */

struct wd_config_value *wd__config_value_new(struct wd_arena *arena, enum wd_config_type type,
					     const char *origin)
{
	struct wd_config_value *value = wd_arena_zalloc(arena, sizeof(*value));
	if (value == NULL)
		return NULL;
	value->type = type;
	value->origin = origin;
	return value;
}

const char *wd__config_type_name(enum wd_config_type type)
{
	switch (type) {
	case WD_CONFIG_STRING:
		return "a string";
	case WD_CONFIG_INTEGER:
		return "an integer";
	case WD_CONFIG_FLOAT:
		return "a float";
	case WD_CONFIG_BOOLEAN:
		return "a boolean";
	case WD_CONFIG_DATETIME:
		return "a date-time";
	case WD_CONFIG_ARRAY:
		return "an array";
	case WD_CONFIG_TABLE:
		return "a table";
	}
	return "a value";
}

/* FNV-1a: keys are short and the index only has to avoid quadratic time. */
static uint64_t key_hash(const char *key, size_t len)
{
	uint64_t hash = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		hash ^= (unsigned char)key[i];
		hash *= 0x100000001b3ull;
	}
	return hash;
}

static bool entry_is(const struct wd_config_entry *entry, const char *key, size_t len)
{
	return entry->key_len == len && memcmp(entry->key, key, len) == 0;
}

/* Position of `key` in the table's entries, or SIZE_MAX. */
static size_t table_position(const struct wd_config_value *table, const char *key, size_t len)
{
	const struct wd_config_entry *entries = table->u.table.entries;
	if (table->u.table.index != NULL) {
		/* The index is at most half full, so probing ends at a free slot. */
		size_t mask = table->u.table.index_cap - 1;
		for (size_t i = (size_t)key_hash(key, len) & mask;; i = (i + 1) & mask) {
			uint32_t slot = table->u.table.index[i];
			if (slot == 0)
				return SIZE_MAX;
			if (entry_is(&entries[slot - 1], key, len))
				return slot - 1;
		}
	}
	for (size_t i = 0; i < table->u.table.count; i++) {
		if (entry_is(&entries[i], key, len))
			return i;
	}
	return SIZE_MAX;
}

struct wd_config_value *wd__config_table_find(const struct wd_config_value *table, const char *key,
					      size_t key_len)
{
	if (table == NULL || table->type != WD_CONFIG_TABLE)
		return NULL;
	size_t pos = table_position(table, key, key_len);
	return pos == SIZE_MAX ? NULL : table->u.table.entries[pos].value;
}

static void index_insert(struct wd_config_value *table, size_t pos)
{
	const struct wd_config_entry *entry = &table->u.table.entries[pos];
	size_t mask = table->u.table.index_cap - 1;
	size_t i = (size_t)key_hash(entry->key, entry->key_len) & mask;
	while (table->u.table.index[i] != 0)
		i = (i + 1) & mask;
	table->u.table.index[i] = (uint32_t)(pos + 1);
}

static int index_rebuild(struct wd_arena *arena, struct wd_config_value *table)
{
	size_t cap = 32;
	while (cap < table->u.table.count * 4)
		cap *= 2;
	uint32_t *index = wd_arena_zalloc(arena, cap * sizeof(*index));
	if (index == NULL)
		return WD_ERROR;
	table->u.table.index = index;
	table->u.table.index_cap = cap;
	for (size_t i = 0; i < table->u.table.count; i++)
		index_insert(table, i);
	return WD_OK;
}

/* Entries grow by doubling inside the arena: the old array stays behind until
   the configuration is freed, which at most doubles the memory of a table and
   keeps every node of one configuration in one place. */
int wd__config_table_add(struct wd_arena *arena, struct wd_config_value *table, const char *key,
			 size_t key_len, struct wd_config_value *value)
{
	if (table->u.table.count == table->u.table.cap) {
		/* Entry positions must fit the uint32_t index slots. */
		if (table->u.table.cap >= UINT32_MAX / 4)
			return WD_ERROR;
		size_t cap = table->u.table.cap == 0 ? 4 : table->u.table.cap * 2;
		struct wd_config_entry *entries = wd_arena_alloc(arena, cap * sizeof(*entries));
		if (entries == NULL)
			return WD_ERROR;
		if (table->u.table.count > 0)
			memcpy(entries, table->u.table.entries,
			       table->u.table.count * sizeof(*entries));
		table->u.table.entries = entries;
		table->u.table.cap = cap;
	}
	size_t pos = table->u.table.count++;
	table->u.table.entries[pos] = (struct wd_config_entry){ key, key_len, value };
	/* Small tables (nearly all of a real configuration) are searched
	   linearly; the index pays off only for larger ones. */
	if (table->u.table.count < INDEX_MIN_ENTRIES)
		return WD_OK;
	if (table->u.table.index == NULL || table->u.table.count * 2 > table->u.table.index_cap)
		return index_rebuild(arena, table);
	index_insert(table, pos);
	return WD_OK;
}

void wd__config_table_replace(struct wd_config_value *table, const char *key, size_t key_len,
			      struct wd_config_value *value)
{
	size_t pos = table_position(table, key, key_len);
	if (pos != SIZE_MAX)
		table->u.table.entries[pos].value = value;
}

/* Same growth rule as table entries. */
static int array_push(struct wd_arena *arena, struct wd_config_value *array,
		      struct wd_config_value *item)
{
	if (array->u.array.count == array->u.array.cap) {
		size_t cap = array->u.array.cap == 0 ? 4 : array->u.array.cap * 2;
		struct wd_config_value **items = wd_arena_alloc(arena, cap * sizeof(*items));
		if (items == NULL)
			return WD_ERROR;
		if (array->u.array.count > 0)
			memcpy(items, array->u.array.items, array->u.array.count * sizeof(*items));
		array->u.array.items = items;
		array->u.array.cap = cap;
	}
	array->u.array.items[array->u.array.count++] = item;
	return WD_OK;
}

/* ---- Parser state and errors ---- */

/* Shared by all the files of one load. */
struct include_budget {
	size_t files;
	size_t bytes;
};

/* The chain of files being read, for cycle detection. */
struct include_frame {
	const char *real_path;
	const struct include_frame *parent;
};

struct parser {
	struct wd_arena *arena;
	const char *name; /* in messages and origins */
	const char *dir;  /* prefix for relative includes ("conf.d/"), NULL = none */
	const char *text; /* not NUL-terminated */
	size_t len, pos;
	unsigned line;

	/* Every value gets "name:line"; values on one line share the string. */
	const char *fixed_origin; /* override text: one origin for all */
	const char *origin;
	unsigned origin_line;

	struct wd_config_value *root, *current;
	unsigned root_depth, current_depth;

	struct wd_buffer scratch; /* decoded strings before they are copied */
	char *error;
	bool failed;

	unsigned include_depth;
	const struct include_frame *frames;
	struct include_budget *budget;
};

static void parser_init(struct parser *p, struct wd_arena *arena, const char *name,
			const char *text, size_t len)
{
	memset(p, 0, sizeof(*p));
	p->arena = arena;
	p->name = name;
	p->text = text;
	p->len = len;
	p->line = 1;
}

/* Record the first error only: later ones are consequences of it. */
static int WD_PRINTF(3, 0) vfail_at(struct parser *p, unsigned line, const char *fmt, va_list ap)
{
	if (p->failed)
		return WD_ERROR;
	p->failed = true;
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		return WD_ERROR;
	if (asprintf(&p->error, "%s:%u: %s", p->name, line, msg) < 0)
		p->error = NULL;
	free(msg);
	return WD_ERROR;
}

static int WD_PRINTF(3, 4) fail_at(struct parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(p, line, fmt, ap);
	va_end(ap);
	return WD_ERROR;
}

static int WD_PRINTF(2, 3) fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(p, p->line, fmt, ap);
	va_end(ap);
	return WD_ERROR;
}

static int fail_depth(struct parser *p)
{
	return fail(p, "nesting deeper than %d levels", WD_CONFIG_MAX_DEPTH);
}

/* "name:line" for a value that starts here. Values of one line share one
   string, so a long array on one line costs one origin, not one per element. */
static const char *origin_here(struct parser *p)
{
	if (p->fixed_origin != NULL)
		return p->fixed_origin;
	if (p->origin == NULL || p->origin_line != p->line) {
		p->origin = wd_arena_printf(p->arena, "%s:%u", p->name, p->line);
		p->origin_line = p->line;
	}
	return p->origin;
}

static struct wd_config_value *new_value(struct parser *p, enum wd_config_type type, unsigned flags)
{
	const char *origin = origin_here(p);
	struct wd_config_value *value =
		origin == NULL ? NULL : wd__config_value_new(p->arena, type, origin);
	if (value == NULL) {
		fail(p, "out of memory");
		return NULL;
	}
	value->flags = flags;
	return value;
}

static int add_entry(struct parser *p, struct wd_config_value *table,
		     const struct wd_config_key_part *key, struct wd_config_value *value)
{
	if (wd__config_table_add(p->arena, table, key->str, key->len, value) < 0)
		return fail(p, "out of memory");
	return WD_OK;
}

/* Add, or replace an entry the caller may replace. */
static int set_entry(struct parser *p, struct wd_config_value *table,
		     const struct wd_config_key_part *key, struct wd_config_value *old,
		     struct wd_config_value *value)
{
	if (old == NULL)
		return add_entry(p, table, key, value);
	wd__config_table_replace(table, key->str, key->len, value);
	return WD_OK;
}

/* ---- Characters ---- */

static int peek_at(const struct parser *p, size_t offset)
{
	return p->len - p->pos > offset ? (unsigned char)p->text[p->pos + offset] : -1;
}

static int peek(const struct parser *p)
{
	return peek_at(p, 0);
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_bare_key_char(int c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}

static bool is_printable_ascii(int c)
{
	return c > 0x20 && c < 0x7f;
}

/* Printable form of the character at the cursor, for messages. */
static const char *describe_here(const struct parser *p, char buf[static 16])
{
	int c = peek(p);
	if (c == -1)
		return "the end of the file";
	if (c == '\n' || c == '\r')
		return "the end of the line";
	if (is_printable_ascii(c))
		snprintf(buf, 16, "'%c'", c);
	else
		snprintf(buf, 16, "0x%02x", (unsigned)(c & 0xff));
	return buf;
}

static void skip_blank(struct parser *p)
{
	while (p->pos < p->len && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t'))
		p->pos++;
}

static bool at_newline(const struct parser *p)
{
	int c = peek(p);
	return c == '\n' || c == '\r';
}

/* The validation pass guarantees that a CR is followed by LF. */
static void eat_newline(struct parser *p)
{
	if (peek(p) == '\r')
		p->pos++;
	p->pos++;
	p->line++;
}

static void skip_comment(struct parser *p)
{
	if (peek(p) != '#')
		return;
	while (p->pos < p->len && p->text[p->pos] != '\n' && p->text[p->pos] != '\r')
		p->pos++;
}

/* Blanks, newlines and comments, as allowed between array elements. */
static void skip_space(struct parser *p)
{
	for (;;) {
		skip_blank(p);
		int c = peek(p);
		if (c == '#')
			skip_comment(p);
		else if (c == '\n' || c == '\r')
			eat_newline(p);
		else
			return;
	}
}

/* Length of the UTF-8 sequence at s (1..4), or 0 when it is invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool wd__config_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* The whole text: UTF-8, and no control character but tab, LF and CRLF.
   Checking everything first, rather than in each token, means no string,
   comment or key can let one through, and the error names the line of the
   bad byte even when it is inside a multi-line string. */
static int validate_text(struct parser *p)
{
	const unsigned char *s = (const unsigned char *)p->text;
	unsigned line = 1;
	for (size_t i = 0; i < p->len;) {
		unsigned char c = s[i];
		if (c >= 0x80) {
			size_t n = utf8_sequence(s + i, p->len - i);
			if (n == 0)
				return fail_at(p, line, "invalid UTF-8");
			i += n;
			continue;
		}
		if (c == '\n') {
			line++;
		} else if (c == '\r') {
			if (i + 1 >= p->len || s[i + 1] != '\n')
				return fail_at(p, line, "carriage return without a line feed");
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return fail_at(p, line, "control character U+%04X is not allowed", c);
		}
		i++;
	}
	return WD_OK;
}

/* ---- Strings ---- */

static int out_append(struct parser *p, const void *data, size_t len)
{
	if (wd_buffer_append(&p->scratch, data, len) < 0)
		return fail(p, "out of memory");
	return WD_OK;
}

static int out_append_utf8(struct parser *p, uint32_t cp)
{
	unsigned char buf[4];
	size_t n;
	if (cp < 0x80) {
		buf[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		buf[0] = (unsigned char)(0xc0 | (cp >> 6));
		buf[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		buf[0] = (unsigned char)(0xe0 | (cp >> 12));
		buf[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		buf[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		buf[0] = (unsigned char)(0xf0 | (cp >> 18));
		buf[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		buf[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		buf[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return out_append(p, buf, n);
}

static int hex_value(int c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* \uXXXX or \UXXXXXXXX; the cursor is at the backslash. */
static int parse_unicode_escape(struct parser *p, int kind)
{
	unsigned digits = kind == 'u' ? 4 : 8;
	uint32_t cp = 0;
	p->pos += 2;
	for (unsigned i = 0; i < digits; i++) {
		int v = hex_value(peek(p));
		if (v < 0)
			return fail(p, "invalid escape: \\%c needs %u hex digits", kind, digits);
		cp = (cp << 4) | (uint32_t)v;
		p->pos++;
	}
	/* Surrogates and code points past U+10FFFF cannot be encoded in UTF-8. */
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return fail(p, "invalid escape: U+%04X is not a Unicode scalar value",
			    (unsigned)cp);
	return out_append_utf8(p, cp);
}

/* One escape sequence; the cursor is at the backslash. These are the escapes
   of TOML 1.0; \e and \xHH are TOML 1.1 and rejected, so a file that uses them
   fails here rather than in another reader of the same file. In multi-line
   basic strings a backslash at the end of a line (blanks allowed after it)
   removes the line end and all blanks and newlines that follow. */
static int parse_escape(struct parser *p, bool multiline)
{
	int c = peek_at(p, 1);
	char ch;
	switch (c) {
	case 'b':
		ch = '\b';
		break;
	case 't':
		ch = '\t';
		break;
	case 'n':
		ch = '\n';
		break;
	case 'f':
		ch = '\f';
		break;
	case 'r':
		ch = '\r';
		break;
	case '"':
		ch = '"';
		break;
	case '\\':
		ch = '\\';
		break;
	case 'u':
	case 'U':
		return parse_unicode_escape(p, c);
	default:
		if (multiline && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
			p->pos++;
			skip_blank(p);
			if (!at_newline(p))
				return fail(p, "invalid escape: a backslash followed by blanks "
					       "must end the line");
			while (at_newline(p)) {
				eat_newline(p);
				skip_blank(p);
			}
			return WD_OK;
		}
		if (is_printable_ascii(c))
			return fail(p, "invalid escape sequence \\%c", c);
		return fail(p, "invalid escape sequence");
	}
	p->pos += 2;
	return out_append(p, &ch, 1);
}

/* Append the run of plain bytes at the cursor (up to a byte in `stops`). */
static int append_run(struct parser *p, const char *stops)
{
	size_t start = p->pos;
	/* (NUL never gets here: validate_text() rejects it.) */
	while (p->pos < p->len && p->text[p->pos] != '\0' && strchr(stops, p->text[p->pos]) == NULL)
		p->pos++;
	return out_append(p, p->text + start, p->pos - start);
}

static int parse_basic_string(struct parser *p)
{
	p->pos++;
	for (;;) {
		if (append_run(p, "\"\\\n\r") < 0)
			return WD_ERROR;
		int c = peek(p);
		if (c == '"') {
			p->pos++;
			return WD_OK;
		}
		if (c != '\\')
			return fail(p, "unterminated string");
		if (parse_escape(p, false) < 0)
			return WD_ERROR;
	}
}

static int parse_literal_string(struct parser *p)
{
	p->pos++;
	if (append_run(p, "'\n\r") < 0)
		return WD_ERROR;
	if (peek(p) != '\'')
		return fail(p, "unterminated string");
	p->pos++;
	return WD_OK;
}

/* """...""" or '''...''': a newline right after the opening delimiter is
   dropped, CRLF becomes LF, and up to two quotes may precede the closing
   delimiter (""""" ends the string with "" in it). */
static int parse_multiline_string(struct parser *p, char quote)
{
	unsigned start_line = p->line;
	const char *stops = quote == '"' ? "\"\\\n\r" : "'\n\r";
	p->pos += 3;
	if (at_newline(p))
		eat_newline(p);
	for (;;) {
		if (append_run(p, stops) < 0)
			return WD_ERROR;
		int c = peek(p);
		if (c == -1)
			return fail_at(p, start_line, "unterminated multi-line string");
		if (c == '\n' || c == '\r') {
			eat_newline(p);
			if (out_append(p, "\n", 1) < 0)
				return WD_ERROR;
			continue;
		}
		if (c == '\\') {
			if (parse_escape(p, true) < 0)
				return WD_ERROR;
			continue;
		}
		/* A run of quotes: fewer than three are content. Three or more
		   close the string, and the one or two before the last three are
		   content, since the closing delimiter is the last three. */
		size_t n = 0;
		while (peek_at(p, n) == quote)
			n++;
		if (n > 5)
			return fail(p, "too many quotes at the end of a multi-line string");
		size_t keep = n >= 3 ? n - 3 : n;
		if (out_append(p, p->text + p->pos, keep) < 0)
			return WD_ERROR;
		p->pos += n;
		if (n >= 3)
			return WD_OK;
	}
}

/* Any string at the cursor, decoded into p->scratch. */
static int parse_string(struct parser *p, bool multiline_ok)
{
	int quote = peek(p);
	wd_buffer_clear(&p->scratch);
	if (peek_at(p, 1) == quote && peek_at(p, 2) == quote) {
		if (!multiline_ok)
			return fail(p, "a multi-line string is not allowed here");
		return parse_multiline_string(p, (char)quote);
	}
	return quote == '"' ? parse_basic_string(p) : parse_literal_string(p);
}

/* Copy p->scratch into the arena. */
static const char *scratch_copy(struct parser *p, size_t *len_r)
{
	*len_r = p->scratch.len;
	char *copy = wd_arena_strndup(p->arena, (const char *)wd_buffer_bytes(&p->scratch),
				      p->scratch.len);
	if (copy == NULL)
		fail(p, "out of memory");
	return copy;
}

/* ---- Keys ---- */

/* A bare key (A-Z a-z 0-9 _ -) or a single-line quoted key. Keys are copied
   into the arena right away: bare ones point into the text otherwise, and the
   text of an included file is freed after its parse. */
static int parse_simple_key(struct parser *p, struct wd_config_key_part *part)
{
	int c = peek(p);
	if (c == '"' || c == '\'') {
		if (parse_string(p, false) < 0)
			return WD_ERROR;
		part->str = scratch_copy(p, &part->len);
		return part->str == NULL ? WD_ERROR : WD_OK;
	}
	size_t start = p->pos;
	while (p->pos < p->len && is_bare_key_char((unsigned char)p->text[p->pos]))
		p->pos++;
	if (p->pos == start) {
		char buf[16];
		return fail(p, "expected a key, found %s", describe_here(p, buf));
	}
	part->len = p->pos - start;
	part->str = wd_arena_strndup(p->arena, p->text + start, part->len);
	if (part->str == NULL)
		return fail(p, "out of memory");
	return WD_OK;
}

/* key ( blank* '.' blank* key )*, and the blanks after it. */
static int parse_key(struct parser *p, struct wd_config_key_part *parts, size_t max_parts,
		     size_t *count_r)
{
	size_t n = 0;
	for (;;) {
		if (n == max_parts)
			return fail(p, "a key with more than %zu parts", max_parts);
		if (parse_simple_key(p, &parts[n++]) < 0)
			return WD_ERROR;
		skip_blank(p);
		if (peek(p) != '.')
			break;
		p->pos++;
		skip_blank(p);
	}
	*count_r = n;
	return WD_OK;
}

/* ---- Scalars: booleans, numbers, date-times ---- */

static int digit_value(int c, int base)
{
	int v = hex_value(c);
	return v >= 0 && v < base ? v : -1;
}

/* Digits with single underscores between them: d ( '_'? d )*. */
static bool scan_digits(const char *s, size_t n, size_t *i, int base)
{
	size_t j = *i;
	if (j >= n || digit_value((unsigned char)s[j], base) < 0)
		return false;
	for (j++; j < n; j++) {
		if (s[j] == '_') {
			if (j + 1 >= n || digit_value((unsigned char)s[j + 1], base) < 0)
				return false;
			j++;
		} else if (digit_value((unsigned char)s[j], base) < 0) {
			break;
		}
	}
	*i = j;
	return true;
}

/* 1: an integer; 0: not integer syntax; -1: integer syntax, out of range.
   TOML: decimal with an optional sign and no leading zero, or 0x / 0o / 0b
   without a sign; underscores only between digits. The range is checked
   against the signed limit of the sign, so INT64_MIN is accepted. */
static int scan_integer(const char *s, size_t n, int64_t *value_r)
{
	size_t i = 0;
	bool sign = n > 0 && (s[0] == '+' || s[0] == '-');
	bool negative = sign && s[0] == '-';
	int base = 10;
	if (sign)
		i = 1;
	if (n - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o' || s[i + 1] == 'b')) {
		if (sign)
			return 0;
		base = s[i + 1] == 'x' ? 16 : s[i + 1] == 'o' ? 8 : 2;
		i += 2;
	}
	size_t start = i;
	if (!scan_digits(s, n, &i, base) || i != n)
		return 0;
	if (base == 10 && s[start] == '0' && n - start > 1)
		return 0; /* leading zeros are not allowed */
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t value = 0;
	for (i = start; i < n; i++) {
		if (s[i] == '_')
			continue;
		uint64_t digit = (uint64_t)digit_value((unsigned char)s[i], base);
		if (value > (limit - digit) / (uint64_t)base)
			return -1;
		value = value * (uint64_t)base + digit;
	}
	if (!negative)
		*value_r = (int64_t)value;
	else
		*value_r = value == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)value;
	return 1;
}

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* strtod() in the C locale: a server that called setlocale() must still read
   "1.5" with a dot. */
static double strtod_c(const char *str)
{
	pthread_once(&c_locale_once, c_locale_init);
	if (c_locale != (locale_t)0)
		return strtod_l(str, NULL, c_locale);
	return strtod(str, NULL);
}

/* Same results as scan_integer(), for floats (inf and nan included):
   an integer part, then a fraction, an exponent or both. The digits are
   copied without underscores and converted by strtod; a value that is
   finite in the text but infinite as a double is out of range. */
static int scan_float(const char *s, size_t n, double *value_r)
{
	size_t i = 0;
	bool negative = n > 0 && s[0] == '-';
	if (n > 0 && (s[0] == '+' || s[0] == '-'))
		i = 1;
	if (n - i == 3 && memcmp(s + i, "inf", 3) == 0) {
		*value_r = negative ? -(double)INFINITY : (double)INFINITY;
		return 1;
	}
	if (n - i == 3 && memcmp(s + i, "nan", 3) == 0) {
		*value_r = negative ? -(double)NAN : (double)NAN;
		return 1;
	}
	size_t start = i;
	bool fraction = false, exponent = false;
	if (!scan_digits(s, n, &i, 10))
		return 0;
	if (s[start] == '0' && i - start > 1)
		return 0;
	if (i < n && s[i] == '.') {
		i++;
		if (!scan_digits(s, n, &i, 10))
			return 0;
		fraction = true;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (!scan_digits(s, n, &i, 10))
			return 0;
		exponent = true;
	}
	if (i != n || !(fraction || exponent) || n > MAX_TOKEN)
		return 0;
	char buf[MAX_TOKEN + 1];
	size_t len = 0;
	for (i = 0; i < n; i++) {
		if (s[i] != '_')
			buf[len++] = s[i];
	}
	buf[len] = '\0';
	double value = strtod_c(buf);
	if (isinf(value))
		return -1;
	*value_r = value;
	return 1;
}

void wd__config_toml_scalar(const char *str, size_t len, struct wd_config_scalar *scalar_r)
{
	memset(scalar_r, 0, sizeof(*scalar_r));
	if (len == 4 && memcmp(str, "true", 4) == 0) {
		scalar_r->kind = WD_CONFIG_SCALAR_BOOLEAN;
		scalar_r->boolean = true;
	} else if (len == 5 && memcmp(str, "false", 5) == 0) {
		scalar_r->kind = WD_CONFIG_SCALAR_BOOLEAN;
	} else if (scan_integer(str, len, &scalar_r->integer) > 0) {
		scalar_r->kind = WD_CONFIG_SCALAR_INTEGER;
	} else if (scan_float(str, len, &scalar_r->fp) > 0) {
		scalar_r->kind = WD_CONFIG_SCALAR_FLOAT;
	}
}

static bool two_digits(const char *s, unsigned *value_r)
{
	if (!is_digit((unsigned char)s[0]) || !is_digit((unsigned char)s[1]))
		return false;
	*value_r = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	return true;
}

/* YYYY-MM-DD at s, with a real day of that month. */
static bool scan_date(const char *s, size_t n)
{
	unsigned century, year2, month, day;
	if (n < 10 || !two_digits(s, &century) || !two_digits(s + 2, &year2) || s[4] != '-' ||
	    !two_digits(s + 5, &month) || s[7] != '-' || !two_digits(s + 8, &day))
		return false;
	unsigned year = century * 100 + year2;
	static const unsigned days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (month < 1 || month > 12 || day < 1)
		return false;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return day <= days[month - 1] + (month == 2 && leap ? 1u : 0u);
}

/* HH:MM:SS(.fraction)? at s[*i]; seconds may be 60 (leap second). */
static bool scan_time(const char *s, size_t n, size_t *i)
{
	size_t j = *i;
	unsigned hour, minute, second;
	if (n - j < 8 || !two_digits(s + j, &hour) || s[j + 2] != ':' ||
	    !two_digits(s + j + 3, &minute) || s[j + 5] != ':' || !two_digits(s + j + 6, &second))
		return false;
	if (hour > 23 || minute > 59 || second > 60)
		return false;
	j += 8;
	if (j < n && s[j] == '.') {
		size_t digits = ++j;
		while (j < n && is_digit((unsigned char)s[j]))
			j++;
		if (j == digits)
			return false;
	}
	*i = j;
	return true;
}

/* Offset date-time, local date-time, local date or local time (RFC 3339 with
   TOML's space separator; seconds are required, as in TOML 1.0). */
static bool is_datetime(const char *s, size_t n)
{
	size_t i = 0;
	if (n >= 3 && s[2] == ':')
		return scan_time(s, n, &i) && i == n;
	if (!scan_date(s, n))
		return false;
	if (n == 10)
		return true;
	if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
		return false;
	i = 11;
	if (!scan_time(s, n, &i))
		return false;
	if (i == n)
		return true;
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
		return true;
	unsigned hours, minutes;
	return (s[i] == '+' || s[i] == '-') && n - i == 6 && two_digits(s + i + 1, &hours) &&
	       s[i + 3] == ':' && two_digits(s + i + 4, &minutes) && hours <= 23 && minutes <= 59;
}

static bool is_token_char(int c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '+' || c == '-' || c == '.' ||
	       c == ':';
}

/* A bare value: boolean, number, inf/nan or date-time. All of them are made
   of the same characters, so the token is cut first and then classified; the
   order matters only for date-times, which would otherwise look like
   subtractions of integers. */
static int parse_token_value(struct parser *p, struct wd_config_value **value_r)
{
	size_t start = p->pos;
	while (p->pos < p->len && is_token_char((unsigned char)p->text[p->pos]))
		p->pos++;
	/* "1979-05-27 07:32:00": a date, one space, then a time. */
	if (p->pos - start == 10 && peek(p) == ' ' && is_digit(peek_at(p, 1)) &&
	    is_digit(peek_at(p, 2)) && peek_at(p, 3) == ':' && scan_date(p->text + start, 10)) {
		p->pos++;
		while (p->pos < p->len && is_token_char((unsigned char)p->text[p->pos]))
			p->pos++;
	}
	const char *tok = p->text + start;
	size_t n = p->pos - start;
	if (n == 0) {
		char buf[16];
		return fail(p, "expected a value, found %s", describe_here(p, buf));
	}
	if (n > MAX_TOKEN)
		return fail(p, "value of %zu characters is too long", n);

	struct wd_config_value *value;
	int64_t integer;
	double fp;
	int rc;
	if ((n == 4 && memcmp(tok, "true", 4) == 0) || (n == 5 && memcmp(tok, "false", 5) == 0)) {
		if ((value = new_value(p, WD_CONFIG_BOOLEAN, 0)) == NULL)
			return WD_ERROR;
		value->u.boolean = n == 4;
	} else if (is_datetime(tok, n)) {
		if ((value = new_value(p, WD_CONFIG_DATETIME, 0)) == NULL)
			return WD_ERROR;
		value->u.string.str = wd_arena_strndup(p->arena, tok, n);
		value->u.string.len = n;
		if (value->u.string.str == NULL)
			return fail(p, "out of memory");
	} else if ((rc = scan_integer(tok, n, &integer)) != 0) {
		if (rc < 0)
			return fail(p, "integer %.*s is out of range", (int)n, tok);
		if ((value = new_value(p, WD_CONFIG_INTEGER, 0)) == NULL)
			return WD_ERROR;
		value->u.integer = integer;
	} else if ((rc = scan_float(tok, n, &fp)) != 0) {
		if (rc < 0)
			return fail(p, "float %.*s is out of range", (int)n, tok);
		if ((value = new_value(p, WD_CONFIG_FLOAT, 0)) == NULL)
			return WD_ERROR;
		value->u.fp = fp;
	} else {
		return fail(p, "invalid value %.*s", (int)n, tok);
	}
	*value_r = value;
	return WD_OK;
}

/* ---- Values ---- */

static int parse_value(struct parser *p, unsigned depth, struct wd_config_value **value_r);
static int parse_keyval(struct parser *p, struct wd_config_value *table, unsigned depth);

static int parse_string_value(struct parser *p, struct wd_config_value **value_r)
{
	/* The origin is the line where the string starts. */
	struct wd_config_value *value = new_value(p, WD_CONFIG_STRING, 0);
	if (value == NULL || parse_string(p, true) < 0)
		return WD_ERROR;
	value->u.string.str = scratch_copy(p, &value->u.string.len);
	if (value->u.string.str == NULL)
		return WD_ERROR;
	*value_r = value;
	return WD_OK;
}

/* [ value, value, ... ] over any number of lines, with comments and a
   trailing comma. The array is closed (INLINE): [[name]] must not append to
   an array literal. */
static int parse_array(struct parser *p, unsigned depth, struct wd_config_value **value_r)
{
	unsigned start_line = p->line;
	struct wd_config_value *array = new_value(p, WD_CONFIG_ARRAY, WD_CONFIG_FLAG_INLINE);
	if (array == NULL)
		return WD_ERROR;
	p->pos++;
	for (;;) {
		skip_space(p);
		int c = peek(p);
		if (c == -1)
			return fail_at(p, start_line, "unterminated array");
		if (c == ']')
			break;
		struct wd_config_value *item;
		if (parse_value(p, depth + 1, &item) < 0)
			return WD_ERROR;
		if (array_push(p->arena, array, item) < 0)
			return fail(p, "out of memory");
		skip_space(p);
		c = peek(p);
		if (c == ']')
			break;
		if (c == -1)
			return fail_at(p, start_line, "unterminated array");
		if (c != ',') {
			char buf[16];
			return fail(p, "expected ',' or ']' in an array, found %s",
				    describe_here(p, buf));
		}
		p->pos++;
	}
	p->pos++;
	*value_r = array;
	return WD_OK;
}

/* { key = value, ... } on one line, no trailing comma (TOML 1.0). */
static int parse_inline_table(struct parser *p, unsigned depth, struct wd_config_value **value_r)
{
	struct wd_config_value *table = new_value(p, WD_CONFIG_TABLE, 0);
	if (table == NULL)
		return WD_ERROR;
	p->pos++;
	skip_blank(p);
	if (peek(p) != '}') {
		for (;;) {
			if (parse_keyval(p, table, depth) < 0)
				return WD_ERROR;
			skip_blank(p);
			int c = peek(p);
			if (c == '}')
				break;
			if (c != ',') {
				char buf[16];
				return fail(p, "expected ',' or '}' in an inline table, found %s",
					    describe_here(p, buf));
			}
			p->pos++;
			skip_blank(p);
			if (peek(p) == '}')
				return fail(p, "trailing comma in an inline table");
		}
	}
	p->pos++;
	/* Closed from now on: dotted keys and headers may not add to it. */
	table->flags |= WD_CONFIG_FLAG_INLINE;
	*value_r = table;
	return WD_OK;
}

static int parse_value(struct parser *p, unsigned depth, struct wd_config_value **value_r)
{
	if (depth > WD_CONFIG_MAX_DEPTH)
		return fail_depth(p);
	switch (peek(p)) {
	case '"':
	case '\'':
		return parse_string_value(p, value_r);
	case '[':
		return parse_array(p, depth, value_r);
	case '{':
		return parse_inline_table(p, depth, value_r);
	default:
		return parse_token_value(p, value_r);
	}
}

/* key = value into `table`, which is at `depth`. */
static int parse_keyval(struct parser *p, struct wd_config_value *table, unsigned depth)
{
	struct wd_config_key_part parts[WD_CONFIG_MAX_DEPTH];
	size_t n;
	if (parse_key(p, parts, WD_CONFIG_MAX_DEPTH, &n) < 0)
		return WD_ERROR;
	if (peek(p) != '=') {
		char buf[16];
		return fail(p, "expected '=' after a key, found %s", describe_here(p, buf));
	}
	p->pos++;
	skip_blank(p);

	/* Dotted keys: a.b.c = 1 creates or extends the tables a and a.b. TOML
	   lets dotted keys extend only tables that dotted keys made: not one
	   defined by a [header] (that would reopen a closed section) and not an
	   inline table. Values from an include are open to redefinition. */
	for (size_t i = 0; i + 1 < n; i++) {
		if (++depth > WD_CONFIG_MAX_DEPTH)
			return fail_depth(p);
		struct wd_config_value *child =
			wd__config_table_find(table, parts[i].str, parts[i].len);
		bool included = child != NULL && (child->flags & WD_CONFIG_FLAG_INCLUDED) != 0;
		if (child == NULL || (child->type != WD_CONFIG_TABLE && included)) {
			struct wd_config_value *created =
				new_value(p, WD_CONFIG_TABLE, WD_CONFIG_FLAG_DOTTED);
			if (created == NULL || set_entry(p, table, &parts[i], child, created) < 0)
				return WD_ERROR;
			child = created;
		} else if (child->type != WD_CONFIG_TABLE) {
			return fail(p, "key \"%s\" is already defined as %s", parts[i].str,
				    wd__config_type_name(child->type));
		} else if (!included && (child->flags & WD_CONFIG_FLAG_INLINE) != 0) {
			return fail(p, "cannot add keys to the inline table \"%s\"", parts[i].str);
		} else if (!included && (child->flags & WD_CONFIG_FLAG_HEADER) != 0) {
			return fail(p, "table \"%s\" is defined by a [header] and cannot be "
				       "extended with dotted keys", parts[i].str);
		} else {
			/* An implicit table extended here may no longer get a [header]. */
			child->flags = (child->flags & ~(unsigned)WD_CONFIG_FLAG_IMPLICIT) |
				       WD_CONFIG_FLAG_DOTTED;
		}
		table = child;
	}
	if (++depth > WD_CONFIG_MAX_DEPTH)
		return fail_depth(p);
	/* Check for a duplicate before reading the value, so that the error
	   names the line of the key even when the value spans lines. */
	const struct wd_config_key_part *last = &parts[n - 1];
	struct wd_config_value *old = wd__config_table_find(table, last->str, last->len);
	if (old != NULL && (old->flags & WD_CONFIG_FLAG_INCLUDED) == 0)
		return fail(p, "duplicate key \"%s\"", last->str);
	struct wd_config_value *value;
	if (parse_value(p, depth, &value) < 0)
		return WD_ERROR;
	return set_entry(p, table, last, old, value);
}

/* A new container at `key` of `table`, in place of `old` (NULL, or a value the
   caller may replace). */
static struct wd_config_value *put_new(struct parser *p, struct wd_config_value *table,
				       const struct wd_config_key_part *key,
				       struct wd_config_value *old, enum wd_config_type type,
				       unsigned flags)
{
	struct wd_config_value *value = new_value(p, type, flags);
	if (value == NULL || set_entry(p, table, key, old, value) < 0)
		return NULL;
	return value;
}

static bool is_table_array(const struct wd_config_value *value)
{
	return value->type == WD_CONFIG_ARRAY && (value->flags & WD_CONFIG_FLAG_TABLE_ARRAY) != 0;
}

/* A parent in a header path: walk through it, creating it when needed. An
   array of tables stands for its last element (one level deeper). */
static struct wd_config_value *header_parent(struct parser *p, struct wd_config_value *table,
					     const struct wd_config_key_part *part,
					     const char *name, int name_len, unsigned *depth)
{
	struct wd_config_value *child = wd__config_table_find(table, part->str, part->len);
	if (child == NULL)
		return put_new(p, table, part, NULL, WD_CONFIG_TABLE, WD_CONFIG_FLAG_IMPLICIT);
	bool included = (child->flags & WD_CONFIG_FLAG_INCLUDED) != 0;
	if (is_table_array(child) && child->u.array.count > 0) {
		if (++*depth > WD_CONFIG_MAX_DEPTH) {
			fail_depth(p);
			return NULL;
		}
		return child->u.array.items[child->u.array.count - 1];
	}
	if (child->type == WD_CONFIG_TABLE &&
	    (included || (child->flags & WD_CONFIG_FLAG_INLINE) == 0))
		return child;
	if (included)
		return put_new(p, table, part, child, WD_CONFIG_TABLE, WD_CONFIG_FLAG_IMPLICIT);
	const char *what = child->type == WD_CONFIG_TABLE ? "an inline table"
							  : wd__config_type_name(child->type);
	fail(p, "cannot define [%.*s]: \"%s\" is already defined as %s", name_len, name,
	     part->str, what);
	return NULL;
}

/* The last part of [a.b.c]: defines the table, once. */
static struct wd_config_value *header_table(struct parser *p, struct wd_config_value *table,
					    const struct wd_config_key_part *part,
					    const char *name, int name_len)
{
	struct wd_config_value *child = wd__config_table_find(table, part->str, part->len);
	if (child == NULL)
		return put_new(p, table, part, NULL, WD_CONFIG_TABLE, WD_CONFIG_FLAG_HEADER);
	bool included = (child->flags & WD_CONFIG_FLAG_INCLUDED) != 0;
	if (child->type == WD_CONFIG_TABLE &&
	    (included || (child->flags & ~(unsigned)WD_CONFIG_FLAG_IMPLICIT) == 0)) {
		/* Implicit, or included: this header defines (extends) it now. */
		child->flags = WD_CONFIG_FLAG_HEADER;
		return child;
	}
	if (included)
		return put_new(p, table, part, child, WD_CONFIG_TABLE, WD_CONFIG_FLAG_HEADER);
	if (child->type == WD_CONFIG_TABLE)
		fail(p, "table [%.*s] is already defined", name_len, name);
	else
		fail(p, "cannot define [%.*s]: it is already defined as %s", name_len, name,
		     wd__config_type_name(child->type));
	return NULL;
}

/* The last part of [[a.b.c]]: appends a table to the array (two levels). */
static struct wd_config_value *header_array(struct parser *p, struct wd_config_value *table,
					    const struct wd_config_key_part *part,
					    const char *name, int name_len, unsigned *depth)
{
	struct wd_config_value *array = wd__config_table_find(table, part->str, part->len);
	if (array == NULL || ((array->flags & WD_CONFIG_FLAG_INCLUDED) != 0 &&
			      !is_table_array(array))) {
		array = put_new(p, table, part, array, WD_CONFIG_ARRAY,
				WD_CONFIG_FLAG_TABLE_ARRAY);
		if (array == NULL)
			return NULL;
	} else if (!is_table_array(array)) {
		fail(p, "cannot append to [[%.*s]]: it is already defined as %s", name_len, name,
		     wd__config_type_name(array->type));
		return NULL;
	}
	/* Appending makes the array this file's own: no longer replaceable. */
	array->flags &= ~(unsigned)WD_CONFIG_FLAG_INCLUDED;
	if (++*depth > WD_CONFIG_MAX_DEPTH) {
		fail_depth(p);
		return NULL;
	}
	struct wd_config_value *element = new_value(p, WD_CONFIG_TABLE, WD_CONFIG_FLAG_HEADER);
	if (element == NULL)
		return NULL;
	if (array_push(p->arena, array, element) < 0) {
		fail(p, "out of memory");
		return NULL;
	}
	return element;
}

/* [a.b.c] or [[a.b.c]]; makes the table current. Every header walks from the
   root: parents are created as IMPLICIT tables (a later [a] may still define
   them once), and a parent that is an array of tables means its last element.
   The last part is defined here: a [table] exactly once, an array of tables
   extended by one element each time. */
static int parse_header(struct parser *p)
{
	bool array = peek_at(p, 1) == '[';
	p->pos += array ? 2 : 1;
	skip_blank(p);
	size_t name_start = p->pos;
	struct wd_config_key_part parts[WD_CONFIG_MAX_DEPTH];
	size_t n;
	if (parse_key(p, parts, WD_CONFIG_MAX_DEPTH, &n) < 0)
		return WD_ERROR;
	/* The name as written, for messages. */
	size_t name_end = p->pos;
	while (name_end > name_start &&
	       (p->text[name_end - 1] == ' ' || p->text[name_end - 1] == '\t'))
		name_end--;
	int name_len = (int)(name_end - name_start);
	const char *name = p->text + name_start;
	if (peek(p) != ']' || (array && peek_at(p, 1) != ']')) {
		char buf[16];
		return fail(p, "expected '%s' after a table name, found %s", array ? "]]" : "]",
			    describe_here(p, buf));
	}
	p->pos += array ? 2 : 1;

	struct wd_config_value *table = p->root;
	unsigned depth = p->root_depth;
	for (size_t i = 0; i < n && table != NULL; i++) {
		if (++depth > WD_CONFIG_MAX_DEPTH)
			return fail_depth(p);
		if (i + 1 < n)
			table = header_parent(p, table, &parts[i], name, name_len, &depth);
		else if (!array)
			table = header_table(p, table, &parts[i], name, name_len);
		else
			table = header_array(p, table, &parts[i], name, name_len, &depth);
	}
	if (table == NULL)
		return WD_ERROR;
	p->current = table;
	p->current_depth = depth;
	return WD_OK;
}

/* ---- Includes ---- */

static int parse_document(struct parser *p);

/* Read a regular file of at most WD_CONFIG_MAX_FILE_SIZE bytes. Returns 0,
   -1 with errno set, or -2 when the file is too large. Only regular files:
   a device or FIFO could block or never end. */
static int read_file(const char *path, char **data_r, size_t *len_r)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	struct stat st;
	int rc = -1, saved_errno;
	char *data = NULL;
	size_t len = 0;
	if (fstat(fd, &st) < 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto out;
	}
	if (st.st_size > WD_CONFIG_MAX_FILE_SIZE) {
		rc = -2;
		goto out;
	}
	/* One byte more than the size, to notice a file that grows meanwhile. */
	size_t cap = (size_t)st.st_size + 1;
	if ((data = malloc(cap)) == NULL)
		goto out;
	for (;;) {
		if (len == cap) {
			if (cap > WD_CONFIG_MAX_FILE_SIZE) {
				rc = -2;
				goto out;
			}
			size_t new_cap = cap * 2 > (size_t)WD_CONFIG_MAX_FILE_SIZE + 1
						 ? (size_t)WD_CONFIG_MAX_FILE_SIZE + 1
						 : cap * 2;
			char *bigger = realloc(data, new_cap);
			if (bigger == NULL)
				goto out;
			data = bigger;
			cap = new_cap;
		}
		ssize_t r = read(fd, data + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > WD_CONFIG_MAX_FILE_SIZE) {
		rc = -2;
		goto out;
	}
	*data_r = data;
	*len_r = len;
	data = NULL;
	rc = 0;
out:
	saved_errno = errno;
	free(data);
	close(fd);
	errno = saved_errno;
	return rc;
}

/* "conf.d/" for "conf.d/x.toml"; NULL (the current directory) for "x.toml". */
static const char *dir_of(struct wd_arena *arena, const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash == NULL ? NULL : wd_arena_strndup(arena, path, (size_t)(slash - path) + 1);
}

static void mark_included(struct wd_config_value *value)
{
	value->flags |= WD_CONFIG_FLAG_INCLUDED;
	if (value->type == WD_CONFIG_TABLE) {
		for (size_t i = 0; i < value->u.table.count; i++)
			mark_included(value->u.table.entries[i].value);
	} else if (value->type == WD_CONFIG_ARRAY) {
		for (size_t i = 0; i < value->u.array.count; i++)
			mark_included(value->u.array.items[i]);
	}
}

/* Deep-merge the included table `src` into `dst` (the rule is in the design
   comment). The nodes of `src` are moved, not copied: both live in the same
   arena. */
static int merge_table(struct parser *p, struct wd_config_value *dst, struct wd_config_value *src)
{
	for (size_t i = 0; i < src->u.table.count; i++) {
		const struct wd_config_entry *entry = &src->u.table.entries[i];
		struct wd_config_value *old =
			wd__config_table_find(dst, entry->key, entry->key_len);
		if (old != NULL && old->type == WD_CONFIG_TABLE &&
		    entry->value->type == WD_CONFIG_TABLE) {
			if (merge_table(p, old, entry->value) < 0)
				return WD_ERROR;
			continue;
		}
		mark_included(entry->value);
		struct wd_config_key_part key = { entry->key, entry->key_len };
		if (set_entry(p, dst, &key, old, entry->value) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

/* Parse one included file with a parser of its own (name, directory, line
   numbers, text) that shares the arena, the budget and the chain of files
   being read, then merge its root into the current table. */
static int include_file(struct parser *p, const char *path, unsigned line)
{
	if (p->budget->files >= WD_CONFIG_MAX_INCLUDE_FILES)
		return fail_at(p, line, "more than %d included files", WD_CONFIG_MAX_INCLUDE_FILES);
	char *real = realpath(path, NULL);
	if (real == NULL)
		return fail_at(p, line, "cannot include \"%s\": %s", path, strerror(errno));
	for (const struct include_frame *frame = p->frames; frame != NULL; frame = frame->parent) {
		if (strcmp(frame->real_path, real) == 0) {
			free(real);
			return fail_at(p, line, "include cycle: \"%s\" is already being read",
				       path);
		}
	}
	char *data;
	size_t len;
	int rc = read_file(path, &data, &len);
	if (rc < 0) {
		free(real);
		if (rc == -2)
			return fail_at(p, line, "cannot include \"%s\": larger than %d bytes", path,
				       WD_CONFIG_MAX_FILE_SIZE);
		return fail_at(p, line, "cannot include \"%s\": %s", path, strerror(errno));
	}
	p->budget->files++;
	p->budget->bytes += len;
	if (p->budget->bytes > WD_CONFIG_MAX_TOTAL_SIZE) {
		free(real);
		free(data);
		return fail_at(p, line, "included files exceed %d bytes in total",
			       WD_CONFIG_MAX_TOTAL_SIZE);
	}

	struct include_frame frame = { real, p->frames };
	struct parser child;
	parser_init(&child, p->arena, wd_arena_strdup(p->arena, path), data, len);
	child.root = child.current =
		wd__config_value_new(p->arena, WD_CONFIG_TABLE, origin_here(p));
	if (child.name == NULL || child.root == NULL) {
		free(real);
		free(data);
		return fail_at(p, line, "out of memory");
	}
	child.dir = dir_of(p->arena, path);
	child.root_depth = child.current_depth = p->current_depth;
	child.include_depth = p->include_depth + 1;
	child.frames = &frame;
	child.budget = p->budget;

	rc = parse_document(&child);
	if (rc == 0) {
		rc = merge_table(p, p->current, child.root);
	} else if (!p->failed) {
		p->failed = true;
		if (child.error == NULL ||
		    asprintf(&p->error, "%s (included from %s:%u)", child.error, p->name,
			     line) < 0) {
			p->error = child.error;
			child.error = NULL;
		}
	}
	free(child.error);
	wd_buffer_release(&child.scratch);
	free(real);
	free(data);
	return rc;
}

static int process_include(struct parser *p, const char *path, unsigned line)
{
	if (p->include_depth >= WD_CONFIG_MAX_INCLUDE_DEPTH)
		return fail_at(p, line, "includes nested deeper than %d levels",
			       WD_CONFIG_MAX_INCLUDE_DEPTH);
	char *full;
	if (path[0] == '/' || p->dir == NULL)
		full = strdup(path);
	else if (asprintf(&full, "%s%s", p->dir, path) < 0)
		full = NULL;
	if (full == NULL)
		return fail_at(p, line, "out of memory");
	int rc = WD_OK;
	if (strpbrk(path, "*?[") == NULL) {
		rc = include_file(p, full, line);
	} else {
		glob_t matches;
		int grc = glob(full, 0, NULL, &matches);
		if (grc == 0) {
			for (size_t i = 0; i < matches.gl_pathc && rc == WD_OK; i++)
				rc = include_file(p, matches.gl_pathv[i], line);
			globfree(&matches);
		} else if (grc != GLOB_NOMATCH) {
			rc = fail_at(p, line, "cannot expand @include \"%s\"", full);
		}
	}
	free(full);
	return rc;
}

/* A comment alone on its line; `# @include "path"` includes a file. */
static int parse_comment_line(struct parser *p)
{
	static const char directive[] = "@include";
	const size_t dlen = sizeof(directive) - 1;
	size_t end = p->pos;
	while (end < p->len && p->text[end] != '\n' && p->text[end] != '\r')
		end++;
	size_t i = p->pos + 1;
	while (i < end && (p->text[i] == ' ' || p->text[i] == '\t'))
		i++;
	if (end - i < dlen || memcmp(p->text + i, directive, dlen) != 0 ||
	    (end - i > dlen && p->text[i + dlen] != ' ' && p->text[i + dlen] != '\t')) {
		p->pos = end;
		return WD_OK;
	}
	unsigned line = p->line;
	p->pos = i + dlen;
	skip_blank(p);
	int c = peek(p);
	if (c != '"' && c != '\'')
		return fail(p, "@include needs a quoted path");
	if (parse_string(p, false) < 0)
		return WD_ERROR;
	skip_blank(p);
	if (p->pos != end)
		return fail(p, "unexpected text after the @include path");
	size_t len;
	const char *path = scratch_copy(p, &len);
	if (path == NULL)
		return WD_ERROR;
	if (len == 0 || memchr(path, '\0', len) != NULL)
		return fail(p, "invalid @include path");
	return process_include(p, path, line);
}

/* ---- Documents ---- */

static int end_of_line(struct parser *p)
{
	skip_blank(p);
	skip_comment(p);
	if (p->pos >= p->len)
		return WD_OK;
	if (at_newline(p)) {
		eat_newline(p);
		return WD_OK;
	}
	char buf[16];
	return fail(p, "expected the end of the line, found %s", describe_here(p, buf));
}

/* The top level: one item per line (a comment, a header or key = value),
   each followed by an optional comment and the end of the line. */
static int parse_document(struct parser *p)
{
	if (validate_text(p) < 0)
		return WD_ERROR;
	if (p->len >= 3 && memcmp(p->text, "\xef\xbb\xbf", 3) == 0)
		p->pos = 3; /* a UTF-8 byte order mark */
	while (p->pos < p->len) {
		skip_blank(p);
		int c = peek(p);
		int rc = WD_OK;
		if (c == '#')
			rc = parse_comment_line(p);
		else if (c == '[')
			rc = parse_header(p);
		else if (c != '\n' && c != '\r' && c != -1)
			rc = parse_keyval(p, p->current, p->current_depth);
		if (rc < 0 || end_of_line(p) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

/* Hand the error (or "out of memory" when even the message could not be
   built) to the caller, and free what the parser holds. */
static int finish(struct parser *p, int rc, char **error_r)
{
	wd_buffer_release(&p->scratch);
	if (rc == 0) {
		free(p->error);
		return WD_OK;
	}
	if (p->error == NULL && asprintf(&p->error, "%s: out of memory", p->name) < 0)
		p->error = NULL;
	*error_r = p->error;
	return WD_ERROR;
}

int wd__config_toml_parse(struct wd_arena *arena, const char *name, const char *text, size_t len,
			  struct wd_config_value *root, char **error_r)
{
	if (len > WD_CONFIG_MAX_FILE_SIZE) {
		if (asprintf(error_r, "%s: larger than %d bytes", name,
			     WD_CONFIG_MAX_FILE_SIZE) < 0)
			*error_r = NULL;
		return WD_ERROR;
	}
	struct include_budget budget = { 1, len };
	struct parser p;
	parser_init(&p, arena, wd_arena_strdup(arena, name), text, len);
	if (p.name == NULL) {
		*error_r = NULL;
		return WD_ERROR;
	}
	p.root = p.current = root;
	p.budget = &budget;
	return finish(&p, parse_document(&p), error_r);
}

int wd__config_toml_load(struct wd_arena *arena, const char *path, struct wd_config_value *root,
			 char **error_r)
{
	char *data;
	size_t len;
	int rc = read_file(path, &data, &len);
	if (rc < 0) {
		if (rc == -2)
			rc = asprintf(error_r, "%s: larger than %d bytes", path,
				      WD_CONFIG_MAX_FILE_SIZE);
		else
			rc = asprintf(error_r, "%s: cannot read: %s", path, strerror(errno));
		if (rc < 0)
			*error_r = NULL;
		return WD_ERROR;
	}
	struct include_budget budget = { 1, len };
	char *real = realpath(path, NULL);
	struct include_frame frame = { real, NULL };
	struct parser p;
	parser_init(&p, arena, wd_arena_strdup(arena, path), data, len);
	if (p.name == NULL) {
		free(real);
		free(data);
		*error_r = NULL;
		return WD_ERROR;
	}
	p.dir = dir_of(arena, path);
	p.root = p.current = root;
	p.budget = &budget;
	p.frames = real != NULL ? &frame : NULL;
	rc = finish(&p, parse_document(&p), error_r);
	free(real);
	free(data);
	return rc;
}

int wd__config_toml_parse_value(struct wd_arena *arena, const char *text, size_t len,
				unsigned depth, const char *origin,
				struct wd_config_value **value_r)
{
	if (len > WD_CONFIG_MAX_FILE_SIZE)
		return WD_ERROR;
	struct parser p;
	parser_init(&p, arena, "value", text, len);
	p.fixed_origin = origin;
	int rc = validate_text(&p);
	if (rc == 0) {
		/* Blanks and newlines around the value, but no comments: "#ff0000"
		   must stay a string. */
		while (peek(&p) == ' ' || peek(&p) == '\t' || at_newline(&p))
			p.pos++;
		rc = p.pos < p.len ? parse_value(&p, depth, value_r) : WD_ERROR;
		while (rc == 0 && (peek(&p) == ' ' || peek(&p) == '\t' || at_newline(&p)))
			p.pos++;
		if (p.pos != p.len)
			rc = WD_ERROR;
	}
	wd_buffer_release(&p.scratch);
	free(p.error);
	return rc;
}

int wd__config_toml_parse_key(struct wd_arena *arena, const char *text, size_t len,
			      struct wd_config_key_part *parts, size_t max_parts)
{
	struct parser p;
	size_t n = 0;
	parser_init(&p, arena, "key", text, len);
	int rc = validate_text(&p);
	if (rc == 0) {
		skip_blank(&p);
		rc = parse_key(&p, parts, max_parts, &n);
		if (p.pos != p.len)
			rc = WD_ERROR;
	}
	wd_buffer_release(&p.scratch);
	free(p.error);
	return rc < 0 ? WD_ERROR : (int)n;
}
