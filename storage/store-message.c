/* Storing and reading messages; see wd-store-message.h.
 *
 * The raw message is parsed into a wd_mime_tree (byte ranges, no copies).
 * One walk over its pieces builds `wdc.pieces`: literal runs are merged, and
 * leaf bodies that are not inline text (or are inline text over 300 KiB, as
 * WildDuck decides) go to GridFS as attachments, numbered ATT00001… in
 * document order. A second, recursive pass builds WildDuck's `mimeTree` view
 * with the same numbering. */
#include "wd-store-message.h"
#include "wd-store-attachment.h"
#include "wd-store-journal.h"
#include "wd-store-search.h"
#include "wd-store-thread.h"
#include "wd-imap-structure.h"
#include "wd-imap-structure-bson.h"
#include "wd-mime-tree.h"
#include "message-pieces.h"
#include "mime-parsed-header.h"
#include "store-message-private.h"
#include "store-op.h"
#include "store-private.h"
#include "wd-arena.h"
#include "wd-buffer.h"
#include "wd-log.h"
#include "wd-result.h"
#include "wd-str.h"

#include <gmime/gmime.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define INLINE_TEXT_MAX (300 * 1024)
/* Keep documents well under MongoDB's 16 MiB: past this much literal data,
   every further leaf body goes to GridFS. */
#define LITERAL_BUDGET (8 * 1024 * 1024)
#define HEADER_VALUE_MAX 880
/* MongoDB's (and FerretDB's) largest document */
#define STORE_MAX_DOCUMENT (16u * 1024u * 1024u)

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
	g_mime_init();
}

void wd__gmime_init(void)
{
	pthread_once(&gmime_once, gmime_init_once);
}

static bool is_inline_text(const struct wd_mime_node *node)
{
	const struct wd_mime_content *ct = &node->content_type;
	bool text = (strcmp(ct->type, "text") == 0 &&
		     (strcmp(ct->subtype, "plain") == 0 || strcmp(ct->subtype, "html") == 0 ||
		      strcmp(ct->subtype, "rfc822-headers") == 0)) ||
		    (strcmp(ct->type, "message") == 0 && strcmp(ct->subtype, "delivery-status") == 0);
	bool inline_disposition = !node->disposition.present ||
				  strcmp(node->disposition.type, "inline") == 0;
	return text && inline_disposition;
}

/* ---- the pieces walk ---- */

struct add_ctx {
	struct wd_store *store;
	const struct wd_mime_tree *tree;
	const struct wd_message_add *req;
	uint32_t magic;
	bson_t *pieces;                /* the wdc.pieces array being built */
	uint32_t piece_index;
	struct wd_buffer literal;      /* pending literal run */
	size_t literal_total;
	/* stored attachments, in ATT order */
	uint8_t (*hashes)[WD_ATTACHMENT_HASH_LEN];
	/* fileContentHash of files created here, or "" */
	char (*content_hashes)[WD_ATTACHMENT_CONTENT_HASH_SIZE];
	const struct wd_mime_node **att_nodes;
	size_t att_count, att_cap;
	char *error;
};

bool wd__body_is_attachment(const struct wd_mime_node *node)
{
	uint32_t len = wd_mime_range_len(node->body);
	return len > 0 && (!is_inline_text(node) || len > INLINE_TEXT_MAX);
}

static bool externalize(struct add_ctx *ctx, const struct wd_mime_node *node)
{
	if (wd_mime_range_len(node->body) == 0)
		return false;
	if (ctx->literal_total > LITERAL_BUDGET)
		return true;
	return wd__body_is_attachment(node);
}

static void append_piece(struct add_ctx *ctx, const bson_t *piece)
{
	char key[16];
	const char *key_str;
	bson_uint32_to_string(ctx->piece_index++, &key_str, key, sizeof(key));
	bson_append_document(ctx->pieces, key_str, -1, piece);
}

static void flush_literal(struct add_ctx *ctx)
{
	if (ctx->literal.len == 0)
		return;
	bson_t piece = BSON_INITIALIZER;
	BSON_APPEND_BINARY(&piece, "l", BSON_SUBTYPE_BINARY, wd_buffer_bytes(&ctx->literal),
			   (uint32_t)ctx->literal.len);
	append_piece(ctx, &piece);
	bson_destroy(&piece);
	ctx->literal_total += ctx->literal.len;
	wd_buffer_clear(&ctx->literal);
}

/* "ATT00001"…; part counts are capped far below 10^9 by the MIME limits. */
static void att_id(size_t index, char *out)
{
	snprintf(out, 16, "ATT%05u", (unsigned)((index + 1) % 1000000000u));
}

static int piece_cb(void *context, enum wd_mime_piece piece, const struct wd_mime_node *node,
		    struct wd_mime_range range)
{
	struct add_ctx *ctx = context;
	const uint8_t *data = ctx->tree->data + range.start;
	uint32_t len = wd_mime_range_len(range);
	if (piece != WD_MIME_PIECE_BODY || !externalize(ctx, node)) {
		if (wd_buffer_append(&ctx->literal, data, len) < 0) {
			ctx->error = wd__store_error("out of memory");
			return WD_ERROR;
		}
		return WD_OK;
	}
	flush_literal(ctx);
	if (ctx->att_count == ctx->att_cap) {
		size_t cap = ctx->att_cap == 0 ? 8 : ctx->att_cap * 2;
		void *h = realloc(ctx->hashes, cap * sizeof(*ctx->hashes));
		if (h != NULL)
			ctx->hashes = h;
		void *c = h == NULL ? NULL : realloc(ctx->content_hashes, cap * sizeof(*ctx->content_hashes));
		if (c != NULL)
			ctx->content_hashes = c;
		void *n = c == NULL ? NULL : realloc(ctx->att_nodes, cap * sizeof(*ctx->att_nodes));
		if (n == NULL) {
			ctx->error = wd__store_error("out of memory");
			return WD_ERROR;
		}
		ctx->att_nodes = n;
		ctx->att_cap = cap;
	}
	char content_type[256];
	snprintf(content_type, sizeof(content_type), "%s/%s", node->content_type.type,
		 node->content_type.subtype);
	struct wd_attachment_put put = {
		.body = data,
		.len = len,
		.content_type = content_type,
		.transfer_encoding = node->transfer_encoding,
		.decode_base64 = ctx->req->decode_base64,
		.magic = ctx->magic,
	};
	struct wd_attachment_ref ref;
	if (wd_store_attachment_put(ctx->store, &put, &ref, &ctx->error) < 0)
		return WD_ERROR;
	memcpy(ctx->hashes[ctx->att_count], ref.hash, WD_ATTACHMENT_HASH_LEN);
	memcpy(ctx->content_hashes[ctx->att_count], ref.content_hash, sizeof(ref.content_hash));
	ctx->att_nodes[ctx->att_count] = node;
	char id[16];
	att_id(ctx->att_count, id);
	ctx->att_count++;
	bson_t doc = BSON_INITIALIZER;
	BSON_APPEND_UTF8(&doc, "a", id);
	BSON_APPEND_INT32(&doc, "s", (int32_t)len);
	append_piece(ctx, &doc);
	bson_destroy(&doc);
	return WD_OK;
}

/* ---- WildDuck's mimeTree view ---- */

/* A "binary string": each byte one code point U+0000–U+00FF (reference §0).
   Without NUL support in the server, NUL becomes U+FFFD (the exact bytes
   are in wdc.pieces anyway). */
static void append_binary_string(bson_t *doc, const char *key, const uint8_t *data, size_t len,
				 bool nul_ok)
{
	struct wd_buffer out = WD_BUFFER_INIT;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = data[i];
		if (c == 0 && !nul_ok) {
			wd_buffer_append(&out, "\xef\xbf\xbd", 3);
		} else if (c < 0x80) {
			wd_buffer_append(&out, &c, 1);
		} else {
			uint8_t two[2] = { (uint8_t)(0xc0 | c >> 6), (uint8_t)(0x80 | (c & 0x3f)) };
			wd_buffer_append(&out, two, 2);
		}
	}
	bson_append_utf8(doc, key, -1, (const char *)wd_buffer_bytes(&out), (int)out.len);
	wd_buffer_release(&out);
}

/* UTF-8 text for a BSON string: invalid bytes and (without NUL support) NUL
   become U+FFFD. */
void wd__append_text(bson_t *doc, const char *key, const char *text, size_t len, bool nul_ok)
{
	if (bson_utf8_validate(text, len, nul_ok)) {
		bson_append_utf8(doc, key, -1, text, (int)len);
		return;
	}
	struct wd_buffer out = WD_BUFFER_INIT;
	for (size_t i = 0; i < len;) {
		size_t n = 1;
		unsigned char c = (unsigned char)text[i];
		if (c >= 0xc0)
			n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (i + n <= len && bson_utf8_validate(text + i, n, nul_ok)) {
			wd_buffer_append(&out, text + i, n);
			i += n;
		} else {
			wd_buffer_append(&out, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	bson_append_utf8(doc, key, -1, (const char *)wd_buffer_bytes(&out), (int)out.len);
	wd_buffer_release(&out);
}

struct tree_ctx {
	const struct wd_mime_tree *tree;
	struct add_ctx *add;
	size_t att_next;
	bool nul_ok;
	struct wd_arena *arena;
	bool failed;      /* a parsedHeader could not be built (too large) */
};

static void build_node(struct tree_ctx *ctx, const struct wd_mime_node *node, bson_t *doc);

static void build_node(struct tree_ctx *ctx, const struct wd_mime_node *node, bson_t *doc)
{
	struct wd_mime_wd_field *fields;
	size_t field_count;
	bson_t array, parsed;
	char key[16];
	const char *key_str;
	bson_append_array_begin(doc, "header", -1, &array);
	if (wd_mime_wd_header(ctx->tree, node, ctx->arena, &fields, &field_count) == WD_OK) {
		for (size_t i = 0; i < field_count; i++) {
			bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
			append_binary_string(&array, key_str, fields[i].data, fields[i].len, ctx->nul_ok);
		}
	}
	bson_append_array_end(doc, &array);

	bson_append_document_begin(doc, "parsedHeader", -1, &parsed);
	if (wd__parsed_header_append(ctx->tree, node, ctx->nul_ok, &parsed) != WD_OK)
		ctx->failed = true;
	bson_append_document_end(doc, &parsed);

	struct wd_mime_wd_info info;
	wd_mime_wd_info(ctx->tree, node, &info);
	bool external = ctx->att_next < ctx->add->att_count &&
			ctx->add->att_nodes[ctx->att_next] == node;
	if (external) {
		char id[16];
		att_id(ctx->att_next++, id);
		BSON_APPEND_BOOL(doc, "body", false);
		BSON_APPEND_UTF8(doc, "attachmentId", id);
	} else {
		struct wd_buffer body = WD_BUFFER_INIT;
		wd_mime_wd_body(ctx->tree, node, &body);
		BSON_APPEND_BINARY(doc, "body", BSON_SUBTYPE_BINARY, wd_buffer_bytes(&body),
				   (uint32_t)body.len);
		wd_buffer_release(&body);
	}
	if (node->kind == WD_MIME_KIND_MULTIPART) {
		wd__append_text(doc, "multipart", node->content_type.subtype,
			    strlen(node->content_type.subtype), ctx->nul_ok);
		append_binary_string(doc, "boundary", (const uint8_t *)node->boundary,
				     node->boundary_len, ctx->nul_ok);
	} else {
		BSON_APPEND_BOOL(doc, "multipart", false);
		BSON_APPEND_BOOL(doc, "boundary", false);
	}
	BSON_APPEND_INT32(doc, "lineCount", (int32_t)info.line_count);
	BSON_APPEND_INT32(doc, "size", (int32_t)info.size);
	if (node->kind == WD_MIME_KIND_MULTIPART && node->child_count > 0) {
		bson_append_array_begin(doc, "childNodes", -1, &array);
		for (uint32_t i = 0; i < node->child_count; i++) {
			bson_t child;
			bson_uint32_to_string(i, &key_str, key, sizeof(key));
			bson_append_document_begin(&array, key_str, -1, &child);
			build_node(ctx, node->children[i], &child);
			bson_append_document_end(&array, &child);
		}
		bson_append_array_end(doc, &array);
	}
	if (node->kind == WD_MIME_KIND_MESSAGE && node->message != NULL) {
		bson_t message;
		bson_append_document_begin(doc, "message", -1, &message);
		build_node(ctx, node->message, &message);
		bson_append_document_end(doc, &message);
	}
}

/* ---- header facts ---- */

/* A field's value with its folds removed (NUL bytes become spaces), in a
   malloc'd string. */
static char *field_value(const struct wd_mime_tree *tree, const struct wd_mime_field *f)
{
	size_t len = f->range.end - f->value_start;
	char *value = malloc(len + 1);
	size_t n = 0;
	for (size_t k = 0; k < len; k++) {
		char c = (char)tree->data[f->value_start + k];
		if (c != '\r' && c != '\n')
			value[n++] = c == '\0' ? ' ' : c;
	}
	value[n] = '\0';
	return value;
}

/* The value of the last field named `name` of the root, unfolded and
   trimmed, in a malloc'd string; NULL when absent. */
static char *last_field(const struct wd_mime_tree *tree, const char *name)
{
	const struct wd_mime_node *root = tree->root;
	size_t name_len = strlen(name);
	for (uint32_t i = root->field_count; i-- > 0;) {
		const struct wd_mime_field *f = &root->fields[i];
		if (f->name_len != name_len ||
		    !wd_mem_eq_nocase(tree->data + f->name_start, name, name_len))
			continue;
		char *value = field_value(tree, f);
		char *trimmed = wd_str_trim(value);
		memmove(value, trimmed, strlen(trimmed) + 1);
		return value;
	}
	return NULL;
}

/* RFC 2047 decoding to UTF-8, whitespace runs collapsed, trimmed. */
static char *decode_header_text(const char *raw)
{
	char *decoded = g_mime_utils_header_decode_text(NULL, raw);
	const char *src = decoded != NULL ? decoded : raw;
	char *out = malloc(strlen(src) + 1);
	size_t n = 0;
	bool space = false;
	for (const char *p = src; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = n > 0;
			continue;
		}
		if (space)
			out[n++] = ' ';
		space = false;
		out[n++] = *p;
	}
	out[n] = '\0';
	g_free(decoded);
	return out;
}

static const char *const indexed_headers[] = {
	"to", "cc", "subject", "from", "sender", "reply-to", "message-id", "thread-index",
	"list-id", "delivered-to",
};

void wd__indexed_headers_append(const struct wd_mime_tree *tree, bson_t *doc, bool nul_ok)
{
	const struct wd_mime_node *root = tree->root;
	bson_t array;
	uint32_t index = 0;
	bson_append_array_begin(doc, "headers", -1, &array);
	for (uint32_t i = 0; i < root->field_count; i++) {
		const struct wd_mime_field *f = &root->fields[i];
		char name[32];
		if (f->name_len == 0 || f->name_len >= sizeof(name))
			continue;
		for (uint32_t k = 0; k < f->name_len; k++)
			name[k] = wd_ascii_lower((char)tree->data[f->name_start + k]);
		name[f->name_len] = '\0';
		bool indexed = false;
		for (size_t k = 0; k < WD_N_ELEMENTS(indexed_headers); k++)
			indexed |= strcmp(name, indexed_headers[k]) == 0;
		if (!indexed)
			continue;
		char *raw = field_value(tree, f);
		char *decoded = decode_header_text(raw);
		char *value = wd_search_fold(decoded);
		if (strcmp(name, "list-id") == 0) {
			char *lt = strrchr(value, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;
			if (lt != NULL && gt != NULL) {
				*gt = '\0';
				memmove(value, lt + 1, strlen(lt + 1) + 1);
			}
		}
		size_t vlen = strlen(value);
		if (vlen > HEADER_VALUE_MAX)
			vlen = HEADER_VALUE_MAX - 4;
		bson_t h;
		char key[16];
		const char *key_str;
		bson_uint32_to_string(index++, &key_str, key, sizeof(key));
		bson_append_document_begin(&array, key_str, -1, &h);
		BSON_APPEND_UTF8(&h, "key", name);
		wd__append_text(&h, "value", value, vlen, nul_ok);
		bson_append_document_end(&array, &h);
		free(value);
		free(decoded);
		free(raw);
	}
	bson_append_array_end(doc, &array);
}

/* ---- add ---- */

int wd__store_mailbox_info(struct wd_store *store, const bson_oid_t *mailbox,
			   struct wd__mailbox_info *info, char **error_r)
{
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "mailboxes");
	bson_t *query = BCON_NEW("_id", BCON_OID(mailbox));
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, query, NULL, NULL);
	const bson_t *doc;
	int ret = WD_OK;
	bson_error_t error;
	memset(info, 0, sizeof(*info));
	if (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t iter;
		if (bson_iter_init_find(&iter, doc, "user") && BSON_ITER_HOLDS_OID(&iter))
			bson_oid_copy(bson_iter_oid(&iter), &info->user);
		if (bson_iter_init_find(&iter, doc, "retention") && BSON_ITER_HOLDS_NUMBER(&iter))
			info->retention = bson_iter_as_int64(&iter);
		info->junk = bson_iter_init_find(&iter, doc, "specialUse") &&
			     BSON_ITER_HOLDS_UTF8(&iter) &&
			     strcmp(bson_iter_utf8(&iter, NULL), "\\Junk") == 0;
	} else {
		ret = WD_ERROR;
		*error_r = mongoc_cursor_error(cursor, &error) ?
				   wd__store_error("cannot read mailbox: %s", error.message) :
				   wd__store_error("mailbox does not exist");
	}
	mongoc_cursor_destroy(cursor);
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	return ret;
}

int wd__store_update_by_id(struct wd_store *store, enum wd_store_db db, const char *collection,
			   const bson_oid_t *lock_id, const bson_oid_t *id, const bson_t *update,
			   const char *what, char **error_r)
{
	struct wd_store_lock lock;
	if (wd__store_mailbox_lock(store, lock_id, &lock, error_r) < 0)
		return WD_ERROR;
	mongoc_client_t *client = wd_store_client(store, db);
	mongoc_collection_t *coll = wd_store_collection(store, client, db, collection);
	bson_t *query = BCON_NEW("_id", BCON_OID(id));
	bson_error_t error;
	int ret = WD_OK;
	if (!mongoc_collection_update_one(coll, query, update, NULL, NULL, &error)) {
		*error_r = wd__store_error("cannot %s: %s", what, error.message);
		ret = WD_ERROR;
	}
	bson_destroy(query);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, db, client);
	wd__store_unlock(store, &lock);
	return ret;
}

int wd__store_change_quota(struct wd_store *store, const bson_oid_t *user, int64_t delta,
			   char **error_r)
{
	/* a JS number as WildDuck's $inc sends it, so storageUsed stays int32
	   while it fits; wdcQuotaChanged (ours, WildDuck ignores it) tells
	   `wdctl gc` that a store may be in flight, so it recounts storageUsed
	   only when the field is older than its settle time (a store killed
	   between this update and its insert leaves storageUsed too high) */
	bson_t update = BSON_INITIALIZER, inc, set;
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &inc);
	wd__append_js_number(&inc, "storageUsed", delta);
	bson_append_document_end(&update, &inc);
	BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
	BSON_APPEND_DATE_TIME(&set, "wdcQuotaChanged", wd__now_ms());
	bson_append_document_end(&update, &set);
	int ret = wd__store_update_by_id(store, WD_STORE_DB_USERS, "users", user, user, &update,
					 "update quota", error_r);
	bson_destroy(&update);
	return ret;
}

static bool has_flag(const struct wd_message_add *req, const char *flag)
{
	for (size_t i = 0; i < req->flag_count; i++) {
		if (wd_str_eq_nocase(req->flags[i], flag))
			return true;
	}
	return false;
}

/* wdc.imap: ENVELOPE ("e"), BODYSTRUCTURE ("b") and BODY ("s") as FETCH
   sends them, so metadata FETCHes need neither the message nor a parse; the
   UTF8=ACCEPT form ("e8", "b8", "s8") only where it differs. */
static int render_structure(const struct wd_mime_tree *tree, int form, unsigned flags,
			    struct wd_buffer *out)
{
	if (form == 0)
		return wd_imap_envelope(tree, tree->root, flags, out);
	return wd_imap_bodystructure(tree, tree->root, form == 1, flags, out);
}

static void append_imap_cache(bson_t *wdc, const struct wd_mime_tree *tree)
{
	static const char *const keys[] = { "e", "b", "s" };
	static const char *const keys8[] = { "e8", "b8", "s8" };
	struct wd_buffer plain = WD_BUFFER_INIT, utf8 = WD_BUFFER_INIT;
	bson_t imap;
	BSON_APPEND_DOCUMENT_BEGIN(wdc, "imap", &imap);
	for (int form = 0; form < 3; form++) {
		wd_buffer_clear(&plain);
		wd_buffer_clear(&utf8);
		if (render_structure(tree, form, 0, &plain) < 0 ||
		    render_structure(tree, form, WD_IMAP_UTF8, &utf8) < 0)
			continue; /* out of memory: FETCH computes it */
		BSON_APPEND_BINARY(&imap, keys[form], BSON_SUBTYPE_BINARY, wd_buffer_bytes(&plain),
				   (uint32_t)plain.len);
		if (utf8.len != plain.len ||
		    memcmp(wd_buffer_bytes(&utf8), wd_buffer_bytes(&plain), plain.len) != 0)
			BSON_APPEND_BINARY(&imap, keys8[form], BSON_SUBTYPE_BINARY,
					   wd_buffer_bytes(&utf8), (uint32_t)utf8.len);
	}
	bson_append_document_end(wdc, &imap);
	wd_buffer_release(&plain);
	wd_buffer_release(&utf8);
}

static void append_flags(bson_t *doc, const struct wd_message_add *req)
{
	bson_t array;
	bson_append_array_begin(doc, "flags", -1, &array);
	for (size_t i = 0; i < req->flag_count; i++) {
		char key[16];
		const char *key_str;
		bson_uint32_to_string((uint32_t)i, &key_str, key, sizeof(key));
		BSON_APPEND_UTF8(&array, key_str, req->flags[i]);
	}
	bson_append_array_end(doc, &array);
	bool deleted = has_flag(req, "\\Deleted");
	BSON_APPEND_BOOL(doc, "unseen", !has_flag(req, "\\Seen"));
	BSON_APPEND_BOOL(doc, "flagged", has_flag(req, "\\Flagged"));
	BSON_APPEND_BOOL(doc, "undeleted", !deleted);
	BSON_APPEND_BOOL(doc, "draft", has_flag(req, "\\Draft"));
	if (!deleted)
		BSON_APPEND_BOOL(doc, "searchable", true);
}

static int64_t header_date(const struct wd_mime_tree *tree, int64_t fallback)
{
	char *raw = last_field(tree, "date");
	if (raw == NULL)
		return fallback;
	GDateTime *dt = g_mime_utils_header_decode_date(raw);
	free(raw);
	if (dt == NULL)
		return fallback;
	int64_t ms = g_date_time_to_unix(dt) * 1000;
	g_date_time_unref(dt);
	return ms;
}

static char *message_id(const struct wd_mime_tree *tree)
{
	char *raw = last_field(tree, "message-id");
	if (raw != NULL && raw[0] != '\0')
		return raw;
	free(raw);
	unsigned char r[16];
	RAND_bytes(r, sizeof(r));
	char *id = malloc(64);
	snprintf(id, 64, "<%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x@wildduck.email>",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
		 r[14], r[15]);
	return id;
}

static int find_thread(struct wd_store *store, const bson_oid_t *user,
		       const struct wd_mime_tree *tree, bson_oid_t *thread_r, char **error_r)
{
	char *fields[4] = { last_field(tree, "message-id"), last_field(tree, "in-reply-to"),
			    last_field(tree, "thread-index"), last_field(tree, "references") };
	char ids[10][32];
	size_t count = wd_thread_ids(fields[0], fields[1], fields[2], fields[3], ids);
	char *raw_subject = last_field(tree, "subject");
	char *decoded = decode_header_text(raw_subject != NULL ? raw_subject : "");
	char *subject = wd_thread_subject(decoded);
	int ret = wd_store_thread_get(store, user, subject, (const char (*)[32])ids, count, thread_r,
				      error_r);
	free(subject);
	free(decoded);
	free(raw_subject);
	for (int i = 0; i < 4; i++)
		free(fields[i]);
	return ret;
}

int wd_store_message_add(struct wd_store *store, const bson_oid_t *mailbox,
			 const struct wd_message_add *req, struct wd_message_added *added_r,
			 char **error_r)
{
	wd__gmime_init();
	*error_r = NULL;
	memset(added_r, 0, sizeof(*added_r));
	struct wd__mailbox_info mbox;
	if (wd__store_mailbox_info(store, mailbox, &mbox, error_r) < 0)
		return WD_ERROR;

	struct wd_arena *arena = wd_arena_create(0);
	struct wd_mime_tree *tree;
	const char *parse_error;
	if (wd_mime_tree_parse(arena, req->raw, req->len, NULL, &tree, &parse_error) < 0) {
		*error_r = wd__store_error("cannot parse message: %s", parse_error);
		wd_arena_destroy(&arena);
		return WD_ERROR;
	}
	bool nul_ok = wd_store_caps(store)->nul_in_strings;
	uint16_t magic16;
	RAND_bytes((unsigned char *)&magic16, sizeof(magic16));

	struct add_ctx ctx = { .store = store, .tree = tree, .req = req, .magic = magic16 };
	bson_t pieces = BSON_INITIALIZER;
	struct wd_buffer layout = WD_BUFFER_INIT;
	ctx.pieces = &pieces;
	int ret = wd_mime_tree_walk(tree, piece_cb, &ctx);
	if (ret == WD_OK)
		flush_literal(&ctx);
	uint64_t size = req->len;
	bool quota_taken = false;
	bool too_large = false; /* the failure is the message's: WD_STORE_ERR_LIMIT */
	if (ret < 0) {
		*error_r = ctx.error != NULL ? ctx.error : wd__store_error("cannot store message");
		ctx.error = NULL;
		goto fail;
	}
	if (wd__store_change_quota(store, &mbox.user, (int64_t)size, error_r) < 0)
		goto fail;
	quota_taken = true;
	uint32_t uid, modseq;
	if (wd_store_allocate_uid(store, mailbox, true, &uid, &modseq, error_r) < 0)
		goto fail;

	int64_t now = wd__now_ms();
	int64_t idate = req->idate_ms != 0 ? req->idate_ms : now;
	bson_oid_t id, thread;
	bson_oid_init(&id, NULL);
	if (find_thread(store, &mbox.user, tree, &thread, error_r) < 0)
		goto fail;
	bson_t doc = BSON_INITIALIZER, tree_doc, map, wdc, meta;
	BSON_APPEND_OID(&doc, "_id", &id);
	BSON_APPEND_OID(&doc, "root", &id);
	BSON_APPEND_UTF8(&doc, "v", "1.0");
	BSON_APPEND_OID(&doc, "user", &mbox.user);
	BSON_APPEND_OID(&doc, "mailbox", mailbox);
	BSON_APPEND_INT32(&doc, "uid", (int32_t)uid);
	BSON_APPEND_INT32(&doc, "modseq", (int32_t)modseq);
	BSON_APPEND_OID(&doc, "thread", &thread);
	BSON_APPEND_DATE_TIME(&doc, "idate", idate);
	BSON_APPEND_DATE_TIME(&doc, "hdate", header_date(tree, idate));
	char *msgid = message_id(tree);
	wd__append_text(&doc, "msgid", msgid, strlen(msgid), nul_ok);
	free(msgid);
	char *subject_raw = last_field(tree, "subject");
	char *subject = decode_header_text(subject_raw != NULL ? subject_raw : "");
	wd__append_text(&doc, "subject", subject, strlen(subject), nul_ok);
	free(subject);
	free(subject_raw);
	append_flags(&doc, req);
	if (mbox.junk)
		BSON_APPEND_BOOL(&doc, "junk", true);
	BSON_APPEND_INT32(&doc, "size", (int32_t)size);

	bson_append_document_begin(&doc, "mimeTree", -1, &tree_doc);
	struct tree_ctx tctx = { .tree = tree, .add = &ctx, .nul_ok = nul_ok, .arena = arena };
	build_node(&tctx, tree->root, &tree_doc);
	if (tctx.failed) {
		bson_append_document_end(&doc, &tree_doc);
		bson_destroy(&doc);
		*error_r = wd__store_error("cannot store message: its headers are too large");
		too_large = true;
		goto fail;
	}
	bson_append_document_begin(&tree_doc, "attachmentMap", -1, &map);
	for (size_t i = 0; i < ctx.att_count; i++) {
		char aid[16];
		att_id(i, aid);
		BSON_APPEND_BINARY(&map, aid, BSON_SUBTYPE_BINARY, ctx.hashes[i], WD_ATTACHMENT_HASH_LEN);
	}
	bson_append_document_end(&tree_doc, &map);
	bson_append_document_end(&doc, &tree_doc);

	wd__indexed_headers_append(tree, &doc, nul_ok);
	if (wd_store_caps(store)->nested_arrays) {
		/* WildDuck's cached structure (nested arrays: real MongoDB only);
		   built aside so that a failure leaves the document whole */
		bson_t cached = BSON_INITIALIZER;
		if (wd_imap_envelope_bson(tree, tree->root, &cached, "envelope") == WD_OK &&
		    wd_imap_bodystructure_bson(tree, tree->root, &cached, "bodystructure") == WD_OK)
			bson_concat(&doc, &cached);
		else
			wd_warning("store", "no envelope/bodystructure cache: message too large");
		bson_destroy(&cached);
	}
	wd__maildata_append(tree, ctx.att_nodes,
			    (const char(*)[WD_ATTACHMENT_CONTENT_HASH_SIZE])ctx.content_hashes,
			    ctx.att_count, nul_ok, &doc);
	BSON_APPEND_INT32(&doc, "magic", (int32_t)ctx.magic);
	BSON_APPEND_BOOL(&doc, "exp", mbox.retention > 0);
	BSON_APPEND_DOUBLE(&doc, "rdate", (double)(now + mbox.retention));
	BSON_APPEND_BOOL(&doc, "userDeleted", false);
	BSON_APPEND_BOOL(&doc, "copied", false);
	bson_append_document_begin(&doc, "meta", -1, &meta);
	BSON_APPEND_UTF8(&meta, "source", req->source != NULL ? req->source : "API");
	BSON_APPEND_DATE_TIME(&meta, "time", now);
	if (req->meta != NULL)
		bson_concat(&meta, req->meta);
	bson_append_document_end(&doc, &meta);
	if (req->fields != NULL)
		bson_concat(&doc, req->fields);
	bson_append_document_begin(&doc, "wdc", -1, &wdc);
	BSON_APPEND_INT32(&wdc, "v", 1);
	BSON_APPEND_INT64(&wdc, "size", (int64_t)size);
	BSON_APPEND_ARRAY(&wdc, "pieces", &pieces);
	if (wd__layout_encode(tree, &layout) == WD_OK)
		BSON_APPEND_BINARY(&wdc, "tree", BSON_SUBTYPE_BINARY, wd_buffer_bytes(&layout),
				   (uint32_t)layout.len);
	append_imap_cache(&wdc, tree);
	bson_append_document_end(&doc, &wdc);

	if (doc.len > STORE_MAX_DOCUMENT) {
		/* the header lines are in the document three times (the literal
		   piece, mimeTree.header, parsedHeader): megabytes of headers do
		   not fit; a permanent refusal, not a database error to retry */
		*error_r = wd__store_error("cannot store message: its headers are too large "
					   "(a %u byte document; the database takes 16 MiB)",
					   (unsigned)doc.len);
		bson_destroy(&doc);
		too_large = true;
		goto fail;
	}
	mongoc_client_t *client = wd_store_client(store, WD_STORE_DB_MAIN);
	mongoc_collection_t *coll = wd_store_collection(store, client, WD_STORE_DB_MAIN, "messages");
	bson_error_t error;
	/* libmongoc refuses empty keys by default, but parsedHeader keeps the
	   empty name of a header line ":value" as WildDuck does */
	bson_t *insert_opts = BCON_NEW("validate", BCON_INT32(BSON_VALIDATE_UTF8 |
							      BSON_VALIDATE_DOLLAR_KEYS |
							      BSON_VALIDATE_DOT_KEYS));
	bool inserted = mongoc_collection_insert_one(coll, &doc, insert_opts, NULL, &error);
	bson_destroy(insert_opts);
	mongoc_collection_destroy(coll);
	wd_store_client_release(store, WD_STORE_DB_MAIN, client);
	bson_destroy(&doc);
	if (!inserted) {
		*error_r = wd__store_error("cannot store message: %s", error.message);
		goto fail;
	}

	struct wd_journal_entry entry = {
		.command = WD_JOURNAL_EXISTS, .uid = uid, .modseq = modseq, .has_message = true,
		.message = id, .has_thread = true, .thread = thread, .ignore = req->session_id,
		.unseen = !has_flag(req, "\\Seen"), .idate_ms = idate,
	};
	char *journal_error = NULL;
	if (wd__store_journal_add_for(store, mailbox, &mbox.user, &entry, 1, NULL,
				      &journal_error) < 0) {
		/* the message is stored; sessions find it on their next full sync */
		wd_warning("store", "journal entry for a new message failed: %s", journal_error);
		free(journal_error);
	}
	wd_store_notify(store, &mbox.user);

	added_r->id = id;
	added_r->user = mbox.user;
	added_r->uid = uid;
	added_r->modseq = modseq;
	added_r->size = size;
	added_r->attachments = (unsigned)ctx.att_count;
	ret = WD_OK;
	goto out;
fail:
	ret = too_large ? WD_STORE_ERR_LIMIT : WD_ERROR;
	if (quota_taken) {
		char *e = NULL;
		if (wd__store_change_quota(store, &mbox.user, -(int64_t)size, &e) < 0) {
			wd_error("store", "quota not given back after a failed store: %s", e);
			free(e);
		}
	}
	if (ctx.att_count > 0) {
		char *e = NULL;
		if (wd_store_attachment_release(store, (const uint8_t (*)[WD_ATTACHMENT_HASH_LEN])ctx.hashes,
						ctx.att_count, ctx.magic, &e) < 0) {
			wd_error("store", "attachment references not released after a failed store: %s", e);
			free(e);
		}
	}
out:
	bson_destroy(&pieces);
	wd_buffer_release(&layout);
	wd_buffer_release(&ctx.literal);
	free(ctx.hashes);
	free(ctx.content_hashes);
	free(ctx.att_nodes);
	free(ctx.error);
	wd_arena_destroy(&arena);
	return ret;
}
