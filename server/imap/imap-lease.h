#ifndef WD_IMAP_LEASE_H
#define WD_IMAP_LEASE_H

/* The per-user connection limit (users.imapMaxConnections, else
 * imap.maxConnections) held across every wd-server instance: each logged-in
 * session holds a lease in Redis (storage/wd-store-lease.h), claimed in the
 * login job, renewed by a server timer every WD_IMAP_LEASE_RENEW_MS and
 * released when the session ends. A crashed instance's leases run out
 * within WD_IMAP_LEASE_MS. When Redis cannot be reached at login the
 * session is counted in this process instead (imap-session.c), so the limit
 * still holds per instance. */

#include <bson/bson.h>
#include <stdbool.h>

struct wd_imap_server;
struct wd_imap_session;

#define WD_IMAP_LEASE_KIND "imap"
#define WD_IMAP_LEASE_MS (3 * 60 * 1000)
#define WD_IMAP_LEASE_RENEW_MS (60 * 1000)
/* "<instance>:<session id>" */
#define WD_IMAP_LEASE_HOLDER_MAX 64

/* The session's lease holder name (instance id + session id). */
void wd_imap_lease_holder(const struct wd_imap_session *session, char *buf, unsigned size);
/* Release a lease by name (a fire-and-forget job): a login whose session
   ended before the lease was handed to it. */
void wd_imap_lease_drop(struct wd_imap_server *server, const bson_oid_t *user,
			const char *holder);
/* Release the session's lease, if it holds one. */
void wd_imap_lease_release(struct wd_imap_session *session);
/* The renewal timer of a server. */
int wd_imap_lease_start(struct wd_imap_server *server);
void wd_imap_lease_stop(struct wd_imap_server *server);

#endif
