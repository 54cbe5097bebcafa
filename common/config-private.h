#ifndef WD_CONFIG_PRIVATE_H
#define WD_CONFIG_PRIVATE_H

/* Layout of the configuration value tree, shared by the TOML reader
 * (config-toml.c) and the public API (config.c). Not for other modules: they
 * go through wd-config.h.
 *
 * Every node, key and string of one configuration lives in the arena of its
 * struct wd_config, so freeing the configuration is one wd_arena_destroy().
 * Values replaced by an override stay in the arena until then; overrides are
 * few, so that waste is bounded. */

#include "wd-arena.h"
#include "wd-config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard limits against hostile or broken input. Depth counts the edges from the
   root to a value: a table entry or an array element is one level below its
   container, so every recursive walk of a tree is at most this deep. */
#define WD_CONFIG_MAX_DEPTH 64
#define WD_CONFIG_MAX_FILE_SIZE (4 * 1024 * 1024)
#define WD_CONFIG_MAX_INCLUDE_DEPTH 8
/* One wd_config_load() reads at most this many files and bytes in total, so
   a file that includes the same (acyclic) file many times at every level
   cannot make the load exponential. */
#define WD_CONFIG_MAX_INCLUDE_FILES 256
#define WD_CONFIG_MAX_TOTAL_SIZE (32 * 1024 * 1024)

/* Flags on values, used only while a document is being read: they decide
   which definitions TOML allows to extend a table and which are redefinitions. */
enum wd_config_value_flags {
	/* Table created as a parent in a [a.b.c] header: one [a.b] may still define it. */
	WD_CONFIG_FLAG_IMPLICIT = 0x01,
	/* Table defined by a [header], or an element of [[header]]. */
	WD_CONFIG_FLAG_HEADER = 0x02,
	/* Table created by a dotted key (a.b = 1): more dotted keys may extend it. */
	WD_CONFIG_FLAG_DOTTED = 0x04,
	/* Inline table or array literal: closed, nothing may be added later. */
	WD_CONFIG_FLAG_INLINE = 0x08,
	/* Array built by [[header]]: more [[header]]s append to it. */
	WD_CONFIG_FLAG_TABLE_ARRAY = 0x10,
	/* Came from an @include: the including file may redefine it (later wins). */
	WD_CONFIG_FLAG_INCLUDED = 0x20,
};

struct wd_config_entry {
	const char *key; /* NUL-terminated, but may contain NUL (key_len counts) */
	size_t key_len;
	struct wd_config_value *value;
};

struct wd_config_value {
	enum wd_config_type type;
	unsigned flags;
	/* "file:line", "env APPCONF_x" or "argument --x"; shared between values. */
	const char *origin;
	/* The override text a scalar was parsed from (wd_config_set), else NULL:
	   wd_config_value_string() returns it, so --api.accessToken=1234 still
	   reads as the string "1234". */
	const char *text;
	union {
		struct {
			const char *str; /* NUL-terminated; may contain NUL (\u0000) */
			size_t len;
		} string; /* WD_CONFIG_STRING and WD_CONFIG_DATETIME */
		int64_t integer;
		double fp;
		bool boolean;
		struct {
			struct wd_config_value **items;
			size_t count, cap;
		} array;
		struct {
			struct wd_config_entry *entries; /* document order */
			size_t count, cap;
			/* Open-addressing index of entry positions + 1 (0 = free slot),
			   built once a table has a few entries so that a document with
			   a million keys in one table is not quadratic. */
			uint32_t *index;
			size_t index_cap; /* a power of two, or 0 */
		} table;
	} u;
};

/* A key split into its parts ("a.b" or a."b.c"); parts point into an arena. */
struct wd_config_key_part {
	const char *str;
	size_t len;
};

/* Tree helpers (config-toml.c). */
struct wd_config_value *wd__config_value_new(struct wd_arena *arena, enum wd_config_type type,
					     const char *origin);
struct wd_config_value *wd__config_table_find(const struct wd_config_value *table, const char *key,
					      size_t key_len);
/* Add a new key (the caller has checked that it is absent); -1 when out of memory. */
int wd__config_table_add(struct wd_arena *arena, struct wd_config_value *table, const char *key,
			 size_t key_len, struct wd_config_value *value);
/* Replace the value of an existing key, keeping its position. */
void wd__config_table_replace(struct wd_config_value *table, const char *key, size_t key_len,
			      struct wd_config_value *value);

/* Read a TOML file (and its includes) into `root`, an empty table. On error
   returns -1 and a malloc'd "path:line: ..." message. */
int wd__config_toml_load(struct wd_arena *arena, const char *path, struct wd_config_value *root,
			 char **error_r);
/* The same for text in memory; `name` is used in messages and origins. */
int wd__config_toml_parse(struct wd_arena *arena, const char *name, const char *text, size_t len,
			  struct wd_config_value *root, char **error_r);
/* Parse override text as one whole TOML value (surrounding blanks allowed) at
   tree depth `depth`; every node gets `origin`. Returns -1 when the text is not
   exactly one valid value (the caller then keeps it as a string). */
int wd__config_toml_parse_value(struct wd_arena *arena, const char *text, size_t len,
				unsigned depth, const char *origin,
				struct wd_config_value **value_r);
/* Parse a TOML key (bare, quoted, dotted) filling at most max_parts parts.
   Returns the number of parts, or -1 when `text` is not exactly a TOML key
   or has more than max_parts parts. */
int wd__config_toml_parse_key(struct wd_arena *arena, const char *text, size_t len,
			      struct wd_config_key_part *parts, size_t max_parts);

/* A whole TOML integer, float or boolean in [str, str+len), without
   allocating (typed getters on strings use it from any thread). */
enum wd_config_scalar_kind {
	WD_CONFIG_SCALAR_NONE,
	WD_CONFIG_SCALAR_INTEGER,
	WD_CONFIG_SCALAR_FLOAT,
	WD_CONFIG_SCALAR_BOOLEAN,
};
struct wd_config_scalar {
	enum wd_config_scalar_kind kind;
	int64_t integer;
	double fp;
	bool boolean;
};
void wd__config_toml_scalar(const char *str, size_t len, struct wd_config_scalar *scalar_r);

/* "a string", "an integer", ... for messages. */
const char *wd__config_type_name(enum wd_config_type type);
/* Whether [str, str+len) is valid UTF-8 (no overlongs, surrogates or code
   points past U+10FFFF). */
bool wd__config_utf8_valid(const char *str, size_t len);

#endif
