/* DATA: the message Dovecot's smtp-server spooled (dot-unstuffed, in an
 * iostream-temp: memory, then a temporary file) goes to
 * wd_deliver_message() once for all accepted recipients, and each
 * recipient gets the pipeline's reply (RFC 2033 §4.2), in RCPT order.
 *
 * What wd-server's engine does while it reads a message, done here while
 * the spool is read into one buffer (server/lmtp/lmtp-parser.c, docs/LMTP.md
 * "Reading the message"), so the stored bytes are the same:
 *   - a bare LF becomes CRLF; a bare CR stays;
 *   - a NUL byte refuses the message for every recipient (554 5.6.0);
 *   - a line longer than 1 MiB (without its line end) likewise (554 5.6.0).
 * A message past the pipeline's limit (lmtp.maxMB) is refused for every
 * recipient with wd-server's 552 5.3.4 without being read (Dovecot has
 * spooled it, up to its absolute limit; wildduck-lmtp-plugin.c). Dovecot's own trace headers (Received,
 * Delivered-To, Return-Path of lmtp_add_received_header and
 * lmtp_hdr_delivery_address) are not added: the pipeline writes WildDuck's
 * Delivered-To and Return-Path itself.
 *
 * One log line per transaction, as wd-server's engine writes it, with each
 * recipient's final code; the pipeline logs its own message-log line per
 * recipient. */
#include "wildduck-lmtp.h"

#include "buffer.h"
#include "istream.h"
#include "str.h"
#include "time-util.h"
#include "smtp-address.h"

#include "wd-deliver.h"

#define MAX_DATA_LINE (1024 * 1024)
#define LOG_LINE_MAX 1800

enum message_status {
	MESSAGE_OK,
	MESSAGE_NUL,
	MESSAGE_LINE_TOO_LONG,
	MESSAGE_READ_ERROR,
};

struct message_reader {
	buffer_t *buf;
	size_t line_len;
	bool pending_cr;
	bool nul;
	bool long_line;
};

static void reader_count(struct message_reader *r)
{
	if (++r->line_len > MAX_DATA_LINE)
		r->long_line = TRUE;
}

/* Appends one chunk; runs without a bare LF are copied as they are. */
static void reader_feed(struct message_reader *r, const unsigned char *data, size_t size)
{
	size_t start = 0;

	for (size_t i = 0; i < size; i++) {
		unsigned char c = data[i];
		if (c == '\n') {
			if (r->pending_cr) {
				r->pending_cr = FALSE;
			} else {
				/* bare LF: CRLF is stored instead */
				buffer_append(r->buf, data + start, i - start);
				buffer_append(r->buf, "\r", 1);
				start = i;
			}
			r->line_len = 0;
			continue;
		}
		if (r->pending_cr) {
			/* the CR before this byte was content */
			r->pending_cr = FALSE;
			reader_count(r);
		}
		if (c == '\r') {
			r->pending_cr = TRUE; /* counted once it is known to be content */
			continue;
		}
		if (c == '\0')
			r->nul = TRUE;
		reader_count(r);
	}
	buffer_append(r->buf, data + start, size - start);
}

static enum message_status read_message(struct istream *input, uoff_t data_size,
					buffer_t **buf_r, const char **error_r)
{
	struct message_reader r = {
		/* bare LFs can add to the size, rarely by much */
		.buf = buffer_create_dynamic(default_pool, data_size + data_size / 64 + 64),
	};
	const unsigned char *data;
	size_t size;
	int ret;

	while ((ret = i_stream_read_more(input, &data, &size)) > 0) {
		reader_feed(&r, data, size);
		i_stream_skip(input, size);
	}
	i_assert(ret == -1);
	if (input->stream_errno != 0) {
		*error_r = i_stream_get_error(input);
		buffer_free(&r.buf);
		return MESSAGE_READ_ERROR;
	}
	if (r.pending_cr)
		reader_count(&r);
	*buf_r = r.buf;
	return r.nul ? MESSAGE_NUL : r.long_line ? MESSAGE_LINE_TOO_LONG : MESSAGE_OK;
}

static void log_transaction(struct client *client, struct wildduck_lmtp_client *wclient,
			    struct smtp_server_transaction *trans, uoff_t size, long long msecs,
			    const char *const *addresses, const struct wd_deliver_reply *replies,
			    unsigned int count)
{
	string_t *line = t_str_new(256);
	const char *ip = net_ip2addr(&client->remote_ip);

	str_printfa(line, "wildduck: transaction %s from=<%s> ip=%s size=%"PRIuUOFF_T
		    " ms=%lld rcpts=%u refused=%u:", wclient->transaction_id,
		    smtp_address_encode(trans->mail_from), *ip == '\0' ? "local" : ip,
		    size, msecs, count, wclient->refused);
	for (unsigned int i = 0; i < count; i++) {
		unsigned int code;
		const char *status, *text;
		if (str_len(line) > LOG_LINE_MAX) {
			str_printfa(line, " ... (+%u more)", count - i);
			break;
		}
		wd_deliver_reply_checked(&replies[i], &code, &status, &text);
		str_printfa(line, "%s <%s> %u %s", i > 0 ? "," : "", addresses[i], code, status);
	}
	e_info(client->event, "%s", str_c(line));
}

/* The same reply for every recipient (a message refused while reading). */
static void reply_all(struct wd_deliver_reply *replies, unsigned int count, unsigned int code,
		      const char *status, const char *text)
{
	for (unsigned int i = 0; i < count; i++) {
		replies[i].code = code;
		i_strocpy(replies[i].status, status, sizeof(replies[i].status));
		i_strocpy(replies[i].text, text, sizeof(replies[i].text));
	}
}

int wildduck_lmtp_cmd_data(struct client *client, struct smtp_server_cmd_ctx *cmd ATTR_UNUSED,
			   struct smtp_server_transaction *trans, struct istream *data_input,
			   uoff_t data_size)
{
	struct wildduck_lmtp_client *wclient = WILDDUCK_LMTP_CLIENT(client);
	struct smtp_server_recipient *const *rcpts;
	unsigned int count;
	struct timeval started;

	i_gettimeofday(&started);
	rcpts = array_get(&trans->rcpt_to, &count);
	i_assert(count > 0); /* smtp-server answers DATA without recipients */

	struct wd_deliver_rcpt **drcpts = t_new(struct wd_deliver_rcpt *, count);
	const char **addresses = t_new(const char *, count);
	struct wd_deliver_reply *replies = t_new(struct wd_deliver_reply, count);
	bool all_ours = TRUE;
	for (unsigned int i = 0; i < count; i++) {
		struct lmtp_recipient *lrcpt = rcpts[i]->context;
		struct wildduck_lmtp_recipient *wrcpt =
			lrcpt == NULL ? NULL : WILDDUCK_LMTP_RECIPIENT(lrcpt);
		if (wrcpt == NULL) {
			/* cannot happen: every recipient went through our cmd_rcpt */
			all_ours = FALSE;
			addresses[i] = smtp_address_encode(rcpts[i]->path);
			continue;
		}
		drcpts[i] = wrcpt->rcpt;
		addresses[i] = wrcpt->address;
	}

	buffer_t *message = NULL;
	const char *error;
	enum message_status read_status = MESSAGE_OK;
	i_assert(wclient->pipeline != NULL); /* it accepted the recipients */
	uint64_t max_size = wclient->pipeline->max_size;
	wclient->delivered = TRUE;
	if (data_size > max_size) {
		reply_all(replies, count, 552, "5.3.4",
			  t_strdup_printf("Message too big (the limit is %llu bytes)",
					  (unsigned long long)max_size));
	} else {
		read_status = read_message(data_input, data_size, &message, &error);
	}
	switch (read_status) {
	case MESSAGE_OK:
		break;
	case MESSAGE_NUL:
		reply_all(replies, count, 554, "5.6.0",
			  "Message contains NUL bytes (BINARYMIME is not supported)");
		break;
	case MESSAGE_LINE_TOO_LONG:
		reply_all(replies, count, 554, "5.6.0", "Message has a line that is too long");
		break;
	case MESSAGE_READ_ERROR:
		e_error(client->event, "wildduck: reading the spooled message failed: %s", error);
		reply_all(replies, count, 451, "4.3.0", "Temporary failure storing the message");
		break;
	}

	if (message != NULL && replies[0].code == 0 && !all_ours) {
		reply_all(replies, count, 451, "4.3.0", "Temporary local problem, try again later");
	} else if (message != NULL && replies[0].code == 0) {
		const char *ip = net_ip2addr(&client->remote_ip);
		const struct smtp_server_helo_data *helo =
			smtp_server_connection_get_helo_data(client->conn);
		struct wd_deliver_envelope envelope = {
			.mail_from = smtp_address_isnull(trans->mail_from) ? "" :
				     smtp_address_encode(trans->mail_from),
			.helo = helo->domain != NULL ? helo->domain : "",
			.remote_ip = *ip != '\0' ? ip : NULL,
			.transaction_id = wclient->transaction_id,
			.protocol = "LMTP",
		};
		if (wd_deliver_message(wclient->pipeline->deliver, &envelope, drcpts, count,
				       message->data, message->used, replies) < 0) {
			e_error(client->event, "wildduck: delivery of %s failed",
				wclient->transaction_id);
			reply_all(replies, count, 451, "4.3.0",
				  "Temporary local problem, try again later");
		}
	}
	if (message != NULL)
		buffer_free(&message);

	for (unsigned int i = 0; i < count; i++) {
		unsigned int code;
		const char *status, *text;
		wd_deliver_reply_checked(&replies[i], &code, &status, &text);
		wildduck_lmtp_recipient_reply(rcpts[i], code, status, text);
	}
	struct timeval now;
	i_gettimeofday(&now);
	log_transaction(client, wclient, trans, data_size, timeval_diff_msecs(&now, &started),
			addresses, replies, count);
	return 0;
}
