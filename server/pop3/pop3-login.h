#ifndef WD_POP3_LOGIN_H
#define WD_POP3_LOGIN_H

/* The login shared by PASS (RFC 1939 §7) and AUTH PLAIN (RFC 5034): one
 * worker job runs wd_auth_authenticate() with scope pop3 (account password,
 * or an application-specific password for 2FA accounts) and, when it
 * succeeds, lists the maildrop (wd_store_pop3_list); the loop thread then
 * enters TRANSACTION or answers.
 *
 * Responses (RFC 2449 RESP-CODES, RFC 3206 AUTH-RESP-CODE):
 *   +OK maildrop has N messages (S octets)
 *   -ERR [AUTH] ...      wrong credentials, rate limited, 2FA account
 *                        without an application password
 *   -ERR [SYS/PERM] ...  account disabled or suspended, POP3 disabled for it
 *   -ERR [SYS/TEMP] ...  database or Redis trouble (authentication or the
 *                        listing); nothing counted against the client
 * Every refusal is answered after pop3.authFailureDelay ms and counts; the
 * WD_POP3_MAX_AUTH_FAILURES-th closes the connection. [IN-USE] is never
 * sent: as in WildDuck, sessions do not lock the maildrop (RFC 2449 allows
 * that: several sessions of a user see their own listing, and QUIT applies
 * only what is still there). Credentials are wiped when the command ends. */

#include "pop3-commands.h"

#include <stddef.h>

/* Start the login with the user name and password (both may hold any byte
   but NUL in the name). Returns what the command waits for. */
enum wd_pop3_cmd_result wd_pop3_login_start(struct wd_pop3_cmd *cmd, const char *user,
					    size_t user_len, const char *pass, size_t pass_len);

#endif
