/* wdctl asp create | list | delete — application-specific passwords. */
#include "wdctl.h"
#include "wd-auth-asp.h"
#include "wd-store-user.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct wd_auth_meta cli_meta = { .protocol = "CLI" };

int wdctl_asp_create(struct wdctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return wdctl_fail("usage: wdctl asp create <user> --description D "
				  "[--scope imap|pop3|smtp|*]... [--ttl SECONDS]");
	struct wd_asp_create req = { 0 };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--description") == 0 && i + 1 < argc) {
			req.description = argv[++i];
		} else if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc) {
			unsigned bit = wd_auth_scope_bit(argv[++i]);
			if (bit == 0)
				return wdctl_fail("asp create: unknown scope %s", argv[i]);
			req.scopes |= bit;
		} else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
			char *end;
			req.ttl = strtoll(argv[++i], &end, 10);
			if (*end != '\0' || req.ttl <= 0)
				return wdctl_fail("asp create: --ttl wants seconds");
		} else {
			return wdctl_fail("asp create: unknown option %s", argv[i]);
		}
	}
	if (req.description == NULL)
		return wdctl_fail("asp create: --description is required");
	bson_oid_t user, id;
	if (wdctl_find_user(ctl, argv[0], &user) < 0)
		return WDCTL_EXIT_FAIL;
	char password[WD_AUTH_ASP_LEN + 1];
	char *error = NULL;
	if (wd_auth_asp_create(ctl->auth, &user, &req, &cli_meta, &id, password, &error) < 0) {
		wdctl_fail("asp create: %s", error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	char hex[25];
	bson_oid_to_string(&id, hex);
	/* the only time the password is ever shown */
	printf("%s %s\n", hex, password);
	OPENSSL_cleanse(password, sizeof(password));
	return WDCTL_EXIT_OK;
}

static void print_time(int64_t ms)
{
	if (ms == 0) {
		fputs(" -", stdout);
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char text[32];
	gmtime_r(&t, &tm);
	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf(" %s", text);
}

int wdctl_asp_list(struct wdctl *ctl, int argc, char **argv)
{
	if (argc != 1)
		return wdctl_fail("usage: wdctl asp list <user>");
	bson_oid_t user;
	if (wdctl_find_user(ctl, argv[0], &user) < 0)
		return WDCTL_EXIT_FAIL;
	struct wd_asp_list list;
	char *error = NULL;
	if (wd_auth_asp_list(ctl->auth, &user, &list, &error) < 0) {
		wdctl_fail("asp list: %s", error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	/* id scopes created last-used last-ip expires description */
	for (size_t i = 0; i < list.count; i++) {
		const struct wd_asp *asp = &list.items[i];
		char hex[25];
		bson_oid_to_string(&asp->id, hex);
		printf("%s %s", hex, asp->scopes);
		print_time(asp->created_ms);
		print_time(asp->used_ms);
		printf(" %s", asp->used_ip != NULL ? asp->used_ip : "-");
		print_time(asp->expires_ms);
		printf(" %s\n", asp->description);
	}
	wd_asp_list_free(&list);
	return WDCTL_EXIT_OK;
}

int wdctl_asp_delete(struct wdctl *ctl, int argc, char **argv)
{
	if (argc != 2 || strlen(argv[1]) != 24 || !bson_oid_is_valid(argv[1], 24))
		return wdctl_fail("usage: wdctl asp delete <user> <asp-id>");
	bson_oid_t user, asp;
	if (wdctl_find_user(ctl, argv[0], &user) < 0)
		return WDCTL_EXIT_FAIL;
	bson_oid_init_from_string(&asp, argv[1]);
	char *error = NULL;
	if (wd_auth_asp_delete(ctl->auth, &user, &asp, &cli_meta, &error) < 0) {
		wdctl_fail("asp delete: %s", error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	return WDCTL_EXIT_OK;
}
