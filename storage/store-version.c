/* Version of libwdstore and the driver it was built against. */
#include "wd-store.h"

#include <mongoc/mongoc.h>

const char *wd_store_version(void)
{
	return MONGOC_VERSION_S;
}
