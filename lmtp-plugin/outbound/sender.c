/* The sender thread (not built yet: this step queues only). */
#include "outbound-private.h"
#include "wd-result.h"

#include <string.h>

int wd_outbound_sender_start(struct wd_outbound *outbound, char **error_r)
{
	*error_r = strdup("the sender is not built yet");
	return WD_ERROR;
}

void wd_outbound_sender_stop(struct wd_outbound *outbound)
{
}

bool wd_outbound_sender_running(const struct wd_outbound *outbound)
{
	return false;
}

void wd_outbound_sender_wake(struct wd_outbound *outbound)
{
}
