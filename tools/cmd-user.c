/* wdctl user create | user list */
#include "wdctl.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wdctl_user_create(struct wdctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return wdctl_fail("usage: wdctl user create <username> [--address A]... "
				  "[--password-hash H]");
	struct wd_user_create req = { .username = argv[0] };
	const char **extra = calloc((size_t)argc, sizeof(*extra));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--address") == 0 && i + 1 < argc) {
			if (req.address == NULL)
				req.address = argv[++i];
			else
				extra[req.extra_address_count++] = argv[++i];
		} else if (strcmp(argv[i], "--password-hash") == 0 && i + 1 < argc) {
			req.password_hash = argv[++i];
		} else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
			req.name = argv[++i];
		} else {
			free(extra);
			return wdctl_fail("user create: unknown option %s", argv[i]);
		}
	}
	req.extra_addresses = extra;
	bson_oid_t id;
	char *error = NULL;
	int ret = wd_store_user_create(ctl->store, &req, &id, &error);
	free(extra);
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
