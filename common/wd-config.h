#ifndef WD_CONFIG_H
#define WD_CONFIG_H

/* Configuration: a TOML document (WildDuck's key names, conf.d/default.toml)
 * with WildDuck-style includes and overrides.
 *
 * Sources, later ones winning:
 *   1. the file given to wd_config_load() and the files it includes with a
 *      comment line `# @include "path"` (path relative to the including file;
 *      the included document is merged into the table in effect at that line,
 *      so `[imap]` followed by `# @include "imap.toml"` puts imap.toml's keys
 *      under imap);
 *   2. environment variables APPCONF_<path with '_' for '.'>, e.g.
 *      APPCONF_imap_port=1143 (wd_config_apply_env());
 *   3. command-line arguments --<dotted.key>=<value>, e.g. --imap.port=1143
 *      (wd_config_apply_args()).
 * An override value is read as a TOML value when it parses as one (1143, true,
 * "x", [1, 2]) and as a plain string otherwise.
 *
 * Keys are looked up by dotted path ("dbs.mongo", "imap.port"). Every value
 * remembers where it came from ("conf.d/default.toml:12", "env APPCONF_x",
 * "argument --x") for error messages.
 *
 * The document is immutable after loading; lookups are thread-safe. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_config;
struct wd_config_value;

enum wd_config_type {
	WD_CONFIG_STRING,
	WD_CONFIG_INTEGER,
	WD_CONFIG_FLOAT,
	WD_CONFIG_BOOLEAN,
	WD_CONFIG_DATETIME, /* kept as its TOML text, e.g. "1979-05-27T07:32:00Z" */
	WD_CONFIG_ARRAY,
	WD_CONFIG_TABLE,
};

/* An empty configuration (all getters return their defaults). */
struct wd_config *wd_config_new(void);
/* Parse a TOML file (and its includes). On error returns NULL and sets
   *error_r to a malloc'd message "path:line: what is wrong" (free it). */
struct wd_config *wd_config_load(const char *path, char **error_r);
/* Parse TOML text; `name` is used in messages instead of a path; includes are
   resolved relative to the current directory. */
struct wd_config *wd_config_parse(const char *name, const char *text, size_t len, char **error_r);
void wd_config_free(struct wd_config **config);

/* Overrides. Both return 0 or -1 with a malloc'd *error_r. apply_args takes
   argv as given to main() and applies every "--a.b=value" element, ignoring
   other arguments; "--config" is not a key and is ignored. apply_env reads
   envp entries (NULL = the process environment) starting with APPCONF_. */
int wd_config_apply_args(struct wd_config *config, int argc, char *const argv[], char **error_r);
int wd_config_apply_env(struct wd_config *config, char *const envp[], char **error_r);
/* Set one key from override text (same rules as above); `origin` is used in messages. */
int wd_config_set(struct wd_config *config, const char *key, const char *value_text,
		  const char *origin, char **error_r);
/* Set one key to `value` as a string, whatever it looks like (a URL, a
   number): no TOML parse of the value. */
int wd_config_set_string(struct wd_config *config, const char *key, const char *value,
			 const char *origin, char **error_r);

/* Lookups by dotted path; NULL when absent. */
const struct wd_config_value *wd_config_lookup(const struct wd_config *config, const char *key);
enum wd_config_type wd_config_value_type(const struct wd_config_value *value);
const char *wd_config_value_origin(const struct wd_config_value *value);

/* Typed getters. When the key is absent *value_r is set to the default and
   0 is returned. When it is present with a type that does not fit, -1 is
   returned and *error_r points to a message owned by the config object
   ("imap.port: expected an integer, found a string at conf.d/x.toml:3").
   Conversions that are accepted: integer → float; a string that is a whole
   TOML integer/float/boolean → that type (values from APPCONF_ are strings
   when they do not parse). The string returned is owned by the config. */
int wd_config_get_string(const struct wd_config *config, const char *key, const char *def,
			 const char **value_r, const char **error_r);
int wd_config_get_int(const struct wd_config *config, const char *key, int64_t def,
		      int64_t *value_r, const char **error_r);
int wd_config_get_float(const struct wd_config *config, const char *key, double def,
			double *value_r, const char **error_r);
int wd_config_get_bool(const struct wd_config *config, const char *key, bool def,
		       bool *value_r, const char **error_r);

/* Arrays and tables. */
size_t wd_config_array_count(const struct wd_config_value *array);
const struct wd_config_value *wd_config_array_get(const struct wd_config_value *array, size_t index);
size_t wd_config_table_count(const struct wd_config_value *table);
/* Key and value of the index'th entry, in document order. */
const struct wd_config_value *wd_config_table_entry(const struct wd_config_value *table, size_t index,
						    const char **key_r);
const struct wd_config_value *wd_config_table_get(const struct wd_config_value *table, const char *key);

/* Scalars of a value (for array elements and table entries). The same
   conversion rules as the typed getters apply; -1 when the type does not fit. */
int wd_config_value_string(const struct wd_config_value *value, const char **str_r);
int wd_config_value_int(const struct wd_config_value *value, int64_t *int_r);
int wd_config_value_float(const struct wd_config_value *value, double *float_r);
int wd_config_value_bool(const struct wd_config_value *value, bool *bool_r);

#endif
