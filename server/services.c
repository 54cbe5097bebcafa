/* The services wd-server runs (wd-service.h), in start order. A new
 * service adds its line here and its library to server/meson.build. */
#include "wd-service.h"

extern const struct wd_service wd_imap_service;
extern const struct wd_service wd_pop3_service;
extern const struct wd_service wd_lmtp_service;
extern const struct wd_service wd_outbound_service;

const struct wd_service *const wd_services[] = {
	&wd_imap_service,
	&wd_pop3_service,
	&wd_lmtp_service,
	&wd_outbound_service,
	NULL,
};
