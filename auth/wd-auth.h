#ifndef WD_AUTH_H
#define WD_AUTH_H

/* libwdauth: who is this and may they in, answered as WildDuck answers it.
 * Filled in by the authentication issue. */

const char *wd_auth_version(void);

#endif
