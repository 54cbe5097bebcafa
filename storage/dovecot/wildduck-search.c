/* SEARCH for the wildduck storage (push-down comes in the next step). */
#include "wildduck-storage.h"

struct mail_search_context *
wildduck_search_init(struct mailbox_transaction_context *t, struct mail_search_args *args,
		     const enum mail_sort_type *sort_program,
		     enum mail_fetch_field wanted_fields,
		     struct mailbox_header_lookup_ctx *wanted_headers)
{
	return index_storage_search_init(t, args, sort_program, wanted_fields, wanted_headers);
}

int wildduck_search_deinit(struct mail_search_context *ctx)
{
	return index_storage_search_deinit(ctx);
}

bool wildduck_search_next_update_seq(struct mail_search_context *ctx)
{
	return index_storage_search_next_update_seq(ctx);
}
