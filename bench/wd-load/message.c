/* message.c — synthetic test messages for APPEND and LMTP delivery, and the
 * size mixes ("2k=70,20k=25,200k=4,2m=1") that pick their sizes.
 *
 * Design:
 *   - A message is plain RFC 5322 text: From, To, Subject with a serial
 *     number, Date, Message-ID, MIME headers, then a body of 76-character
 *     lines of pseudo-words until the requested size (the size is met to
 *     within one line; a message never goes below its headers). Words come
 *     from a small list so that SEARCH TEXT has something to find.
 *   - No line starts with '.', so LMTP DATA needs no dot-stuffing; lines end
 *     in CRLF.
 *   - A size mix is a short table of (size, weight); picking is a weighted
 *     random choice. At most 16 entries; sizes up to 64 MiB. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wd-load.h"

static const char *const words[] = {
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
	"quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
	"yankee", "zulu", "benchmark", "wildduck", "mailbox", "message",
};

char *wl_message_make(size_t size, const char *from, const char *to, uint64_t serial,
		      size_t *len_r)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	char head[1024];
	int hn = snprintf(head, sizeof(head),
			  "From: Bench Sender <%s>\r\n"
			  "To: <%s>\r\n"
			  "Subject: wd-load message %llu %s\r\n"
			  "Date: %s\r\n"
			  "Message-ID: <wdload.%llu.%u@bench.invalid>\r\n"
			  "MIME-Version: 1.0\r\n"
			  "Content-Type: text/plain; charset=us-ascii\r\n"
			  "\r\n",
			  from, to, (unsigned long long)serial,
			  words[serial % (sizeof(words) / sizeof(words[0]))], date,
			  (unsigned long long)serial, (unsigned)rand());
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return NULL;
	size_t cap = (size_t)hn + size + 128;
	char *msg = malloc(cap);
	if (msg == NULL)
		return NULL;
	memcpy(msg, head, (size_t)hn);
	size_t len = (size_t)hn;
	uint32_t state = (uint32_t)serial * 2654435761u + 1;
	while (len + 2 < size || len == (size_t)hn) {
		/* one line of at most 76 characters plus CRLF */
		size_t line = 0;
		while (line < 70) {
			state = state * 1103515245u + 12345u;
			const char *w = words[(state >> 16) % (sizeof(words) / sizeof(words[0]))];
			size_t wl = strlen(w);
			if (line + wl + 1 > 76)
				break;
			if (line > 0)
				msg[len + line++] = ' ';
			memcpy(msg + len + line, w, wl);
			line += wl;
		}
		memcpy(msg + len + line, "\r\n", 2);
		len += line + 2;
		if (len + 80 > cap)
			break;
	}
	*len_r = len;
	return msg;
}

struct wl_size_mix {
	size_t n;
	size_t size[16];
	unsigned weight[16];
	unsigned total;
};

int wl_parse_size(const char *text, size_t *size_r)
{
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (end == text)
		return -1;
	if (*end == 'k' || *end == 'K') {
		v *= 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v *= 1024 * 1024;
		end++;
	}
	if ((*end != '\0' && *end != '=' && *end != ',') || v == 0 || v > (64ull << 20))
		return -1;
	*size_r = (size_t)v;
	return 0;
}

struct wl_size_mix *wl_size_mix_parse(const char *text, char **error_r)
{
	struct wl_size_mix *mix = calloc(1, sizeof(*mix));
	if (mix == NULL)
		return NULL;
	const char *p = text;
	while (*p != '\0') {
		if (mix->n == 16) {
			*error_r = "more than 16 sizes";
			goto fail;
		}
		size_t size;
		if (wl_parse_size(p, &size) < 0) {
			*error_r = "bad size (e.g. 2k, 200k, 2m)";
			goto fail;
		}
		p += strcspn(p, "=,");
		unsigned long w = 1;
		if (*p == '=') {
			char *end;
			w = strtoul(p + 1, &end, 10);
			if (end == p + 1 || w > 1000000) {
				*error_r = "bad weight";
				goto fail;
			}
			p = end;
		}
		if (*p == ',')
			p++;
		else if (*p != '\0') {
			*error_r = "expected ','";
			goto fail;
		}
		mix->size[mix->n] = size;
		mix->weight[mix->n++] = (unsigned)w;
		mix->total += (unsigned)w;
	}
	if (mix->n == 0 || mix->total == 0) {
		*error_r = "empty size mix";
		goto fail;
	}
	return mix;
fail:
	free(mix);
	return NULL;
}

size_t wl_size_mix_pick(const struct wl_size_mix *mix)
{
	uint32_t r = wl_rand_range(0, mix->total - 1);
	for (size_t i = 0; i < mix->n; i++) {
		if (r < mix->weight[i])
			return mix->size[i];
		r -= mix->weight[i];
	}
	return mix->size[mix->n - 1];
}

void wl_size_mix_free(struct wl_size_mix *mix)
{
	free(mix);
}
