/* Address resolution for delivery (the label kept) and the login-name
 * lookup, over libwdstore's normalisation and resolution. */
#include "wd-auth-address.h"
#include "auth-private.h"
#include "wd-store-user.h"

#include <stdlib.h>
#include <string.h>

char *wd_auth_address_label(const char *address)
{
	const char *at = strrchr(address, '@');
	if (at == NULL)
		return NULL;
	const char *plus = memchr(address, '+', (size_t)(at - address));
	if (plus == NULL)
		return NULL;
	return strndup(plus + 1, (size_t)(at - plus - 1));
}

static int store_kind(int ret)
{
	switch (ret) {
	case WD_STORE_OK: return WD_AUTH_OK;
	case WD_STORE_ERR_NOT_FOUND: return WD_AUTH_ERR_NOT_FOUND;
	case WD_STORE_ERR_INVALID: return WD_AUTH_ERR_INVALID;
	default: return WD_AUTH_ERR_INTERNAL;
	}
}

int wd_auth_address_resolve(struct wd_store *store, const char *address, unsigned flags,
			    struct wd_auth_resolved *resolved_r, char **error_r)
{
	memset(resolved_r, 0, sizeof(*resolved_r));
	*error_r = NULL;
	if (address == NULL || strlen(address) > WD_AUTH_MAX_USERNAME)
		return wd__auth_fail(error_r, WD_AUTH_ERR_INVALID, "address too long");
	/* the store trims; the label is taken from the same trimmed text */
	while (*address == ' ' || *address == '\t')
		address++;
	int ret = wd_store_address_resolve(store, address, flags, &resolved_r->address, error_r);
	if (ret < 0)
		return store_kind(ret);
	resolved_r->label = wd_auth_address_label(address);
	return WD_AUTH_OK;
}

void wd_auth_resolved_free(struct wd_auth_resolved *resolved)
{
	wd_address_free(&resolved->address);
	free(resolved->label);
	resolved->label = NULL;
}

int wd_auth_login_lookup(struct wd_store *store, const char *login, struct wd_user **user_r,
			 char **counter_r, char **error_r)
{
	*user_r = NULL;
	*counter_r = NULL;
	*error_r = NULL;
	if (login == NULL || login[0] == '\0' || strlen(login) > WD_AUTH_MAX_USERNAME)
		return wd__auth_fail(error_r, WD_AUTH_ERR_NOT_FOUND, "unknown user");
	int ret;
	if (strchr(login, '@') == NULL) {
		ret = wd_store_user_get_by_username(store, login, user_r, error_r);
		if (ret == WD_STORE_ERR_NOT_FOUND)
			*counter_r = wd_uview(login);
		return store_kind(ret);
	}
	struct wd_address *address = NULL;
	ret = wd_store_address_resolve(store, login, 0, &address, error_r);
	if (ret == WD_STORE_OK) {
		if (!address->has_user) {
			wd_address_free(&address);
			return wd__auth_fail(error_r, WD_AUTH_ERR_NOT_FOUND,
					     "a forwarded address cannot log in");
		}
		bson_oid_t owner = address->user;
		wd_address_free(&address);
		ret = wd_store_user_get(store, &owner, user_r, error_r);
		if (ret == WD_STORE_ERR_NOT_FOUND) {
			char hex[25];
			bson_oid_to_string(&owner, hex);
			*counter_r = strdup(hex);
		}
		return store_kind(ret);
	}
	if (ret != WD_STORE_ERR_NOT_FOUND)
		return store_kind(ret);
	free(*error_r);
	*error_r = NULL;
	/* a username that looks like an address */
	char *plain = NULL;
	const char *error;
	if (wd_address_normalize(login, WD_ADDRESS_REMOVE_LABEL | WD_ADDRESS_REMOVE_DOTS, &plain,
				 &error) < 0) {
		*counter_r = wd_uview(login);
		return wd__auth_fail(error_r, WD_AUTH_ERR_NOT_FOUND, "unknown user");
	}
	ret = wd_store_user_get_by_username(store, plain, user_r, error_r);
	if (ret == WD_STORE_ERR_NOT_FOUND)
		*counter_r = plain;
	else
		free(plain);
	return store_kind(ret);
}
