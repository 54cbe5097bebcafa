#ifndef OUTBOUND_FIXTURE_H
#define OUTBOUND_FIXTURE_H

/* The store the outbound tests work on: a main database and a sender
 * (queue) database of their own on the test stack, dropped at the end.
 * Static functions: each test stays one translation unit. */

#include "wd-config.h"
#include "wd-store.h"

#include <stdio.h>
#include <string.h>

/* NULL (and a message on stderr) when the stack cannot be opened. */
static inline struct wd_store *outbound_fixture_open(const char *main_url, const char *redis_url,
						     const char *sender_db, const char *more_toml,
						     struct wd_config **config_r)
{
	char text[4096];
	snprintf(text, sizeof(text), "[dbs]\nmongo = \"%s\"\nredis = \"%s\"\nsender = \"%s\"\n%s",
		 main_url, redis_url, sender_db, more_toml != NULL ? more_toml : "");
	char *error = NULL;
	struct wd_config *config = wd_config_parse("test.toml", text, strlen(text), &error);
	struct wd_store *store = config != NULL ? wd_store_open(config, &error) : NULL;
	if (store == NULL)
		fprintf(stderr, "setup: %s\n", error != NULL ? error : "?");
	if (config_r != NULL && store != NULL)
		*config_r = config;
	else
		wd_config_free(&config);
	return store;
}

/* Drop both databases and close the store. */
static inline void outbound_fixture_drop(struct wd_store **store)
{
	const enum wd_store_db dbs[] = { WD_STORE_DB_SENDER, WD_STORE_DB_MAIN };
	for (size_t i = 0; i < 2; i++) {
		mongoc_client_t *client = wd_store_client(*store, dbs[i]);
		mongoc_database_t *db =
			mongoc_client_get_database(client, wd_store_db_name(*store, dbs[i]));
		mongoc_database_drop(db, NULL);
		mongoc_database_destroy(db);
		wd_store_client_release(*store, dbs[i], client);
	}
	wd_store_close(store);
}

#endif
