#ifndef WD_STORE_H
#define WD_STORE_H

/* libwdstore: WildDuck's data model over MongoDB (libmongoc), GridFS and Redis.
 * The storage issue fills this in; until then it only reports its version. */

const char *wd_store_version(void);

#endif
