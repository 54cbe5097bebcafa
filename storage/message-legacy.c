/* Reading messages that WildDuck wrote (no `wdc`): its rebuild() as pieces.
 *
 * WildDuck does not keep the delivered bytes; it rebuilds a message from
 * `mimeTree` (reference §3.2) and its IMAP server cuts or pads that stream
 * to the document's `size`. To serve such a message exactly as the Node
 * server does, we lay out the same stream as a list of pieces (header
 * blocks, bodies held in the document, boundary lines, attachment bodies in
 * GridFS) and apply the same cut or padding, so RFC822.SIZE equals the bytes
 * of BODY[] on both servers.
 *
 * The emission rule: every piece except the first is preceded by CRLF, and
 * a node's body is held back and written right after the CRLF that precedes
 * the next piece (or at the node's end). An externalized body follows a
 * forced empty piece (the blank line) without separator; its length is
 * taken as the node's `size`, and the reader cuts or pads the stored content
 * to it. (WildDuck streams a base64 body stored decoded at its re-encoded
 * length, which differs only for bodies that had irregular line lengths;
 * those shift by the difference on WildDuck and not here.) */
#include "message-pieces.h"

#include "wd-arena.h"
#include "wd-result.h"
#include "wd-store-attachment.h"

#include <string.h>

/* mimeTree nesting is bounded by BSON's own depth limit; this is a backstop. */
#define MAX_DEPTH 200

struct legacy {
	struct wd_arena *arena;
	struct wd__pieces *pieces;
	const bson_t *root;          /* mimeTree, for attachmentMap */
	bool first;
	const uint8_t *remainder;    /* held-back body, NULL when none */
	uint32_t remainder_len;
	const char *error;
};

static const uint8_t crlf[] = "\r\n";

static bool add(struct legacy *l, const uint8_t *data, size_t len)
{
	if (len == 0)
		return true;
	if (wd__pieces_add(l->pieces, data, NULL, len) < 0) {
		l->error = "out of memory";
		return false;
	}
	return true;
}

/* WildDuck's emit(data, force). */
static bool emit(struct legacy *l, const uint8_t *data, size_t len, bool force)
{
	if (l->remainder == NULL && len == 0 && !force)
		return true;
	if (!l->first && !add(l, crlf, 2))
		return false;
	l->first = false;
	const uint8_t *remainder = l->remainder;
	l->remainder = NULL;
	return (remainder == NULL || add(l, remainder, l->remainder_len)) && add(l, data, len);
}

/* A binary string (one code point U+0000–U+00FF per byte) back to bytes;
   anything else (U+FFFD where the server took no NUL) becomes '?'. */
static size_t binary_string_bytes(const char *str, uint32_t len, uint8_t *out)
{
	size_t n = 0;
	for (uint32_t i = 0; i < len;) {
		unsigned char c = (unsigned char)str[i];
		if (c < 0x80) {
			out[n++] = c;
			i++;
		} else if ((c & 0xE0) == 0xC0 && i + 1 < len) {
			unsigned cp = (unsigned)(c & 0x1F) << 6 | ((unsigned char)str[i + 1] & 0x3F);
			out[n++] = cp <= 0xFF ? (uint8_t)cp : '?';
			i += 2;
		} else {
			/* skip the continuation bytes of a longer sequence */
			i++;
			while (i < len && ((unsigned char)str[i] & 0xC0) == 0x80)
				i++;
			out[n++] = '?';
		}
	}
	return n;
}

/* header[] joined with CRLF, plus a final CRLF. */
static bool emit_header(struct legacy *l, const bson_t *node)
{
	bson_iter_t iter, lines;
	size_t total = 2;
	if (!bson_iter_init_find(&iter, node, "header") || !BSON_ITER_HOLDS_ARRAY(&iter) ||
	    !bson_iter_recurse(&iter, &lines))
		return emit(l, crlf, 2, false);
	bson_iter_t count = lines;
	while (bson_iter_next(&count)) {
		uint32_t len = 0;
		if (BSON_ITER_HOLDS_UTF8(&count))
			bson_iter_utf8(&count, &len);
		else if (BSON_ITER_HOLDS_BINARY(&count))
			bson_iter_binary(&count, NULL, &len, NULL);
		total += len + 2;
	}
	uint8_t *out = wd_arena_alloc(l->arena, total);
	if (out == NULL) {
		l->error = "out of memory";
		return false;
	}
	size_t n = 0;
	bool first = true;
	while (bson_iter_next(&lines)) {
		if (!first) {
			memcpy(out + n, crlf, 2);
			n += 2;
		}
		first = false;
		uint32_t len = 0;
		if (BSON_ITER_HOLDS_UTF8(&lines)) {
			const char *str = bson_iter_utf8(&lines, &len);
			n += binary_string_bytes(str, len, out + n);
		} else if (BSON_ITER_HOLDS_BINARY(&lines)) {
			const uint8_t *data;
			bson_iter_binary(&lines, NULL, &len, &data);
			memcpy(out + n, data, len);
			n += len;
		}
	}
	memcpy(out + n, crlf, 2);
	return emit(l, out, n + 2, false);
}

static const uint8_t *attachment_hash(struct legacy *l, const char *id)
{
	bson_iter_t iter, found;
	char path[64];
	snprintf(path, sizeof(path), "attachmentMap.%s", id);
	if (strchr(id, '.') != NULL || !bson_iter_init(&iter, l->root) ||
	    !bson_iter_find_descendant(&iter, path, &found) || !BSON_ITER_HOLDS_BINARY(&found))
		return NULL;
	uint32_t len;
	const uint8_t *hash;
	bson_iter_binary(&found, NULL, &len, &hash);
	return len == WD_ATTACHMENT_HASH_LEN ? hash : NULL;
}

static bool walk(struct legacy *l, const bson_t *node_doc, unsigned depth)
{
	if (depth > MAX_DEPTH) {
		l->error = "mimeTree nests too deep";
		return false;
	}
	if (!emit_header(l, node_doc))
		return false;

	const char *boundary = NULL, *attachment = NULL;
	uint32_t boundary_len = 0;
	int64_t size = 0;
	const bson_iter_t *children = NULL;
	bson_iter_t children_iter;
	l->remainder = NULL;
	bson_iter_t node;
	if (!bson_iter_init(&node, node_doc)) {
		l->error = "malformed mimeTree";
		return false;
	}
	while (bson_iter_next(&node)) {
		const char *key = bson_iter_key(&node);
		if (strcmp(key, "body") == 0) {
			if (BSON_ITER_HOLDS_BINARY(&node)) {
				bson_iter_binary(&node, NULL, &l->remainder_len, &l->remainder);
				if (l->remainder == NULL)
					l->remainder = crlf; /* empty: present, zero bytes */
			} else if (BSON_ITER_HOLDS_UTF8(&node)) {
				uint32_t len;
				const char *str = bson_iter_utf8(&node, &len);
				uint8_t *bytes = wd_arena_alloc(l->arena, len + 1);
				if (bytes == NULL) {
					l->error = "out of memory";
					return false;
				}
				l->remainder_len = (uint32_t)binary_string_bytes(str, len, bytes);
				l->remainder = bytes;
			}
		} else if (strcmp(key, "boundary") == 0 && BSON_ITER_HOLDS_UTF8(&node)) {
			boundary = bson_iter_utf8(&node, &boundary_len);
			if (boundary_len == 0)
				boundary = NULL;
		} else if (strcmp(key, "attachmentId") == 0 && BSON_ITER_HOLDS_UTF8(&node)) {
			attachment = bson_iter_utf8(&node, NULL);
		} else if (strcmp(key, "size") == 0 && BSON_ITER_HOLDS_NUMBER(&node)) {
			size = bson_iter_as_int64(&node);
		} else if (strcmp(key, "childNodes") == 0 && BSON_ITER_HOLDS_ARRAY(&node) &&
			   bson_iter_recurse(&node, &children_iter)) {
			children = &children_iter;
		}
	}

	uint8_t *delimiter = NULL;
	if (boundary != NULL) {
		/* "--b--\r\n"; its first boundary_len + 2 bytes are "--b" */
		delimiter = (uint8_t *)wd_arena_printf(l->arena, "--%.*s--\r\n", (int)boundary_len,
						       boundary);
		if (delimiter == NULL) {
			l->error = "out of memory";
			return false;
		}
		if (!emit(l, delimiter, boundary_len + 2, false))
			return false;
	} else if (attachment != NULL) {
		const uint8_t *hash = attachment_hash(l, attachment);
		if (hash == NULL) {
			l->error = "attachment not in attachmentMap";
			return false;
		}
		if (size < 0 || size > WD_MIME_MAX_MESSAGE_SIZE) {
			l->error = "attachment node has a bad size";
			return false;
		}
		if (!emit(l, NULL, 0, true))
			return false;
		if (size > 0 && wd__pieces_add(l->pieces, NULL, hash, (uint64_t)size) < 0) {
			l->error = "out of memory";
			return false;
		}
	}

	if (children != NULL) {
		bson_iter_t child = *children;
		bool more = bson_iter_next(&child);
		while (more) {
			if (!BSON_ITER_HOLDS_DOCUMENT(&child)) {
				more = bson_iter_next(&child);
				continue;
			}
			const uint8_t *data;
			uint32_t len;
			bson_iter_document(&child, &len, &data);
			bson_t child_doc;
			if (!bson_init_static(&child_doc, data, len) || !walk(l, &child_doc, depth + 1))
				return l->error != NULL ? false : (l->error = "malformed mimeTree", false);
			more = bson_iter_next(&child);
			if (more && boundary != NULL && !emit(l, delimiter, boundary_len + 2, false))
				return false;
		}
	}
	if (boundary != NULL && !emit(l, delimiter, boundary_len + 6, false))
		return false;
	return emit(l, NULL, 0, false);
}

/* Cut the pieces at `size`, or pad them with spaces up to it. */
static int fit(struct wd__pieces *pieces, uint64_t size, struct wd_arena *arena)
{
	size_t i = 0;
	while (i < pieces->count && pieces->items[i].offset + pieces->items[i].len <= size)
		i++;
	if (i < pieces->count) {
		struct wd__piece *cut = &pieces->items[i];
		cut->len = (uint32_t)(size - cut->offset);
		pieces->count = cut->len > 0 ? i + 1 : i;
		pieces->size = size;
		return WD_OK;
	}
	while (pieces->size < size) {
		uint64_t len = size - pieces->size;
		if (len > 65536)
			len = 65536;
		uint8_t *spaces = wd_arena_alloc(arena, (size_t)len);
		if (spaces == NULL)
			return WD_ERROR;
		memset(spaces, ' ', (size_t)len);
		if (wd__pieces_add(pieces, spaces, NULL, len) < 0)
			return WD_ERROR;
	}
	return WD_OK;
}

int wd__legacy_pieces(const bson_t *mime_tree, uint64_t size, struct wd_arena *arena,
		      struct wd__pieces *pieces, const char **error_r)
{
	struct legacy l = { .arena = arena, .pieces = pieces, .root = mime_tree, .first = true };
	if (!walk(&l, mime_tree, 0)) {
		*error_r = l.error != NULL ? l.error : "malformed mimeTree";
		return WD_ERROR;
	}
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, mime_tree, "lineCount") && BSON_ITER_HOLDS_NUMBER(&iter) &&
	    bson_iter_as_int64(&iter) > 1 && wd__pieces_add(pieces, crlf, NULL, 2) < 0) {
		*error_r = "out of memory";
		return WD_ERROR;
	}
	if (size > WD_MIME_MAX_MESSAGE_SIZE) {
		*error_r = "message size out of range";
		return WD_ERROR;
	}
	if (size > 0 && fit(pieces, size, arena) < 0) {
		*error_r = "out of memory";
		return WD_ERROR;
	}
	return WD_OK;
}
