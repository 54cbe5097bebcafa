/* Delivery's generated mail through the outbound queue (wd-outbound.h).
 * Kept apart so that programs which never call wd_deliver_set_outbound()
 * do not need libwdoutbound's symbols. */
#include "deliver-private.h"
#include "wd-outbound.h"

static int outbound_queue(void *context, const struct wd_outbound_message *message,
			  char queue_id_r[19], char **error_r)
{
	return wd_outbound_queue(context, message, queue_id_r, error_r);
}

void wd_deliver_set_outbound(struct wd_deliver *deliver, struct wd_outbound *outbound)
{
	if (outbound == NULL)
		wd_deliver_set_queue(deliver, NULL, NULL);
	else
		wd_deliver_set_queue(deliver, outbound_queue, outbound);
}
