#ifndef WD_STORE_THREAD_H
#define WD_STORE_THREAD_H

/* Message threads as WildDuck computes them (reference §4.5). */

#include "wd-store.h"

#include <stddef.h>

/* The thread subject: whitespace collapsed, then leading "re:", "fw:",
   "fwd:" (any case, spaces before the colon allowed), a leading "[tag]"
   followed by more text, and a trailing "(fwd)" removed repeatedly.
   malloc'd. */
char *wd_thread_subject(const char *subject);

/* Reference ids: the Message-ID, In-Reply-To, first 22 characters of
   Thread-Index and References values (any may be NULL), split on white
   space, without '<' '>', each SHA-1'd and base64'd without '=' padding,
   de-duplicated, at most 10. Returns the count. */
size_t wd_thread_ids(const char *message_id, const char *in_reply_to, const char *thread_index,
		     const char *references, char ids[][32]);

/* The thread of a new message: an existing thread of `user` with the same
   subject and a shared id (its ids extended), else a new one. */
int wd_store_thread_get(struct wd_store *store, const bson_oid_t *user, const char *subject,
			const char ids[][32], size_t id_count, bson_oid_t *thread_r, char **error_r);

#endif
