#ifndef WDCTL_H
#define WDCTL_H

/* wdctl internals: the command table and what every command gets. */

#include "wd-store.h"

#include <stddef.h>

struct wd_config;
struct wd_auth;

struct wdctl {
	struct wd_config *config;
	struct wd_store *store;
	struct wd_auth *auth;
};

/* A command: argv starts after the command words ("user create" → argv[0]
   is the first operand). Returns the process exit code. */
typedef int wdctl_command_fn(struct wdctl *ctl, int argc, char **argv);

int wdctl_user_create(struct wdctl *ctl, int argc, char **argv);
int wdctl_user_list(struct wdctl *ctl, int argc, char **argv);
int wdctl_mailbox_list(struct wdctl *ctl, int argc, char **argv);
int wdctl_message_import(struct wdctl *ctl, int argc, char **argv);
int wdctl_message_export(struct wdctl *ctl, int argc, char **argv);
int wdctl_check(struct wdctl *ctl, int argc, char **argv);
int wdctl_gc(struct wdctl *ctl, int argc, char **argv);
int wdctl_user_passwd(struct wdctl *ctl, int argc, char **argv);
int wdctl_asp_create(struct wdctl *ctl, int argc, char **argv);
int wdctl_asp_list(struct wdctl *ctl, int argc, char **argv);
int wdctl_asp_delete(struct wdctl *ctl, int argc, char **argv);
int wdctl_totp_setup(struct wdctl *ctl, int argc, char **argv);
int wdctl_totp_enable(struct wdctl *ctl, int argc, char **argv);
int wdctl_totp_disable(struct wdctl *ctl, int argc, char **argv);
int wdctl_auth_check(struct wdctl *ctl, int argc, char **argv);
int wdctl_auth_expire(struct wdctl *ctl, int argc, char **argv);

/* The repair of counters left by interrupted writes (cmd-check.c, used by
   gc): counters whose time field is older than `settled_before_ms` are set
   to the recount. Problems found and repaired go to *found_r and *repaired_r. */
int wdctl_recount_settled(struct wdctl *ctl, int64_t settled_before_ms, unsigned *found_r,
			  unsigned *repaired_r);

/* Shared helpers (wdctl.c). */
int wdctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Resolve a user by username (or 24-hex id) and a mailbox by path. */
int wdctl_find_user(struct wdctl *ctl, const char *name, bson_oid_t *user_r);
int wdctl_find_mailbox(struct wdctl *ctl, const bson_oid_t *user, const char *path,
		       bson_oid_t *mailbox_r);

/* A password from stdin: one line, the line end dropped, echo off on a
   terminal (prompt on stderr). Fills buf (NUL-terminated); returns its
   length, or -1 (message printed) when empty or longer than size - 1. */
long wdctl_read_password(const char *prompt, char *buf, size_t size);

#define WDCTL_EXIT_OK 0
#define WDCTL_EXIT_FAIL 1
#define WDCTL_EXIT_USAGE 2
#define WDCTL_EXIT_PROBLEMS 3 /* check found problems (and did not repair) */

#endif
