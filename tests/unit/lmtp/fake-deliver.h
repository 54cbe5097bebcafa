#ifndef FAKE_DELIVER_H
#define FAKE_DELIVER_H

/* A stand-in for libwddeliver (lmtp-plugin/wd-deliver.h) for the engine
 * tests: no database, answers decided by the address, every delivered
 * message recorded. The real pipeline is exercised by the client tests
 * (tests/clients/lmtp) against wd-server and the stack.
 *
 * check_rcpt: "unknown..." → 550 5.1.1, "full..." → 452 4.2.2,
 *             "slowrcpt..." sleeps 300 ms first, anything else → accepted.
 * message:    "quota..." → 552 5.2.2, "slow..." sleeps 500 ms before
 *             answering, anything else → 250 2.0.0 and the message is kept. */

#include <stddef.h>
#include <stdint.h>

struct fake_delivery {
	char mail_from[300];
	char helo[300];
	char rcpt[300];
	char transaction_id[32];
	uint8_t *raw;
	size_t len;
};

/* Deliveries so far (one per recipient that got 250), thread-safe. */
size_t fake_deliver_count(void);
/* A copy of delivery i (raw is malloc'd), 0 when it exists. */
int fake_deliver_get(size_t i, struct fake_delivery *out);
void fake_deliver_reset(void);
/* What wd_deliver_max_size() answers (0 = no opinion). */
void fake_deliver_set_max_size(uint64_t max);
/* Number of wd_deliver_rcpt objects alive (leak check). */
long fake_deliver_rcpts_alive(void);

#endif
