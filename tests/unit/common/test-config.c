/* Tests for wd-config: the TOML reader (every feature of TOML 1.0 that the
 * reader supports, and documents it must reject with the right line), the
 * WildDuck-style includes, overrides from argv and the environment, the typed
 * getters and their conversions, conf.d/default.toml, and hostile input.
 * Everything is checked through the public API of wd-config.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-config.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Helpers ---- */

static struct wd_config *parse_ok(const char *text)
{
	char *error = NULL;
	struct wd_config *config = wd_config_parse("t", text, strlen(text), &error);
	if (config == NULL) {
		print_error("unexpected parse error: %s\n", error != NULL ? error : "(null)");
		free(error);
		fail();
	}
	return config;
}

/* The error must start with "t:<line>:". */
static void expect_error_len(const char *text, size_t len, unsigned line)
{
	char *error = NULL;
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "t:%u:", line);
	struct wd_config *config = wd_config_parse("t", text, len, &error);
	if (config != NULL) {
		print_error("document was accepted:\n%.*s\n", (int)len, text);
		wd_config_free(&config);
		fail();
	}
	assert_non_null(error);
	if (strncmp(error, prefix, strlen(prefix)) != 0) {
		print_error("expected an error at line %u for:\n%.*s\ngot: %s\n", line, (int)len,
			    text, error);
		free(error);
		fail();
	}
	free(error);
}

static void expect_error(const char *text, unsigned line)
{
	expect_error_len(text, strlen(text), line);
}

static const char *get_str(const struct wd_config *config, const char *key)
{
	const char *value = NULL, *error = NULL;
	assert_int_equal(wd_config_get_string(config, key, NULL, &value, &error), 0);
	if (value == NULL) {
		print_error("missing string %s\n", key);
		fail();
	}
	return value;
}

static int64_t get_int(const struct wd_config *config, const char *key)
{
	int64_t value = 0;
	const char *error = NULL;
	assert_non_null(wd_config_lookup(config, key));
	if (wd_config_get_int(config, key, 0, &value, &error) < 0) {
		print_error("%s\n", error);
		fail();
	}
	return value;
}

static double get_float(const struct wd_config *config, const char *key)
{
	double value = 0;
	const char *error = NULL;
	assert_non_null(wd_config_lookup(config, key));
	assert_int_equal(wd_config_get_float(config, key, 0, &value, &error), 0);
	return value;
}

static bool get_bool(const struct wd_config *config, const char *key)
{
	bool value = false;
	const char *error = NULL;
	assert_non_null(wd_config_lookup(config, key));
	assert_int_equal(wd_config_get_bool(config, key, false, &value, &error), 0);
	return value;
}

static enum wd_config_type type_of(const struct wd_config *config, const char *key)
{
	const struct wd_config_value *value = wd_config_lookup(config, key);
	if (value == NULL) {
		print_error("missing key %s\n", key);
		fail();
	}
	return wd_config_value_type(value);
}

/* Scalars of array elements and table entries, which must be there. */
static int64_t int_of(const struct wd_config_value *value)
{
	int64_t n = 0;
	assert_int_equal(wd_config_value_int(value, &n), 0);
	return n;
}

static const char *str_of(const struct wd_config_value *value)
{
	const char *s = NULL;
	assert_int_equal(wd_config_value_string(value, &s), 0);
	return s;
}

static bool bool_of(const struct wd_config_value *value)
{
	bool b = false;
	assert_int_equal(wd_config_value_bool(value, &b), 0);
	return b;
}

static const struct wd_config_value *elem(const struct wd_config_value *array, size_t index)
{
	return wd_config_array_get(array, index);
}

static const struct wd_config_value *field(const struct wd_config_value *table, const char *key)
{
	return wd_config_table_get(table, key);
}

static const char *origin_of(const struct wd_config *config, const char *key)
{
	return wd_config_value_origin(wd_config_lookup(config, key));
}

static bool near(double a, double b)
{
	double d = a - b;
	return d < 1e-9 && d > -1e-9;
}

static char *make_temp_dir(void)
{
	char tmpl[] = "/tmp/wd-test-config-XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	return strdup(dir);
}

static void write_file(const char *dir, const char *name, const char *content)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	/* Create a sub-directory when the name has one. */
	char *slash = strrchr(path, '/');
	if (slash > path + strlen(dir)) {
		*slash = '\0';
		mkdir(path, 0700);
		*slash = '/';
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_dir(char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static struct wd_config *load_in(const char *dir, const char *name, char **error_r)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return wd_config_load(path, error_r);
}

/* The error of loading dir/name must start with "dir/file:line:". */
static void expect_load_error(const char *dir, const char *name, const char *file, unsigned line)
{
	char *error = NULL;
	struct wd_config *config = load_in(dir, name, &error);
	assert_null(config);
	assert_non_null(error);
	char prefix[600];
	snprintf(prefix, sizeof(prefix), "%s/%s:%u:", dir, file, line);
	if (strncmp(error, prefix, strlen(prefix)) != 0) {
		print_error("expected prefix %s, got: %s\n", prefix, error);
		free(error);
		fail();
	}
	free(error);
}

/* ---- Valid documents ---- */

/* One value of each scalar type, comments, blank lines, and origins. */
static void test_scalars(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"# a comment\n"
		"str = \"hello\" # trailing comment\n"
		"int = 42\n"
		"float = 3.5\n"
		"yes = true\n"
		"no = false\n"
		"odt = 1979-05-27T07:32:00Z\n"
		"\n"
		"   indented = 'x'\n");
	assert_string_equal(get_str(config, "str"), "hello");
	assert_int_equal(get_int(config, "int"), 42);
	assert_true(near(get_float(config, "float"), 3.5));
	assert_true(get_bool(config, "yes"));
	assert_false(get_bool(config, "no"));
	assert_int_equal(type_of(config, "odt"), WD_CONFIG_DATETIME);
	assert_string_equal(get_str(config, "odt"), "1979-05-27T07:32:00Z");
	assert_string_equal(get_str(config, "indented"), "x");
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "int")), "t:3");
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "indented")), "t:9");
	wd_config_free(&config);
	assert_null(config);
}

/* Every escape of TOML 1.0, raw UTF-8 and tabs inside basic strings. */
static void test_basic_strings(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"a = \"tab\\tquote\\\"backslash\\\\nl\\ncr\\rbs\\bff\\f\"\n"
		"b = \"Jos\\u00E9 \\U0001F600 \\u20AC\"\n"
		"c = \"raw h\xc3\xa9llo \xe2\x82\xac and a tab\tin it\"\n"
		"d = \"\"\n"
		"e = \"I'm a string. \\\"You can quote me\\\".\"\n");
	assert_string_equal(get_str(config, "a"), "tab\tquote\"backslash\\nl\ncr\rbs\bff\f");
	assert_string_equal(get_str(config, "b"), "Jos\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac");
	assert_string_equal(get_str(config, "c"), "raw h\xc3\xa9llo \xe2\x82\xac and a tab\tin it");
	assert_string_equal(get_str(config, "d"), "");
	assert_string_equal(get_str(config, "e"), "I'm a string. \"You can quote me\".");
	wd_config_free(&config);
}

/* Multi-line basic and literal strings: the trimmed first newline, the
   line-ending backslash, quotes before the closing delimiter. */
static void test_multiline_strings(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"s1 = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n"
		"s2 = \"\"\"\\\n       The quick brown \\\n\n       fox.\"\"\"\n"
		"s3 = \"\"\"The quick \\   \n   brown\"\"\"\n"
		"s4 = \"\"\"Two quotes: \"\". Three: \"\"\\\".\"\"\"\n"
		"s5 = \"\"\"\"This,\" she said.\"\"\"\"\n"
		"s6 = \"\"\"x\"\"\"\"\"\n"
		"l1 = '''\nThe first newline is\ntrimmed.\n   Whitespace kept.\n'''\n"
		"l2 = '''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''\n"
		"l3 = 'C:\\Users\\nodejs\\templates'\n"
		"l4 = '<\\i\\c*\\s*>'\n"
		"l5 = '''That's it'''''\n"
		"after = 1\n");
	assert_string_equal(get_str(config, "s1"), "Roses are red\nViolets are blue");
	assert_string_equal(get_str(config, "s2"), "The quick brown fox.");
	assert_string_equal(get_str(config, "s3"), "The quick brown");
	assert_string_equal(get_str(config, "s4"), "Two quotes: \"\". Three: \"\"\".");
	assert_string_equal(get_str(config, "s5"), "\"This,\" she said.\"");
	assert_string_equal(get_str(config, "s6"), "x\"\"");
	assert_string_equal(get_str(config, "l1"),
			    "The first newline is\ntrimmed.\n   Whitespace kept.\n");
	assert_string_equal(get_str(config, "l2"),
			    "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"");
	assert_string_equal(get_str(config, "l3"), "C:\\Users\\nodejs\\templates");
	assert_string_equal(get_str(config, "l4"), "<\\i\\c*\\s*>");
	assert_string_equal(get_str(config, "l5"), "That's it''");
	/* Lines are still counted inside multi-line strings. */
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "after")), "t:22");
	wd_config_free(&config);
}

/* CRLF line ends count as one line and become LF inside strings. */
static void test_crlf(void **state)
{
	(void)state;
	struct wd_config *config =
		parse_ok("a = 1\r\nb = \"\"\"x\r\ny\"\"\"\r\n[t]\r\nc = 2 # c\r\n");
	assert_int_equal(get_int(config, "a"), 1);
	assert_string_equal(get_str(config, "b"), "x\ny");
	assert_int_equal(get_int(config, "t.c"), 2);
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "t.c")), "t:5");
	wd_config_free(&config);
}

/* Decimal, hex, octal and binary integers, underscores, signs, the limits. */
static void test_integers(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"i1 = +99\n"
		"i2 = 0\n"
		"i3 = -17\n"
		"i4 = 1_000_000\n"
		"i5 = 0xDEAD_beef\n"
		"i6 = 0o755\n"
		"i7 = 0b1101_0110\n"
		"max = 9223372036854775807\n"
		"min = -9223372036854775808\n"
		"hexmax = 0x7fffffffffffffff\n"
		"zero = -0\n"
		"pzero = +0\n");
	assert_int_equal(get_int(config, "i1"), 99);
	assert_int_equal(get_int(config, "i2"), 0);
	assert_true(get_int(config, "i3") == -17);
	assert_int_equal(get_int(config, "i4"), 1000000);
	assert_int_equal(get_int(config, "i5"), 0xdeadbeef);
	assert_int_equal(get_int(config, "i6"), 0755);
	assert_int_equal(get_int(config, "i7"), 0xd6);
	assert_true(get_int(config, "max") == INT64_MAX);
	assert_true(get_int(config, "min") == INT64_MIN);
	assert_true(get_int(config, "hexmax") == INT64_MAX);
	assert_int_equal(get_int(config, "zero"), 0);
	assert_int_equal(get_int(config, "pzero"), 0);
	assert_int_equal(type_of(config, "i5"), WD_CONFIG_INTEGER);
	wd_config_free(&config);
}

/* Fractions, exponents, underscores, inf and nan with signs. */
static void test_floats(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"f1 = +1.0\n"
		"f2 = 3.1415\n"
		"f3 = -0.01\n"
		"f4 = 5e+22\n"
		"f5 = 1e06\n"
		"f6 = -2E-2\n"
		"f7 = 6.626e-34\n"
		"f8 = 224_617.445_991_228\n"
		"f9 = 0.0\n"
		"inf1 = inf\n"
		"inf2 = +inf\n"
		"inf3 = -inf\n"
		"nan1 = nan\n"
		"nan2 = -nan\n");
	assert_true(near(get_float(config, "f1"), 1.0));
	assert_true(near(get_float(config, "f2"), 3.1415));
	assert_true(near(get_float(config, "f3"), -0.01));
	assert_true(get_float(config, "f4") == 5e22);
	assert_true(near(get_float(config, "f5"), 1e6));
	assert_true(near(get_float(config, "f6"), -0.02));
	assert_true(get_float(config, "f7") == 6.626e-34);
	assert_true(near(get_float(config, "f8"), 224617.445991228));
	assert_true(get_float(config, "f9") == 0.0);
	assert_true(get_float(config, "inf1") > 1e308);
	assert_true(get_float(config, "inf2") > 1e308);
	assert_true(get_float(config, "inf3") < -1e308);
	double nan1 = get_float(config, "nan1");
	assert_true(nan1 != nan1);
	double nan2 = get_float(config, "nan2");
	assert_true(nan2 != nan2);
	assert_int_equal(type_of(config, "f4"), WD_CONFIG_FLOAT);
	wd_config_free(&config);
}

/* The four kinds of date-time, kept as their text. */
static void test_datetimes(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "odt1", "1979-05-27T07:32:00Z" },
		{ "odt2", "1979-05-27T00:32:00-07:00" },
		{ "odt3", "1979-05-27T00:32:00.999999+07:30" },
		{ "odt4", "1979-05-27 07:32:00Z" },
		{ "odt5", "1979-05-27t07:32:00z" },
		{ "ldt1", "1979-05-27T07:32:00" },
		{ "ldt2", "1979-05-27 00:32:00.999999" },
		{ "ld1", "1979-05-27" },
		{ "leap", "2000-02-29" },
		{ "lt1", "07:32:00" },
		{ "lt2", "00:32:00.999999" },
		{ "lsec", "1990-12-31T23:59:60Z" },
	};
	char text[2048] = "";
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(text);
		snprintf(text + len, sizeof(text) - len, "%s = %s\n", cases[i][0], cases[i][1]);
	}
	strcat(text, "arr = [1979-05-27 07:32:00, 07:32:00]\n");
	struct wd_config *config = parse_ok(text);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(type_of(config, cases[i][0]), WD_CONFIG_DATETIME);
		assert_string_equal(get_str(config, cases[i][0]), cases[i][1]);
	}
	const struct wd_config_value *arr = wd_config_lookup(config, "arr");
	assert_int_equal(wd_config_array_count(arr), 2);
	const char *s;
	assert_int_equal(wd_config_value_string(wd_config_array_get(arr, 0), &s), 0);
	assert_string_equal(s, "1979-05-27 07:32:00");
	/* A date-time is not a number. */
	int64_t i;
	const char *error;
	assert_int_equal(wd_config_get_int(config, "ld1", 5, &i, &error), -1);
	assert_int_equal(i, 5);
	wd_config_free(&config);
}

/* Empty, mixed, nested and multi-line arrays with comments and a trailing
   comma; arrays of inline tables. */
static void test_arrays(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"empty = []\n"
		"ints = [ 1, 2, 3, ]\n"
		"mixed = [1, 'two', 3.0, true, 1979-05-27, [5], {six = 6}]\n"
		"nested = [[1, 2], ['a', \"b\"], []]\n"
		"multi = [\n"
		"  1, # one\n"
		"  # a comment line\n"
		"\n"
		"  2\n"
		"  ,3,\n"
		"]\n"
		"tables = [{ name = \"a\" }, { name = \"b\", port = 25 }]\n"
		"after = 0\n");
	const struct wd_config_value *v = wd_config_lookup(config, "empty");
	assert_int_equal(wd_config_value_type(v), WD_CONFIG_ARRAY);
	assert_int_equal(wd_config_array_count(v), 0);
	assert_null(wd_config_array_get(v, 0));

	v = wd_config_lookup(config, "ints");
	assert_int_equal(wd_config_array_count(v), 3);
	int64_t n;
	assert_int_equal(wd_config_value_int(wd_config_array_get(v, 2), &n), 0);
	assert_int_equal(n, 3);

	v = wd_config_lookup(config, "mixed");
	assert_int_equal(wd_config_array_count(v), 7);
	static const enum wd_config_type types[] = {
		WD_CONFIG_INTEGER, WD_CONFIG_STRING, WD_CONFIG_FLOAT, WD_CONFIG_BOOLEAN,
		WD_CONFIG_DATETIME, WD_CONFIG_ARRAY, WD_CONFIG_TABLE,
	};
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(wd_config_value_type(wd_config_array_get(v, i)), types[i]);
	assert_int_equal(int_of(field(elem(v, 6), "six")), 6);

	v = wd_config_lookup(config, "nested");
	assert_int_equal(wd_config_array_count(v), 3);
	assert_int_equal(wd_config_array_count(wd_config_array_get(v, 0)), 2);
	assert_string_equal(str_of(elem(elem(v, 1), 1)), "b");

	v = wd_config_lookup(config, "multi");
	assert_int_equal(wd_config_array_count(v), 3);
	assert_string_equal(wd_config_value_origin(wd_config_array_get(v, 1)), "t:9");

	v = wd_config_lookup(config, "tables");
	assert_int_equal(wd_config_array_count(v), 2);
	assert_int_equal(int_of(field(elem(v, 1), "port")), 25);
	assert_int_equal(get_int(config, "after"), 0);
	wd_config_free(&config);
}

/* Inline tables, with dotted keys and nesting inside them. */
static void test_inline_tables(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"name = { first = \"Tom\", last = \"Preston-Werner\" }\n"
		"point = {x=1,y=2}\n"
		"empty = {}\n"
		"animal = { type.name = \"pug\", type.legs = 4 }\n"
		"deep = { a = { b = { c = [1, { d = true }] } } }\n"
		"ml = { s = \"\"\"multi\nline\"\"\" }\n");
	assert_string_equal(get_str(config, "name.first"), "Tom");
	assert_string_equal(get_str(config, "name.last"), "Preston-Werner");
	assert_int_equal(get_int(config, "point.y"), 2);
	assert_int_equal(type_of(config, "empty"), WD_CONFIG_TABLE);
	assert_int_equal(wd_config_table_count(wd_config_lookup(config, "empty")), 0);
	assert_string_equal(get_str(config, "animal.type.name"), "pug");
	assert_int_equal(get_int(config, "animal.type.legs"), 4);
	const struct wd_config_value *c = wd_config_lookup(config, "deep.a.b.c");
	assert_int_equal(wd_config_array_count(c), 2);
	assert_true(bool_of(field(elem(c, 1), "d")));
	assert_string_equal(get_str(config, "ml.s"), "multi\nline");
	wd_config_free(&config);
}

/* Bare, quoted and dotted keys, implicit super-tables, and document order. */
static void test_tables_and_keys(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"top = 1\n"
		"site.\"google.com\" = true\n"
		"fruit . color = 'red'\n"
		"3.14159 = \"pi\"\n"
		"\"\" = \"empty key\"\n"
		"'quoted \"value\"' = 2\n"
		"bare_key-1 = 3\n"
		"\"\xca\x8e\xc7\x9d\xca\x9e\" = \"value\"\n"
		"[a.b.c]\n"
		"x = 1\n"
		"[a]\n"
		"y = 2\n"
		"[ a . b ]\n"
		"z = 3\n"
		"[dog.\"tater.man\"]\n"
		"type.name = \"pug\"\n"
		"[fruit.apple.texture]\n"
		"smooth = true\n"
		"[x] # comment\n"
		"[x.y.z.w]\n");
	assert_int_equal(get_int(config, "top"), 1);
	assert_true(get_bool(config, "site.\"google.com\""));
	assert_true(get_bool(config, "site.'google.com'"));
	assert_null(wd_config_lookup(config, "site.google.com"));
	assert_string_equal(get_str(config, "fruit.color"), "red");
	assert_string_equal(get_str(config, "3.14159"), "pi");
	assert_string_equal(get_str(config, "\"\""), "empty key");
	assert_int_equal(get_int(config, "'quoted \"value\"'"), 2);
	assert_int_equal(get_int(config, "bare_key-1"), 3);
	assert_string_equal(get_str(config, "\xca\x8e\xc7\x9d\xca\x9e"), "value");
	assert_int_equal(get_int(config, "a.b.c.x"), 1);
	assert_int_equal(get_int(config, "a.y"), 2);
	assert_int_equal(get_int(config, "a.b.z"), 3);
	assert_string_equal(get_str(config, "dog.\"tater.man\".type.name"), "pug");
	assert_true(get_bool(config, "fruit.apple.texture.smooth"));
	assert_int_equal(type_of(config, "x.y.z.w"), WD_CONFIG_TABLE);

	/* Document order, including the implicit tables. */
	const struct wd_config_value *root = wd_config_lookup(config, "");
	assert_non_null(root);
	static const char *const order[] = {
		"top", "site", "fruit", "3", "", "quoted \"value\"", "bare_key-1",
		"\xca\x8e\xc7\x9d\xca\x9e", "a", "dog", "x",
	};
	assert_int_equal(wd_config_table_count(root), sizeof(order) / sizeof(order[0]));
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *key = NULL;
		assert_non_null(wd_config_table_entry(root, i, &key));
		assert_string_equal(key, order[i]);
	}
	assert_null(wd_config_table_entry(root, 99, NULL));
	const struct wd_config_value *a = wd_config_lookup(config, "a");
	const char *key;
	wd_config_table_entry(a, 0, &key);
	assert_string_equal(key, "b");
	wd_config_table_entry(a, 1, &key);
	assert_string_equal(key, "y");
	assert_non_null(wd_config_table_get(a, "y"));
	assert_null(wd_config_table_get(a, "nope"));
	wd_config_free(&config);
}

/* [[arrays]] of tables, sub-tables and nested arrays of their last element. */
static void test_array_of_tables(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"[[products]]\n"
		"name = \"Hammer\"\n"
		"sku = 738594937\n"
		"\n"
		"[[products]]  # empty table within the array\n"
		"\n"
		"[[products]]\n"
		"name = \"Nail\"\n"
		"color = \"gray\"\n"
		"\n"
		"[[fruits]]\n"
		"name = \"apple\"\n"
		"[fruits.physical]\n"
		"color = \"red\"\n"
		"[[fruits.varieties]]\n"
		"name = \"red delicious\"\n"
		"[[fruits.varieties]]\n"
		"name = \"granny smith\"\n"
		"[[fruits]]\n"
		"name = \"banana\"\n"
		"[[fruits.varieties]]\n"
		"name = \"plantain\"\n");
	const struct wd_config_value *products = wd_config_lookup(config, "products");
	assert_int_equal(wd_config_value_type(products), WD_CONFIG_ARRAY);
	assert_int_equal(wd_config_array_count(products), 3);
	assert_int_equal(wd_config_table_count(wd_config_array_get(products, 1)), 0);
	assert_string_equal(str_of(field(elem(products, 2), "color")), "gray");

	const struct wd_config_value *fruits = wd_config_lookup(config, "fruits");
	assert_int_equal(wd_config_array_count(fruits), 2);
	const struct wd_config_value *apple = wd_config_array_get(fruits, 0);
	const struct wd_config_value *physical = wd_config_table_get(apple, "physical");
	assert_string_equal(str_of(field(physical, "color")), "red");
	const struct wd_config_value *varieties = wd_config_table_get(apple, "varieties");
	assert_int_equal(wd_config_array_count(varieties), 2);
	assert_string_equal(str_of(field(elem(varieties, 1), "name")), "granny smith");
	varieties = wd_config_table_get(wd_config_array_get(fruits, 1), "varieties");
	assert_int_equal(wd_config_array_count(varieties), 1);
	wd_config_free(&config);
}

/* ---- Invalid documents ---- */

/* Redefinitions and syntax errors: each fails, naming the right line. */
static void test_invalid_structure(void **state)
{
	(void)state;
	expect_error("a = 1\na = 2\n", 2);
	expect_error("a = 1\n\n\"a\" = 2\n", 3);
	expect_error("[a]\nx = 1\n[a]\n", 3);
	expect_error("[a]\n[b]\n[A]\n[a]\n", 4);
	expect_error("a = {b = 1}\na.c = 2\n", 2);
	expect_error("a = {b = 1}\n[a]\n", 2);
	expect_error("a = {b = 1}\n[a.c]\n", 2);
	expect_error("a.b = 1\n[a]\n", 2);
	expect_error("[a.b]\nc = 1\n[a]\nb.d = 2\n", 4);
	expect_error("a = [1]\n[[a]]\n", 2);
	expect_error("[[a]]\n[a]\n", 2);
	expect_error("a = 1\n[a.b]\n", 2);
	expect_error("[a]\nb = 1\n[a.b]\n", 3);
	expect_error("[a]\nb = 1\n[[a.b]]\n", 3);
	expect_error("a.b = 1\na.b.c = 2\n", 2);
	expect_error("a = {b = 1, b = 2}\n", 1);
	expect_error("a = {b = 1,}\n", 1);
	expect_error("a = {b = 1\n}\n", 1);
	expect_error("a = {\nb = 1}\n", 1);
	expect_error("a = {b = 1 c = 2}\n", 1);
	expect_error("key\n", 1);
	expect_error("key =\n", 1);
	expect_error("= 1\n", 1);
	expect_error("\n\na = 1 b = 2\n", 3);
	expect_error("[a] x = 1\n", 1);
	expect_error("[a\n", 1);
	expect_error("[a]]\n", 1);
	expect_error("[[a]\n", 1);
	expect_error("[[a] ]\n", 1);
	expect_error("[]\n", 1);
	expect_error("[a.]\n", 1);
	expect_error("a. = 1\n", 1);
	expect_error("a..b = 1\n", 1);
	expect_error("a b = 1\n", 1);
	expect_error("a = \"x\" \"y\"\n", 1);
	expect_error("\"\"\"key\"\"\" = 1\n", 1);
	expect_error("a = [1 2]\n", 1);
	expect_error("a = [1,,2]\n", 1);
	expect_error("a = [,]\n", 1);
	expect_error("x = 1\na = [1,\n2,\n", 2);
	expect_error("a = ]\n", 1);
	expect_error("a = }\n", 1);
	expect_error("x = 1\n  # @include\n", 2);
	expect_error("x = 1\n# @include nope.toml\n", 2);
	expect_error("# @include \"x.toml\" trailing\n", 1);
}

/* Bad strings, escapes, numbers and date-times. */
static void test_invalid_values(void **state)
{
	(void)state;
	/* Strings. */
	expect_error("a = \"\\q\"\n", 1);
	expect_error("a = \"\\x41\"\n", 1);
	expect_error("a = \"\\e\"\n", 1);
	expect_error("a = \"\\ \"\n", 1);
	expect_error("\na = \"\\uD800\"\n", 2);
	expect_error("a = \"\\uDFFF\"\n", 1);
	expect_error("a = \"\\U00110000\"\n", 1);
	expect_error("a = \"\\u12\"\n", 1);
	expect_error("a = \"\\u12G4\"\n", 1);
	expect_error("a = \"abc\n", 1);
	expect_error("a = \"abc", 1);
	expect_error("a = 'abc\n'\n", 1);
	expect_error("x = 1\ny = 2\na = \"\"\"abc\n\n\n", 3);
	expect_error("a = '''abc\n\n", 1);
	expect_error("a = \"\"\"x\"\"\"\"\"\"\n", 1);
	expect_error("a = '''x''''''\n", 1);
	expect_error("a = \"\"\"\\ x\"\"\"\n", 1);
	expect_error("a = 1\n\n\n[b]\nc = \"\\u12\"\n", 5);
	/* Integers. */
	expect_error("a = 9223372036854775808\n", 1);
	expect_error("a = -9223372036854775809\n", 1);
	expect_error("a = 0x8000000000000000\n", 1);
	expect_error("a = 99999999999999999999999\n", 1);
	expect_error("a = 012\n", 1);
	expect_error("a = -01\n", 1);
	expect_error("a = 1__2\n", 1);
	expect_error("a = _1\n", 1);
	expect_error("a = 1_\n", 1);
	expect_error("a = +0x10\n", 1);
	expect_error("a = 0x\n", 1);
	expect_error("a = 0xG\n", 1);
	expect_error("a = 0o8\n", 1);
	expect_error("a = 0b2\n", 1);
	expect_error("a = 0X10\n", 1);
	expect_error("a = 1 000\n", 1);
	/* Floats. */
	expect_error("a = 1.\n", 1);
	expect_error("a = .5\n", 1);
	expect_error("a = 1e\n", 1);
	expect_error("a = 1.e5\n", 1);
	expect_error("a = 1e_5\n", 1);
	expect_error("a = 00.5\n", 1);
	expect_error("a = 1e400\n", 1);
	expect_error("a = -1e400\n", 1);
	expect_error("a = infinity\n", 1);
	expect_error("a = NaN\n", 1);
	expect_error("a = 1.5.3\n", 1);
	/* Booleans and bare words. */
	expect_error("a = tru\n", 1);
	expect_error("a = True\n", 1);
	expect_error("a = truex\n", 1);
	expect_error("a = hello\n", 1);
	/* Date-times. */
	expect_error("a = 1979-13-01\n", 1);
	expect_error("a = 1979-02-29\n", 1);
	expect_error("a = 1900-02-29\n", 1);
	expect_error("a = 1979-04-31\n", 1);
	expect_error("a = 1979-05-27T25:00:00\n", 1);
	expect_error("a = 07:32\n", 1);
	expect_error("a = 07:60:00\n", 1);
	expect_error("a = 1979-05-27T07:32:00+24:00\n", 1);
	expect_error("a = 1979-05-27T07:32:00.\n", 1);
	expect_error("a = 1979-05-27X07:32:00\n", 1);
	expect_error("a = 1979-5-27\n", 1);
	expect_error("a = 1979-05-27 07:32\n", 1);
}

/* Bytes TOML forbids anywhere: control characters, a lone CR, bad UTF-8, NUL. */
static void test_invalid_bytes(void **state)
{
	(void)state;
	expect_error("a = \"x\x01\"\n", 1);
	expect_error("a = 1\n# comment \x7f\n", 2);
	expect_error("a = 1\n# comment \x0b\n", 2);
	expect_error("a = 1\rb = 2\n", 1);
	expect_error("a = 1\n\nb = 2\r", 3);
	expect_error("a = \"\xff\"\n", 1);
	expect_error("a = 1\n# \xc0\xaf overlong\n", 2);
	expect_error("a = \"\xed\xa0\x80\"\n", 1);     /* encoded surrogate */
	expect_error("a = \"\xf4\x90\x80\x80\"\n", 1); /* past U+10FFFF */
	expect_error("a = \"\xe2\x82\"\n", 1);         /* truncated */
	expect_error_len("a = 1\nb = \"x\0y\"\n", 14, 2);
	expect_error_len("\0", 1, 1);
	/* Tabs are fine everywhere blanks are. */
	struct wd_config *config = parse_ok("\ta\t=\t\"x\ty\"\t#\tcomment\t\n");
	assert_string_equal(get_str(config, "a"), "x\ty");
	wd_config_free(&config);
	/* A byte order mark is skipped. */
	config = parse_ok("\xef\xbb\xbf" "a = 1\n");
	assert_int_equal(get_int(config, "a"), 1);
	wd_config_free(&config);
}

/* ---- Includes ---- */

/* An include is read relative to the including file and merged into the
   table in effect at its line. */
static void test_include_relative(void **state)
{
	(void)state;
	char *dir = make_temp_dir();
	write_file(dir, "main.toml",
		   "name = \"main\"\n"
		   "[imap]\n"
		   "host = \"127.0.0.1\"\n"
		   "# @include \"imap.toml\"\n"
		   "maxMB = 10\n"
		   "[pop3]\n"
		   "  #   @include   'pop3.toml'  \n");
	write_file(dir, "imap.toml",
		   "port = 9993\n"
		   "[compression]\n"
		   "windowBits = 12\n");
	write_file(dir, "pop3.toml", "port = 9995\n");
	char *error = NULL;
	struct wd_config *config = load_in(dir, "main.toml", &error);
	if (config == NULL)
		print_error("%s\n", error);
	assert_non_null(config);
	assert_string_equal(get_str(config, "name"), "main");
	assert_string_equal(get_str(config, "imap.host"), "127.0.0.1");
	assert_int_equal(get_int(config, "imap.port"), 9993);
	assert_int_equal(get_int(config, "imap.compression.windowBits"), 12);
	assert_int_equal(get_int(config, "imap.maxMB"), 10);
	assert_int_equal(get_int(config, "pop3.port"), 9995);
	assert_null(wd_config_lookup(config, "port"));
	char origin[600];
	snprintf(origin, sizeof(origin), "%s/imap.toml:3", dir);
	assert_string_equal(origin_of(config, "imap.compression.windowBits"), origin);
	snprintf(origin, sizeof(origin), "%s/main.toml:5", dir);
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "imap.maxMB")), origin);
	wd_config_free(&config);
	remove_dir(dir);
}

/* Includes of includes resolve relative to each including file. */
static void test_include_nested(void **state)
{
	(void)state;
	char *dir = make_temp_dir();
	write_file(dir, "main.toml", "[a]\n# @include \"sub/b.toml\"\n");
	/* c.toml is relative to sub/, the directory of b.toml. */
	write_file(dir, "sub/b.toml", "x = 1\n[b]\n# @include \"c.toml\"\n");
	write_file(dir, "sub/c.toml", "y = 2\n[[list]]\nz = 3\n[[list]]\nz = 4\n");
	char *error = NULL;
	struct wd_config *config = load_in(dir, "main.toml", &error);
	if (config == NULL)
		print_error("%s\n", error);
	assert_non_null(config);
	assert_int_equal(get_int(config, "a.x"), 1);
	assert_int_equal(get_int(config, "a.b.y"), 2);
	assert_int_equal(wd_config_array_count(wd_config_lookup(config, "a.b.list")), 2);
	wd_config_free(&config);
	remove_dir(dir);
}

/* The merge rule: tables merge, the later definition wins, and a
   redefinition inside one file is still an error. */
static void test_include_merge_rules(void **state)
{
	(void)state;
	char *dir = make_temp_dir();
	/* [imap] twice in one file is a redefinition, includes or not. */
	write_file(dir, "main.toml", "[imap]\n# @include \"inc.toml\"\n[imap.x]\n[imap]\n");
	write_file(dir, "inc.toml", "port = 2\n");
	expect_load_error(dir, "main.toml", "main.toml", 4);

	write_file(dir, "main.toml",
		   "[imap]\n"
		   "port = 1\n"                 /* the include, later, wins */
		   "keep = \"main\"\n"
		   "compression.memLevel = 5\n" /* tables merge */
		   "# @include \"inc.toml\"\n"
		   "host = \"later\"\n"          /* later definition wins over inc.toml */
		   "compression.windowBits = 13\n"
		   "[imap.tls]\n"                /* extends the included table */
		   "extra = true\n");
	write_file(dir, "inc.toml",
		   "port = 2\n"
		   "host = \"included\"\n"
		   "compression = { windowBits = 15, strategy = 1 }\n"
		   "[tls]\n"
		   "key = \"k\"\n");
	char *error = NULL;
	struct wd_config *config = load_in(dir, "main.toml", &error);
	if (config == NULL)
		print_error("%s\n", error);
	assert_non_null(config);
	assert_int_equal(get_int(config, "imap.port"), 2);
	assert_string_equal(get_str(config, "imap.keep"), "main");
	assert_string_equal(get_str(config, "imap.host"), "later");
	assert_int_equal(get_int(config, "imap.compression.memLevel"), 5);
	assert_int_equal(get_int(config, "imap.compression.windowBits"), 13);
	assert_int_equal(get_int(config, "imap.compression.strategy"), 1);
	assert_string_equal(get_str(config, "imap.tls.key"), "k");
	assert_true(get_bool(config, "imap.tls.extra"));
	wd_config_free(&config);

	/* Within the included file, redefinitions are still errors. */
	write_file(dir, "main.toml", "x = 1\n[imap]\n# @include \"inc.toml\"\n");
	write_file(dir, "inc.toml", "a = 1\n\na = 2\n");
	expect_load_error(dir, "main.toml", "inc.toml", 3);
	error = NULL;
	assert_null(load_in(dir, "main.toml", &error));
	assert_non_null(strstr(error, "(included from "));
	assert_non_null(strstr(error, "main.toml:3)"));
	free(error);
	remove_dir(dir);
}

/* Missing files, cycles, the depth limit, globs and non-files. */
static void test_include_errors(void **state)
{
	(void)state;
	char *dir = make_temp_dir();
	/* Missing file: reported at the include line of the including file. */
	write_file(dir, "main.toml", "a = 1\n\n# @include \"missing.toml\"\n");
	expect_load_error(dir, "main.toml", "main.toml", 3);

	/* Cycles, direct and indirect. */
	write_file(dir, "self.toml", "x = 1\n# @include \"self.toml\"\n");
	expect_load_error(dir, "self.toml", "self.toml", 2);
	write_file(dir, "a.toml", "[a]\n# @include \"b.toml\"\n");
	write_file(dir, "b.toml", "x = 1\n[b]\n# @include \"a.toml\"\n");
	expect_load_error(dir, "a.toml", "b.toml", 3);
	char *error = NULL;
	assert_null(load_in(dir, "a.toml", &error));
	assert_non_null(strstr(error, "cycle"));
	free(error);

	/* Include depth: 0 includes 1 includes ... 9 is one level too many. */
	for (int i = 0; i <= 9; i++) {
		char name[32], text[64];
		snprintf(name, sizeof(name), "d%d.toml", i);
		snprintf(text, sizeof(text), "v%d = %d\n# @include \"d%d.toml\"\n", i, i, i + 1);
		write_file(dir, name, i == 9 ? "v9 = 9\n" : text);
	}
	write_file(dir, "d9.toml", "v9 = 9\n# @include \"d10.toml\"\n");
	write_file(dir, "d10.toml", "v10 = 10\n");
	expect_load_error(dir, "d0.toml", "d8.toml", 2);
	/* Eight levels are allowed. */
	write_file(dir, "d8.toml", "v8 = 8\n");
	error = NULL;
	struct wd_config *config = load_in(dir, "d0.toml", &error);
	assert_non_null(config);
	assert_int_equal(get_int(config, "v8"), 8);
	wd_config_free(&config);

	/* A glob includes every match, in order; no match is not an error. */
	write_file(dir, "plugins/1.toml", "[p1]\nv = 1\n");
	write_file(dir, "plugins/2.toml", "[p2]\nv = 2\n");
	write_file(dir, "glob.toml", "[plugins]\n# @include \"plugins/*.toml\"\n"
				     "# @include \"none/*.toml\"\n");
	config = load_in(dir, "glob.toml", &error);
	assert_non_null(config);
	assert_int_equal(get_int(config, "plugins.p2.v"), 2);
	const char *key;
	wd_config_table_entry(wd_config_lookup(config, "plugins"), 0, &key);
	assert_string_equal(key, "p1");
	wd_config_free(&config);

	/* A directory is not a file. */
	write_file(dir, "dir.toml", "# @include \"plugins\"\n");
	expect_load_error(dir, "dir.toml", "dir.toml", 1);

	/* A missing top-level file has no line. */
	error = NULL;
	assert_null(load_in(dir, "nothing.toml", &error));
	assert_non_null(error);
	assert_non_null(strstr(error, "nothing.toml: cannot read"));
	free(error);
	remove_dir(dir);
}

/* Text parsed from memory resolves includes from the current directory. */
static void test_include_from_parse(void **state)
{
	(void)state;
	/* Text parsed from memory resolves includes from the current directory. */
	char *dir = make_temp_dir();
	write_file(dir, "inc.toml", "v = 7\n");
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	struct wd_config *config = parse_ok("[s]\n# @include \"inc.toml\"\n");
	assert_int_equal(get_int(config, "s.v"), 7);
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "s.v")), "inc.toml:1");
	wd_config_free(&config);
	expect_error("x = 1\n# @include \"missing.toml\"\n", 2);
	assert_int_equal(chdir(cwd), 0);
	remove_dir(dir);
}

/* ---- Overrides ---- */

/* --a.b=value arguments override the file; other arguments are ignored. */
static void test_apply_args(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok("[imap]\nport = 9993\nhost = \"0.0.0.0\"\n");
	char *argv[] = {
		"wd-server", "--imap.port=1143", "--config=conf.d/x.toml", "--config", "file.toml",
		"-v", "--verbose", "--=x", "--new.deep.key=hello world", "--imap.host='::'",
		"--", "--imap.port=1",
		NULL,
	};
	char *error = NULL;
	assert_int_equal(wd_config_apply_args(config, 12, argv, &error), 0);
	assert_int_equal(get_int(config, "imap.port"), 1143);
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "imap.port")),
			    "argument --imap.port");
	assert_string_equal(get_str(config, "imap.host"), "::");
	assert_string_equal(get_str(config, "new.deep.key"), "hello world");
	assert_null(wd_config_lookup(config, "config"));
	assert_null(wd_config_lookup(config, "verbose"));
	assert_null(wd_config_lookup(config, "v"));

	/* A key below a non-table value is an error naming the argument. */
	char *bad[] = { "wd-server", "--imap.port.x=1", NULL };
	assert_int_equal(wd_config_apply_args(config, 2, bad, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error, "argument --imap.port.x"));
	assert_non_null(strstr(error, "not a table"));
	free(error);
	assert_int_equal(get_int(config, "imap.port"), 1143);
	wd_config_free(&config);
}

/* APPCONF_a_b variables override the file; arguments win over them. */
static void test_apply_env(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok("[imap]\nport = 9993\n[dbs]\nmongo = \"x\"\n");
	char *envp[] = {
		"PATH=/usr/bin", "APPCONF_imap_port=1143", "APPCONF_dbs_mongo=mongodb://db/wd",
		"APPCONF_=ignored", "APPCONF_noequals", "APPCONFX_a=1", "APPCONF_imap_maxMB=50",
		NULL,
	};
	char *error = NULL;
	assert_int_equal(wd_config_apply_env(config, envp, &error), 0);
	assert_int_equal(get_int(config, "imap.port"), 1143);
	assert_int_equal(get_int(config, "imap.maxMB"), 50);
	assert_string_equal(get_str(config, "dbs.mongo"), "mongodb://db/wd");
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "imap.port")),
			    "env APPCONF_imap_port");
	assert_null(wd_config_lookup(config, "noequals"));

	/* Arguments are applied after the environment and win. */
	char *argv[] = { "wd", "--imap.port=2143", NULL };
	assert_int_equal(wd_config_apply_args(config, 2, argv, &error), 0);
	assert_int_equal(get_int(config, "imap.port"), 2143);

	/* NULL = the process environment. */
	setenv("APPCONF_envtest_value", "42", 1);
	assert_int_equal(wd_config_apply_env(config, NULL, &error), 0);
	unsetenv("APPCONF_envtest_value");
	assert_int_equal(get_int(config, "envtest.value"), 42);

	char *bad[] = { "APPCONF_imap_port_x=1", NULL };
	assert_int_equal(wd_config_apply_env(config, bad, &error), -1);
	assert_non_null(strstr(error, "env APPCONF_imap_port_x"));
	free(error);
	wd_config_free(&config);
}

/* Override text becomes a TOML value when all of it is one, else a string. */
static void test_override_typing(void **state)
{
	(void)state;
	struct wd_config *config = wd_config_new();
	assert_non_null(config);
	char *error = NULL;
	static const struct {
		const char *key, *text;
		enum wd_config_type type;
	} cases[] = {
		{ "int", "1143", WD_CONFIG_INTEGER },
		{ "neg", " -5 ", WD_CONFIG_INTEGER },
		{ "bool", "true", WD_CONFIG_BOOLEAN },
		{ "str", "hello world", WD_CONFIG_STRING },
		{ "quoted", "\"quoted\"", WD_CONFIG_STRING },
		{ "arr", "[1,2]", WD_CONFIG_ARRAY },
		{ "float", "1.5", WD_CONFIG_FLOAT },
		{ "table", "{ a = 1, b.c = 'x' }", WD_CONFIG_TABLE },
		{ "date", "2024-01-02", WD_CONFIG_DATETIME },
		{ "color", "#ff0000", WD_CONFIG_STRING },
		{ "partial", "1 # comment", WD_CONFIG_STRING },
		{ "unterminated", "\"abc", WD_CONFIG_STRING },
		{ "url", "mongodb://127.0.0.1:27017/wildduck", WD_CONFIG_STRING },
		{ "empty", "", WD_CONFIG_STRING },
		{ "pem", "-----BEGIN-----\nabc\n-----END-----\n", WD_CONFIG_STRING },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(wd_config_set(config, cases[i].key, cases[i].text, "test", &error),
				 0);
		assert_int_equal(type_of(config, cases[i].key), cases[i].type);
		assert_string_equal(origin_of(config, cases[i].key), "test");
	}
	assert_int_equal(get_int(config, "int"), 1143);
	assert_true(get_int(config, "neg") == -5);
	assert_true(get_bool(config, "bool"));
	assert_string_equal(get_str(config, "str"), "hello world");
	assert_string_equal(get_str(config, "quoted"), "quoted");
	assert_int_equal(wd_config_array_count(wd_config_lookup(config, "arr")), 2);
	assert_string_equal(get_str(config, "table.b.c"), "x");
	assert_string_equal(get_str(config, "color"), "#ff0000");
	assert_string_equal(get_str(config, "partial"), "1 # comment");
	assert_string_equal(get_str(config, "empty"), "");
	/* An override scalar still reads as its text: --api.accessToken=1234. */
	assert_string_equal(get_str(config, "int"), "1143");
	assert_string_equal(get_str(config, "bool"), "true");

	/* Intermediate tables are created; a later set replaces. */
	assert_int_equal(wd_config_set(config, "a.b.c", "1", NULL, &error), 0);
	assert_int_equal(wd_config_set(config, "a.b.c", "2", NULL, &error), 0);
	assert_int_equal(get_int(config, "a.b.c"), 2);
	assert_string_equal(wd_config_value_origin(wd_config_lookup(config, "a.b")), "override");
	assert_int_equal(wd_config_set(config, "a.\"x.y\"", "3", NULL, &error), 0);
	assert_int_equal(get_int(config, "a.'x.y'"), 3);
	/* wd_config_set_string: the text as it is, never parsed as TOML */
	assert_int_equal(wd_config_set_string(config, "s.num", "1143", NULL, &error), 0);
	assert_int_equal(wd_config_value_type(wd_config_lookup(config, "s.num")), WD_CONFIG_STRING);
	assert_string_equal(get_str(config, "s.num"), "1143");
	assert_int_equal(wd_config_set_string(config, "s.quoted", "\"a\\b\" [1]", NULL, &error), 0);
	assert_string_equal(get_str(config, "s.quoted"), "\"a\\b\" [1]");

	/* Errors. */
	assert_int_equal(wd_config_set(config, "int.sub", "1", "test", &error), -1);
	assert_non_null(strstr(error, "int is an integer (test), not a table"));
	free(error);
	assert_int_equal(wd_config_set(config, "a..b", "1", "test", &error), -1);
	free(error);
	assert_int_equal(wd_config_set(config, "", "1", "test", &error), -1);
	free(error);
	assert_int_equal(wd_config_set(config, "bad", "\xff", "test", &error), -1);
	free(error);
	assert_int_equal(wd_config_set(config, "a.\"unterminated", "1", "test", &error), -1);
	free(error);
	/* NULL error_r is allowed. */
	assert_int_equal(wd_config_set(config, "int.sub", "1", "test", NULL), -1);
	wd_config_free(&config);
}

/* ---- Getters ---- */

/* Defaults, conversions and type mismatches of the typed getters. */
static void test_getters(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok(
		"[imap]\n"
		"port = 9993\n"
		"host = \"0.0.0.0\"\n"
		"maxMB = \"25\"\n"
		"ratio = \"2.5\"\n"
		"flag = \"true\"\n"
		"word = \"abc\"\n"
		"f = 1.5\n"
		"list = [1]\n");
	const char *error = NULL, *s = NULL;
	int64_t i = 0;
	double d = 0;
	bool b = false;

	/* Absent keys give the default. */
	assert_int_equal(wd_config_get_int(config, "imap.nope", 7, &i, &error), 0);
	assert_int_equal(i, 7);
	assert_int_equal(wd_config_get_string(config, "nope.deeper", "def", &s, &error), 0);
	assert_string_equal(s, "def");
	assert_int_equal(wd_config_get_float(config, "imap.port.below", 0.5, &d, &error), 0);
	assert_true(d == 0.5);
	assert_int_equal(wd_config_get_bool(config, "x", true, &b, &error), 0);
	assert_true(b);

	/* Conversions. */
	assert_int_equal(wd_config_get_float(config, "imap.port", 0, &d, &error), 0);
	assert_true(d == 9993.0);
	assert_int_equal(wd_config_get_int(config, "imap.maxMB", 0, &i, &error), 0);
	assert_int_equal(i, 25);
	assert_int_equal(wd_config_get_float(config, "imap.maxMB", 0, &d, &error), 0);
	assert_true(d == 25.0);
	assert_int_equal(wd_config_get_float(config, "imap.ratio", 0, &d, &error), 0);
	assert_true(d == 2.5);
	assert_int_equal(wd_config_get_bool(config, "imap.flag", false, &b, &error), 0);
	assert_true(b);

	/* Mismatches: -1, the default, and a message with key and origin. */
	assert_int_equal(wd_config_get_string(config, "imap.port", "def", &s, &error), -1);
	assert_string_equal(s, "def");
	assert_string_equal(error, "imap.port: expected a string, found an integer at t:2");
	const char *first = error;
	assert_int_equal(wd_config_get_string(config, "imap.port", "def", &s, &error), -1);
	assert_ptr_equal(error, first); /* kept once */
	assert_int_equal(wd_config_get_int(config, "imap.host", 1, &i, &error), -1);
	assert_int_equal(i, 1);
	assert_string_equal(error, "imap.host: expected an integer, found a string at t:3");
	assert_int_equal(wd_config_get_int(config, "imap.word", 1, &i, &error), -1);
	assert_non_null(strstr(error, "imap.word"));
	assert_int_equal(wd_config_get_int(config, "imap.ratio", 1, &i, &error), -1);
	assert_int_equal(wd_config_get_int(config, "imap.f", 1, &i, &error), -1);
	assert_string_equal(error, "imap.f: expected an integer, found a float at t:8");
	assert_int_equal(wd_config_get_bool(config, "imap.port", false, &b, &error), -1);
	assert_int_equal(wd_config_get_string(config, "imap", NULL, &s, &error), -1);
	assert_string_equal(error, "imap: expected a string, found a table at t:1");
	assert_int_equal(wd_config_get_float(config, "imap.list", 0, &d, &error), -1);
	assert_non_null(strstr(error, "found an array at t:9"));
	/* NULL error_r is allowed. */
	assert_int_equal(wd_config_get_int(config, "imap.host", 1, &i, NULL), -1);

	/* Overrides name their origin in messages. */
	char *set_error = NULL;
	assert_int_equal(wd_config_set(config, "imap.port", "not a number",
				       "env APPCONF_imap_port", &set_error), 0);
	assert_int_equal(wd_config_get_int(config, "imap.port", 0, &i, &error), -1);
	assert_string_equal(error, "imap.port: expected an integer, found a string at "
				   "env APPCONF_imap_port");

	/* Value accessors on the wrong types. */
	assert_int_equal(wd_config_value_int(NULL, &i), -1);
	assert_int_equal(wd_config_value_string(wd_config_lookup(config, "imap.list"), &s), -1);
	assert_int_equal(wd_config_array_count(wd_config_lookup(config, "imap")), 0);
	assert_int_equal(wd_config_table_count(wd_config_lookup(config, "imap.list")), 0);
	assert_null(wd_config_table_get(wd_config_lookup(config, "imap.list"), "x"));
	assert_string_equal(wd_config_value_origin(NULL), "");
	wd_config_free(&config);

	/* An empty configuration answers with defaults; NULL frees are no-ops. */
	config = wd_config_new();
	assert_int_equal(wd_config_get_int(config, "imap.port", 143, &i, &error), 0);
	assert_int_equal(i, 143);
	assert_int_equal(wd_config_table_count(wd_config_lookup(config, "")), 0);
	wd_config_free(&config);
	wd_config_free(&config);
	assert_null(wd_config_lookup(NULL, "x"));
}

struct lookup_thread {
	const struct wd_config *config;
	int ok;
};

static void *lookup_thread_main(void *context)
{
	struct lookup_thread *t = context;
	for (int i = 0; i < 2000; i++) {
		int64_t port = 0;
		const char *s = NULL, *error = NULL;
		bool flag;
		char key[32];
		snprintf(key, sizeof(key), "k%d", i % 50);
		if (wd_config_get_int(t->config, "imap.port", 0, &port, &error) == 0 &&
		    port == 9993 &&
		    wd_config_get_string(t->config, "imap.port", NULL, &s, &error) < 0 &&
		    strstr(error, "imap.port") != NULL &&
		    wd_config_get_string(t->config, key, NULL, &s, &error) == 0 &&
		    atoi(s) == i % 50 &&
		    wd_config_get_bool(t->config, key, false, &flag, &error) < 0 &&
		    strstr(error, key) != NULL &&
		    wd_config_get_int(t->config, "a.\"b\"", 0, &port, &error) == 0 && port == 1)
			t->ok++;
	}
	return NULL;
}

/* Getters from several threads at once, including the kept error messages. */
static void test_threaded_lookups(void **state)
{
	(void)state;
	struct wd_config *config = parse_ok("[imap]\nport = 9993\n[a]\nb = 1\n");
	for (int i = 0; i < 50; i++) {
		char key[32], value[32];
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(value, sizeof(value), "%d", i);
		assert_int_equal(wd_config_set(config, key, value, "test", NULL), 0);
	}
	pthread_t threads[4];
	struct lookup_thread data[4];
	for (int i = 0; i < 4; i++) {
		data[i] = (struct lookup_thread){ config, 0 };
		assert_int_equal(pthread_create(&threads[i], NULL, lookup_thread_main, &data[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(data[i].ok, 2000);
	}
	wd_config_free(&config);
}

/* ---- conf.d/default.toml ---- */

/* conf.d/default.toml parses and has WildDuck's defaults. */
static void test_default_toml(void **state)
{
	(void)state;
	const char *source = getenv("WD_SOURCE_DIR");
	if (source == NULL) {
		print_error("WD_SOURCE_DIR is not set\n");
		fail();
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/conf.d/default.toml", source);
	char *error = NULL;
	struct wd_config *config = wd_config_load(path, &error);
	if (config == NULL) {
		print_error("%s\n", error);
		free(error);
		fail();
	}
	assert_int_equal(get_int(config, "imap.port"), 9993);
	assert_string_equal(get_str(config, "dbs.mongo"), "mongodb://127.0.0.1:27017/wildduck");
	assert_string_equal(get_str(config, "dbs.redis"), "redis://127.0.0.1:6379/3");
	assert_string_equal(get_str(config, "dbs.sender"), "zone-mta");
	assert_null(wd_config_lookup(config, "dbs.users"));
	assert_null(wd_config_lookup(config, "dbs.gridfs"));
	assert_string_equal(get_str(config, "imap.host"), "0.0.0.0");
	assert_true(get_bool(config, "imap.secure"));
	assert_true(get_bool(config, "imap.starttls"));
	assert_false(get_bool(config, "imap.proxy"));
	assert_int_equal(get_int(config, "imap.maxMB"), 25);
	assert_int_equal(get_int(config, "imap.maxConnections"), 15);
	assert_int_equal(get_int(config, "imap.retention"), 30);
	assert_false(get_bool(config, "imap.disableRetention"));
	assert_false(get_bool(config, "imap.enableCompression"));
	assert_int_equal(get_int(config, "imap.compression.windowBits"), 15);
	assert_int_equal(get_int(config, "imap.compression.memLevel"), 8);
	assert_int_equal(get_int(config, "pop3.port"), 9995);
	assert_int_equal(get_int(config, "pop3.maxMessages"), 250);
	assert_int_equal(get_int(config, "pop3.maxDownloadMB"), 10240);
	assert_false(get_bool(config, "lmtp.enabled"));
	assert_int_equal(get_int(config, "lmtp.port"), 2424);
	assert_string_equal(get_str(config, "lmtp.host"), "127.0.0.1");
	assert_int_equal(get_int(config, "api.port"), 8080);
	assert_false(get_bool(config, "api.secure"));
	assert_null(wd_config_lookup(config, "api.accessToken"));
	assert_false(get_bool(config, "api.accessControl.enabled"));
	assert_string_equal(get_str(config, "api.accessControl.secret"), "a secret cat");
	assert_int_equal(get_int(config, "api.accessControl.tokenTTL"), 1209600);
	assert_int_equal(get_int(config, "api.accessControl.tokenLifetime"), 15552000);
	assert_string_equal(get_str(config, "attachments.type"), "gridstore");
	assert_string_equal(get_str(config, "attachments.bucket"), "attachments");
	assert_true(get_bool(config, "attachments.decodeBase64"));
	assert_string_equal(get_str(config, "tls.cert"), "var/tls/server.crt");
	assert_string_equal(get_str(config, "tls.key"), "var/tls/server.key");
	assert_string_equal(get_str(config, "tls.minVersion"), "TLSv1.2");
	assert_null(wd_config_lookup(config, "totp.secret"));
	assert_null(wd_config_lookup(config, "emailDomain"));
	assert_int_equal(get_int(config, "maxStorage"), 1024);
	assert_string_equal(get_str(config, "log.level"), "info");
	assert_string_equal(get_str(config, "log.target"), "stderr");
	assert_int_equal(get_int(config, "workers.threads"), 8);
	assert_int_equal(get_int(config, "workers.queueLimit"), 10000);

	/* Overrides on top of the defaults. */
	char *argv[] = { "wd-server", "--imap.port=1143", NULL };
	assert_int_equal(wd_config_apply_args(config, 2, argv, &error), 0);
	assert_int_equal(get_int(config, "imap.port"), 1143);
	wd_config_free(&config);
}

/* ---- Hostile input ---- */

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t plen = strlen(prefix), slen = strlen(suffix);
	char *text = malloc(plen + n + slen + 1);
	assert_non_null(text);
	memcpy(text, prefix, plen);
	memset(text + plen, c, n);
	memcpy(text + plen + n, suffix, slen + 1);
	return text;
}

/* Deep nesting of every kind ends with an error, not a stack overflow. */
static void test_hostile_nesting(void **state)
{
	(void)state;
	char *text = repeat("", '[', 10000, "");
	expect_error(text, 1);
	free(text);
	text = repeat("a = ", '[', 10000, "");
	expect_error(text, 1);
	free(text);
	text = repeat("\n\na = ", '[', 10000, "\n");
	expect_error(text, 3);
	free(text);

	/* Exactly 64 levels: a is an array at depth 1 holding 63 nested arrays. */
	char *opening = repeat("a = ", '[', 64, "");
	char *ok = repeat(opening, ']', 64, "\n");
	struct wd_config *config = parse_ok(ok);
	wd_config_free(&config);
	free(ok);
	/* One element more in the innermost array is one level too many. */
	char *inner = repeat(opening, '1', 1, "");
	char *bad = repeat(inner, ']', 64, "\n");
	expect_error(bad, 1);
	free(inner);
	free(bad);
	free(opening);

	/* Inline tables, dotted keys and headers count too. */
	size_t n = 10000;
	char *deep = malloc(n * 6 + 16);
	assert_non_null(deep);
	char *end = deep + sprintf(deep, "a = ");
	for (size_t i = 0; i < n; i++)
		end += sprintf(end, "{b = ");
	expect_error(deep, 1);
	end = deep + sprintf(deep, "k");
	for (size_t i = 0; i < n; i++)
		end += sprintf(end, ".k");
	sprintf(end, " = 1\n");
	expect_error(deep, 1);
	end = deep + sprintf(deep, "\n[k");
	for (size_t i = 0; i < 100; i++)
		end += sprintf(end, ".k");
	sprintf(end, "]\n");
	expect_error(deep, 2);
	free(deep);

	/* A header at depth 60 leaves room for only a few more levels. */
	char header[512] = "[h";
	for (int i = 1; i < 60; i++)
		strcat(header, ".h");
	strcat(header, "]\nok = [[[1]]]\n");
	config = parse_ok(header);
	wd_config_free(&config);
	header[strlen(header) - 1] = '\0';
	strcat(header, "\nbad = [[[[[1]]]]]\n");
	expect_error(header, 3);
}

/* Documents over 4 MiB are refused, from memory, a file or an include. */
static void test_hostile_size(void **state)
{
	(void)state;
	size_t size = 5 * 1024 * 1024;
	char *text = malloc(size);
	assert_non_null(text);
	memset(text, '#', size);
	for (size_t i = 0; i < size; i += 100)
		text[i] = '\n';
	char *error = NULL;
	struct wd_config *config = wd_config_parse("big", text, size, &error);
	assert_null(config);
	assert_non_null(error);
	assert_non_null(strstr(error, "big:"));
	free(error);

	/* The same through a file, and through an include. */
	char *dir = make_temp_dir();
	char path[512];
	snprintf(path, sizeof(path), "%s/big.toml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, size, f), size);
	fclose(f);
	error = NULL;
	assert_null(wd_config_load(path, &error));
	assert_non_null(error);
	assert_non_null(strstr(error, "big.toml: larger than"));
	free(error);
	write_file(dir, "main.toml", "# @include \"big.toml\"\n");
	expect_load_error(dir, "main.toml", "main.toml", 1);
	remove_dir(dir);
	free(text);
}

/* Huge tables and arrays of tables are read in linear time. */
static void test_hostile_many_keys(void **state)
{
	(void)state;
	/* 200,000 keys in one table, and as many [[a]] elements: the hash index
	   keeps this linear (quadratic would take minutes). */
	size_t n = 200000;
	char *text = malloc(n * 32 + 64);
	assert_non_null(text);
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "k%zu = %zu\n", i, i);
	for (size_t i = 0; i < n / 4; i++)
		len += (size_t)sprintf(text + len, "[[a]]\n");
	clock_t start = clock();
	char *error = NULL;
	struct wd_config *config = wd_config_parse("t", text, len, &error);
	assert_non_null(config);
	assert_int_equal(get_int(config, "k199999"), 199999);
	assert_int_equal(wd_config_array_count(wd_config_lookup(config, "a")), n / 4);
	assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 20.0);
	wd_config_free(&config);

	/* A duplicate far down is still found. */
	len += (size_t)sprintf(text + len, "[b]\nx = 1\n[k5]\n");
	expect_error_len(text, len, (unsigned)(n + n / 4 + 3));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_basic_strings),
		cmocka_unit_test(test_multiline_strings),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_floats),
		cmocka_unit_test(test_datetimes),
		cmocka_unit_test(test_arrays),
		cmocka_unit_test(test_inline_tables),
		cmocka_unit_test(test_tables_and_keys),
		cmocka_unit_test(test_array_of_tables),
		cmocka_unit_test(test_invalid_structure),
		cmocka_unit_test(test_invalid_values),
		cmocka_unit_test(test_invalid_bytes),
		cmocka_unit_test(test_include_relative),
		cmocka_unit_test(test_include_nested),
		cmocka_unit_test(test_include_merge_rules),
		cmocka_unit_test(test_include_errors),
		cmocka_unit_test(test_include_from_parse),
		cmocka_unit_test(test_apply_args),
		cmocka_unit_test(test_apply_env),
		cmocka_unit_test(test_override_typing),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_threaded_lookups),
		cmocka_unit_test(test_default_toml),
		cmocka_unit_test(test_hostile_nesting),
		cmocka_unit_test(test_hostile_size),
		cmocka_unit_test(test_hostile_many_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
