/* wdctl — the administration command line of wildduck-c.
 *
 *   wdctl [--config FILE] [--section.key=value]... COMMAND [ARGS]
 *
 * Configuration is read as wd-server reads it (conf.d/default.toml keys,
 * APPCONF_ environment variables, --key=value arguments). Commands are a
 * table of word sequences; each lives in its own file (cmd-*.c). */
#include "wdctl.h"
#include "wd-auth.h"
#include "wd-config.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <stdarg.h>
#include <termios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *words[3];
	const char *usage;
	wdctl_command_fn *fn;
};

static const struct command commands[] = {
	{ { "user", "create" },
	  "user create <username> [--address A]... [--name N] [--password P|-] [--password-hash H]",
	  wdctl_user_create },
	{ { "user", "list" }, "user list", wdctl_user_list },
	{ { "user", "passwd" }, "user passwd <user> [--temporary]   (new password on stdin)",
	  wdctl_user_passwd },
	{ { "asp", "create" },
	  "asp create <user> --description D [--scope imap|pop3|smtp|*]... [--ttl SECONDS]",
	  wdctl_asp_create },
	{ { "asp", "list" }, "asp list <user>", wdctl_asp_list },
	{ { "asp", "delete" }, "asp delete <user> <asp-id>", wdctl_asp_delete },
	{ { "2fa", "totp", "setup" }, "2fa totp setup <user> [--issuer I] [--label L]",
	  wdctl_totp_setup },
	{ { "2fa", "totp", "enable" }, "2fa totp enable <user> <code>", wdctl_totp_enable },
	{ { "2fa", "totp", "disable" }, "2fa totp disable <user>", wdctl_totp_disable },
	{ { "auth", "check" },
	  "auth check <user-or-address> [--scope imap|pop3|smtp|master] [--ip IP]   "
	  "(password on stdin; exit 0 accepted, 1 refused)",
	  wdctl_auth_check },
	{ { "auth", "expire" }, "auth expire   (delete expired auth log entries and app passwords)",
	  wdctl_auth_expire },
	{ { "mailbox", "list" }, "mailbox list <user>", wdctl_mailbox_list },
	{ { "message", "import" }, "message import <user> <mailbox> <file.eml|mbox|Maildir>...",
	  wdctl_message_import },
	{ { "message", "export" }, "message export <user> <mailbox> <uid>", wdctl_message_export },
	{ { "check", NULL }, "check [--repair]", wdctl_check },
	{ { "gc", NULL },
	  "gc [--grace-hours N] [--settle-minutes N]   (expire TTL data, apply retention, repair counters of interrupted writes, remove unreferenced attachments)",
	  wdctl_gc },
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

long wdctl_read_password(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fprintf(stderr, "%s", prompt);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	size_t len = 0;
	int c;
	bool too_long = false;
	while ((c = getchar()) != EOF && c != '\n') {
		if (len + 1 < size)
			buf[len++] = (char)c;
		else
			too_long = true;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (too_long) {
		wdctl_fail("password longer than %zu bytes", size - 1);
		return -1;
	}
	if (len == 0) {
		wdctl_fail("empty password");
		return -1;
	}
	return (long)len;
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
		int n = 0;
		while (n < 3 && commands[i].words[n] != NULL)
			n++;
		if (first + n - 1 >= argc)
			continue;
		int w = 0;
		while (w < n && strcmp(argv[first + w], commands[i].words[w]) == 0)
			w++;
		if (w == n) {
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
	ctl.auth = wd_auth_create(ctl.store, ctl.config, &error);
	if (ctl.auth == NULL) {
		wdctl_fail("%s", error);
		free(error);
		wd_store_close(&ctl.store);
		wd_config_free(&ctl.config);
		return WDCTL_EXIT_FAIL;
	}
	int ret = cmd->fn(&ctl, argc - first - words, argv + first + words);
	wd_auth_destroy(&ctl.auth);
	wd_store_close(&ctl.store);
	wd_config_free(&ctl.config);
	return ret;
}
