/* Version of libwdstore and the driver it was built against. */
#include "wd-store.h"

const char *wd_store_version(void)
{
	return "libwdstore 0.1 (libmongoc " MONGOC_VERSION_S ")";
}
