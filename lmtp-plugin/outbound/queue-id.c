/* Queue ids as ZoneMTA's seq-index makes them: the time in milliseconds
 * times 0x1000 plus a sub-millisecond counter, in hex, followed by a 4-hex
 * suffix chosen at random once per object (per process in ZoneMTA).
 *
 * ZoneMTA lets the counter wrap after 4096 ids in one millisecond, which
 * would repeat an id; here the counter borrows the next millisecond
 * instead, so ids from one object never repeat and still sort by time. */
#include "outbound-private.h"

#include <openssl/rand.h>
#include <stdio.h>

#define SEQ_PER_MS 0x1000

void wd__queue_id_init(struct wd_outbound *outbound)
{
	unsigned char r[2] = { 0, 0 };
	RAND_bytes(r, sizeof(r));
	snprintf(outbound->id_suffix, sizeof(outbound->id_suffix), "%04x",
		 (unsigned)(r[0] | r[1] << 8));
	outbound->id_time_ms = 0;
	outbound->id_seq = 0;
}

void wd__queue_id_next(struct wd_outbound *outbound, char id_r[WD_QUEUE_ID_SIZE])
{
	int64_t now = wd__outbound_now_ms();
	pthread_mutex_lock(&outbound->id_lock);
	if (now > outbound->id_time_ms) {
		outbound->id_time_ms = now;
		outbound->id_seq = 0;
	} else if (outbound->id_seq >= SEQ_PER_MS) {
		outbound->id_time_ms++;
		outbound->id_seq = 0;
	}
	uint64_t value = (uint64_t)outbound->id_time_ms * SEQ_PER_MS + outbound->id_seq++;
	pthread_mutex_unlock(&outbound->id_lock);
	snprintf(id_r, WD_QUEUE_ID_SIZE, "%014llx%s", (unsigned long long)value,
		 outbound->id_suffix);
}
