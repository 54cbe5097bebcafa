/* The DATA stream of a message (RFC 5321 §4.5.2), sans-I/O.
 *
 * Every line end leaves as CRLF: CRLF stays, and a bare LF or a bare CR
 * becomes CRLF. A relay that took a bare LF (or CR) for a line end could
 * otherwise see "<LF>.<LF>" inside the message as the end of the data and
 * the rest as commands ("SMTP smuggling"); after this pass the only
 * "<CRLF>.<CRLF>" is ours. A '.' that starts a line is doubled. A CR at the
 * end of one chunk waits for the next to know whether an LF follows. */
#include "smtp-client.h"
#include "wd-buffer.h"
#include "wd-result.h"

#include <string.h>

void wd_smtp_data_init(struct wd_smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->line_start = true;
}

static int put(struct wd_smtp_data *d, struct wd_buffer *out, const void *bytes, size_t len)
{
	if (wd_buffer_append(out, bytes, len) < 0)
		return WD_ERROR;
	d->bytes += len;
	return WD_OK;
}

int wd_smtp_data_encode(struct wd_smtp_data *d, const uint8_t *in, size_t len,
			struct wd_buffer *out)
{
	size_t i = 0;
	while (i < len) {
		if (d->pending_cr) {
			d->pending_cr = false;
			if (put(d, out, "\r\n", 2) < 0)
				return WD_ERROR;
			d->line_start = true;
			if (in[i] == '\n') {
				i++;
				continue;
			}
		}
		uint8_t c = in[i];
		if (c == '\r') {
			d->pending_cr = true;
			i++;
			continue;
		}
		if (c == '\n') {
			if (put(d, out, "\r\n", 2) < 0)
				return WD_ERROR;
			d->line_start = true;
			i++;
			continue;
		}
		if (d->line_start && c == '.' && put(d, out, ".", 1) < 0)
			return WD_ERROR;
		/* the rest of the line up to the next CR or LF */
		size_t run = i;
		while (run < len && in[run] != '\r' && in[run] != '\n') {
			if (in[run] & 0x80)
				d->eight_bit = true;
			run++;
		}
		if (put(d, out, in + i, run - i) < 0)
			return WD_ERROR;
		d->line_start = false;
		i = run;
	}
	return WD_OK;
}

int wd_smtp_data_finish(struct wd_smtp_data *d, struct wd_buffer *out)
{
	if (d->pending_cr) {
		d->pending_cr = false;
		d->line_start = true;
		if (put(d, out, "\r\n", 2) < 0)
			return WD_ERROR;
	}
	if (!d->line_start && put(d, out, "\r\n", 2) < 0)
		return WD_ERROR;
	d->line_start = true;
	return put(d, out, ".\r\n", 3);
}
