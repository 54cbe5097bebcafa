/* The `wildduck` mailbox list: the user's folders are the documents of the
 * `mailboxes` collection (reference §2.8), read through libwdstore.
 *
 * Names: a WildDuck path is a full Unicode path with "/" between levels,
 * INBOX upper-case; the list's hierarchy separator is "/" as well, so a
 * storage name is the path itself and Dovecot's vname differs only by the
 * namespace prefix. WildDuck's storage is flat: "a/b" may exist without
 * "a", which is then listed as \NonExistent (\NoSelect) with children, the
 * way imapc shows a remote server's folders.
 *
 * Hidden mailboxes are never listed and cannot be opened, as in WildDuck.
 * Subscriptions are the `subscribed` field. There are no files: the only
 * path this list reports is the index directory when INDEX= names one
 * (the tmpfs middle ground of docs/dovecot-storage.md); without INDEX=, or
 * with INDEX=MEMORY, indexes live in memory. */
#include "wildduck-storage.h"

#include "imap-match.h"
#include "mailbox-tree.h"
#include "mailbox-list-subscriptions.h"

#include "wd-store.h"
#include "wd-store-user.h"

#include <stdlib.h>

struct wildduck_list_iterate_context {
	struct mailbox_list_iterate_context ctx;
	struct mailbox_tree_context *tree;
	struct mailbox_tree_iterate_context *iter;
	struct mailbox_info info;
};

static struct mailbox_list *wildduck_list_alloc(void)
{
	pool_t pool = pool_alloconly_create("wildduck mailbox list", 2048);
	struct mailbox_list *list = p_new(pool, struct mailbox_list, 1);

	*list = wildduck_mailbox_list;
	list->pool = pool;
	return list;
}

static int wildduck_list_init(struct mailbox_list *list ATTR_UNUSED,
			      const char **error_r ATTR_UNUSED)
{
	/* the database is opened on first use: `doveadm` and the auth
	   lookups create lists that never read anything */
	return 0;
}

static void wildduck_list_deinit(struct mailbox_list *list)
{
	pool_unref(&list->pool);
}

static char wildduck_list_get_hierarchy_sep(struct mailbox_list *list ATTR_UNUSED)
{
	return WILDDUCK_HIERARCHY_SEP;
}

static int wildduck_list_get_path(struct mailbox_list *list, const char *name,
				  enum mailbox_list_path_type type, const char **path_r)
{
	const char *index_dir = list->set.index_dir;

	switch (type) {
	case MAILBOX_LIST_PATH_TYPE_INDEX:
	case MAILBOX_LIST_PATH_TYPE_INDEX_CACHE:
	case MAILBOX_LIST_PATH_TYPE_CONTROL:
		/* no INDEX= or INDEX=MEMORY (parsed to ""): in memory */
		if (index_dir == NULL || *index_dir == '\0')
			return 0;
		*path_r = name == NULL || *name == '\0' ? index_dir :
			  t_strconcat(index_dir, "/", name, NULL);
		return 1;
	default:
		/* no mailbox files, directories or alt storage */
		return 0;
	}
}

static const char *wildduck_list_get_temp_prefix(struct mailbox_list *list ATTR_UNUSED,
						 bool global ATTR_UNUSED)
{
	return ".temp.wildduck.";
}

void wildduck_list_set_error(struct mailbox_list *list, int ret, char *error)
{
	const char *text = error != NULL ? error : "unknown error";
	enum mail_error kind = wildduck_mail_error(ret);

	if (kind == MAIL_ERROR_TEMP)
		mailbox_list_set_critical(list, "wildduck: %s", text);
	else
		mailbox_list_set_error(list, kind, text);
	free(error);
}

static struct wildduck_user *list_user(struct mailbox_list *list)
{
	struct wildduck_user *wuser = wildduck_user_get(list->ns->user);
	const char *error;

	if (wuser == NULL) {
		mailbox_list_set_critical(list, "wildduck: the plugin is not in mail_plugins");
		return NULL;
	}
	if (wildduck_user_connect(wuser, &error) < 0) {
		mailbox_list_set_critical(list, "wildduck: %s", error);
		return NULL;
	}
	return wuser;
}

static const char *special_use_flag(const char *special_use)
{
	/* WildDuck stores the default four; anything else it never writes */
	static const char *const known[] = {
		"\\All", "\\Archive", "\\Drafts", "\\Flagged",
		"\\Junk", "\\Sent", "\\Trash", "\\Important",
	};
	for (unsigned int i = 0; i < N_ELEMENTS(known); i++) {
		if (strcasecmp(special_use, known[i]) == 0)
			return known[i];
	}
	return NULL;
}

static int read_mailboxes(struct mailbox_list *list, unsigned int flags,
			  struct wd_mailbox_list *boxes_r)
{
	struct wildduck_user *wuser = list_user(list);
	char *error = NULL;
	int ret;

	if (wuser == NULL)
		return -1;
	ret = wd_store_mailbox_list(wuser->store, &wuser->user_id, flags, boxes_r, &error);
	if (ret < 0) {
		wildduck_list_set_error(list, ret, error);
		return -1;
	}
	free(error);
	return 0;
}

static struct mailbox_list_iterate_context *
wildduck_list_iter_init(struct mailbox_list *list, const char *const *patterns,
			enum mailbox_list_iter_flags flags)
{
	struct wildduck_list_iterate_context *ctx;
	struct mailbox_list_iter_update_context update_ctx;
	struct wd_mailbox_list boxes;
	pool_t pool;
	char sep = mail_namespace_get_sep(list->ns);

	if ((flags & MAILBOX_LIST_ITER_SELECT_SUBSCRIBED) != 0) {
		/* subscriptions come from subscriptions_refresh() */
		return mailbox_list_subscriptions_iter_init(list, patterns, flags);
	}

	pool = pool_alloconly_create("wildduck list iter", 2048);
	ctx = p_new(pool, struct wildduck_list_iterate_context, 1);
	ctx->ctx.pool = pool;
	ctx->ctx.list = list;
	ctx->ctx.flags = flags;
	ctx->ctx.glob = imap_match_init_multiple(pool, patterns, TRUE, sep);
	array_create(&ctx->ctx.module_contexts, pool, sizeof(void *), 5);
	ctx->info.ns = list->ns;
	ctx->tree = mailbox_tree_init(sep);
	mailbox_tree_set_parents_nonexistent(ctx->tree);

	if (read_mailboxes(list, 0, &boxes) < 0) {
		ctx->ctx.failed = TRUE;
	} else {
		i_zero(&update_ctx);
		update_ctx.iter_ctx = &ctx->ctx;
		update_ctx.tree_ctx = ctx->tree;
		update_ctx.glob = ctx->ctx.glob;
		update_ctx.match_parents = TRUE;
		for (size_t i = 0; i < boxes.count; i++) {
			const struct wd_mailbox *box = &boxes.items[i];
			const char *vname = mailbox_list_get_vname(list, box->path);
			const char *special;

			update_ctx.leaf_flags = box->subscribed ? MAILBOX_SUBSCRIBED : 0;
			if (box->special_use != NULL &&
			    (special = special_use_flag(box->special_use)) != NULL) {
				if (strcmp(special, "\\Drafts") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_DRAFTS;
				else if (strcmp(special, "\\Junk") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_JUNK;
				else if (strcmp(special, "\\Sent") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_SENT;
				else if (strcmp(special, "\\Trash") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_TRASH;
				else if (strcmp(special, "\\Archive") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_ARCHIVE;
				else if (strcmp(special, "\\All") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_ALL;
				else if (strcmp(special, "\\Flagged") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_FLAGGED;
				else if (strcmp(special, "\\Important") == 0)
					update_ctx.leaf_flags |= MAILBOX_SPECIALUSE_IMPORTANT;
			}
			mailbox_list_iter_update(&update_ctx, vname);
			/* a parent made \NonExistent by an earlier child exists */
			struct mailbox_node *node = mailbox_tree_lookup(ctx->tree, vname);
			if (node != NULL)
				node->flags &= ENUM_NEGATE(MAILBOX_NONEXISTENT | MAILBOX_NOSELECT);
		}
		wd_mailbox_list_free(&boxes);
	}
	ctx->iter = mailbox_tree_iterate_init(ctx->tree, NULL, 0);
	return &ctx->ctx;
}

static const char *special_use_string(pool_t pool, enum mailbox_info_flags flags)
{
	static const struct {
		enum mailbox_info_flags flag;
		const char *name;
	} map[] = {
		{ MAILBOX_SPECIALUSE_ALL, "\\All" },
		{ MAILBOX_SPECIALUSE_ARCHIVE, "\\Archive" },
		{ MAILBOX_SPECIALUSE_DRAFTS, "\\Drafts" },
		{ MAILBOX_SPECIALUSE_FLAGGED, "\\Flagged" },
		{ MAILBOX_SPECIALUSE_JUNK, "\\Junk" },
		{ MAILBOX_SPECIALUSE_SENT, "\\Sent" },
		{ MAILBOX_SPECIALUSE_TRASH, "\\Trash" },
		{ MAILBOX_SPECIALUSE_IMPORTANT, "\\Important" },
	};
	string_t *str = NULL;

	for (unsigned int i = 0; i < N_ELEMENTS(map); i++) {
		if ((flags & map[i].flag) == 0)
			continue;
		if (str == NULL)
			str = str_new(pool, 32);
		else
			str_append_c(str, ' ');
		str_append(str, map[i].name);
	}
	return str == NULL ? NULL : str_c(str);
}

static const struct mailbox_info *
wildduck_list_iter_next(struct mailbox_list_iterate_context *_ctx)
{
	struct wildduck_list_iterate_context *ctx =
		container_of(_ctx, struct wildduck_list_iterate_context, ctx);
	struct mailbox_node *node;
	const char *vname;

	if ((_ctx->flags & MAILBOX_LIST_ITER_SELECT_SUBSCRIBED) != 0)
		return mailbox_list_subscriptions_iter_next(_ctx);
	if (_ctx->failed)
		return NULL;

	do {
		node = mailbox_tree_iterate_next(ctx->iter, &vname);
		if (node == NULL)
			return mailbox_list_iter_default_next(_ctx);
	} while ((node->flags & MAILBOX_MATCHED) == 0);

	ctx->info.vname = vname;
	ctx->info.flags = node->flags;
	ctx->info.special_use = special_use_string(_ctx->pool, node->flags);
	return &ctx->info;
}

static int wildduck_list_iter_deinit(struct mailbox_list_iterate_context *_ctx)
{
	struct wildduck_list_iterate_context *ctx =
		container_of(_ctx, struct wildduck_list_iterate_context, ctx);
	int ret = _ctx->failed ? -1 : 0;

	if ((_ctx->flags & MAILBOX_LIST_ITER_SELECT_SUBSCRIBED) != 0)
		return mailbox_list_subscriptions_iter_deinit(_ctx);
	mailbox_tree_iterate_deinit(&ctx->iter);
	mailbox_tree_deinit(&ctx->tree);
	pool_unref(&_ctx->pool);
	return ret;
}

static int wildduck_list_subscriptions_refresh(struct mailbox_list *src_list,
					       struct mailbox_list *dest_list)
{
	struct wd_mailbox_list boxes;
	char sep = mail_namespace_get_sep(src_list->ns);
	bool created;

	if (dest_list->subscriptions == NULL)
		dest_list->subscriptions = mailbox_tree_init(sep);
	if (read_mailboxes(src_list, WD_MAILBOX_LIST_SUBSCRIBED, &boxes) < 0) {
		if (src_list != dest_list)
			mail_storage_copy_list_error(dest_list->ns->storage, src_list);
		return -1;
	}
	mailbox_tree_clear(dest_list->subscriptions);
	for (size_t i = 0; i < boxes.count; i++) {
		const char *vname = mailbox_list_get_vname(dest_list, boxes.items[i].path);
		struct mailbox_node *node =
			mailbox_tree_get(dest_list->subscriptions, vname, &created);
		node->flags = MAILBOX_SUBSCRIBED;
	}
	wd_mailbox_list_free(&boxes);
	return 0;
}

static int wildduck_list_set_subscribed(struct mailbox_list *list, const char *name, bool set)
{
	struct wildduck_user *wuser = list_user(list);
	char *error = NULL;
	int ret;

	if (wuser == NULL)
		return -1;
	ret = wd_store_mailbox_subscribe(wuser->store, &wuser->user_id, name, set, &error);
	if (ret == WD_STORE_ERR_NOT_FOUND && !set) {
		/* unsubscribing a name that does not exist: nothing to do */
		free(error);
		return 0;
	}
	if (ret < 0) {
		wildduck_list_set_error(list, ret, error);
		return -1;
	}
	free(error);
	return 0;
}

/* The mailbox document's id for a storage name; NOTFOUND set otherwise. */
static int lookup_id(struct mailbox_list *list, struct wildduck_user *wuser, const char *name,
		     bson_oid_t *id_r)
{
	struct wd_mailbox *box = NULL;
	char *error = NULL;
	int ret = wd_store_mailbox_get_by_path(wuser->store, &wuser->user_id, name, &box, &error);

	if (ret < 0) {
		if (ret == WD_STORE_ERR_NOT_FOUND) {
			free(error);
			mailbox_list_set_error(list, MAIL_ERROR_NOTFOUND,
					       T_MAILBOX_LIST_ERR_NOT_FOUND(list, name));
		} else {
			wildduck_list_set_error(list, ret, error);
		}
		return -1;
	}
	free(error);
	if (box->hidden) {
		wd_mailbox_free(&box);
		mailbox_list_set_error(list, MAIL_ERROR_NOTFOUND,
				       T_MAILBOX_LIST_ERR_NOT_FOUND(list, name));
		return -1;
	}
	bson_oid_copy(&box->id, id_r);
	wd_mailbox_free(&box);
	return 0;
}

static int wildduck_list_delete_mailbox(struct mailbox_list *list, const char *name)
{
	struct wildduck_user *wuser = list_user(list);
	bson_oid_t id;
	char *error = NULL;
	int ret;

	if (wuser == NULL || lookup_id(list, wuser, name, &id) < 0)
		return -1;
	ret = wd_store_mailbox_delete(wuser->store, &wuser->user_id, &id, &error);
	if (ret < 0) {
		wildduck_list_set_error(list, ret, error);
		return -1;
	}
	free(error);
	return 0;
}

static int wildduck_list_delete_dir(struct mailbox_list *list ATTR_UNUSED,
				    const char *name ATTR_UNUSED)
{
	/* a "directory" is a parent path no document has: nothing to delete */
	return 0;
}

static int wildduck_list_delete_symlink(struct mailbox_list *list, const char *name ATTR_UNUSED)
{
	mailbox_list_set_error(list, MAIL_ERROR_NOTPOSSIBLE, "Not supported");
	return -1;
}

static int wildduck_list_rename_mailbox(struct mailbox_list *oldlist, const char *oldname,
					struct mailbox_list *newlist, const char *newname)
{
	struct wildduck_user *wuser;
	bson_oid_t id;
	char *error = NULL;
	int ret;

	if (oldlist != newlist) {
		mailbox_list_set_error(oldlist, MAIL_ERROR_NOTPOSSIBLE,
				       "Can't rename mailboxes across namespaces.");
		return -1;
	}
	wuser = list_user(oldlist);
	if (wuser == NULL || lookup_id(oldlist, wuser, oldname, &id) < 0)
		return -1;
	ret = wd_store_mailbox_rename(wuser->store, &wuser->user_id, &id, newname, NULL, &error);
	if (ret < 0) {
		wildduck_list_set_error(oldlist, ret, error);
		return -1;
	}
	free(error);
	return 0;
}

struct mailbox_list wildduck_mailbox_list = {
	.name = WILDDUCK_LIST_NAME,
	.props = MAILBOX_LIST_PROP_NO_ROOT | MAILBOX_LIST_PROP_AUTOCREATE_DIRS |
		 MAILBOX_LIST_PROP_NO_LIST_INDEX | MAILBOX_LIST_PROP_NO_ALT_DIR |
		 MAILBOX_LIST_PROP_NO_INTERNAL_NAMES,
	.mailbox_name_max_length = MAILBOX_LIST_NAME_MAX_LENGTH,

	.v = {
		.alloc = wildduck_list_alloc,
		.init = wildduck_list_init,
		.deinit = wildduck_list_deinit,
		.get_hierarchy_sep = wildduck_list_get_hierarchy_sep,
		.get_vname = mailbox_list_default_get_vname,
		.get_storage_name = mailbox_list_default_get_storage_name,
		.get_path = wildduck_list_get_path,
		.get_temp_prefix = wildduck_list_get_temp_prefix,
		.iter_init = wildduck_list_iter_init,
		.iter_next = wildduck_list_iter_next,
		.iter_deinit = wildduck_list_iter_deinit,
		.subscriptions_refresh = wildduck_list_subscriptions_refresh,
		.set_subscribed = wildduck_list_set_subscribed,
		.delete_mailbox = wildduck_list_delete_mailbox,
		.delete_dir = wildduck_list_delete_dir,
		.delete_symlink = wildduck_list_delete_symlink,
		.rename_mailbox = wildduck_list_rename_mailbox,
	}
};
