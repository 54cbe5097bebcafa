#ifndef API_ACCESS_H
#define API_ACCESS_H

/* Who is calling and may they (access.c), as WildDuck's api.js decides it:
 *
 *   - api.accessToken set and given: role root;
 *   - a 40-hex user token (POST /authenticate {token: true}) found in Redis
 *     as tn:token:<sha256 hex> {user, role, created, ttl, authVersion, s},
 *     with a valid HMAC `s` over api.accessControl.secret, younger than
 *     api.accessControl.tokenLifetime (its TTL slides on use) and an
 *     authVersion not below the user's: that role, that user;
 *   - no token required (no api.accessToken, accessControl off, none given):
 *     root, as WildDuck;
 *   - otherwise 403 InvalidToken.
 * The token comes from ?accessToken=, X-Access-Token or Authorization:
 * Bearer. `:user` = "me" becomes the token's user. Then the role table
 * (WildDuck's config/roles.json) must grant the route's resource and
 * action, "any" or, when `:user` is the caller, "own": else 403
 * MissingPrivileges. */

#include "api.h"

/* Answers (403/500) and returns false when the request may not go on.
   `path_params` may be changed ("me"). `query_token` may be NULL. */
bool api_access_check(struct api_request *req, const char *query_token, json_t *path_params);

/* Issues a user token for `user` with `role` ("user"), as WildDuck's
   setAuthToken: 40 hex digits into token_r. 0, or -1 (logged; Redis down). */
int api_access_token_issue(struct api_context *ctx, const bson_oid_t *user, const char *role,
			   int64_t auth_version, char token_r[41]);
/* Deletes the token the request came with (DELETE /authenticate). */
int api_access_token_revoke(struct api_request *req);
/* After a change that bumps the caller's own authVersion (its password, its
   first 2FA method), keeps the token the request came with valid, as
   WildDuck's req.accessToken.update(): the token is signed again with the
   user's current authVersion. Other tokens of the user end. No-op unless
   the request came with a token of `user`. */
void api_access_token_follow(struct api_request *req, const bson_oid_t *user);

/* Role names as WildDuck spells them; -1 when unknown. */
int api_role_parse(const char *name);
const char *api_role_name(enum api_role_id role);

#endif
