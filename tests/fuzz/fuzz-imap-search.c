/* Fuzz target for the IMAP argument grammars: SEARCH programs
 * (imap-search-args.h), FETCH attributes (imap-fetch-args.h), sequence
 * sets (imap-seqset.h) and the SELECT/LIST/STATUS arguments
 * (imap-mailbox-args.h), reached through the real command parser.
 *
 * The input is a stream of command lines. For every command parsed, its
 * arguments go through the SEARCH grammar (and, when it accepts them, the
 * conversion to storage keys against a small fixed view) and, after the
 * first argument, through the FETCH grammar. The first argument, when an
 * atom, is parsed as a sequence set and its normalised form is checked:
 * sorted, disjoint, within the resolved bounds, and counted as iterated. */
#include "imap-fetch-args.h"
#include "imap-mailbox-args.h"
#include "imap-parser.h"
#include "imap-search-args.h"
#include "imap-view.h"
#include "imap-seqset.h"
#include "wd-result.h"
#include "fuzz-check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const uint32_t view_uids[] = { 2, 3, 9, 10, 11, 40 };
static const uint32_t view_recent[] = { 10, 11, 40 };

static void check_store_key(const struct wd_search_key *key, unsigned depth)
{
	CHECK(depth < 200);
	if (key->op == WD_SEARCH_NOT)
		CHECK(key->child_count == 1);
	for (size_t i = 0; i < key->range_count; i++)
		CHECK(key->ranges[i].first <= key->ranges[i].last && key->ranges[i].first > 0);
	if (key->op == WD_SEARCH_UID)
		CHECK(key->range_count > 0);
	for (size_t i = 0; i < key->child_count; i++)
		check_store_key(key->children[i], depth + 1);
}

static void check_seqset(struct wd_arena *arena, const struct wd_imap_arg *arg)
{
	struct wd_imap_seqset set;
	struct wd_imap_seqset_iter iter;
	const char *error;
	uint64_t n = 0;
	uint32_t value, prev = 0;

	if (arg->type != WD_IMAP_ARG_ATOM ||
	    wd_imap_seqset_parse(arena, arg->str, arg->len, WD_IMAP_SEQSET_ALLOW_SAVED, 64, &set,
				 &error) < 0 || set.saved)
		return;
	wd_imap_seqset_resolve(&set, 1000);
	for (size_t i = 0; i < set.count; i++) {
		CHECK(set.ranges[i].first >= 1 && set.ranges[i].first <= set.ranges[i].last);
		if (i > 0)
			CHECK((uint64_t)set.ranges[i - 1].last + 1 < set.ranges[i].first);
	}
	if (wd_imap_seqset_count(&set) > 100000)
		return;
	wd_imap_seqset_iter_init(&iter, &set);
	while (wd_imap_seqset_iter_next(&iter, &value)) {
		CHECK(n == 0 || value > prev);
		CHECK(wd_imap_seqset_contains(&set, value));
		prev = value;
		n++;
	}
	CHECK(n == wd_imap_seqset_count(&set));
}

static void run_grammars(const struct wd_imap_command *cmd)
{
	struct wd_imap_search_program program;
	struct wd_imap_fetch_args fetch;
	struct wd_search_key *key;
	struct wd_imap_seq_range saved_ranges[] = { { 3, 9 } };
	struct wd_imap_seqset saved = { .ranges = saved_ranges, .count = 1 };
	static struct wd_imap_view *mailbox_view;
	if (mailbox_view == NULL) {
		mailbox_view = wd_imap_view_create();
		for (size_t i = 0; i < sizeof(view_uids) / sizeof(view_uids[0]); i++)
			CHECK(wd_imap_view_append(mailbox_view, view_uids[i]) == WD_OK);
	}
	struct wd_imap_search_view view = {
		.view = mailbox_view, .saved = &saved,
		.recent = view_recent, .recent_count = 3,
	};
	const char *error;

	if (wd_imap_search_parse(cmd->arena, cmd->args, cmd->arg_count, NULL, &program,
				 &error) == WD_OK) {
		CHECK(program.root != NULL && program.root->type == WD_IMAP_SEARCH_AND);
		CHECK(wd_imap_search_to_store(cmd->arena, program.root, &view, &key, &error) ==
		      WD_OK);
		check_store_key(key, 0);
	} else {
		CHECK(error != NULL);
	}
	struct wd_imap_select_args sel;
	struct wd_imap_list_args list;
	unsigned items;
	if (wd_imap_select_args_parse(cmd->arena, cmd->args, cmd->arg_count, &sel, &error) == WD_OK)
		CHECK(sel.mailbox != NULL && (!sel.qresync || sel.uidvalidity > 0));
	if (wd_imap_list_args_parse(cmd->arena, cmd->args, cmd->arg_count, &list, &error) == WD_OK)
		CHECK(list.pattern_count >= 1 && list.pattern_count <= WD_IMAP_LIST_MAX_PATTERNS);
	if (cmd->arg_count == 2 && wd_imap_status_items_parse(&cmd->args[1], &items, &error) == WD_OK)
		CHECK(items != 0);
	if (cmd->arg_count >= 2) {
		check_seqset(cmd->arena, &cmd->args[0]);
		if (wd_imap_fetch_args_parse(cmd->arena, cmd->args + 1, cmd->arg_count - 1,
					     cmd->uid, &fetch, &error) == WD_OK) {
			CHECK(fetch.body_count <= WD_IMAP_FETCH_MAX_BODIES);
			for (size_t i = 0; i < fetch.body_count; i++)
				CHECK(fetch.bodies[i].response_name != NULL);
			CHECK(!fetch.vanished || (cmd->uid && fetch.changedsince_set));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wd_imap_parser_limits limits;
	struct wd_imap_parser *parser;
	size_t used;

	if (size > 16384)
		return 0;
	wd_imap_parser_limits_default(&limits);
	limits.literal_plus = true;
	limits.max_depth = 40;
	parser = wd_imap_parser_create(&limits);
	CHECK(parser != NULL);
	for (unsigned events = 0; events < 4 * size + 16; events++) {
		struct wd_imap_event ev;
		if (wd_imap_parser_feed(parser, data, size, &used, &ev) != WD_OK)
			break;
		data += used;
		size -= used;
		if (ev.type == WD_IMAP_EVENT_ERROR && ev.recovery == WD_IMAP_RECOVER_CLOSE)
			break;
		if (ev.type == WD_IMAP_EVENT_COMMAND) {
			run_grammars(ev.command);
			wd_imap_command_destroy(&ev.command);
		}
	}
	wd_imap_parser_destroy(&parser);
	return 0;
}
