#ifndef API_MESSAGE_COMPOSE_H
#define API_MESSAGE_COMPOSE_H

/* RFC 5322 messages built from WildDuck's JSON message fields
 * (message-compose.c), for uploads without `raw` and for /submit: from,
 * replyTo, to/cc/bcc as [{name, address}], subject, text, html and extra
 * headers [{key, value}]. The result uses CRLF line ends, a Message-ID and
 * Date of its own, RFC 2047 words for non-ASCII names and subjects, and
 * quoted-printable bodies where 7bit would not do; text and html together
 * make a multipart/alternative. Attachments are not built. */

#include "api.h"

#include <stdbool.h>
#include <stdint.h>

struct wd_buffer;

struct api_compose {
	const char *from_name;      /* NULL: none */
	const char *from_address;   /* NULL: none */
	const json_t *reply_to;     /* {name, address} or NULL */
	const json_t *to, *cc, *bcc;/* arrays of {name, address} or NULL */
	const json_t *headers;      /* [{key, value}] or NULL */
	const char *subject, *text, *html;
	int64_t date_ms;            /* 0: now */
	bool keep_bcc;              /* drafts and uploads keep the Bcc header */
	char message_id[128];       /* set by api_compose_build() */
};

/* The fields above from the request's input (borrowed). */
void api_compose_from_request(struct api_request *req, struct api_compose *compose);
/* Appends the message to `out`. WD_ERROR with a malloc'd *error_r for input
   it cannot use (an address without '@', a header with a line break). */
int api_compose_build(struct api_compose *compose, struct wd_buffer *out, char **error_r);
void api_compose_clear(struct api_compose *compose);

/* Every address of to, cc and bcc (envelope recipients) appended to `list`
   (a JSON array of strings), without duplicates. */
void api_compose_recipients(const struct api_compose *compose, json_t *list);

/* The input fields the composer reads, for route field lists. */
#define API_COMPOSE_FIELDS \
	{ "from", API_T_OBJECT, 0, 0, 2048, NULL, "Address for the From: header {name, address}" }, \
	{ "replyTo", API_T_OBJECT, 0, 0, 2048, NULL, "Address for the Reply-To: header" }, \
	{ "to", API_T_ANY, 0, 0, 262144, NULL, "Addresses for the To: header [{name, address}]" }, \
	{ "cc", API_T_ANY, 0, 0, 262144, NULL, "Addresses for the Cc: header" }, \
	{ "bcc", API_T_ANY, 0, 0, 262144, NULL, "Addresses for the Bcc: header" }, \
	{ "headers", API_T_ANY, 0, 0, 262144, NULL, "Custom headers [{key, value}]" }, \
	{ "subject", API_T_STRING, API_F_EMPTY_OK, 0, 2048, NULL, "Message subject" }, \
	{ "text", API_T_STRING, API_F_EMPTY_OK, 0, 1048576, NULL, "Plaintext message" }, \
	{ "html", API_T_STRING, API_F_EMPTY_OK, 0, 1048576, NULL, "HTML formatted message" }

#endif
