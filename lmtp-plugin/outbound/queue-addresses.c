/* envelope.parsedEnvelope of a queued message, as WildDuck's maildropper
 * computes it in updateHeaders(): the addresses of From, To, Cc, Bcc,
 * Reply-To and Sender, groups flattened, each normalized to
 * "<local part trimmed>@<domain lower-cased, IDN to ASCII>", duplicates
 * dropped (first position kept). from, replyTo and sender hold the first
 * address or false; to, cc and bcc are arrays. ZoneMTA reads
 * parsedEnvelope.from (bounce suppression, IP pool choice when the envelope
 * sender is empty, as it is for autoreplies).
 *
 * Parsed with GMime's address parser rather than nodemailer's
 * addressparser; the two agree on well-formed headers. */
#include "outbound-private.h"

#include <glib.h>
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
	g_mime_init();
}

void wd__outbound_gmime_init(void)
{
	pthread_once(&gmime_once, gmime_init_once);
}

struct addr_list {
	GPtrArray *items; /* char *, owned */
};

static char *normalize(const char *address)
{
	const char *at = strrchr(address, '@');
	size_t user_len = at != NULL ? (size_t)(at - address) : 0;
	const char *domain = at != NULL ? at + 1 : address;
	char *user = g_strndup(address, user_len);
	g_strstrip(user);
	char *lower = g_utf8_validate(domain, -1, NULL) ? g_utf8_strdown(domain, -1)
							 : g_ascii_strdown(domain, -1);
	g_strstrip(lower);
	char *ascii = lower[0] != '\0' ? g_hostname_to_ascii(lower) : NULL;
	char *result = g_strdup_printf("%s@%s", user, ascii != NULL ? ascii : lower);
	g_free(ascii);
	g_free(lower);
	g_free(user);
	return result;
}

static void add_address(struct addr_list *list, const char *address)
{
	if (address == NULL || address[0] == '\0' || !g_utf8_validate(address, -1, NULL))
		return;
	char *normalized = normalize(address);
	for (guint i = 0; i < list->items->len; i++) {
		if (strcmp(g_ptr_array_index(list->items, i), normalized) == 0) {
			g_free(normalized);
			return;
		}
	}
	g_ptr_array_add(list->items, normalized);
}

static void add_list(struct addr_list *list, InternetAddressList *parsed, int depth)
{
	int n = internet_address_list_length(parsed);
	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(parsed, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			add_address(list, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
		else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < 8)
			add_list(list, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
				 depth + 1);
	}
}

static void collect(const struct wd_headers *h, const char *key, struct addr_list *list)
{
	const struct wd_header_line *hl;
	for (size_t i = 0; (hl = wd__headers_find(h, key, i)) != NULL; i++) {
		char *value = wd__header_value(hl);
		if (value == NULL || value[0] == '\0') {
			free(value);
			continue;
		}
		InternetAddressList *parsed = internet_address_list_parse(NULL, value);
		if (parsed != NULL) {
			add_list(list, parsed, 0);
			g_object_unref(parsed);
		}
		free(value);
	}
}

void wd__queue_parsed_envelope(const struct wd_headers *h, bson_t *envelope)
{
	wd__outbound_gmime_init();
	static const struct {
		const char *field, *header;
		bool single;
	} fields[] = {
		{ "from", "from", true },     { "to", "to", false },
		{ "cc", "cc", false },        { "bcc", "bcc", false },
		{ "replyTo", "reply-to", true }, { "sender", "sender", true },
	};
	bson_t doc;
	bson_append_document_begin(envelope, "parsedEnvelope", -1, &doc);
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		struct addr_list list = { g_ptr_array_new_with_free_func(g_free) };
		collect(h, fields[f].header, &list);
		if (fields[f].single) {
			if (list.items->len > 0)
				BSON_APPEND_UTF8(&doc, fields[f].field, g_ptr_array_index(list.items, 0));
			else
				BSON_APPEND_BOOL(&doc, fields[f].field, false);
		} else {
			bson_t array;
			bson_append_array_begin(&doc, fields[f].field, -1, &array);
			for (guint i = 0; i < list.items->len; i++) {
				char index[16];
				const char *key;
				bson_uint32_to_string(i, &key, index, sizeof(index));
				BSON_APPEND_UTF8(&array, key, g_ptr_array_index(list.items, i));
			}
			bson_append_array_end(&doc, &array);
		}
		g_ptr_array_free(list.items, TRUE);
	}
	bson_append_document_end(envelope, &doc);
}
