/* Fuzz target for the configuration reader (config-toml.c, config.c).
 *
 * Parses the input with wd_config_parse(); when it parses, walks the whole
 * tree through the public API (every typed accessor on every value, lookups
 * by the dotted path of each value) and applies the input as an override
 * value. Inputs that mention @include are skipped: an include reads files, so
 * the fuzzer must never reach one (a comment cannot contain escapes, so a
 * directive always contains the literal text). */
#include "wd-config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The checks must not be optimised away. */
static volatile size_t fuzz_sink;

static void visit(const struct wd_config *config, const struct wd_config_value *value,
		  char *path, size_t path_len, size_t path_size, unsigned depth)
{
	const char *s;
	int64_t i;
	double d;
	bool b;
	fuzz_sink += (size_t)wd_config_value_type(value);
	fuzz_sink += strlen(wd_config_value_origin(value));
	if (wd_config_value_string(value, &s) == 0)
		fuzz_sink += strlen(s);
	if (wd_config_value_int(value, &i) == 0)
		fuzz_sink += (size_t)i;
	if (wd_config_value_float(value, &d) == 0)
		fuzz_sink += d > 0;
	if (wd_config_value_bool(value, &b) == 0)
		fuzz_sink += b;

	/* The typed getters by path (a path with odd keys may not resolve). */
	if (path_len > 0) {
		const char *error;
		if (wd_config_get_string(config, path, NULL, &s, &error) < 0)
			fuzz_sink += strlen(error);
		if (wd_config_get_int(config, path, 0, &i, &error) < 0)
			fuzz_sink += strlen(error);
		if (wd_config_get_float(config, path, 0, &d, &error) < 0)
			fuzz_sink += strlen(error);
		if (wd_config_get_bool(config, path, false, &b, &error) < 0)
			fuzz_sink += strlen(error);
	}
	/* The reader guarantees a depth of at most 64; a deeper tree is a bug. */
	if (depth > 70)
		abort();

	size_t count = wd_config_array_count(value);
	for (size_t n = 0; n < count; n++)
		visit(config, wd_config_array_get(value, n), path, path_len, path_size, depth + 1);
	fuzz_sink += wd_config_array_get(value, count) != NULL;

	count = wd_config_table_count(value);
	for (size_t n = 0; n < count; n++) {
		const char *key = NULL;
		const struct wd_config_value *child = wd_config_table_entry(value, n, &key);
		if (child == NULL || key == NULL)
			abort();
		/* Not always the same child: a key may hold a NUL (\u0000). */
		fuzz_sink += wd_config_table_get(value, key) != NULL;
		/* Extend the dotted path when it still fits. */
		size_t key_len = strlen(key);
		size_t child_len = path_len;
		if (path_len + key_len + 2 < path_size) {
			if (path_len > 0)
				path[child_len++] = '.';
			memcpy(path + child_len, key, key_len + 1);
			child_len += key_len;
		}
		visit(config, child, path, child_len, path_size, depth + 1);
		path[path_len] = '\0';
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 8 && memmem(data, size, "@include", 8) != NULL)
		return 0;
	char *error = NULL;
	struct wd_config *config = wd_config_parse("fuzz", (const char *)data, size, &error);
	if (config == NULL) {
		/* Every failure must explain itself as "fuzz:..." */
		if (error == NULL || strncmp(error, "fuzz:", 5) != 0)
			abort();
		free(error);
		return 0;
	}
	char path[512] = "";
	visit(config, wd_config_lookup(config, ""), path, 0, sizeof(path), 0);

	/* The same bytes as override text (a NUL-terminated copy). */
	char *text = malloc(size + 1);
	if (text != NULL) {
		memcpy(text, data, size);
		text[size] = '\0';
		if (wd_config_set(config, "fuzz.value", text, "fuzz", &error) == 0) {
			const struct wd_config_value *value =
				wd_config_lookup(config, "fuzz.value");
			if (value == NULL)
				abort();
			visit(config, value, path, 0, sizeof(path), 0);
		} else {
			free(error);
		}
		free(text);
	}
	wd_config_free(&config);
	return 0;
}
