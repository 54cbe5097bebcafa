/* imap-client.c — one IMAP client session for wd-load on top of a
 * transport and the sans-I/O response reader.
 *
 * Design:
 *   - One command in flight at a time (what the benchmark measures is the
 *     round trip of each command); tags are "a1", "a2"... per session. A
 *     tagged reply whose tag is not the pending one is ignored.
 *   - The session keeps the mailbox size up to date from untagged
 *     "* n EXISTS" / "* n EXPUNGE" and UIDNEXT from "* OK [UIDNEXT n]", so
 *     the modes can pick valid sequence numbers and UIDs while other clients
 *     append and expunge.
 *   - Every command arms the operation timeout (--timeout); the tagged reply
 *     disarms it. A mode that leaves a command open on purpose (IDLE) disarms
 *     it itself.
 *   - AUTHENTICATE PLAIN answers the server's "+" itself (no SASL-IR, which
 *     every server supports); other continuations go to the mode.
 *   - Callbacks may close the session; parsing stops then, and the object
 *     lives until the transport's on_close, which is forwarded last. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "wd-base64.h"
#include "wd-load.h"

struct wl_imap {
	struct wl_conn *conn;
	struct wl_imap_reader reader;
	const struct wl_imap_events *ev;
	void *ctx;
	bool greeted, closing;
	unsigned tagn;
	char tag[16];
	wl_imap_done_fn *done;
	char *sasl_line;
	uint32_t exists, uidnext;
};

bool wl_imap_ok(const struct wl_imap_response *tagged)
{
	return tagged != NULL && strcmp(tagged->word, "OK") == 0;
}

uint32_t wl_imap_exists(const struct wl_imap *im)
{
	return im->exists;
}

uint32_t wl_imap_uidnext(const struct wl_imap *im)
{
	return im->uidnext;
}

static void handle(struct wl_imap *im, const struct wl_imap_response *r)
{
	if (!im->greeted) {
		im->greeted = true;
		bool ok = r->kind == WL_IMAP_UNTAGGED &&
			  (strcmp(r->word, "OK") == 0 || strcmp(r->word, "PREAUTH") == 0);
		wl_imap_timeout(im, 0);
		if (im->ev->on_ready != NULL)
			im->ev->on_ready(im, im->ctx, ok);
		return;
	}
	switch (r->kind) {
	case WL_IMAP_TAGGED:
		if (im->done != NULL && strcmp(r->tag, im->tag) == 0) {
			wl_imap_done_fn *done = im->done;
			im->done = NULL;
			wl_conn_timeout(im->conn, 0);
			done(im, im->ctx, r);
		}
		return;
	case WL_IMAP_CONTINUATION:
		if (im->sasl_line != NULL) {
			char *line = im->sasl_line;
			im->sasl_line = NULL;
			wl_conn_write(im->conn, line, strlen(line));
			free(line);
			return;
		}
		if (im->ev->on_continue != NULL)
			im->ev->on_continue(im, im->ctx, r);
		return;
	case WL_IMAP_UNTAGGED:
		if (r->has_number && strcmp(r->word, "EXISTS") == 0) {
			im->exists = r->number;
		} else if (r->has_number && strcmp(r->word, "EXPUNGE") == 0) {
			if (im->exists > 0)
				im->exists--;
		} else if (strcmp(r->word, "OK") == 0) {
			const char *u = strstr(r->head, "[UIDNEXT ");
			if (u != NULL)
				im->uidnext = (uint32_t)strtoul(u + 9, NULL, 10);
		}
		if (im->ev->on_untagged != NULL)
			im->ev->on_untagged(im, im->ctx, r);
		return;
	}
}

static void on_input(struct wl_conn *conn, void *ctx)
{
	struct wl_imap *im = ctx;
	size_t len;
	const uint8_t *data = wl_conn_input(conn, &len);
	size_t used = 0;
	while (used < len && !im->closing) {
		bool done;
		used += wl_imap_reader_feed(&im->reader, data + used, len - used, &done);
		if (done) {
			struct wl_imap_response resp = im->reader.resp;
			wl_imap_reader_init(&im->reader);
			handle(im, &resp);
		}
	}
	if (!im->closing)
		wl_conn_consume(conn, used);
}

static void on_connect(struct wl_conn *conn, void *ctx)
{
	(void)conn;
	struct wl_imap *im = ctx;
	wl_imap_timeout(im, wl_opt.timeout); /* for the greeting */
}

static void on_close(struct wl_conn *conn, void *ctx, const char *reason)
{
	(void)conn;
	struct wl_imap *im = ctx;
	im->closing = true;
	if (im->ev->on_close != NULL)
		im->ev->on_close(im, im->ctx, reason);
	free(im->sasl_line);
	free(im);
}

static const struct wl_conn_callbacks imap_conn_cb = {
	.on_connect = on_connect,
	.on_input = on_input,
	.on_close = on_close,
};

struct wl_imap *wl_imap_open(const char *host, int port, bool tls,
			     const struct wl_imap_events *ev, void *ctx)
{
	struct wl_imap *im = calloc(1, sizeof(*im));
	if (im == NULL)
		return NULL;
	im->ev = ev;
	im->ctx = ctx;
	wl_imap_reader_init(&im->reader);
	im->conn = wl_conn_open(host, port, tls, wl_next_source(), &imap_conn_cb, im);
	if (im->conn == NULL) {
		free(im);
		return NULL;
	}
	/* connect + greeting must finish within the timeout as well */
	wl_conn_timeout(im->conn, wl_opt.timeout);
	return im;
}

int wl_imap_command(struct wl_imap *im, wl_imap_done_fn *done, const char *fmt, ...)
{
	if (im->closing || im->done != NULL)
		return -1;
	char line[1024];
	snprintf(im->tag, sizeof(im->tag), "a%u", ++im->tagn);
	int n = snprintf(line, sizeof(line), "%s ", im->tag);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= sizeof(line) - 2)
		return -1;
	n += m;
	line[n++] = '\r';
	line[n++] = '\n';
	im->done = done;
	wl_conn_timeout(im->conn, wl_opt.timeout);
	return wl_conn_write(im->conn, line, (size_t)n);
}

int wl_imap_send_raw(struct wl_imap *im, const void *data, size_t len)
{
	if (im->closing)
		return -1;
	return wl_conn_write(im->conn, data, len);
}

void wl_imap_timeout(struct wl_imap *im, double seconds)
{
	wl_conn_timeout(im->conn, seconds);
}

void wl_imap_close(struct wl_imap *im, const char *reason)
{
	if (im->closing)
		return;
	im->closing = true;
	wl_conn_close(im->conn, reason);
}

/* IMAP quoted string (user names and passwords of the benchmark are ASCII) */
static void quote(const char *s, char *out, size_t size)
{
	size_t n = 0;
	out[n++] = '"';
	for (; *s != '\0' && n + 3 < size; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n++] = '"';
	out[n] = '\0';
}

int wl_imap_login(struct wl_imap *im, const char *user, const char *password,
		  wl_imap_done_fn *done)
{
	if (!wl_opt.auth_plain) {
		char qu[300], qp[300];
		quote(user, qu, sizeof(qu));
		quote(password, qp, sizeof(qp));
		return wl_imap_command(im, done, "LOGIN %s %s", qu, qp);
	}
	char raw[600];
	int n = snprintf(raw, sizeof(raw), "%c%s%c%s", 0, user, 0, password);
	if (n < 0 || (size_t)n >= sizeof(raw))
		return -1;
	struct wd_buffer b64 = WD_BUFFER_INIT;
	if (wd_base64_encode((const uint8_t *)raw, (size_t)n, 0, &b64) < 0 ||
	    wd_buffer_append(&b64, "\r\n\0", 3) < 0) {
		wd_buffer_release(&b64);
		return -1;
	}
	free(im->sasl_line);
	size_t len;
	im->sasl_line = (char *)wd_buffer_steal(&b64, &len);
	return wl_imap_command(im, done, "AUTHENTICATE PLAIN");
}
