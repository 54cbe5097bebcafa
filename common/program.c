/* The daemons' shared start-up: configuration sources and logging
 * (wd-program.h). */
#include "wd-program.h"
#include "wd-config.h"
#include "wd-log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int start_logging(const char *ident, const struct wd_config *config)
{
	const char *level_name, *target, *format, *error;
	if (wd_config_get_string(config, "log.level", "info", &level_name, &error) < 0 ||
	    wd_config_get_string(config, "log.target", "stderr", &target, &error) < 0 ||
	    wd_config_get_string(config, "log.format", "text", &format, &error) < 0) {
		fprintf(stderr, "%s: %s\n", ident, error);
		return -1;
	}
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
		fprintf(stderr, "%s: log.format: \"text\" or \"json\", not \"%s\"\n", ident, format);
		return -1;
	}
	wd_log_set_json(strcmp(format, "json") == 0);
	int level = wd_log_level_parse(level_name);
	if (level < 0) {
		fprintf(stderr, "%s: log.level: unknown level \"%s\"\n", ident, level_name);
		return -1;
	}
	wd_log_init(ident, strcmp(target, "syslog") == 0 ? WD_LOG_SINK_SYSLOG : WD_LOG_SINK_STDERR,
		    (enum wd_log_level)level);
	return 0;
}

struct wd_config *wd_program_config(const char *ident, int argc, char **argv,
				    void (*usage)(FILE *out), int *exit_r)
{
	*exit_r = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			*exit_r = 0;
			return NULL;
		}
		if (strncmp(argv[i], "--", 2) != 0 && (i == 1 || strcmp(argv[i - 1], "--config") != 0)) {
			fprintf(stderr, "%s: unexpected argument \"%s\"\n", ident, argv[i]);
			usage(stderr);
			*exit_r = 2;
			return NULL;
		}
	}
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	if (path == NULL && access("conf.d/default.toml", R_OK) == 0)
		path = "conf.d/default.toml";
	char *error = NULL;
	struct wd_config *config = path != NULL ? wd_config_load(path, &error) : wd_config_new();
	if (config != NULL && (wd_config_apply_env(config, NULL, &error) < 0 ||
			       wd_config_apply_args(config, argc, argv, &error) < 0))
		wd_config_free(&config);
	if (config == NULL) {
		fprintf(stderr, "%s: %s\n", ident, error != NULL ? error : "cannot load configuration");
		free(error);
		return NULL;
	}
	if (start_logging(ident, config) < 0)
		wd_config_free(&config);
	return config;
}
