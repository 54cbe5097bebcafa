#ifndef WD_AUTH_ADDRESS_H
#define WD_AUTH_ADDRESS_H

/* Addresses for delivery and login (reference §4.13).
 *
 * Resolution is libwdstore's wd_store_address_resolve() (normalisation:
 * NFC, full Unicode lower case, punycode domains to Unicode via libidn2,
 * dots and "+label" ignored; then exact → domain alias → wildcards →
 * "local@*"); this layer adds what delivery and login need around it: the
 * "+label" handed back, and WildDuck's checkAddress() for login names. */

#include "wd-auth.h"

struct wd_address;
struct wd_user;

struct wd_auth_resolved {
	struct wd_address *address; /* the matching address document */
	/* The "+label" of the input's local part without the '+', as written
	   (case kept), NULL when there was none: delivery files by it. */
	char *label;
};

/* Resolves an incoming address (flags: WD_RESOLVE_WILDCARD for MX-style
   delivery). WD_AUTH_ERR_NOT_FOUND for unknown or unparsable addresses,
   WD_AUTH_ERR_INVALID for input over WD_AUTH_MAX_USERNAME bytes. */
int wd_auth_address_resolve(struct wd_store *store, const char *address, unsigned flags,
			    struct wd_auth_resolved *resolved_r, char **error_r);
void wd_auth_resolved_free(struct wd_auth_resolved *resolved);

/* The "+label" part of an address's local part (after the first '+', up to
   the last '@'), malloc'd, or NULL. */
char *wd_auth_address_label(const char *address);

/* The user a login name means, as WildDuck's checkAddress(): without '@'
   the username (unameview); with '@' the owner of the address it resolves
   to without wildcards, else a username that looks like an address. A
   forwarded address (no owner) is WD_AUTH_ERR_NOT_FOUND with *counter_r
   NULL; an unknown name is WD_AUTH_ERR_NOT_FOUND with *counter_r set to the
   unameview under which its failures are counted (malloc'd). */
int wd_auth_login_lookup(struct wd_store *store, const char *login, struct wd_user **user_r,
			 char **counter_r, char **error_r);

#endif
