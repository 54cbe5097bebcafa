#ifndef WD_MESSAGE_SUMMARY_H
#define WD_MESSAGE_SUMMARY_H

/* What a message says about itself before it is stored: the facts delivery
 * needs for filters, the spam decision, autoreplies, loop checks and the
 * address register (lmtp-plugin), computed by the code that builds the
 * stored document, so a filter sees exactly what WildDuck's filter sees in
 * the stored fields. One parse of the message; the caller computes it once
 * per transaction and uses it for every recipient. */

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_message_summary {
	/* {"headers": [{key, value}]}: the indexed headers as stored
	   (reference §3.4: decoded, lower-cased, list-id reduced to its id) */
	bson_t *headers;
	/* The root's parsedHeader as WildDuck stores it (reference §3.1):
	   single fields as strings, repeated ones as arrays in header order,
	   from/sender/to/cc/bcc/reply-to as [{address, name}] / groups */
	bson_t *parsed_header;
	/* Decoded plaintext: the stored text and textFooter joined (at most
	   100 Ki UTF-16 units, CRLF as LF), "" when the message has none */
	char *text;
	/* Entries of the stored `attachments` list, and `ha` */
	size_t attachment_count;
	bool has_attachments;
};

/* Parses raw[0..len) (at most WD_MIME_MAX_MESSAGE_SIZE). WD_ERROR with a
   malloc'd *error_r when the message is too large or memory runs out. */
int wd_message_summary_build(const uint8_t *raw, size_t len, struct wd_message_summary *summary_r,
			     char **error_r);
void wd_message_summary_clear(struct wd_message_summary *summary);

#endif
