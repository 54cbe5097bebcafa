#ifndef AUTHDB_BACKEND_H
#define AUTHDB_BACKEND_H

/* The WildDuck side of the Dovecot auth module: one libwdstore + libwdauth
 * context per distinct configuration, per process, shared by the passdb
 * and the userdb that name the same settings.
 *
 * Created in the drivers' preinit (the TOML file is read there, while the
 * auth process still has its start-up privileges, so configuration errors
 * stop Dovecot at start), opened on first use: only auth-worker processes
 * run lookups (the drivers are blocking), so the main auth process never
 * connects to MongoDB or Redis. A failed open is retried on the next
 * lookup.
 *
 * This file sees only our headers, never Dovecot's: the two code bases keep
 * their macros apart (authdb-*.c include Dovecot's headers and call this). */

#include <stddef.h>

struct wd_authdb_backend;
struct wd_auth;
struct wd_store;

/* A configuration: an optional TOML file, then `count` key/value overrides
   in order (dotted keys as in the TOML, e.g. "dbs.mongo"). */
struct wd_authdb_backend_settings {
	const char *config_path;
	const char *const *keys;
	const char *const *values;
	size_t count;
};

/* The backend for these settings, shared with earlier callers that gave the
   same ones (reference counted). NULL with a malloc'd *error_r when the file
   or an override cannot be read. */
struct wd_authdb_backend *wd_authdb_backend_ref(const struct wd_authdb_backend_settings *set,
						char **error_r);
void wd_authdb_backend_unref(struct wd_authdb_backend **backend);

/* Opens the database connections on first use. NULL with a malloc'd
   *error_r when that fails (the next call tries again). */
struct wd_auth *wd_authdb_backend_auth(struct wd_authdb_backend *backend, char **error_r);

#endif
