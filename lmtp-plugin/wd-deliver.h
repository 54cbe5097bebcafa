#ifndef WD_DELIVER_H
#define WD_DELIVER_H

/* libwddeliver: address resolution, filters, quota, Junk, forward, autoreply.
 * Filled in by the delivery issue. */

const char *wd_deliver_version(void);

#endif
