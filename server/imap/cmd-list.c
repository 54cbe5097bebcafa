/* LIST (RFC 3501 §6.3.8) with LIST-EXTENDED (RFC 5258: selection options
 * SUBSCRIBED, SPECIAL-USE, RECURSIVEMATCH; return options SUBSCRIBED,
 * CHILDREN, SPECIAL-USE, STATUS of RFC 5819; several patterns), SPECIAL-USE
 * (RFC 6154) and CHILDREN (RFC 3348); LSUB (§6.3.9).
 *
 * One job reads the user's mailboxes (one query, path order), matches them
 * on the worker thread (pure code, no session access) and, for LIST-STATUS,
 * computes STATUS of each listed mailbox; the loop thread only writes. Every
 * listed mailbox gets \HasChildren or \HasNoChildren (we have the whole
 * tree anyway) and its special-use attribute. A level that does not exist
 * but has children (storage is flat) is listed as \Noselect when a pattern
 * without "*" matches it, as RFC 3501 asks for "%". */
#include "imap-commands.h"
#include "imap-session.h"

#include "imap-mailbox-args.h"
#include "imap-utf7.h"
#include "imap-writer.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WILDCARDS 8

struct list_entry {
	const char *path;          /* UTF-8 (points into the mailbox list or a malloc'd copy) */
	char *own_path;            /* for levels that do not exist */
	const struct wd_mailbox *mailbox; /* NULL: a level that does not exist */
	bool has_children;
	bool child_subscribed;     /* RECURSIVEMATCH */
	bool has_status;
	struct wd_imap_status_values status;
};

struct list_job {
	struct wd_imap_store_job base;
	bool lsub;
	struct wd_imap_list_args args;
	const char **patterns;     /* UTF-8, reference prepended, INBOX normalised */
	size_t pattern_count;
	struct wd_mailbox_list list;
	struct list_entry *entries;
	size_t entry_count;
};

static void list_job_free(void *context)
{
	struct list_job *job = context;
	for (size_t i = 0; i < job->entry_count; i++)
		free(job->entries[i].own_path);
	free(job->entries);
	wd_mailbox_list_free(&job->list);
}

/* RFC 3501 §6.3.8: "*" matches anything, "%" anything but the delimiter. */
static bool pattern_match(const char *pattern, const char *name)
{
	for (;;) {
		char p = *pattern;
		if (p == '\0')
			return *name == '\0';
		if (p == '*' || p == '%') {
			pattern++;
			for (const char *n = name;; n++) {
				if (pattern_match(pattern, n))
					return true;
				if (*n == '\0' || (p == '%' && *n == '/'))
					return false;
			}
		}
		if (*name != p)
			return false;
		pattern++;
		name++;
	}
}

static bool any_match(const struct list_job *job, const char *path, bool nonexistent)
{
	for (size_t i = 0; i < job->pattern_count; i++) {
		if (nonexistent && strchr(job->patterns[i], '*') != NULL)
			continue;
		if (pattern_match(job->patterns[i], path))
			return true;
	}
	return false;
}

static bool is_ancestor(const char *parent, size_t parent_len, const char *path)
{
	return strncmp(parent, path, parent_len) == 0 && path[parent_len] == '/';
}

static int add_entry(struct list_job *job, size_t *cap, const struct list_entry *entry)
{
	if (job->entry_count == *cap) {
		size_t n = *cap == 0 ? 16 : *cap * 2;
		struct list_entry *e = realloc(job->entries, n * sizeof(*e));
		if (e == NULL)
			return -1;
		job->entries = e;
		*cap = n;
	}
	job->entries[job->entry_count++] = *entry;
	return 0;
}

static bool path_exists(const struct wd_mailbox_list *list, const char *path, size_t len)
{
	for (size_t i = 0; i < list->count; i++) {
		if (strlen(list->items[i].path) == len && memcmp(list->items[i].path, path, len) == 0)
			return true;
	}
	return false;
}

static bool already_listed(const struct list_job *job, const char *path, size_t len)
{
	for (size_t i = 0; i < job->entry_count; i++) {
		if (strlen(job->entries[i].path) == len && memcmp(job->entries[i].path, path, len) == 0)
			return true;
	}
	return false;
}

static int collect(struct list_job *job)
{
	const struct wd_mailbox_list *list = &job->list;
	unsigned sel = job->lsub ? WD_IMAP_LIST_SELECT_SUBSCRIBED : job->args.select;
	size_t cap = 0;
	for (size_t i = 0; i < list->count; i++) {
		const struct wd_mailbox *mb = &list->items[i];
		size_t len = strlen(mb->path);
		struct list_entry entry = { .path = mb->path, .mailbox = mb };
		for (size_t k = 0; k < list->count; k++) {
			if (!is_ancestor(mb->path, len, list->items[k].path))
				continue;
			entry.has_children = true;
			if (list->items[k].subscribed)
				entry.child_subscribed = true;
		}
		/* levels above it that do not exist */
		for (const char *slash = strchr(mb->path, '/'); slash != NULL;
		     slash = strchr(slash + 1, '/')) {
			size_t plen = (size_t)(slash - mb->path);
			if (path_exists(list, mb->path, plen) || already_listed(job, mb->path, plen))
				continue;
			char *parent = strndup(mb->path, plen);
			if (parent == NULL)
				return -1;
			if (!any_match(job, parent, true) || (sel & WD_IMAP_LIST_SELECT_SPECIAL_USE) ||
			    ((sel & WD_IMAP_LIST_SELECT_SUBSCRIBED) && !mb->subscribed)) {
				free(parent);
				continue;
			}
			struct list_entry up = { .path = parent, .own_path = parent,
						 .has_children = true,
						 .child_subscribed = mb->subscribed };
			if (add_entry(job, &cap, &up) < 0) {
				free(parent);
				return -1;
			}
		}
		if (!any_match(job, mb->path, false))
			continue;
		if ((sel & WD_IMAP_LIST_SELECT_SPECIAL_USE) && mb->special_use == NULL)
			continue;
		if ((sel & WD_IMAP_LIST_SELECT_SUBSCRIBED) && !mb->subscribed &&
		    !((sel & WD_IMAP_LIST_SELECT_RECURSIVEMATCH) && entry.child_subscribed))
			continue;
		if (add_entry(job, &cap, &entry) < 0)
			return -1;
	}
	return 0;
}

static void list_work(void *context)
{
	struct list_job *job = context;
	struct wd_imap_store_job *base = &job->base;
	base->ret = wd_store_mailbox_list(base->store, &base->user, 0, &job->list, &base->error);
	if (base->ret < 0)
		return;
	if (collect(job) < 0) {
		base->ret = WD_STORE_ERR_DATABASE;
		return;
	}
	if (!(job->args.return_opts & WD_IMAP_LIST_RETURN_STATUS))
		return;
	for (size_t i = 0; i < job->entry_count; i++) {
		struct list_entry *e = &job->entries[i];
		if (e->mailbox == NULL)
			continue;
		char *error = NULL;
		if (wd_imap_status_compute(base->store, e->mailbox, job->args.status_items,
					   &e->status, &error) == 0)
			e->has_status = true;
		free(error);
	}
}

static void write_entry(struct wd_imap_session *session, const struct list_job *job,
			const struct list_entry *e)
{
	struct wd_buffer *out = &session->out;
	unsigned sel = job->lsub ? WD_IMAP_LIST_SELECT_SUBSCRIBED : job->args.select;
	bool show_subscribed = !job->lsub && ((job->args.return_opts & WD_IMAP_LIST_RETURN_SUBSCRIBED) ||
					      (sel & WD_IMAP_LIST_SELECT_SUBSCRIBED));
	const char *sep = "";
	wd_buffer_printf(out, "* %s (", job->lsub ? "LSUB" : "LIST");
	if (e->mailbox == NULL) {
		wd_buffer_append_str(out, job->args.extended ? "\\NonExistent" : "\\Noselect");
		sep = " ";
	}
	wd_buffer_printf(out, "%s%s", sep, e->has_children ? "\\HasChildren" : "\\HasNoChildren");
	if (e->mailbox != NULL && e->mailbox->special_use != NULL)
		wd_buffer_printf(out, " %s", e->mailbox->special_use);
	if (show_subscribed && e->mailbox != NULL && e->mailbox->subscribed)
		wd_buffer_append_str(out, " \\Subscribed");
	wd_buffer_append_str(out, ") \"/\" ");
	wd_imap_write_mailbox(out, e->path, session->utf8_accept);
	if ((sel & WD_IMAP_LIST_SELECT_RECURSIVEMATCH) && e->child_subscribed &&
	    (e->mailbox == NULL || !e->mailbox->subscribed))
		wd_buffer_append_str(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	wd_buffer_append_str(out, "\r\n");
	if (e->has_status)
		wd_imap_status_write(out, e->path, job->args.status_items, &e->status,
				     session->utf8_accept, session->server->set.max_message);
}

static enum wd_imap_cmd_result list_done(struct wd_imap_cmd *cmd)
{
	struct list_job *job = cmd->context;
	struct wd_imap_session *session = cmd->session;
	if (job->base.ret < 0)
		return wd_imap_cmd_store_error(cmd, job->base.ret, job->base.error);
	for (size_t i = 0; i < job->entry_count; i++) {
		write_entry(session, job, &job->entries[i]);
		if (session->out.len > 16 * 1024)
			wd_imap_session_send(session);
	}
	wd_imap_session_send(session);
	return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
}

/* reference + pattern in UTF-8, first level "INBOX" in any case as INBOX. */
static const char *full_pattern(struct wd_imap_cmd *cmd, const char *reference,
				const char *pattern)
{
	const char *joined = wd_arena_printf(cmd->arena, "%s%s", reference, pattern);
	const char *name, *error;
	/* matching is exponential in the number of wildcards: bound it */
	unsigned wildcards = 0;
	for (const char *p = joined; p != NULL && *p != '\0'; p++)
		wildcards += *p == '*' || *p == '%';
	if (wildcards > MAX_WILDCARDS)
		return NULL;
	if (joined == NULL || wd_imap_mailbox_name_decode(cmd->arena, joined, strlen(joined),
							  cmd->session->utf8_accept, &name,
							  &error) < 0)
		return NULL;
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/')) {
		char *fixed = wd_arena_strdup(cmd->arena, name);
		if (fixed != NULL)
			memcpy(fixed, "INBOX", 5);
		return fixed;
	}
	return name;
}

static enum wd_imap_cmd_result list_start(struct wd_imap_cmd *cmd, bool lsub)
{
	struct wd_imap_session *session = cmd->session;
	struct list_job *job = wd_imap_cmd_context_new(cmd, sizeof(*job));
	if (job == NULL)
		return WD_IMAP_CMD_DONE;
	job->lsub = lsub;
	const char *error;
	if (lsub && cmd->parsed->arg_count != 2)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "LSUB expects a reference and a pattern");
	if (wd_imap_list_args_parse(cmd->arena, cmd->parsed->args, cmd->parsed->arg_count,
				    &job->args, &error) < 0)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, error);
	if ((job->args.return_opts & WD_IMAP_LIST_RETURN_STATUS) &&
	    !wd_imap_capability_enabled("LIST-STATUS"))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "LIST-STATUS is not supported");

	/* LIST "" "": the hierarchy delimiter (RFC 3501 §6.3.8) */
	if (job->args.pattern_count == 1 && job->args.patterns[0][0] == '\0') {
		wd_imap_session_untagged(session, "%s (\\Noselect) \"/\" \"\"",
					 lsub ? "LSUB" : "LIST");
		return wd_imap_cmd_replyf(cmd, "OK", NULL, "%s completed", cmd->name);
	}
	job->patterns = wd_arena_zalloc(cmd->arena, job->args.pattern_count * sizeof(char *));
	if (job->patterns == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	for (size_t i = 0; i < job->args.pattern_count; i++) {
		if (job->args.patterns[i][0] == '\0')
			continue;
		const char *p = full_pattern(cmd, job->args.reference, job->args.patterns[i]);
		if (p == NULL)
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid mailbox pattern");
		job->patterns[job->pattern_count++] = p;
	}
	wd_arena_add_cleanup(cmd->arena, list_job_free, job);
	return wd_imap_cmd_store_job(cmd, &job->base, list_work, list_done);
}

enum wd_imap_cmd_result wd_imap_cmd_list(struct wd_imap_cmd *cmd)
{
	return list_start(cmd, false);
}

enum wd_imap_cmd_result wd_imap_cmd_lsub(struct wd_imap_cmd *cmd)
{
	return list_start(cmd, true);
}
