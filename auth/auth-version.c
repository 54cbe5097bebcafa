/* Version of libwdauth. */
#include "wd-auth.h"
#include "wd-store.h"

const char *wd_auth_version(void)
{
	return wd_store_version();
}
