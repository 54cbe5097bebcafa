/* FerretDB 1.24 on SQLite: make lookups by _id use an index.
 *
 * FerretDB's SQLite backend pushes a filter {_id: <string|ObjectId>} down as
 * `WHERE _ferretdb_sjson->'$._id' = ?`, but builds its unique _id index on
 * the expression `_ferretdb_sjson->"_id"`. SQLite matches index expressions
 * textually, so the index is never used and every lookup by _id scans the
 * whole collection (measured: 47 ms per find in a 346-message collection,
 * 3.5 ms with the index below). Every other filter is evaluated in FerretDB
 * after a full scan anyway, so _id is the one lookup that can be fast, and
 * the storage code reaches documents by _id wherever it can.
 *
 * When the store knows FerretDB's SQLite directory (`dbs.ferretdbSqlite`, or
 * WD_FERRETDB_SQLITE as scripts/stack.sh prints it), it adds to every
 * collection table of its databases an index on the expression FerretDB
 * queries with. SQLite maintains it on every write; dropping a collection
 * drops its table and the index with it; FerretDB's own metadata never sees
 * it. Failure only costs speed, so it is logged, never fatal. */
#include "store-private.h"

#include "wd-log.h"
#include "wd-result.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Index the _id expression of every collection table in one database file. */
static int index_database(const char *path, unsigned *tables_r)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		wd_warning("store", "FerretDB SQLite %s: %s", path, db != NULL ? sqlite3_errmsg(db) :
									       "cannot open");
		sqlite3_close(db);
		return WD_ERROR;
	}
	sqlite3_busy_timeout(db, 10000);
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT table_name FROM _ferretdb_collections", -1, &stmt,
				    NULL);
	int ret = WD_OK;
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *table = (const char *)sqlite3_column_text(stmt, 0);
		if (table == NULL || strchr(table, '"') != NULL)
			continue;
		char *sql = sqlite3_mprintf("CREATE INDEX IF NOT EXISTS \"%s_wdc_id\" ON \"%s\" "
					    "(_ferretdb_sjson->'$._id')",
					    table, table);
		char *error = NULL;
		if (sql == NULL || sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
			wd_warning("store", "FerretDB SQLite %s: no _id index on %s: %s", path, table,
				   error != NULL ? error : "out of memory");
			ret = WD_ERROR;
		} else {
			(*tables_r)++;
		}
		sqlite3_free(error);
		sqlite3_free(sql);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		wd_warning("store", "FerretDB SQLite %s: %s", path, sqlite3_errmsg(db));
		ret = WD_ERROR;
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return ret;
}

int wd__store_ferretdb_id_indexes(struct wd_store *store, const char *dir)
{
	unsigned tables = 0;
	int ret = WD_OK;
	for (int db = 0; db < WD_STORE_DB_COUNT; db++) {
		const char *name = wd_store_db_name(store, (enum wd_store_db)db);
		bool seen = false;
		for (int prev = 0; prev < db; prev++)
			seen = seen || strcmp(wd_store_db_name(store, (enum wd_store_db)prev), name) == 0;
		if (seen || strchr(name, '/') != NULL)
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.sqlite", dir, name) >= sizeof(path))
			continue;
		if (access(path, F_OK) != 0)
			continue; /* no collection yet */
		if (index_database(path, &tables) < 0)
			ret = WD_ERROR;
	}
	wd_info("store", "FerretDB: _id lookup index present on %u collection tables", tables);
	return ret;
}
