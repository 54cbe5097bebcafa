/* Reading stored messages: the whole message or one IMAP section, pulled
 * piece by piece.
 *
 * Opening a message fetches its document without the big fields and lays
 * out its pieces with their offsets (wdc.pieces for ours, the rebuild of
 * mimeTree for WildDuck's). What is read is a list of ranges of the message:
 * one range for BODY[] or a partial of it; for a section, the ranges that
 * wdc.tree gives without parsing anything. Each read appends the next part
 * of the next range: a slice of a literal piece, or at most one GridFS chunk
 * of an attachment, opened and positioned (seek) only when the range reaches
 * it. Memory is therefore bounded by a chunk, whatever the message size.
 *
 * Sections that need bytes of the message to be computed (HEADER.FIELDS,
 * which filters a header block, and every section of a message without a
 * layout: WildDuck's, or ours when the layout is unreadable) are produced
 * into memory first: for HEADER.FIELDS only the header block is read, for
 * the others the message is read and parsed whole (at most
 * WD_MIME_MAX_MESSAGE_SIZE).
 *
 * Every attachment piece yields exactly its declared length: a stored body
 * that turns out shorter is padded with spaces and a longer one is cut, so
 * offsets never drift (only WildDuck's documents can disagree that way). */
#include "wd-store-message.h"

#include "message-pieces.h"
#include "store-private.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-store-attachment.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of padding appended per read when a stored body is short. */
#define PAD_STEP 65536

int wd__pieces_add(struct wd__pieces *pieces, const uint8_t *literal, const uint8_t *hash,
		   uint64_t len)
{
	if (len > UINT32_MAX)
		return WD_ERROR;
	if (pieces->count == pieces->cap) {
		size_t cap = pieces->cap == 0 ? 16 : pieces->cap * 2;
		struct wd__piece *items = realloc(pieces->items, cap * sizeof(*items));
		if (items == NULL)
			return WD_ERROR;
		pieces->items = items;
		pieces->cap = cap;
	}
	pieces->items[pieces->count++] = (struct wd__piece){
		.offset = pieces->size, .len = (uint32_t)len, .literal = literal, .hash = hash,
	};
	pieces->size += len;
	return WD_OK;
}

void wd__pieces_free(struct wd__pieces *pieces)
{
	free(pieces->items);
	memset(pieces, 0, sizeof(*pieces));
}

struct wd_message_reader {
	struct wd_store *store;
	bson_t doc;
	struct wd_arena *arena;
	struct wd__pieces pieces;
	char what[48];               /* "with UID 7", for errors */
	const uint8_t *layout;       /* wdc.tree, NULL when absent */
	uint32_t layout_len;

	/* what is read: ranges of the message, or `memory` */
	struct wd_mime_range *ranges;
	size_t range_count, range_index;
	uint64_t pos;                /* next byte of the message to return */
	size_t piece_index;          /* a piece at or before pos */
	uint64_t out_size;
	bool from_memory;
	struct wd_buffer memory;

	/* the attachment currently open */
	struct wd_attachment_reader *att;
	size_t att_piece;
	uint64_t att_pos;            /* position in the stored body of the next read */
	bool att_eof;
};

static int reader_error(char **error_r, const char *message, const char *what)
{
	*error_r = wd__store_error("%s (message %s)", message, what);
	return WD_ERROR;
}

/* ---- opening ---- */

static bool find_doc(struct wd_store *store, const bson_t *query, const bson_t *projection,
		     bson_t *doc_r, char **error_r, const char *what)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_t *opts = BCON_NEW("projection", BCON_DOCUMENT(projection), "limit", BCON_INT64(1));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
	const bson_t *doc;
	bson_error_t error;
	bool found = mongoc_cursor_next(cursor, &doc);
	if (found)
		bson_copy_to(doc, doc_r);
	else
		*error_r = mongoc_cursor_error(cursor, &error) ?
				   wd__store_error("cannot read message: %s", error.message) :
				   wd__store_error("no message %s", what);
	mongoc_cursor_destroy(cursor);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return found;
}

/* Our pieces: wdc.pieces with hashes from mimeTree.attachmentMap. */
static int wdc_pieces(struct wd_message_reader *reader, bson_iter_t *list, char **error_r)
{
	bson_iter_t map;
	bool have_map = bson_iter_init(&map, &reader->doc) &&
			bson_iter_find_descendant(&map, "mimeTree.attachmentMap", &map) &&
			BSON_ITER_HOLDS_DOCUMENT(&map);
	while (bson_iter_next(list)) {
		bson_iter_t piece;
		if (!BSON_ITER_HOLDS_DOCUMENT(list) || !bson_iter_recurse(list, &piece) ||
		    !bson_iter_next(&piece))
			return reader_error(error_r, "malformed wdc piece", reader->what);
		const char *key = bson_iter_key(&piece);
		int ret = WD_ERROR;
		if (strcmp(key, "l") == 0 && BSON_ITER_HOLDS_BINARY(&piece)) {
			const uint8_t *data;
			uint32_t len;
			bson_iter_binary(&piece, NULL, &len, &data);
			ret = wd__pieces_add(&reader->pieces, data, NULL, len);
		} else if (strcmp(key, "a") == 0 && BSON_ITER_HOLDS_UTF8(&piece) && have_map) {
			const char *id = bson_iter_utf8(&piece, NULL);
			int64_t len = bson_iter_next(&piece) && strcmp(bson_iter_key(&piece), "s") == 0 &&
						      BSON_ITER_HOLDS_NUMBER(&piece) ?
					      bson_iter_as_int64(&piece) :
					      -1;
			bson_iter_t hash;
			const uint8_t *data;
			uint32_t hash_len = 0;
			if (len >= 0 && bson_iter_recurse(&map, &hash) && bson_iter_find(&hash, id) &&
			    BSON_ITER_HOLDS_BINARY(&hash)) {
				bson_iter_binary(&hash, NULL, &hash_len, &data);
				if (hash_len == WD_ATTACHMENT_HASH_LEN)
					ret = wd__pieces_add(&reader->pieces, NULL, data, (uint64_t)len);
			}
		}
		if (ret < 0)
			return reader_error(error_r, "malformed wdc piece", reader->what);
	}
	return WD_OK;
}

/* Lay out the pieces of reader->doc: wdc.pieces for ours; for WildDuck's,
   mimeTree (fetched with `query` when the document lacks it). */
static int reader_layout(struct wd_message_reader *reader, const bson_t *query, char **error_r)
{
	bson_iter_t iter, list;
	if (bson_iter_init(&iter, &reader->doc) &&
	    bson_iter_find_descendant(&iter, "wdc.pieces", &list) && BSON_ITER_HOLDS_ARRAY(&list) &&
	    bson_iter_recurse(&list, &list)) {
		if (wdc_pieces(reader, &list, error_r) < 0)
			return WD_ERROR;
		if (bson_iter_init(&iter, &reader->doc) &&
		    bson_iter_find_descendant(&iter, "wdc.tree", &iter) &&
		    BSON_ITER_HOLDS_BINARY(&iter))
			bson_iter_binary(&iter, NULL, &reader->layout_len, &reader->layout);
		return WD_OK;
	}
	/* written by WildDuck: rebuild as it does */
	int64_t doc_size = bson_iter_init_find(&iter, &reader->doc, "size") &&
					   BSON_ITER_HOLDS_NUMBER(&iter) ?
				   bson_iter_as_int64(&iter) :
				   0;
	if (!bson_iter_init(&iter, &reader->doc) ||
	    !bson_iter_find_descendant(&iter, "mimeTree.header", &iter)) {
		/* no tree, or only its attachmentMap (our projection): fetch it */
		if (query == NULL)
			return reader_error(error_r, "document has neither wdc nor mimeTree",
					    reader->what);
		bson_reinit(&reader->doc);
		bson_t *projection = BCON_NEW("mimeTree", BCON_INT32(1));
		bool found = find_doc(reader->store, query, projection, &reader->doc, error_r,
				      reader->what);
		bson_destroy(projection);
		if (!found)
			return WD_ERROR;
	}
	const char *legacy_error = "message has neither wdc nor mimeTree";
	bson_t tree;
	const uint8_t *data;
	uint32_t len;
	if (bson_iter_init_find(&iter, &reader->doc, "mimeTree") && BSON_ITER_HOLDS_DOCUMENT(&iter)) {
		bson_iter_document(&iter, &len, &data);
		if (bson_init_static(&tree, data, len) &&
		    wd__legacy_pieces(&tree, doc_size > 0 ? (uint64_t)doc_size : 0, reader->arena,
				      &reader->pieces, &legacy_error) == WD_OK)
			legacy_error = NULL;
	}
	return legacy_error == NULL ? WD_OK : reader_error(error_r, legacy_error, reader->what);
}

static struct wd_message_reader *reader_new(struct wd_store *store, const char *what,
					    char **error_r)
{
	struct wd_message_reader *reader = calloc(1, sizeof(*reader));
	if (reader == NULL) {
		*error_r = wd__store_error("out of memory");
		return NULL;
	}
	reader->store = store;
	snprintf(reader->what, sizeof(reader->what), "%s", what);
	bson_init(&reader->doc);
	reader->arena = wd_arena_create(0);
	return reader;
}

/* After the document is laid out: the whole message is what is read. */
static struct wd_message_reader *reader_ready(struct wd_message_reader *reader, char **error_r)
{
	uint64_t size = reader->pieces.size;
	if (size > WD_MIME_MAX_MESSAGE_SIZE) {
		reader_error(error_r, "message too large", reader->what);
		wd_message_reader_close(&reader);
		return NULL;
	}
	reader->ranges = wd_arena_alloc(reader->arena, sizeof(*reader->ranges));
	reader->ranges[0] = (struct wd_mime_range){ 0, (uint32_t)size };
	reader->range_count = size > 0 ? 1 : 0;
	reader->out_size = size;
	return reader;
}

static struct wd_message_reader *open_query(struct wd_store *store, const bson_t *query,
					     const char *what, char **error_r)
{
	struct wd_message_reader *reader = reader_new(store, what, error_r);
	if (reader == NULL)
		return NULL;
	bson_t *projection = BCON_NEW("wdc", BCON_INT32(1), "mimeTree.attachmentMap", BCON_INT32(1),
				      "size", BCON_INT32(1));
	bool found = find_doc(store, query, projection, &reader->doc, error_r, what);
	bson_destroy(projection);
	if (!found || reader_layout(reader, query, error_r) < 0) {
		wd_message_reader_close(&reader);
		return NULL;
	}
	return reader_ready(reader, error_r);
}

struct wd_message_reader *wd_store_message_open_doc(struct wd_store *store, const bson_t *doc,
						    char **error_r)
{
	char what[40] = "(loaded document)";
	bson_iter_t iter;
	if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter)) {
		memcpy(what, "id ", 3);
		bson_oid_to_string(bson_iter_oid(&iter), what + 3);
	}
	struct wd_message_reader *reader = reader_new(store, what, error_r);
	if (reader == NULL)
		return NULL;
	bson_destroy(&reader->doc);
	bson_copy_to(doc, &reader->doc);
	bson_t *query = NULL;
	if (bson_iter_init_find(&iter, doc, "_id") && BSON_ITER_HOLDS_OID(&iter))
		query = BCON_NEW("_id", BCON_OID(bson_iter_oid(&iter)));
	int ret = reader_layout(reader, query, error_r);
	if (query != NULL)
		bson_destroy(query);
	if (ret < 0) {
		wd_message_reader_close(&reader);
		return NULL;
	}
	return reader_ready(reader, error_r);
}

struct wd_message_reader *wd_store_message_open(struct wd_store *store, const bson_oid_t *mailbox,
						uint32_t uid, char **error_r)
{
	bson_t *query = BCON_NEW("mailbox", BCON_OID(mailbox), "uid", BCON_INT32((int32_t)uid));
	char what[32];
	snprintf(what, sizeof(what), "with UID %u", uid);
	struct wd_message_reader *reader = open_query(store, query, what, error_r);
	bson_destroy(query);
	return reader;
}

struct wd_message_reader *wd_store_message_open_id(struct wd_store *store, const bson_oid_t *id,
						   char **error_r)
{
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	char what[40];
	memcpy(what, "id ", 3);
	bson_oid_to_string(id, what + 3);
	struct wd_message_reader *reader = open_query(store, query, what, error_r);
	bson_destroy(query);
	return reader;
}

uint64_t wd_message_reader_size(const struct wd_message_reader *reader)
{
	return reader->out_size;
}

uint64_t wd_message_reader_message_size(const struct wd_message_reader *reader)
{
	return reader->pieces.size;
}

/* ---- reading ranges ---- */

static int read_attachment(struct wd_message_reader *reader, size_t index, uint64_t offset,
			   uint64_t want, struct wd_buffer *out, char **error_r)
{
	const struct wd__piece *piece = &reader->pieces.items[index];
	if (reader->att == NULL || reader->att_piece != index) {
		wd_attachment_reader_close(&reader->att);
		reader->att = wd_store_attachment_open(reader->store, piece->hash, error_r);
		if (reader->att == NULL)
			return WD_ERROR;
		reader->att_piece = index;
		reader->att_pos = 0;
		reader->att_eof = false;
	}
	if (reader->att_pos != offset) {
		if (wd_attachment_reader_seek(reader->att, offset, error_r) < 0)
			return WD_ERROR;
		reader->att_pos = offset;
		reader->att_eof = false;
	}
	size_t before = out->len;
	if (!reader->att_eof) {
		if (wd_attachment_reader_read(reader->att, out, &reader->att_eof, error_r) < 0)
			return WD_ERROR;
	}
	uint64_t got = out->len - before;
	reader->att_pos += got;
	if (got > want) {
		out->len = before + (size_t)want; /* cut at the range or piece end */
		got = want;
	} else if (got == 0 && reader->att_eof) {
		/* the stored body is shorter than the piece says */
		size_t pad = want < PAD_STEP ? (size_t)want : PAD_STEP;
		uint8_t *p = wd_buffer_reserve(out, pad);
		if (p == NULL)
			return reader_error(error_r, "out of memory", reader->what);
		memset(p, ' ', pad);
		wd_buffer_commit(out, pad);
		got = pad;
		reader->att_pos += pad;
		wd_warning("store", "attachment of message %s is shorter than its piece; padded",
			   reader->what);
	}
	reader->pos += got;
	return WD_OK;
}

/* Append the next bytes of the current range; *eof_r after the last. */
static int read_ranges(struct wd_message_reader *reader, struct wd_buffer *out, bool *eof_r,
		       char **error_r)
{
	for (;;) {
		if (reader->range_index >= reader->range_count) {
			*eof_r = true;
			return WD_OK;
		}
		struct wd_mime_range range = reader->ranges[reader->range_index];
		if (reader->pos < range.start || reader->pos > range.end)
			reader->pos = range.start;
		if (reader->pos < range.end)
			break;
		reader->range_index++;
	}
	struct wd_mime_range range = reader->ranges[reader->range_index];
	const struct wd__pieces *pieces = &reader->pieces;
	if (reader->piece_index >= pieces->count ||
	    pieces->items[reader->piece_index].offset > reader->pos)
		reader->piece_index = 0;
	while (reader->piece_index < pieces->count &&
	       pieces->items[reader->piece_index].offset + pieces->items[reader->piece_index].len <=
		       reader->pos)
		reader->piece_index++;
	if (reader->piece_index >= pieces->count)
		return reader_error(error_r, "range past the end of the message", reader->what);
	const struct wd__piece *piece = &pieces->items[reader->piece_index];
	uint64_t end = piece->offset + piece->len;
	if (end > range.end)
		end = range.end;
	uint64_t offset = reader->pos - piece->offset;
	uint64_t want = end - reader->pos;
	if (piece->literal == NULL)
		return read_attachment(reader, reader->piece_index, offset, want, out, error_r);
	if (want > WD_ATTACHMENT_CHUNK_SIZE)
		want = WD_ATTACHMENT_CHUNK_SIZE;
	if (wd_buffer_append(out, piece->literal + offset, (size_t)want) < 0)
		return reader_error(error_r, "out of memory", reader->what);
	reader->pos += want;
	return WD_OK;
}

int wd_message_reader_read(struct wd_message_reader *reader, struct wd_buffer *out, bool *eof_r,
			   char **error_r)
{
	*eof_r = false;
	if (!reader->from_memory)
		return read_ranges(reader, out, eof_r, error_r);
	if (reader->memory.len == 0) {
		*eof_r = true;
		return WD_OK;
	}
	size_t n = reader->memory.len < WD_ATTACHMENT_CHUNK_SIZE ? reader->memory.len :
								   WD_ATTACHMENT_CHUNK_SIZE;
	if (wd_buffer_append(out, wd_buffer_bytes(&reader->memory), n) < 0)
		return reader_error(error_r, "out of memory", reader->what);
	wd_buffer_consume(&reader->memory, n);
	return WD_OK;
}

/* ---- sections ---- */

/* Read [start, end) of the message into `out` through the range reader. */
static int read_span(struct wd_message_reader *reader, uint32_t start, uint32_t end,
		     struct wd_buffer *out, char **error_r)
{
	struct wd_mime_range span = { start, end };
	reader->ranges = &span;
	reader->range_count = end > start ? 1 : 0;
	reader->range_index = 0;
	reader->pos = start;
	bool eof = false;
	int ret = WD_OK;
	while (!eof && ret == WD_OK)
		ret = read_ranges(reader, out, &eof, error_r);
	reader->ranges = NULL;
	reader->range_count = 0;
	return ret;
}

static void use_memory(struct wd_message_reader *reader)
{
	reader->from_memory = true;
	reader->out_size = reader->memory.len;
}

static int use_ranges(struct wd_message_reader *reader, const struct wd_mime_section *section,
		      char **error_r)
{
	reader->ranges = wd_arena_alloc(reader->arena,
					(section->range_count + 1) * sizeof(*reader->ranges));
	if (reader->ranges == NULL)
		return reader_error(error_r, "out of memory", reader->what);
	memcpy(reader->ranges, section->ranges, section->range_count * sizeof(*reader->ranges));
	reader->range_count = section->range_count;
	reader->range_index = 0;
	reader->out_size = section->size;
	return WD_OK;
}

/* Compute the section on a tree parsed from `bytes` and keep its output. */
static int section_from_bytes(struct wd_message_reader *reader, const struct wd_buffer *bytes,
			      const struct wd_mime_section_spec *spec, uint64_t offset,
			      uint64_t length, char **error_r)
{
	struct wd_mime_tree *tree;
	const char *error;
	if (wd_mime_tree_parse(reader->arena, wd_buffer_bytes(bytes), bytes->len, NULL, &tree,
			       &error) < 0)
		return reader_error(error_r, error, reader->what);
	struct wd_mime_section section;
	if (wd_mime_section_get(tree, spec, reader->arena, &section, &error) == WD_OK) {
		wd_mime_section_partial(&section, offset, length);
		if (wd_mime_section_write(tree, &section, &reader->memory) < 0)
			return reader_error(error_r, "out of memory", reader->what);
	}
	use_memory(reader);
	return WD_OK;
}

int wd_message_reader_select(struct wd_message_reader *reader,
			     const struct wd_mime_section_spec *spec, uint64_t offset,
			     uint64_t length, char **error_r)
{
	*error_r = NULL;
	/* start over: whatever the previous selection left unread is dropped */
	reader->from_memory = false;
	wd_buffer_release(&reader->memory);
	reader->range_index = 0;
	reader->range_count = 0;
	reader->pos = 0;
	reader->piece_index = 0;
	uint32_t size = (uint32_t)reader->pieces.size;
	struct wd_mime_range whole_range = { 0, size };
	struct wd_mime_section whole = { .ranges = &whole_range, .range_count = size > 0,
					 .suffix = "", .size = size };
	if (spec == NULL || (spec->type == WD_MIME_SECTION_BODY && spec->path_len == 0)) {
		wd_mime_section_partial(&whole, offset, length);
		return use_ranges(reader, &whole, error_r);
	}

	struct wd_mime_tree *layout = NULL;
	const char *error = NULL;
	if (reader->layout != NULL &&
	    wd__layout_decode(reader->arena, reader->layout, reader->layout_len, size, &layout,
			      &error) < 0) {
		wd_warning("store", "message %s: unusable wdc.tree (%s); parsing the message",
			   reader->what, error);
		layout = NULL;
	}
	struct wd_buffer bytes = WD_BUFFER_INIT;
	int ret;
	if (layout == NULL) {
		/* no layout: parse the whole message */
		ret = read_span(reader, 0, size, &bytes, error_r);
		if (ret == WD_OK)
			ret = section_from_bytes(reader, &bytes, spec, offset, length, error_r);
	} else if (spec->type == WD_MIME_SECTION_HEADER_FIELDS ||
		   spec->type == WD_MIME_SECTION_HEADER_FIELDS_NOT) {
		/* filter the header block of the message the path names */
		const struct wd_mime_node *node =
			wd_mime_tree_find_part(layout, spec->path, spec->path_len, NULL, &error);
		if (node != NULL && spec->path_len > 0)
			node = node->kind == WD_MIME_KIND_MESSAGE ? node->message : NULL;
		if (node == NULL) {
			use_memory(reader); /* no such part: an empty section */
			return WD_OK;
		}
		ret = read_span(reader, node->header.start, node->header.end, &bytes, error_r);
		struct wd_mime_section_spec top = *spec;
		top.path_len = 0;
		if (ret == WD_OK)
			ret = section_from_bytes(reader, &bytes, &top, offset, length, error_r);
	} else {
		struct wd_mime_section section;
		if (wd_mime_section_get(layout, spec, reader->arena, &section, &error) < 0) {
			use_memory(reader); /* no such part: an empty section */
			return WD_OK;
		}
		wd_mime_section_partial(&section, offset, length);
		ret = use_ranges(reader, &section, error_r);
	}
	wd_buffer_release(&bytes);
	return ret;
}

void wd_message_reader_close(struct wd_message_reader **_reader)
{
	struct wd_message_reader *reader = *_reader;
	if (reader == NULL)
		return;
	*_reader = NULL;
	wd_attachment_reader_close(&reader->att);
	wd__pieces_free(&reader->pieces);
	wd_buffer_release(&reader->memory);
	wd_arena_destroy(&reader->arena);
	bson_destroy(&reader->doc);
	free(reader);
}
