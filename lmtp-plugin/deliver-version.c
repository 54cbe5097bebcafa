/* Version of libwddeliver. */
#include "wd-deliver.h"
#include "wd-auth.h"

const char *wd_deliver_version(void)
{
	return wd_auth_version();
}
