/* Configuration object: loading, overrides, lookups and typed getters.
 *
 * Design: the TOML reader (config-toml.c) builds a value tree in the arena of
 * the configuration; this file owns that arena and everything on top of the
 * tree. After loading and applying overrides the tree is never modified, so
 * lookups need no lock. The only thing a lookup may create is the message of
 * a type mismatch, whose text the header says the configuration owns: such
 * messages go into a mutex-protected list, and an identical message is
 * returned from the list instead of being added again, so a getter called in
 * a loop does not grow memory.
 *
 * Keys are dotted paths. A path with a quote in it is read with TOML's key
 * syntax (dkim."example.com".selector); any other path is split at every '.'
 * so that lookups never fail on characters a bare TOML key does not allow.
 * The empty path "" names the root table, which is how a caller (the fuzzer,
 * a config dump) walks the whole tree.
 *
 * Overrides (wd_config_set, and through it env and argv) are read as one TOML
 * value when the whole text is one, else kept as a string; scalars also keep
 * their text, so a string getter still accepts --api.accessToken=1234.
 * Setting a key creates the missing tables on its path; a non-table value on
 * the path is an error, and the final key is replaced whatever it was. */
#include "config-private.h"
#include "wd-result.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct config_message {
	struct config_message *next;
	char text[];
};

/* Getter messages; separate from struct wd_config so that const lookups can
   lock it without casting const away. */
struct config_messages {
	pthread_mutex_t lock;
	struct config_message *head;
};

struct wd_config {
	struct wd_arena *arena;
	struct wd_config_value *root;
	struct config_messages *messages;
};

static void WD_PRINTF(2, 3) set_error(char **error_r, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (error_r != NULL)
		*error_r = msg;
	else
		free(msg);
}

/* A parse error from config-toml.c (NULL means it ran out of memory). */
static void pass_error(char **error_r, char *error)
{
	if (error == NULL) {
		set_error(error_r, "out of memory");
		return;
	}
	if (error_r != NULL)
		*error_r = error;
	else
		free(error);
}

struct wd_config *wd_config_new(void)
{
	struct wd_config *config = calloc(1, sizeof(*config));
	if (config == NULL)
		return NULL;
	config->arena = wd_arena_create(0);
	config->messages = calloc(1, sizeof(*config->messages));
	if (config->arena != NULL)
		config->root = wd__config_value_new(config->arena, WD_CONFIG_TABLE, "");
	if (config->root == NULL || config->messages == NULL) {
		wd_arena_destroy(&config->arena);
		free(config->messages);
		free(config);
		return NULL;
	}
	pthread_mutex_init(&config->messages->lock, NULL);
	return config;
}

void wd_config_free(struct wd_config **_config)
{
	struct wd_config *config = *_config;
	if (config == NULL)
		return;
	*_config = NULL;
	struct config_message *msg = config->messages->head;
	while (msg != NULL) {
		struct config_message *next = msg->next;
		free(msg);
		msg = next;
	}
	pthread_mutex_destroy(&config->messages->lock);
	free(config->messages);
	wd_arena_destroy(&config->arena);
	free(config);
}

struct wd_config *wd_config_load(const char *path, char **error_r)
{
	struct wd_config *config = wd_config_new();
	if (config == NULL) {
		set_error(error_r, "%s: out of memory", path);
		return NULL;
	}
	char *error = NULL;
	if (wd__config_toml_load(config->arena, path, config->root, &error) < 0) {
		pass_error(error_r, error);
		wd_config_free(&config);
	}
	return config;
}

struct wd_config *wd_config_parse(const char *name, const char *text, size_t len, char **error_r)
{
	struct wd_config *config = wd_config_new();
	if (config == NULL) {
		set_error(error_r, "%s: out of memory", name);
		return NULL;
	}
	char *error = NULL;
	if (wd__config_toml_parse(config->arena, name, text, len, config->root, &error) < 0) {
		pass_error(error_r, error);
		wd_config_free(&config);
	}
	return config;
}

/* ---- Keys ---- */

/* Split a dotted path into at most WD_CONFIG_MAX_DEPTH parts (see the design
   comment). Returns the count, or -1. `allow_empty` is for lookups: "a..b"
   simply finds nothing, while wd_config_set() rejects it. */
static int split_key(struct wd_arena *arena, const char *key, struct wd_config_key_part *parts,
		     bool allow_empty)
{
	size_t len = strlen(key);
	if (strpbrk(key, "\"'") != NULL)
		return wd__config_toml_parse_key(arena, key, len, parts, WD_CONFIG_MAX_DEPTH);
	int n = 0;
	for (const char *p = key;;) {
		const char *dot = strchr(p, '.');
		size_t part_len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n == WD_CONFIG_MAX_DEPTH || (part_len == 0 && !allow_empty))
			return WD_ERROR;
		parts[n].str = wd_arena_strndup(arena, p, part_len);
		parts[n].len = part_len;
		if (parts[n++].str == NULL)
			return WD_ERROR;
		if (dot == NULL)
			return n;
		p = dot + 1;
	}
}

/* Follow key parts from `value`; a non-table on the way ends the walk with
   NULL (wd__config_table_find() answers NULL for it). */
static const struct wd_config_value *walk(const struct wd_config_value *value,
					  const struct wd_config_key_part *parts, int n)
{
	for (int i = 0; i < n && value != NULL; i++)
		value = wd__config_table_find(value, parts[i].str, parts[i].len);
	return value;
}

const struct wd_config_value *wd_config_lookup(const struct wd_config *config, const char *key)
{
	if (config == NULL || key == NULL)
		return NULL;
	if (*key == '\0')
		return config->root;
	if (strpbrk(key, "\"'") != NULL) {
		/* A private arena keeps the lookup free of shared state. */
		struct wd_arena *arena = wd_arena_create(0);
		if (arena == NULL)
			return NULL;
		struct wd_config_key_part parts[WD_CONFIG_MAX_DEPTH];
		int n = split_key(arena, key, parts, true);
		const struct wd_config_value *value = n > 0 ? walk(config->root, parts, n) : NULL;
		wd_arena_destroy(&arena);
		return value;
	}
	/* The common case, without allocating. */
	const struct wd_config_value *value = config->root;
	for (const char *p = key; value != NULL;) {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		value = wd__config_table_find(value, p, len);
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return value;
}

/* ---- Overrides ---- */

/* Overrides are applied at startup, before any thread looks the
   configuration up, so this writes the tree without a lock. */
static int config_set(struct wd_config *config, const char *key, const char *value_text,
		      bool literal, const char *origin, char **error_r)
{
	if (origin == NULL)
		origin = "override";
	if (config == NULL || key == NULL || value_text == NULL) {
		set_error(error_r, "%s: no key or value", origin);
		return WD_ERROR;
	}
	struct wd_arena *arena = config->arena;
	struct wd_config_key_part parts[WD_CONFIG_MAX_DEPTH];
	int n = split_key(arena, key, parts, false);
	if (n <= 0) {
		set_error(error_r, "%s: invalid key \"%s\"", origin, key);
		return WD_ERROR;
	}
	/* Check the path before changing anything. */
	const struct wd_config_value *at = config->root;
	for (int i = 0; i + 1 < n && at != NULL; i++) {
		at = wd__config_table_find(at, parts[i].str, parts[i].len);
		if (at != NULL && at->type != WD_CONFIG_TABLE) {
			set_error(error_r, "%s: cannot set %s: %s is %s (%s), not a table", origin,
				  key, parts[i].str, wd__config_type_name(at->type), at->origin);
			return WD_ERROR;
		}
	}
	size_t text_len = strlen(value_text);
	if (!wd__config_utf8_valid(value_text, text_len)) {
		set_error(error_r, "%s: the value of %s is not valid UTF-8", origin, key);
		return WD_ERROR;
	}

	const char *origin_copy = wd_arena_strdup(arena, origin);
	struct wd_config_value *value = NULL;
	if (origin_copy == NULL)
		goto oom;
	if (literal || wd__config_toml_parse_value(arena, value_text, text_len, (unsigned)n,
						   origin_copy, &value) < 0) {
		value = wd__config_value_new(arena, WD_CONFIG_STRING, origin_copy);
		if (value == NULL)
			goto oom;
		value->u.string.str = wd_arena_strndup(arena, value_text, text_len);
		value->u.string.len = text_len;
		if (value->u.string.str == NULL)
			goto oom;
	} else if (value->type != WD_CONFIG_STRING && value->type != WD_CONFIG_ARRAY &&
		   value->type != WD_CONFIG_TABLE) {
		if ((value->text = wd_arena_strdup(arena, value_text)) == NULL)
			goto oom;
	}

	struct wd_config_value *table = config->root;
	for (int i = 0; i + 1 < n; i++) {
		struct wd_config_value *child =
			wd__config_table_find(table, parts[i].str, parts[i].len);
		if (child == NULL) {
			child = wd__config_value_new(arena, WD_CONFIG_TABLE, origin_copy);
			if (child == NULL || wd__config_table_add(arena, table, parts[i].str,
								  parts[i].len, child) < 0)
				goto oom;
		}
		table = child;
	}
	const struct wd_config_key_part *last = &parts[n - 1];
	if (wd__config_table_find(table, last->str, last->len) != NULL)
		wd__config_table_replace(table, last->str, last->len, value);
	else if (wd__config_table_add(arena, table, last->str, last->len, value) < 0)
		goto oom;
	return WD_OK;
oom:
	set_error(error_r, "%s: out of memory", origin);
	return WD_ERROR;
}

int wd_config_set(struct wd_config *config, const char *key, const char *value_text,
		  const char *origin, char **error_r)
{
	return config_set(config, key, value_text, false, origin, error_r);
}

int wd_config_set_string(struct wd_config *config, const char *key, const char *value,
			 const char *origin, char **error_r)
{
	return config_set(config, key, value, true, origin, error_r);
}

int wd_config_apply_args(struct wd_config *config, int argc, char *const argv[], char **error_r)
{
	/* argv[0] is the program. */
	for (int i = 1; i < argc && argv[i] != NULL; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0)
			break; /* the usual end of options */
		const char *eq = strchr(arg, '=');
		if (strncmp(arg, "--", 2) != 0 || eq == NULL || eq == arg + 2)
			continue;
		size_t key_len = (size_t)(eq - (arg + 2));
		if (key_len == 6 && memcmp(arg + 2, "config", 6) == 0)
			continue; /* the file to load, not a key */
		char *key = strndup(arg + 2, key_len);
		char *origin = NULL;
		if (key == NULL || asprintf(&origin, "argument --%s", key) < 0) {
			free(key);
			set_error(error_r, "argument %s: out of memory", arg);
			return WD_ERROR;
		}
		int rc = wd_config_set(config, key, eq + 1, origin, error_r);
		free(key);
		free(origin);
		if (rc < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

int wd_config_apply_env(struct wd_config *config, char *const envp[], char **error_r)
{
	static const char prefix[] = "APPCONF_";
	const size_t prefix_len = sizeof(prefix) - 1;
	if (envp == NULL)
		envp = environ;
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
		const char *entry = envp[i];
		const char *eq = strchr(entry, '=');
		if (strncmp(entry, prefix, prefix_len) != 0 || eq == NULL ||
		    eq == entry + prefix_len)
			continue;
		/* APPCONF_imap_port → imap.port */
		char *key = strndup(entry + prefix_len, (size_t)(eq - entry) - prefix_len);
		char *origin = NULL;
		if (key == NULL ||
		    asprintf(&origin, "env %.*s", (int)(eq - entry), entry) < 0) {
			free(key);
			set_error(error_r, "env: out of memory");
			return WD_ERROR;
		}
		for (char *c = key; *c != '\0'; c++) {
			if (*c == '_')
				*c = '.';
		}
		int rc = wd_config_set(config, key, eq + 1, origin, error_r);
		free(key);
		free(origin);
		if (rc < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

/* ---- Values ---- */

enum wd_config_type wd_config_value_type(const struct wd_config_value *value)
{
	/* NULL is a caller bug; answer something harmless instead of crashing. */
	return value == NULL ? WD_CONFIG_TABLE : value->type;
}

const char *wd_config_value_origin(const struct wd_config_value *value)
{
	return value == NULL || value->origin == NULL ? "" : value->origin;
}

/* Strings and date-times (kept as text) are strings; so are override scalars,
   through the text they were given as. Numbers from a file are not: reading
   port = 993 as a string is more likely a mistake than a wish. */
int wd_config_value_string(const struct wd_config_value *value, const char **str_r)
{
	if (value == NULL)
		return WD_ERROR;
	if (value->type == WD_CONFIG_STRING || value->type == WD_CONFIG_DATETIME) {
		*str_r = value->u.string.str;
		return WD_OK;
	}
	if (value->text != NULL) {
		*str_r = value->text;
		return WD_OK;
	}
	return WD_ERROR;
}

/* The value as a scalar: integers, floats and booleans as they are, and a
   string when all of it is a TOML integer, float or boolean (values from
   APPCONF_ and --key= arrive as strings when they do not parse): maxMB = "25"
   is 25, "25 MB" is no scalar. */
static void value_scalar(const struct wd_config_value *value, struct wd_config_scalar *scalar_r)
{
	scalar_r->kind = WD_CONFIG_SCALAR_NONE;
	if (value == NULL)
		return;
	switch (value->type) {
	case WD_CONFIG_INTEGER:
		scalar_r->kind = WD_CONFIG_SCALAR_INTEGER;
		scalar_r->integer = value->u.integer;
		break;
	case WD_CONFIG_FLOAT:
		scalar_r->kind = WD_CONFIG_SCALAR_FLOAT;
		scalar_r->fp = value->u.fp;
		break;
	case WD_CONFIG_BOOLEAN:
		scalar_r->kind = WD_CONFIG_SCALAR_BOOLEAN;
		scalar_r->boolean = value->u.boolean;
		break;
	case WD_CONFIG_STRING:
		wd__config_toml_scalar(value->u.string.str, value->u.string.len, scalar_r);
		break;
	default:
		break;
	}
}

int wd_config_value_int(const struct wd_config_value *value, int64_t *int_r)
{
	struct wd_config_scalar scalar;
	value_scalar(value, &scalar);
	if (scalar.kind != WD_CONFIG_SCALAR_INTEGER)
		return WD_ERROR;
	*int_r = scalar.integer;
	return WD_OK;
}

int wd_config_value_float(const struct wd_config_value *value, double *float_r)
{
	struct wd_config_scalar scalar;
	value_scalar(value, &scalar);
	if (scalar.kind == WD_CONFIG_SCALAR_FLOAT)
		*float_r = scalar.fp;
	else if (scalar.kind == WD_CONFIG_SCALAR_INTEGER)
		*float_r = (double)scalar.integer;
	else
		return WD_ERROR;
	return WD_OK;
}

int wd_config_value_bool(const struct wd_config_value *value, bool *bool_r)
{
	struct wd_config_scalar scalar;
	value_scalar(value, &scalar);
	if (scalar.kind != WD_CONFIG_SCALAR_BOOLEAN)
		return WD_ERROR;
	*bool_r = scalar.boolean;
	return WD_OK;
}

size_t wd_config_array_count(const struct wd_config_value *array)
{
	return array != NULL && array->type == WD_CONFIG_ARRAY ? array->u.array.count : 0;
}

const struct wd_config_value *wd_config_array_get(const struct wd_config_value *array, size_t index)
{
	if (index >= wd_config_array_count(array))
		return NULL;
	return array->u.array.items[index];
}

size_t wd_config_table_count(const struct wd_config_value *table)
{
	return table != NULL && table->type == WD_CONFIG_TABLE ? table->u.table.count : 0;
}

const struct wd_config_value *wd_config_table_entry(const struct wd_config_value *table,
						    size_t index, const char **key_r)
{
	if (index >= wd_config_table_count(table))
		return NULL;
	if (key_r != NULL)
		*key_r = table->u.table.entries[index].key;
	return table->u.table.entries[index].value;
}

const struct wd_config_value *wd_config_table_get(const struct wd_config_value *table,
						  const char *key)
{
	if (key == NULL)
		return NULL;
	return wd__config_table_find(table, key, strlen(key));
}

/* ---- Typed getters ---- */

/* Keep `msg` (malloc'd, or NULL when out of memory) in the configuration and
   return the kept copy. */
static const char *keep_message(const struct wd_config *config, char *msg)
{
	if (msg == NULL)
		return "out of memory";
	struct config_messages *messages = config->messages;
	const char *kept = NULL;
	pthread_mutex_lock(&messages->lock);
	for (struct config_message *m = messages->head; m != NULL; m = m->next) {
		if (strcmp(m->text, msg) == 0) {
			kept = m->text;
			break;
		}
	}
	if (kept == NULL) {
		size_t len = strlen(msg);
		struct config_message *m = malloc(sizeof(*m) + len + 1);
		if (m != NULL) {
			memcpy(m->text, msg, len + 1);
			m->next = messages->head;
			messages->head = m;
			kept = m->text;
		}
	}
	pthread_mutex_unlock(&messages->lock);
	free(msg);
	return kept != NULL ? kept : "out of memory";
}

static int type_error(const struct wd_config *config, const char *key,
		      const struct wd_config_value *value, const char *expected,
		      const char **error_r)
{
	char *msg;
	if (asprintf(&msg, "%s: expected %s, found %s at %s", key, expected,
		     wd__config_type_name(value->type), wd_config_value_origin(value)) < 0)
		msg = NULL;
	const char *kept = keep_message(config, msg);
	if (error_r != NULL)
		*error_r = kept;
	return WD_ERROR;
}

/* The getters set *value_r to the default first, so that a caller that only
   logs the error still continues with a sane value. */
int wd_config_get_string(const struct wd_config *config, const char *key, const char *def,
			 const char **value_r, const char **error_r)
{
	const struct wd_config_value *value = wd_config_lookup(config, key);
	*value_r = def;
	if (value == NULL || wd_config_value_string(value, value_r) == 0)
		return WD_OK;
	return type_error(config, key, value, "a string", error_r);
}

int wd_config_get_int(const struct wd_config *config, const char *key, int64_t def,
		      int64_t *value_r, const char **error_r)
{
	const struct wd_config_value *value = wd_config_lookup(config, key);
	*value_r = def;
	if (value == NULL || wd_config_value_int(value, value_r) == 0)
		return WD_OK;
	return type_error(config, key, value, "an integer", error_r);
}

int wd_config_get_float(const struct wd_config *config, const char *key, double def,
			double *value_r, const char **error_r)
{
	const struct wd_config_value *value = wd_config_lookup(config, key);
	*value_r = def;
	if (value == NULL || wd_config_value_float(value, value_r) == 0)
		return WD_OK;
	return type_error(config, key, value, "a float", error_r);
}

int wd_config_get_bool(const struct wd_config *config, const char *key, bool def,
		       bool *value_r, const char **error_r)
{
	const struct wd_config_value *value = wd_config_lookup(config, key);
	*value_r = def;
	if (value == NULL || wd_config_value_bool(value, value_r) == 0)
		return WD_OK;
	return type_error(config, key, value, "a boolean", error_r);
}
