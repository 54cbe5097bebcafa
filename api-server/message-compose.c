/* RFC 5322 messages from WildDuck's JSON message fields (message-compose.h).
 *
 * WildDuck hands these fields to nodemailer's MailComposer; we build the
 * same kind of message directly: headers first (From, Reply-To, To, Cc,
 * Bcc when kept, Subject, Message-ID, Date, MIME-Version, the custom ones),
 * then one text part, one html part, or both as multipart/alternative.
 * Every input is bounded by the route's field list; what cannot be written
 * safely (line breaks in a header, an address without '@') is refused
 * rather than repaired. */
#include "message-compose.h"

#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QP_LINE 76

void api_compose_from_request(struct api_request *req, struct api_compose *c)
{
	memset(c, 0, sizeof(*c));
	json_t *from = api_json(req, "from");
	if (json_is_object(from)) {
		c->from_name = json_string_value(json_object_get(from, "name"));
		c->from_address = json_string_value(json_object_get(from, "address"));
	}
	c->reply_to = api_json(req, "replyTo");
	c->to = api_json(req, "to");
	c->cc = api_json(req, "cc");
	c->bcc = api_json(req, "bcc");
	c->headers = api_json(req, "headers");
	c->subject = api_str(req, "subject", NULL);
	c->text = api_str(req, "text", NULL);
	c->html = api_str(req, "html", NULL);
}

void api_compose_clear(struct api_compose *c)
{
	memset(c, 0, sizeof(*c));
}

static bool is_ascii_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* RFC 2047 B words of at most 45 bytes each, cut at UTF-8 boundaries. */
static void append_encoded_words(struct wd_buffer *out, const char *text)
{
	size_t len = strlen(text), pos = 0;
	bool first = true;
	while (pos < len) {
		size_t n = len - pos < 45 ? len - pos : 45;
		while (n > 1 && pos + n < len && ((unsigned char)text[pos + n] & 0xc0) == 0x80)
			n--;
		if (!first)
			wd_buffer_append_str(out, "\r\n ");
		first = false;
		wd_buffer_append_str(out, "=?UTF-8?B?");
		wd_base64_encode((const uint8_t *)text + pos, n, 0, out);
		wd_buffer_append_str(out, "?=");
		pos += n;
	}
}

static void append_phrase(struct wd_buffer *out, const char *name)
{
	if (!is_ascii_printable(name)) {
		append_encoded_words(out, name);
		return;
	}
	if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL) {
		wd_buffer_append_str(out, name);
		return;
	}
	wd_buffer_append_str(out, "\"");
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			wd_buffer_append_str(out, "\\");
		wd_buffer_append(out, p, 1);
	}
	wd_buffer_append_str(out, "\"");
}

static bool address_ok(const char *address, char **error_r)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	if (at == NULL || at == address || at[1] == '\0' || strlen(address) > 512 ||
	    strpbrk(address, " \t\r\n<>,;\"()") != NULL) {
		*error_r = strdup("an address must be a valid email");
		return false;
	}
	return true;
}

static int append_mailbox(struct wd_buffer *out, const char *name, const char *address,
			  char **error_r)
{
	if (!address_ok(address, error_r))
		return WD_ERROR;
	if (name != NULL && name[0] != '\0') {
		if (strlen(name) > 1024 || strpbrk(name, "\r\n") != NULL) {
			*error_r = strdup("an address name must be one line");
			return WD_ERROR;
		}
		append_phrase(out, name);
		wd_buffer_append_str(out, " <");
		wd_buffer_append_str(out, address);
		wd_buffer_append_str(out, ">");
	} else {
		wd_buffer_append_str(out, address);
	}
	return WD_OK;
}

/* A list: an array of {name, address} (or one such object). */
static int append_address_header(struct wd_buffer *out, const char *field, const json_t *list,
				 char **error_r)
{
	if (list == NULL || json_is_null(list))
		return WD_OK;
	if (json_is_object(list)) {
		wd_buffer_printf(out, "%s: ", field);
		if (append_mailbox(out, json_string_value(json_object_get(list, "name")),
				   json_string_value(json_object_get(list, "address")), error_r) < 0)
			return WD_ERROR;
		wd_buffer_append_str(out, "\r\n");
		return WD_OK;
	}
	if (!json_is_array(list)) {
		*error_r = strdup("address lists must be arrays of {name, address}");
		return WD_ERROR;
	}
	size_t count = 0, i;
	json_t *item;
	json_array_foreach(list, i, item) {
		if (!json_is_object(item)) {
			*error_r = strdup("address lists must be arrays of {name, address}");
			return WD_ERROR;
		}
		const char *address = json_string_value(json_object_get(item, "address"));
		if (address == NULL || address[0] == '\0')
			continue; /* WildDuck drops empty addresses */
		wd_buffer_append_str(out, count == 0 ? field : ",\r\n");
		wd_buffer_append_str(out, count == 0 ? ": " : " ");
		if (append_mailbox(out, json_string_value(json_object_get(item, "name")), address,
				   error_r) < 0)
			return WD_ERROR;
		count++;
	}
	if (count > 0)
		wd_buffer_append_str(out, "\r\n");
	return WD_OK;
}

static void append_recipient_list(const json_t *list, json_t *out)
{
	size_t i;
	json_t *item;
	if (json_is_object(list)) {
		const char *a = json_string_value(json_object_get(list, "address"));
		if (a != NULL && a[0] != '\0')
			json_array_append_new(out, json_string(a));
		return;
	}
	if (!json_is_array(list))
		return;
	json_array_foreach(list, i, item) {
		const char *a = json_string_value(json_object_get(item, "address"));
		if (a == NULL || a[0] == '\0')
			continue;
		bool seen = false;
		size_t k;
		json_t *have;
		json_array_foreach(out, k, have)
			seen = seen || strcasecmp(json_string_value(have), a) == 0;
		if (!seen)
			json_array_append_new(out, json_string(a));
	}
}

void api_compose_recipients(const struct api_compose *c, json_t *list)
{
	append_recipient_list(c->to, list);
	append_recipient_list(c->cc, list);
	append_recipient_list(c->bcc, list);
}

/* 7bit when every line is ASCII and short enough, else quoted-printable. */
static bool needs_qp(const char *text)
{
	size_t line = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p == '\n') {
			line = 0;
			continue;
		}
		if (*p >= 0x80 || (*p < 0x20 && *p != '\t' && *p != '\r') || ++line > 900)
			return true;
	}
	return false;
}

static void append_body_7bit(struct wd_buffer *out, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			wd_buffer_append_str(out, "\r\n");
		else
			wd_buffer_append(out, p, 1);
	}
}

static void append_body_qp(struct wd_buffer *out, const char *text)
{
	size_t line = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n') {
			wd_buffer_append_str(out, "\r\n");
			line = 0;
			continue;
		}
		char enc[4];
		bool at_eol = p[1] == '\n' || p[1] == '\0' || (p[1] == '\r' && p[2] == '\n');
		if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !at_eol)) {
			enc[0] = (char)*p;
			enc[1] = '\0';
		} else {
			snprintf(enc, sizeof(enc), "=%02X", *p);
		}
		size_t n = strlen(enc);
		if (line + n > QP_LINE - 1) {
			wd_buffer_append_str(out, "=\r\n");
			line = 0;
		}
		wd_buffer_append_str(out, enc);
		line += n;
	}
}

static void append_part(struct wd_buffer *out, const char *type, const char *body)
{
	bool qp = needs_qp(body);
	wd_buffer_printf(out, "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n\r\n",
			 type, qp ? "quoted-printable" : "7bit");
	if (qp)
		append_body_qp(out, body);
	else
		append_body_7bit(out, body);
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char buf[32];
	if (bytes > sizeof(buf))
		bytes = sizeof(buf);
	if (RAND_bytes(buf, (int)bytes) != 1)
		for (size_t i = 0; i < bytes; i++)
			buf[i] = (unsigned char)rand();
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", buf[i]);
}

static int append_custom_headers(struct wd_buffer *out, const json_t *headers, char **error_r)
{
	if (headers == NULL || json_is_null(headers))
		return WD_OK;
	if (!json_is_array(headers)) {
		*error_r = strdup("headers must be an array of {key, value}");
		return WD_ERROR;
	}
	size_t i;
	json_t *h;
	json_array_foreach(headers, i, h) {
		const char *key = json_string_value(json_object_get(h, "key"));
		const char *value = json_string_value(json_object_get(h, "value"));
		if (key == NULL || value == NULL || key[0] == '\0' || strlen(key) > 255 ||
		    strpbrk(key, ": \t\r\n") != NULL || strpbrk(value, "\r\n") != NULL ||
		    strlen(value) > 100 * 1024) {
			*error_r = strdup("headers must be {key, value} with one-line values");
			return WD_ERROR;
		}
		wd_buffer_printf(out, "%s: ", key);
		if (is_ascii_printable(value))
			wd_buffer_append_str(out, value);
		else
			append_encoded_words(out, value);
		wd_buffer_append_str(out, "\r\n");
	}
	return WD_OK;
}

int api_compose_build(struct api_compose *c, struct wd_buffer *out, char **error_r)
{
	*error_r = NULL;
	size_t start = out->len;
	if (c->from_address != NULL && c->from_address[0] != '\0') {
		wd_buffer_append_str(out, "From: ");
		if (append_mailbox(out, c->from_name, c->from_address, error_r) < 0)
			goto fail;
		wd_buffer_append_str(out, "\r\n");
	}
	if (append_address_header(out, "Reply-To", c->reply_to, error_r) < 0 ||
	    append_address_header(out, "To", c->to, error_r) < 0 ||
	    append_address_header(out, "Cc", c->cc, error_r) < 0 ||
	    (c->keep_bcc && append_address_header(out, "Bcc", c->bcc, error_r) < 0))
		goto fail;
	if (!c->keep_bcc && c->bcc != NULL && !json_is_null(c->bcc) && !json_is_array(c->bcc) &&
	    !json_is_object(c->bcc)) {
		*error_r = strdup("address lists must be arrays of {name, address}");
		goto fail;
	}
	if (c->subject != NULL && c->subject[0] != '\0') {
		if (strpbrk(c->subject, "\r\n") != NULL) {
			*error_r = strdup("the subject must be one line");
			goto fail;
		}
		wd_buffer_append_str(out, "Subject: ");
		if (is_ascii_printable(c->subject))
			wd_buffer_append_str(out, c->subject);
		else
			append_encoded_words(out, c->subject);
		wd_buffer_append_str(out, "\r\n");
	}
	char id[33];
	random_hex(id, 16);
	const char *domain = c->from_address != NULL ? strrchr(c->from_address, '@') : NULL;
	snprintf(c->message_id, sizeof(c->message_id), "<%s@%s>", id,
		 domain != NULL && strlen(domain + 1) < 80 ? domain + 1 : "wildduck.email");
	wd_buffer_printf(out, "Message-ID: %s\r\n", c->message_id);
	time_t t = c->date_ms > 0 ? (time_t)(c->date_ms / 1000) : time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	wd_buffer_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
			 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
	wd_buffer_append_str(out, "MIME-Version: 1.0\r\n");
	if (append_custom_headers(out, c->headers, error_r) < 0)
		goto fail;
	bool has_text = c->text != NULL && c->text[0] != '\0';
	bool has_html = c->html != NULL && c->html[0] != '\0';
	if (has_text && has_html) {
		char boundary[40] = "--_wdc_";
		random_hex(boundary + 7, 12);
		wd_buffer_printf(out, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n",
				 boundary);
		wd_buffer_printf(out, "--%s\r\n", boundary);
		append_part(out, "text/plain", c->text);
		wd_buffer_printf(out, "\r\n--%s\r\n", boundary);
		append_part(out, "text/html", c->html);
		wd_buffer_printf(out, "\r\n--%s--\r\n", boundary);
	} else {
		append_part(out, has_html ? "text/html" : "text/plain",
			    has_html ? c->html : has_text ? c->text : "");
	}
	return WD_OK;
fail:
	out->len = start;
	if (*error_r == NULL)
		*error_r = strdup("cannot build the message");
	return WD_ERROR;
}
