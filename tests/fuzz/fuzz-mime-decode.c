/* Fuzz target for what libwdstore decodes out of a message before storing
 * it: RFC 2047 encoded words and RFC 2231 parameters (the indexed
 * `headers`, `parsedHeader`, ENVELOPE and BODYSTRUCTURE), base64 and
 * quoted-printable bodies, charset conversion, format=flowed and HTML to
 * text (the maildata: text, textFooter, intro, html, attachments), and the
 * delivery summary that reads them back.
 *
 * Every input is a message. Contracts checked, aborting on any breach:
 *   - every document built is valid BSON whose strings are valid UTF-8 (a
 *     string that is not is refused by the database, so a message would
 *     bounce); with nul_ok false they hold no NUL either, as a server that
 *     refuses NUL needs; parsedHeader keys hold no '.' and no leading '$';
 *   - the maildata limits, in UTF-16 units as WildDuck counts them: text at
 *     most 1024, textFooter at most 100 Ki minus that, intro at most 128
 *     plus its ellipsis; the attachments list has one entry per
 *     externalised leaf at most;
 *   - the summary (wd_message_summary_build) agrees with the document:
 *     its text is text + textFooter, its attachment count the list's;
 *   - ENVELOPE and BODYSTRUCTURE build for the root and for every
 *     embedded message, and are valid BSON with UTF-8 strings. */
#include "fuzz-check.h"
#include "mime-parsed-header.h"
#include "store-message-private.h"
#include "store-private.h"
#include "wd-arena.h"
#include "wd-imap-structure-bson.h"
#include "wd-message-summary.h"
#include "wd-mime-tree.h"
#include "wd-result.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MESSAGE_MAX_INPUT (256 * 1024)
#define MAX_LEAVES 256
#define MAX_MESSAGES 32

struct collected {
	const struct wd_mime_node *leaves[MAX_LEAVES];
	size_t leaf_count;
	const struct wd_mime_node *messages[MAX_MESSAGES];
	size_t message_count;
};

static int collect_cb(void *context, enum wd_mime_piece piece, const struct wd_mime_node *node,
		      struct wd_mime_range range)
{
	struct collected *c = context;
	(void)range;
	if (piece == WD_MIME_PIECE_BODY && wd__body_is_attachment(node) &&
	    c->leaf_count < MAX_LEAVES)
		c->leaves[c->leaf_count++] = node;
	if (piece == WD_MIME_PIECE_HEADER && node->kind == WD_MIME_KIND_MESSAGE &&
	    node->message != NULL && c->message_count < MAX_MESSAGES)
		c->messages[c->message_count++] = node->message;
	return WD_OK;
}

static void check_valid(const bson_t *doc, bool nul_ok, bson_validate_flags_t flags)
{
	size_t offset = 0;
	flags |= BSON_VALIDATE_UTF8;
	if (nul_ok)
		flags |= BSON_VALIDATE_UTF8_ALLOW_NULL;
	if (!bson_validate(doc, flags, &offset)) {
		char *json = bson_as_canonical_extended_json(doc, NULL);
		fprintf(stderr, "invalid BSON at offset %zu: %s\n", offset,
			json != NULL ? json : "(not printable)");
		bson_free(json);
		abort();
	}
}

/* UTF-16 units of valid UTF-8 text. */
static size_t utf16_units(const char *s, size_t len)
{
	size_t units = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];
		if ((c & 0xC0) != 0x80)
			units += c >= 0xF0 ? 2 : 1;
	}
	return units;
}

static size_t string_units(const bson_t *doc, const char *key, const char **text_r,
			   uint32_t *len_r)
{
	bson_iter_t iter;
	*text_r = "";
	*len_r = 0;
	if (!bson_iter_init_find(&iter, doc, key))
		return 0;
	CHECK(BSON_ITER_HOLDS_UTF8(&iter));
	*text_r = bson_iter_utf8(&iter, len_r);
	return utf16_units(*text_r, *len_r);
}

static void check_maildata(const bson_t *doc, size_t leaf_count, bool nul_ok)
{
	const char *text;
	uint32_t len;
	check_valid(doc, nul_ok, 0);
	CHECK(string_units(doc, "text", &text, &len) <= 1024);
	CHECK(string_units(doc, "textFooter", &text, &len) <= 100 * 1024 - 1024);
	CHECK(string_units(doc, "intro", &text, &len) <= 129);
	bson_iter_t iter, child;
	size_t attachments = 0;
	if (bson_iter_init_find(&iter, doc, "attachments")) {
		CHECK(BSON_ITER_HOLDS_ARRAY(&iter) && bson_iter_recurse(&iter, &child));
		while (bson_iter_next(&child))
			attachments++;
		CHECK(attachments > 0);
	}
	CHECK(attachments <= leaf_count);
}

static void check_summary(const uint8_t *data, size_t size, const bson_t *maildata)
{
	struct wd_message_summary summary;
	char *error = NULL;
	CHECK(wd_message_summary_build(data, size, &summary, &error) == WD_OK);
	check_valid(summary.headers, true, 0);
	check_valid(summary.parsed_header, true, BSON_VALIDATE_DOT_KEYS | BSON_VALIDATE_DOLLAR_KEYS);
	const char *text, *footer;
	uint32_t text_len, footer_len;
	string_units(maildata, "text", &text, &text_len);
	string_units(maildata, "textFooter", &footer, &footer_len);
	/* the summary's text is a C string of those bytes (NUL allowed inside) */
	CHECK(summary.text[text_len + footer_len] == '\0');
	CHECK(memcmp(summary.text, text, text_len) == 0);
	CHECK(memcmp(summary.text + text_len, footer, footer_len) == 0);
	bson_iter_t iter, child;
	size_t attachments = 0;
	if (bson_iter_init_find(&iter, maildata, "attachments") && bson_iter_recurse(&iter, &child))
		while (bson_iter_next(&child))
			attachments++;
	CHECK(summary.attachment_count == attachments);
	wd_message_summary_clear(&summary);
}

static void check_structures(const struct wd_mime_tree *tree, const struct collected *c)
{
	bson_t doc = BSON_INITIALIZER;
	CHECK(wd_imap_envelope_bson(tree, tree->root, &doc, "envelope") == WD_OK);
	CHECK(wd_imap_bodystructure_bson(tree, tree->root, &doc, "bodystructure") == WD_OK);
	for (size_t i = 0; i < c->message_count; i++) {
		CHECK(wd_imap_envelope_bson(tree, c->messages[i], &doc, "e") == WD_OK);
		CHECK(wd_imap_bodystructure_bson(tree, c->messages[i], &doc, "b") == WD_OK);
	}
	check_valid(&doc, true, 0);
	bson_destroy(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MESSAGE_MAX_INPUT)
		return 0;
	wd__gmime_init();
	struct wd_arena *arena = wd_arena_create(0);
	CHECK(arena != NULL);
	struct wd_mime_tree *tree = NULL;
	const char *error = NULL;
	CHECK(wd_mime_tree_parse(arena, data, size, NULL, &tree, &error) == WD_OK);
	struct collected *c = calloc(1, sizeof(*c));
	CHECK(c != NULL);
	CHECK(wd_mime_tree_walk(tree, collect_cb, c) == WD_OK);

	bson_t maildata_nul = BSON_INITIALIZER;
	for (int nul_ok = 0; nul_ok < 2; nul_ok++) {
		bson_t doc = BSON_INITIALIZER, parsed;
		wd__indexed_headers_append(tree, &doc, nul_ok);
		CHECK(bson_append_document_begin(&doc, "parsedHeader", -1, &parsed));
		CHECK(wd__parsed_header_append(tree, tree->root, nul_ok, &parsed) == WD_OK);
		CHECK(bson_append_document_end(&doc, &parsed));
		check_valid(&doc, nul_ok, BSON_VALIDATE_DOT_KEYS | BSON_VALIDATE_DOLLAR_KEYS);
		bson_destroy(&doc);

		bson_t *maildata = nul_ok ? &maildata_nul : &doc;
		if (!nul_ok)
			bson_init(&doc);
		wd__maildata_append(tree, c->leaves, NULL, c->leaf_count, nul_ok, maildata);
		check_maildata(maildata, c->leaf_count, nul_ok);
		if (!nul_ok)
			bson_destroy(&doc);
	}
	/* The summary takes every leaf (the fuzz target caps them). */
	if (c->leaf_count < MAX_LEAVES)
		check_summary(data, size, &maildata_nul);
	bson_destroy(&maildata_nul);
	check_structures(tree, c);
	free(c);
	wd_arena_destroy(&arena);
	return 0;
}
