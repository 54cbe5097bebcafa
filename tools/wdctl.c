/* wdctl — the administration command line of wildduck-c.
 *
 *   wdctl [--config FILE] [--section.key=value]... COMMAND [ARGS]
 *
 * Configuration is read as wd-server reads it (conf.d/default.toml keys,
 * APPCONF_ environment variables, --key=value arguments). Commands are a
 * table of word sequences; each lives in its own file (cmd-*.c). */
#include "wdctl.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *words[2];
	const char *usage;
	wdctl_command_fn *fn;
};

static const struct command commands[] = {
	{ { "user", "create" }, "user create <username> [--address A]... [--password-hash H]",
	  wdctl_user_create },
	{ { "user", "list" }, "user list", wdctl_user_list },
	{ { "mailbox", "list" }, "mailbox list <user>", wdctl_mailbox_list },
	{ { "message", "import" }, "message import <user> <mailbox> <file.eml|mbox|Maildir>...",
	  wdctl_message_import },
	{ { "message", "export" }, "message export <user> <mailbox> <uid>", wdctl_message_export },
	{ { "check", NULL }, "check [--repair]", wdctl_check },
};

int wdctl_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("wdctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return WDCTL_EXIT_FAIL;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: wdctl [--config FILE] [--section.key=value]... COMMAND\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  wdctl %s\n", commands[i].usage);
}

int wdctl_find_user(struct wdctl *ctl, const char *name, bson_oid_t *user_r)
{
	struct wd_user *user = NULL;
	char *error = NULL;
	int ret;
	if (strlen(name) == 24 && bson_oid_is_valid(name, 24)) {
		bson_oid_t id;
		bson_oid_init_from_string(&id, name);
		ret = wd_store_user_get(ctl->store, &id, &user, &error);
	} else {
		ret = wd_store_user_get_by_username(ctl->store, name, &user, &error);
	}
	if (ret < 0) {
		wdctl_fail("user %s: %s", name, error != NULL ? error : wd_store_error_kind_name(ret));
		free(error);
		return -1;
	}
	*user_r = user->id;
	wd_user_free(&user);
	return 0;
}

int wdctl_find_mailbox(struct wdctl *ctl, const bson_oid_t *user, const char *path,
		       bson_oid_t *mailbox_r)
{
	struct wd_mailbox *mailbox = NULL;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_path(ctl->store, user, path, &mailbox, &error);
	if (ret < 0) {
		wdctl_fail("mailbox %s: %s", path, error != NULL ? error : wd_store_error_kind_name(ret));
		free(error);
		return -1;
	}
	*mailbox_r = mailbox->id;
	wd_mailbox_free(&mailbox);
	return 0;
}

/* Options of wdctl itself come first; command words and operands follow.
   --config FILE / --config=FILE; --a.b=v overrides anywhere before the
   command. */
int main(int argc, char **argv)
{
	const char *config_path = NULL;
	int first = 1;
	for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
		if (strcmp(argv[first], "--help") == 0) {
			usage(stdout);
			return WDCTL_EXIT_OK;
		}
		if (strcmp(argv[first], "--config") == 0 && first + 1 < argc)
			config_path = argv[++first];
		else if (strncmp(argv[first], "--config=", 9) == 0)
			config_path = argv[first] + 9;
	}
	if (first >= argc) {
		usage(stderr);
		return WDCTL_EXIT_USAGE;
	}
	wd_log_init("wdctl", WD_LOG_SINK_STDERR, WD_LOG_WARNING);

	char *error = NULL;
	struct wdctl ctl = { 0 };
	if (config_path == NULL && access("conf.d/default.toml", R_OK) == 0)
		config_path = "conf.d/default.toml";
	ctl.config = config_path != NULL ? wd_config_load(config_path, &error) : wd_config_new();
	if (ctl.config == NULL) {
		wdctl_fail("%s", error);
		return WDCTL_EXIT_FAIL;
	}
	if (wd_config_apply_env(ctl.config, NULL, &error) < 0 ||
	    wd_config_apply_args(ctl.config, first, argv, &error) < 0) {
		wdctl_fail("%s", error);
		return WDCTL_EXIT_FAIL;
	}

	const struct command *cmd = NULL;
	int words = 0;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && cmd == NULL; i++) {
		int n = commands[i].words[1] != NULL ? 2 : 1;
		if (first + n - 1 >= argc)
			continue;
		if (strcmp(argv[first], commands[i].words[0]) == 0 &&
		    (n == 1 || strcmp(argv[first + 1], commands[i].words[1]) == 0)) {
			cmd = &commands[i];
			words = n;
		}
	}
	if (cmd == NULL) {
		fprintf(stderr, "wdctl: unknown command \"%s\"\n", argv[first]);
		usage(stderr);
		wd_config_free(&ctl.config);
		return WDCTL_EXIT_USAGE;
	}
	mongoc_init();
	mongoc_log_set_handler(NULL, NULL);
	ctl.store = wd_store_open(ctl.config, &error);
	if (ctl.store == NULL) {
		wdctl_fail("%s", error);
		free(error);
		wd_config_free(&ctl.config);
		return WDCTL_EXIT_FAIL;
	}
	int ret = cmd->fn(&ctl, argc - first - words, argv + first + words);
	wd_store_close(&ctl.store);
	wd_config_free(&ctl.config);
	return ret;
}
