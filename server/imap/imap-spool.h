#ifndef WD_IMAP_SPOOL_H
#define WD_IMAP_SPOOL_H

/* Where an APPEND literal goes while it arrives (the parser's LITERAL_DATA
 * events): memory up to a limit (1 MiB), then an unlinked temporary file,
 * never the command's arena. The storage call wants the message in one
 * piece, so the job maps it (a file is mmap'd read-only). Loop thread
 * writes; the job reads after the command was parsed whole. */

#include <stddef.h>
#include <stdint.h>

#define WD_IMAP_SPOOL_MEMORY (1024 * 1024)

struct wd_imap_spool;

struct wd_imap_spool *wd_imap_spool_create(size_t memory_limit);
/* WD_ERROR when memory or the temporary file fails. */
int wd_imap_spool_write(struct wd_imap_spool *spool, const uint8_t *data, size_t len);
uint64_t wd_imap_spool_size(const struct wd_imap_spool *spool);
/* The whole content, valid until destroy. */
int wd_imap_spool_map(struct wd_imap_spool *spool, const uint8_t **data_r, size_t *len_r);
void wd_imap_spool_destroy(struct wd_imap_spool **spool);

#endif
