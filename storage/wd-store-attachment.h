#ifndef WD_STORE_ATTACHMENT_H
#define WD_STORE_ATTACHMENT_H

/* Attachment bodies in the GridFS bucket `attachments` (reference §2.10,
 * §4.4), de-duplicated across messages and users.
 *
 * A file's id is the SHA-256 of the body exactly as the message holds it
 * (still base64/QP encoded), so the same attachment sent to many users is
 * stored once. metadata.c counts references and metadata.m sums the `magic`
 * numbers of the referencing messages; a file is garbage only when both are
 * zero, which a lost or doubled update cannot fake.
 *
 * Byte-exactness: a base64 body is stored decoded (25% smaller, as WildDuck
 * does with attachments.decodeBase64) only when re-encoding the decoded bytes
 * with its line length gives back exactly the original body; otherwise the
 * body is stored as it is. Either way the reader returns the original bytes.
 *
 * Crash safety: chunks are written before the files document. A crash in
 * between leaves chunks without a file; chunk ids are derived from the file
 * id and the chunk number, so the next upload of the same body overwrites
 * them, and wd_store_attachment_gc() removes those of bodies never uploaded
 * again. */

#include "wd-store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_ATTACHMENT_HASH_LEN 32
#define WD_ATTACHMENT_CHUNK_SIZE 261120 /* 255 KiB, as WildDuck */
#define WD_ATTACHMENT_CONTENT_HASH_SIZE 48 /* base64 SHA-256 (44) + NUL, padded */

struct wd_buffer;

struct wd_attachment_put {
	const uint8_t *body;           /* the encoded body as the message holds it */
	size_t len;
	const char *content_type;      /* e.g. "image/png"; NULL = application/octet-stream */
	const char *transfer_encoding; /* lower-case; NULL = "7bit" */
	bool decode_base64;            /* attachments.decodeBase64 */
	uint32_t magic;                /* the referencing message's magic */
};

struct wd_attachment_ref {
	uint8_t hash[WD_ATTACHMENT_HASH_LEN];
	bool created;                  /* this call uploaded the file */
	bool decoded;                  /* stored base64-decoded */
	/* base64 SHA-256 of the stored bytes (metadata.fileContentHash) when
	   this call uploaded the file, "" otherwise */
	char content_hash[WD_ATTACHMENT_CONTENT_HASH_SIZE];
};

/* Stores one body, or references the existing file: c+1, m+magic. */
int wd_store_attachment_put(struct wd_store *store, const struct wd_attachment_put *put,
			    struct wd_attachment_ref *ref_r, char **error_r);
/* Reference changes for COPY (+1) and delete (-1), per file, `magic` being
   the message's. Missing files are ignored (logged). */
int wd_store_attachment_addref(struct wd_store *store, const uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN],
			       size_t count, uint32_t magic, char **error_r);
int wd_store_attachment_release(struct wd_store *store,
				const uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN], size_t count,
				uint32_t magic, char **error_r);

/* Counters of one file (for checks and tests). found_r false when absent. */
int wd_store_attachment_counters(struct wd_store *store, const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
				 bool *found_r, int64_t *c_r, int64_t *m_r, char **error_r);

/* Pull-style reading of the original encoded body: each read fetches at
   most one GridFS chunk, so memory is bounded by a chunk, not the body. */
struct wd_attachment_reader;
struct wd_attachment_reader *wd_store_attachment_open(struct wd_store *store,
						      const uint8_t hash[WD_ATTACHMENT_HASH_LEN],
						      char **error_r);
/* Size of the original encoded body. */
uint64_t wd_attachment_reader_size(const struct wd_attachment_reader *reader);
/* Position the next read at `offset` of the encoded body (partial FETCH). */
int wd_attachment_reader_seek(struct wd_attachment_reader *reader, uint64_t offset, char **error_r);
/* Appends the next bytes (about one chunk's worth) to `out`; *eof_r when the
   body is complete. */
int wd_attachment_reader_read(struct wd_attachment_reader *reader, struct wd_buffer *out,
			      bool *eof_r, char **error_r);
void wd_attachment_reader_close(struct wd_attachment_reader **reader);

/* Garbage collection: files with c = 0 and m = 0 whose counters last changed
   more than `grace_ms` ago, and chunks without a file older than `grace_ms`
   (a crash between the two writes of an upload). */
struct wd_attachment_gc_report {
	unsigned files;
	unsigned orphan_chunk_sets;
};
int wd_store_attachment_gc(struct wd_store *store, int64_t now_ms, int64_t grace_ms,
			   struct wd_attachment_gc_report *report, char **error_r);

#endif
