/* wdctl user create | user list | user passwd */
#include "wdctl.h"
#include "wd-auth-login.h"
#include "wd-auth-password.h"
#include "wd-store-user.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wdctl_user_create(struct wdctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return wdctl_fail("usage: wdctl user create <username> [--address A]... [--name N] "
				  "[--password P|-] [--password-hash H]");
	struct wd_user_create req = { .username = argv[0], .spam_level = WD_DEFAULT_SPAM_LEVEL };
	const char **extra = calloc((size_t)argc, sizeof(*extra));
	const char *password = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--address") == 0 && i + 1 < argc) {
			if (req.address == NULL)
				req.address = argv[++i];
			else
				extra[req.extra_address_count++] = argv[++i];
		} else if (strcmp(argv[i], "--password-hash") == 0 && i + 1 < argc) {
			req.password_hash = argv[++i];
		} else if (strcmp(argv[i], "--password") == 0 && i + 1 < argc) {
			password = argv[++i];
		} else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
			req.name = argv[++i];
		} else {
			free(extra);
			return wdctl_fail("user create: unknown option %s", argv[i]);
		}
	}
	req.extra_addresses = extra;
	/* --password hashes here in WildDuck's default scheme; "-" reads it from
	   stdin so it stays out of the process list */
	char buf[WD_AUTH_MAX_PASSWORD + 1];
	char *hash = NULL;
	if (password != NULL && req.password_hash != NULL) {
		free(extra);
		return wdctl_fail("user create: --password and --password-hash exclude each other");
	}
	if (password != NULL && strcmp(password, "-") == 0) {
		long len = wdctl_read_password("Password: ", buf, sizeof(buf));
		if (len < 0) {
			free(extra);
			return WDCTL_EXIT_FAIL;
		}
		password = buf;
	}
	if (password != NULL) {
		const char *herror;
		hash = wd_auth_password_hash(password, strlen(password), &herror);
		OPENSSL_cleanse(buf, sizeof(buf));
		if (hash == NULL) {
			free(extra);
			return wdctl_fail("user create: %s", herror);
		}
		req.password_hash = hash;
	} else if (req.password_hash != NULL &&
		   wd_auth_password_scheme(req.password_hash) == WD_PASSWORD_UNKNOWN) {
		free(extra);
		return wdctl_fail("user create: --password-hash is not a hash WildDuck accepts");
	}
	bson_oid_t id;
	char *error = NULL;
	int ret = wd_store_user_create(ctl->store, &req, &id, &error);
	free(extra);
	free(hash);
	if (ret < 0) {
		wdctl_fail("user create %s: %s", argv[0], error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	char hex[25];
	bson_oid_to_string(&id, hex);
	printf("%s\n", hex);
	return WDCTL_EXIT_OK;
}

int wdctl_user_list(struct wdctl *ctl, int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return wdctl_fail("usage: wdctl user list");
	bson_oid_t after;
	bool have_after = false;
	for (;;) {
		struct wd_user_list list = { 0 };
		char *error = NULL;
		int ret = wd_store_user_list(ctl->store, have_after ? &after : NULL, 250, &list, &error);
		if (ret < 0) {
			wdctl_fail("user list: %s", error);
			free(error);
			return WDCTL_EXIT_FAIL;
		}
		for (size_t i = 0; i < list.count; i++) {
			char hex[25];
			bson_oid_to_string(&list.items[i].id, hex);
			printf("%s %s %s %lld\n", hex, list.items[i].username,
			       list.items[i].address[0] != '\0' ? list.items[i].address : "-",
			       (long long)list.items[i].storage_used);
		}
		size_t count = list.count;
		if (count > 0) {
			after = list.items[count - 1].id;
			have_after = true;
		}
		wd_user_list_free(&list);
		if (count < 250)
			break;
	}
	return WDCTL_EXIT_OK;
}

int wdctl_user_passwd(struct wdctl *ctl, int argc, char **argv)
{
	if (argc < 1 || argc > 2 || (argc == 2 && strcmp(argv[1], "--temporary") != 0))
		return wdctl_fail("usage: wdctl user passwd <user> [--temporary]   "
				  "(new password on stdin)");
	bson_oid_t id;
	if (wdctl_find_user(ctl, argv[0], &id) < 0)
		return WDCTL_EXIT_FAIL;
	char buf[WD_AUTH_MAX_PASSWORD + 1];
	long len = wdctl_read_password("New password: ", buf, sizeof(buf));
	if (len < 0)
		return WDCTL_EXIT_FAIL;
	struct wd_auth_password_change change = { .password = buf, .len = (size_t)len,
						   .temporary = argc == 2 };
	struct wd_auth_meta meta = { .protocol = "CLI" };
	char *error = NULL;
	int ret = wd_auth_password_set(ctl->auth, &id, &change, &meta, &error);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (ret < 0) {
		wdctl_fail("user passwd %s: %s", argv[0], error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	return WDCTL_EXIT_OK;
}
