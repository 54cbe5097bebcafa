#ifndef WD_SPOOL_H
#define WD_SPOOL_H

/* Where a message goes while it arrives over the network (an IMAP APPEND
 * literal, an LMTP DATA body): memory up to a limit (1 MiB), then an
 * unlinked temporary file, never a per-command arena. Storage wants the
 * message in one piece, so the job maps it (a file is mmap'd read-only).
 * The loop thread writes; the job reads after the message arrived whole. */

#include <stddef.h>
#include <stdint.h>

#define WD_SPOOL_MEMORY (1024 * 1024)

struct wd_spool;

struct wd_spool *wd_spool_create(size_t memory_limit);
/* WD_ERROR when memory or the temporary file fails. */
int wd_spool_write(struct wd_spool *spool, const uint8_t *data, size_t len);
uint64_t wd_spool_size(const struct wd_spool *spool);
/* The whole content, valid until destroy. */
int wd_spool_map(struct wd_spool *spool, const uint8_t **data_r, size_t *len_r);
void wd_spool_destroy(struct wd_spool **spool);

#endif
