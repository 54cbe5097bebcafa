/* wdctl mailbox list */
#include "wdctl.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>

int wdctl_mailbox_list(struct wdctl *ctl, int argc, char **argv)
{
	if (argc != 1)
		return wdctl_fail("usage: wdctl mailbox list <user>");
	bson_oid_t user;
	if (wdctl_find_user(ctl, argv[0], &user) < 0)
		return WDCTL_EXIT_FAIL;
	struct wd_mailbox_list list = { 0 };
	char *error = NULL;
	int ret = wd_store_mailbox_list(ctl->store, &user, WD_MAILBOX_LIST_HIDDEN, &list, &error);
	if (ret < 0) {
		wdctl_fail("mailbox list: %s", error);
		free(error);
		return WDCTL_EXIT_FAIL;
	}
	for (size_t i = 0; i < list.count; i++) {
		const struct wd_mailbox *m = &list.items[i];
		printf("%s\t%s\tuidvalidity=%u uidnext=%u highestmodseq=%llu%s\n", m->path,
		       m->special_use != NULL ? m->special_use : "-", m->uid_validity, m->uid_next,
		       (unsigned long long)m->modify_index, m->subscribed ? "" : " unsubscribed");
	}
	wd_mailbox_list_free(&list);
	return WDCTL_EXIT_OK;
}
