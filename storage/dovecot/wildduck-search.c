/* SEARCH pushed down to MongoDB (imapc's pattern, imapc-search.c).
 *
 * Dovecot's generic search reads every message a key needs: headers and
 * bodies for HEADER, FROM, SUBJECT, BODY and TEXT, the date and size for
 * BEFORE, SENTSINCE, LARGER... Here the keys MongoDB can decide are turned
 * into libwdstore's search tree (wd-store-search.h) and run as one query
 * over the mailbox by the same code wd-server's SEARCH runs
 * (wd_imap_search_run: wd_search_compile, plus wd_search_matches on the
 * candidates when the compiled query is only a superset). The matching
 * UIDs become the sequence numbers the search walks
 * (search_next_update_seq), and the keys answered that way are marked
 * match_always, so Dovecot reads no message for them. A SEARCH through
 * Dovecot therefore answers exactly what wd-server answers (RFC 3501
 * substring semantics on the decoded, indexed headers and text; dates as
 * UTC days, as WildDuck compares them).
 *
 * Only the top-level AND is split: a top-level key this code cannot
 * express (\Recent, INTHREAD, MIMEPART, X-GUID...) stays with Dovecot,
 * which evaluates it on the candidates only. Searches made of keys the
 * index answers without reading messages (flags, keywords, UID and
 * sequence sets, MODSEQ) are not pushed down: the index is faster. */
#include "wildduck-storage.h"

#include "seq-range-array.h"
#include "mail-search.h"

/* wd-server's search runner (libwdimap); by path, because Dovecot ships an
   imap-search.h of its own on the include path */
#include "../../server/imap/imap-search.h"
#include "wd-arena.h"
#include "wd-store-search.h"

#include <stdlib.h>

#define WILDDUCK_SEARCHCTX(obj) MODULE_CONTEXT(obj, wildduck_search_module)

struct wildduck_search_context {
	union mail_search_module_context module_ctx;

	ARRAY_TYPE(seq_range) seqs;  /* sequence numbers that match */
	struct seq_range_iter iter;
	unsigned int n;
	/* top-level args decided by the query (in args order) */
	ARRAY(struct mail_search_arg *) pushed;
	struct wd_arena *arena;
};

static MODULE_CONTEXT_DEFINE_INIT(wildduck_search_module, &mail_storage_module_register);

struct convert {
	struct wd_arena *arena;
	struct mail_index_view *view;
	struct mailbox *box;
};

static struct wd_search_key *key_new(struct convert *c, enum wd_search_op op, size_t children)
{
	struct wd_search_key *key = wd_arena_zalloc(c->arena, sizeof(*key));

	if (key == NULL)
		return NULL;
	key->op = op;
	if (children > 0) {
		key->children = wd_arena_zalloc(c->arena, children * sizeof(*key->children));
		if (key->children == NULL)
			return NULL;
		key->child_count = children;
	}
	return key;
}

static struct wd_search_key *flag_key(struct convert *c, const char *flag)
{
	struct wd_search_key *key = key_new(c, WD_SEARCH_FLAG, 0);

	if (key != NULL) {
		key->flag = flag;
		key->set = true;
	}
	return key;
}

/* Sequence or UID ranges as a UID key (sequence numbers of the search's
   view). */
static struct wd_search_key *set_key(struct convert *c, const ARRAY_TYPE(seq_range) *set, bool uid)
{
	const struct seq_range *range;
	struct wd_search_uid_range *ranges;
	unsigned int count, n = 0;
	uint32_t messages = mail_index_view_get_messages_count(c->view);

	range = array_get(set, &count);
	ranges = wd_arena_alloc(c->arena, (count + 1) * sizeof(*ranges));
	if (ranges == NULL)
		return NULL;
	for (unsigned int i = 0; i < count; i++) {
		if (uid) {
			ranges[n++] = (struct wd_search_uid_range){ range[i].seq1, range[i].seq2 };
			continue;
		}
		uint32_t seq1 = range[i].seq1, seq2 = range[i].seq2;
		if (seq1 > messages)
			continue;
		if (seq2 > messages)
			seq2 = messages;
		uint32_t uid1, uid2;
		mail_index_lookup_uid(c->view, seq1, &uid1);
		mail_index_lookup_uid(c->view, seq2, &uid2);
		ranges[n++] = (struct wd_search_uid_range){ uid1, uid2 };
	}
	struct wd_search_key *key = key_new(c, WD_SEARCH_UID, 0);
	if (key != NULL) {
		key->ranges = ranges;
		key->range_count = n;
	}
	return key;
}

static struct wd_search_key *convert_list(struct convert *c, struct mail_search_arg *args,
					  enum wd_search_op op);

/* One arg (with its match_not); NULL when it cannot be expressed. */
static struct wd_search_key *convert_arg(struct convert *c, struct mail_search_arg *arg)
{
	struct wd_search_key *key = NULL;

	switch (arg->type) {
	case SEARCH_OR:
		key = convert_list(c, arg->value.subargs, WD_SEARCH_OR);
		break;
	case SEARCH_SUB:
		key = convert_list(c, arg->value.subargs, WD_SEARCH_AND);
		break;
	case SEARCH_ALL:
		key = key_new(c, WD_SEARCH_ALL, 0);
		break;
	case SEARCH_SEQSET:
	case SEARCH_UIDSET:
		key = set_key(c, &arg->value.seqset, arg->type == SEARCH_UIDSET);
		break;
	case SEARCH_FLAGS: {
		static const struct {
			enum mail_flags flag;
			const char *name;
		} flags[] = {
			{ MAIL_ANSWERED, "\\Answered" }, { MAIL_FLAGGED, "\\Flagged" },
			{ MAIL_DELETED, "\\Deleted" },   { MAIL_SEEN, "\\Seen" },
			{ MAIL_DRAFT, "\\Draft" },
		};
		unsigned int n = 0;
		if ((arg->value.flags & MAIL_RECENT) != 0)
			return NULL; /* \Recent is the session's */
		for (unsigned int i = 0; i < N_ELEMENTS(flags); i++)
			n += (arg->value.flags & flags[i].flag) != 0 ? 1 : 0;
		key = key_new(c, WD_SEARCH_AND, n);
		n = 0;
		for (unsigned int i = 0; key != NULL && i < N_ELEMENTS(flags); i++) {
			if ((arg->value.flags & flags[i].flag) == 0)
				continue;
			if ((key->children[n++] = flag_key(c, flags[i].name)) == NULL)
				return NULL;
		}
		break;
	}
	case SEARCH_KEYWORDS:
		if (arg->value.str == NULL)
			return NULL;
		key = flag_key(c, wd_arena_strdup(c->arena, arg->value.str));
		break;
	case SEARCH_BEFORE:
	case SEARCH_ON:
	case SEARCH_SINCE: {
		static const enum wd_search_op received[] = {
			[SEARCH_BEFORE] = WD_SEARCH_BEFORE,
			[SEARCH_ON] = WD_SEARCH_ON,
			[SEARCH_SINCE] = WD_SEARCH_SINCE,
		};
		static const enum wd_search_op sent[] = {
			[SEARCH_BEFORE] = WD_SEARCH_SENTBEFORE,
			[SEARCH_ON] = WD_SEARCH_SENTON,
			[SEARCH_SINCE] = WD_SEARCH_SENTSINCE,
		};
		if ((arg->value.search_flags & MAIL_SEARCH_ARG_FLAG_UTC_TIMES) != 0 ||
		    arg->value.time % 86400 != 0)
			return NULL; /* OLDER/YOUNGER: precise times, not days */
		if (arg->value.date_type == MAIL_SEARCH_DATE_TYPE_RECEIVED)
			key = key_new(c, received[arg->type], 0);
		else if (arg->value.date_type == MAIL_SEARCH_DATE_TYPE_SENT)
			key = key_new(c, sent[arg->type], 0);
		else
			return NULL; /* SAVEDBEFORE...: no such field in WildDuck */
		if (key != NULL)
			key->day_ms = (int64_t)arg->value.time * 1000;
		break;
	}
	case SEARCH_SMALLER:
	case SEARCH_LARGER:
		key = key_new(c, arg->type == SEARCH_SMALLER ? WD_SEARCH_SMALLER : WD_SEARCH_LARGER, 0);
		if (key != NULL)
			key->number = arg->value.size;
		break;
	case SEARCH_HEADER:
	case SEARCH_HEADER_ADDRESS:
	case SEARCH_HEADER_COMPRESS_LWSP:
		if (arg->hdr_field_name == NULL || arg->value.str == NULL)
			return NULL;
		key = key_new(c, WD_SEARCH_HEADER, 0);
		if (key != NULL) {
			key->name = wd_arena_strdup(c->arena, t_str_lcase(arg->hdr_field_name));
			key->value = wd_arena_strdup(c->arena, arg->value.str);
		}
		break;
	case SEARCH_BODY:
	case SEARCH_TEXT:
		if (arg->value.str == NULL)
			return NULL;
		key = key_new(c, arg->type == SEARCH_BODY ? WD_SEARCH_BODY : WD_SEARCH_TEXT, 0);
		if (key != NULL)
			key->value = wd_arena_strdup(c->arena, arg->value.str);
		break;
	case SEARCH_MODSEQ:
		if (arg->value.modseq == NULL ||
		    arg->value.modseq->type == MAIL_SEARCH_MODSEQ_TYPE_PRIVATE)
			return NULL;
		key = key_new(c, WD_SEARCH_MODSEQ, 0);
		if (key != NULL)
			key->number = arg->value.modseq->modseq;
		break;
	default:
		/* INTHREAD, GUID, MAILBOX*, REAL_UID, MIMEPART, SAVEDATESUPPORTED */
		return NULL;
	}
	if (key == NULL || !arg->match_not)
		return key;
	struct wd_search_key *not = key_new(c, WD_SEARCH_NOT, 1);
	if (not != NULL)
		not->children[0] = key;
	return not;
}

static struct wd_search_key *convert_list(struct convert *c, struct mail_search_arg *args,
					  enum wd_search_op op)
{
	size_t count = 0;
	struct mail_search_arg *arg;

	for (arg = args; arg != NULL; arg = arg->next)
		count++;
	struct wd_search_key *key = key_new(c, op, count);
	if (key == NULL)
		return NULL;
	count = 0;
	for (arg = args; arg != NULL; arg = arg->next) {
		if ((key->children[count++] = convert_arg(c, arg)) == NULL)
			return NULL;
	}
	return key;
}

/* Keys the index answers without reading a message. */
static bool search_is_index_only(const struct mail_search_arg *args)
{
	for (const struct mail_search_arg *arg = args; arg != NULL; arg = arg->next) {
		switch (arg->type) {
		case SEARCH_OR:
		case SEARCH_SUB:
			if (!search_is_index_only(arg->value.subargs))
				return FALSE;
			break;
		case SEARCH_ALL:
		case SEARCH_SEQSET:
		case SEARCH_UIDSET:
		case SEARCH_FLAGS:
		case SEARCH_KEYWORDS:
		case SEARCH_MODSEQ:
		case SEARCH_MAILBOX:
		case SEARCH_MAILBOX_GUID:
		case SEARCH_MAILBOX_GLOB:
		case SEARCH_REAL_UID:
			break;
		default:
			return FALSE;
		}
	}
	return TRUE;
}

static void search_set_matched(struct mail_search_arg *arg)
{
	arg->match_always = TRUE;
	arg->result = 1;
	if (arg->type == SEARCH_OR || arg->type == SEARCH_SUB) {
		for (struct mail_search_arg *sub = arg->value.subargs; sub != NULL; sub = sub->next)
			search_set_matched(sub);
	}
}

/* Runs the pushed-down part; FALSE when nothing could be pushed down or
   the query failed (Dovecot then searches as usual). */
static bool search_push_down(struct mail_search_context *ctx, struct wildduck_search_context *sctx)
{
	struct mailbox_transaction_context *t = ctx->transaction;
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(t->box);
	struct convert c = { .arena = sctx->arena, .view = t->view, .box = t->box };
	struct wd_search_key *top;
	struct mail_search_arg *arg;
	size_t count = 0, n = 0;

	for (arg = ctx->args->args; arg != NULL; arg = arg->next)
		count++;
	top = key_new(&c, WD_SEARCH_AND, count);
	if (top == NULL)
		return FALSE;
	for (arg = ctx->args->args; arg != NULL; arg = arg->next) {
		struct wd_search_key *key = convert_arg(&c, arg);
		if (key == NULL)
			continue; /* left to Dovecot */
		top->children[n++] = key;
		array_push_back(&sctx->pushed, &arg);
	}
	if (n == 0)
		return FALSE;
	top->child_count = n;

	uint32_t messages = mail_index_view_get_messages_count(t->view), max_uid = 0;
	if (messages == 0)
		return TRUE; /* nothing can match */
	mail_index_lookup_uid(t->view, messages, &max_uid);

	struct wd_imap_search_result result;
	char *error = NULL;
	if (wd_imap_search_run(mbox->storage->wuser->store, &mbox->id, top, max_uid, false,
			       &result, &error) < 0) {
		i_error("wildduck: %s: SEARCH through MongoDB failed, searching locally: %s",
			t->box->vname, error != NULL ? error : "database error");
		free(error);
		array_clear(&sctx->pushed);
		return FALSE;
	}
	e_debug(t->box->event, "wildduck: SEARCH pushed down (%zu of %zu keys): %"PRIu64" matches",
		n, count, result.count);
	for (size_t i = 0; i < result.range_count; i++) {
		uint32_t seq1, seq2;
		if (mail_index_lookup_seq_range(t->view, result.ranges[i].first,
						result.ranges[i].last, &seq1, &seq2))
			seq_range_array_add_range(&sctx->seqs, seq1, seq2);
	}
	wd_imap_search_result_free(&result);
	return TRUE;
}

struct mail_search_context *
wildduck_search_init(struct mailbox_transaction_context *t, struct mail_search_args *args,
		     const enum mail_sort_type *sort_program,
		     enum mail_fetch_field wanted_fields,
		     struct mailbox_header_lookup_ctx *wanted_headers)
{
	struct wildduck_mailbox *mbox = WILDDUCK_MAILBOX(t->box);
	struct mail_search_context *ctx;
	struct wildduck_search_context *sctx;

	ctx = index_storage_search_init(t, args, sort_program, wanted_fields, wanted_headers);
	if (!mbox->storage->wuser->search_pushdown || !mbox->have_id ||
	    search_is_index_only(args->args))
		return ctx;

	sctx = i_new(struct wildduck_search_context, 1);
	i_array_init(&sctx->seqs, 64);
	i_array_init(&sctx->pushed, 8);
	sctx->arena = wd_arena_create(4096);
	if (sctx->arena == NULL || !search_push_down(ctx, sctx)) {
		if (sctx->arena != NULL)
			wd_arena_destroy(&sctx->arena);
		array_free(&sctx->seqs);
		array_free(&sctx->pushed);
		i_free(sctx);
		return ctx;
	}
	seq_range_array_iter_init(&sctx->iter, &sctx->seqs);
	MODULE_CONTEXT_SET(ctx, wildduck_search_module, sctx);
	return ctx;
}

bool wildduck_search_next_update_seq(struct mail_search_context *ctx)
{
	struct wildduck_search_context *sctx = WILDDUCK_SEARCHCTX(ctx);
	struct mail_search_arg *const *arg;

	if (sctx == NULL)
		return index_storage_search_next_update_seq(ctx);
	if (!seq_range_array_iter_nth(&sctx->iter, sctx->n++, &ctx->seq))
		return FALSE;
	ctx->progress_cur = ctx->seq;
	/* what MongoDB decided needs no reading of the message */
	array_foreach(&sctx->pushed, arg)
		search_set_matched(*arg);
	return TRUE;
}

int wildduck_search_deinit(struct mail_search_context *ctx)
{
	struct wildduck_search_context *sctx = WILDDUCK_SEARCHCTX(ctx);

	if (sctx != NULL) {
		array_free(&sctx->seqs);
		array_free(&sctx->pushed);
		wd_arena_destroy(&sctx->arena);
		i_free(sctx);
	}
	return index_storage_search_deinit(ctx);
}
