#ifndef WD_AUTH_LOG_H
#define WD_AUTH_LOG_H

/* The authlog collection as WildDuck writes it (reference §2.6): similar
 * events of a user within 6 h share one document, found by `key` = MD5 of
 * "protocol^ip^action^result^target", whose `events` counter grows and
 * whose `last` moves. Each document carries `expires` (now + the setting
 * const:authlog:time, 30 d); because FerretDB does not enforce TTL indexes,
 * wd_auth_log_expire() deletes what has expired (authlog and expiring
 * application passwords) and a periodic task must call it. Logging is off
 * when the setting is 0/false, as in WildDuck. */

#include "wd-auth.h"

#include <stdbool.h>
#include <stdint.h>

struct wd_authlog_entry {
	const char *action;         /* NULL: "authentication" */
	const char *result;         /* success | fail | disabled | suspended */
	const char *source;         /* credential kind: master | temporary | asp */
	const char *required_scope; /* master | imap | pop3 | smtp */
	const char *require2fa;     /* comma list of 2FA methods, NULL: none */
	const bson_oid_t *asp;      /* the application password used */
	const char *aname;          /* its description */
	const char *target;
	bool has_temporary;         /* write `temporary` (app password creation) */
	bool temporary;
};

/* Writes (or merges) an event; the meta gives protocol, ip and sess. The
   document's _id goes to *event_id_r (may be NULL). Returns 0, 1 when
   logging is disabled (nothing written), or WD_AUTH_ERR_INTERNAL. */
int wd_auth_log_event(struct wd_auth *auth, const bson_oid_t *user,
		      const struct wd_authlog_entry *entry, const struct wd_auth_meta *meta,
		      bson_oid_t *event_id_r, char **error_r);

/* Deletes authlog entries and application passwords whose `expires` is
   before now; counts go to the optional out-params. */
int wd_auth_log_expire(struct wd_auth *auth, int64_t *authlog_r, int64_t *asps_r,
		       char **error_r);

#endif
