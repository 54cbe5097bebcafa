#ifndef WD_MIME_TREE_H
#define WD_MIME_TREE_H

/* MIME structure of a stored message: a tree of byte ranges over the raw
 * RFC 5322 bytes, from which the message can be rebuilt byte-exactly, IMAP
 * sections can be answered, and WildDuck's `mimeTree` views can be derived.
 *
 * Design
 * ------
 * Partition, not copy. wd_mime_tree_parse() never copies message bytes: every
 * node holds offsets into the caller's buffer, and the pieces of the tree
 * (header blocks, leaf bodies, preambles, delimiter lines, close delimiters,
 * epilogues) tile the input without gap or overlap. wd_mime_tree_walk()
 * visits those pieces in order, and wd_mime_tree_rebuild() emits them; the
 * result equals the input for every input. This is what lets storage keep
 * pieces apart (big bodies in GridFS) and still return the delivered bytes
 * (DESIGN.md §3: "better than WildDuck where it is wrong").
 *
 * Lines. A line ends at a terminator, which is the grammar WildDuck's
 * reader uses (reference §3.1): a run of CRs followed by LF (so CRLF, LF and
 * the broken CRCRLF are one terminator each), otherwise a single CR. Using
 * the same grammar means our ranges split where WildDuck's line pieces do,
 * so its per-node views (body, lineCount, size) can be computed from them.
 *
 * Entities. A node's header block runs from its first byte to the end of
 * the first empty line (the blank line is part of the header block), or to
 * the end of the node when there is none. Lines starting with SP or HTAB
 * continue the previous field; a line without a colon is kept in the block
 * (and listed as a field without a name) but never ends it. The body is the
 * rest of the node.
 *
 * Boundaries. Inside a multipart body a line is a delimiter when it is
 * exactly "--" boundary followed only by transport padding (SP/HTAB), and a
 * close delimiter when it is "--" boundary "--" plus padding (RFC 2046
 * §5.1.1; WildDuck takes no padding, we accept it because the RFC allows
 * it). A longer line that merely starts with the boundary never matches. The
 * line break before a delimiter belongs to the delimiter (RFC 2046), as does
 * the line's own terminator. A delimiter that is the first line of the body
 * has no line break before it (that one ends the header block), nor has one
 * that directly follows the previous delimiter line (whose terminator that
 * is); the part between is then empty. A delimiter ends a part even inside
 * the part's header lines. A close delimiter counts only after the first
 * delimiter (as in WildDuck);
 * after it everything up to the end of the multipart is epilogue, even lines
 * that look like delimiters. Without a close delimiter the last part runs to
 * the end of the multipart.
 *
 * Outer boundaries win. A multipart is split first, then each part is parsed
 * on its own range. So a delimiter of an enclosing multipart ends every part
 * inside it, even when an inner multipart lacks its close delimiter, and a
 * nested multipart that reuses an enclosing boundary (RFC 2046 forbids it)
 * sees none of its lines: it gets no parts and its whole body is preamble.
 * That is also what WildDuck does, which checks the parent boundary first.
 * message/rfc822 bodies are handled the same way (the enclosing multipart
 * decides where they end, then they are parsed as messages).
 *
 * message/rfc822. A part whose type is message/rfc822 (compared without
 * case) and whose Content-Transfer-Encoding is absent, 7bit, 8bit or binary
 * gets its body parsed as a nested message (`message`), as WildDuck does; an
 * encoded one stays a leaf. Parts of multipart/digest without Content-Type
 * default to message/rfc822 (RFC 2046 §5.1.5).
 *
 * Limits (struct wd_mime_limits). Bad input never fails: every byte sequence
 * yields a tree. Past max_depth a node is an opaque leaf (its body is not
 * split or parsed as a message); once max_parts nodes exist, no further
 * delimiter is recognised, so the rest of that multipart stays in its last
 * part (or in its body when it had none); past max_header_fields (per node)
 * or max_total_fields (per tree) fields are no longer listed, although the
 * header block still ends at its blank line and the Content-* fields are
 * still found. Recursion follows the tree depth, which the limit bounds, and
 * the depth limit is capped at WD_MIME_MAX_DEPTH_CAP. Parsing is linear in
 * the input for every level of nesting (a multipart body is scanned once by
 * its own level and once per enclosing level).
 *
 * Memory. Nodes, field lists and decoded parameters live in the caller's
 * arena; the input must outlive the tree. Offsets are 32-bit because
 * messages are capped at WD_MIME_MAX_MESSAGE_SIZE.
 *
 * Sections. wd_mime_section_get() answers an IMAP BODY[section] as a list of
 * ranges of the input plus, for HEADER.FIELDS(.NOT), a synthesized suffix
 * when the message has no blank line to end the subset with (see below).
 * wd_mime_section_partial() applies <start.length> without copying.
 *
 * WildDuck views. wd_mime_wd_*() compute what WildDuck's parser stores for a
 * node (`header`, `body`, `lineCount`, `size`) and its getSize() for a
 * message, from our ranges and its rules (reference §3.1, §3.2). They match
 * WildDuck wherever our structure matches its own (checked against
 * WildDuck's code on thousands of generated messages); the structure
 * differs only on input WildDuck mishandles: padded delimiters,
 * delimiter-like lines in an epilogue, a missing inner close delimiter
 * (WildDuck lets the inner part swallow the rest), a delimiter inside a
 * part's header lines (WildDuck reads it as a header line), parts past our
 * limits, message/rfc822 written in upper case or with an upper-case
 * encoding (WildDuck compares case-sensitively), an encoded top-level
 * message/rfc822 (WildDuck parses it anyway) and the last part of a
 * multipart without close delimiter (WildDuck does not parse it as a
 * message). We also parse multipart/digest parts without Content-Type as
 * messages, which WildDuck does not. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_arena;
struct wd_buffer;

/* Largest message the parser takes (WildDuck's default maxMessageSize). */
#define WD_MIME_MAX_MESSAGE_SIZE (64u * 1024u * 1024u)
/* max_depth is clamped to this so that recursion stays small. */
#define WD_MIME_MAX_DEPTH_CAP 256u

struct wd_mime_limits {
	uint32_t max_depth;         /* nodes deeper than this are opaque (64) */
	/* nodes in the whole tree (10000, Dovecot's default too: storing a
	   node costs about 0.7 ms and a few hundred bytes of document, so
	   100,000 parts stay a 7 s delivery, not a 70 s one) */
	uint32_t max_parts;
	uint32_t max_header_fields; /* listed fields per node (10000) */
	uint32_t max_total_fields;  /* listed fields per tree (200000) */
};

#define WD_MIME_LIMITS_DEFAULT { 64, 10000, 10000, 200000 }

/* [start, end) in the input. */
struct wd_mime_range {
	uint32_t start;
	uint32_t end;
};

static inline uint32_t wd_mime_range_len(struct wd_mime_range range)
{
	return range.end - range.start;
}

enum wd_mime_kind {
	WD_MIME_KIND_LEAF,      /* the body is opaque content */
	WD_MIME_KIND_MULTIPART, /* the body is preamble, parts, epilogue */
	WD_MIME_KIND_MESSAGE,   /* the body is a message (message/rfc822) */
};

/* One header field: the first line and every continuation line, each with
   its terminator. */
struct wd_mime_field {
	struct wd_mime_range range;
	uint32_t name_start; /* trimmed name [name_start, name_start + name_len) */
	uint32_t name_len;   /* 0 when the first line has no colon */
	uint32_t value_start; /* just after the colon (range.end without one) */
};

/* A Content-Type or Content-Disposition parameter after RFC 2231 merging:
   name*0, name*1… are joined in order, extended (name*, name*N*) segments are
   percent-decoded, and such a parameter wins over a plain one of the same
   name; among plain duplicates the last wins. */
struct wd_mime_param {
	const char *name;     /* lower-case, without the '*' markers */
	const char *value;    /* NUL-terminated; may hold NULs (see value_len) */
	size_t value_len;
	const char *charset;  /* RFC 2231 charset, NULL for plain parameters */
	const char *language; /* RFC 2231 language, NULL when empty or plain */
};

/* A parsed Content-Type (or Content-Disposition) field, last occurrence. */
struct wd_mime_content {
	const char *value;   /* before the first ';', unfolded, trimmed, case kept */
	const char *type;    /* lower-case; the disposition type for Content-Disposition */
	const char *subtype; /* lower-case; "" when absent and for Content-Disposition */
	const struct wd_mime_param *params; /* in order of first appearance */
	uint32_t param_count;
	bool present;        /* false: the field is missing, the values are defaults */
};

struct wd_mime_node {
	enum wd_mime_kind kind;
	uint32_t depth;              /* 0 for the root */
	uint32_t index;              /* 1-based position among its siblings */
	struct wd_mime_node *parent; /* multipart, or the message/rfc822 part of an embedded root */
	struct wd_mime_node *next;   /* next sibling */

	/* For a part of a multipart: its delimiter line, including the line
	   break before it (absent for the first one after an empty preamble)
	   and its own terminator. Empty (start == end == range.start) else. */
	struct wd_mime_range delimiter;
	struct wd_mime_range range;  /* header.start .. body.end */
	struct wd_mime_range header; /* header block, blank line included */
	struct wd_mime_range body;
	bool has_blank_line;         /* the header block ends with an empty line */
	bool opaque;                 /* a limit kept this node's structure unparsed */

	/* Header facts (last occurrence of each field). Missing Content-Type
	   defaults to text/plain (message/rfc822 in multipart/digest). */
	struct wd_mime_content content_type;
	struct wd_mime_content disposition;
	const char *transfer_encoding; /* lower-case, NULL when absent */
	const char *charset;           /* Content-Type charset parameter or NULL */
	const char *content_id;        /* unfolded, trimmed, NULL when absent */
	const char *description;       /* unfolded, trimmed, NULL when absent */
	const struct wd_mime_field *fields;
	uint32_t field_count;
	bool fields_truncated;         /* a field limit stopped the list */

	/* WD_MIME_KIND_MULTIPART. body = preamble + parts + close + epilogue. */
	const char *boundary;
	uint32_t boundary_len;
	struct wd_mime_range preamble;
	struct wd_mime_node **children; /* child_count entries */
	uint32_t child_count;
	bool has_close;
	struct wd_mime_range close_delimiter; /* line break before, own terminator */
	struct wd_mime_range epilogue;

	/* WD_MIME_KIND_MESSAGE: the embedded message; its range is our body. */
	struct wd_mime_node *message;
};

struct wd_mime_tree {
	const uint8_t *data;
	size_t size;
	struct wd_mime_node *root;
	uint32_t part_count;  /* nodes, embedded message roots included */
	uint32_t field_count; /* listed fields */
	bool depth_capped;
	bool parts_capped;
	bool fields_capped;
	struct wd_mime_limits limits; /* as applied (max_depth clamped) */
};

/* ---- parse (mime-parse.c) ---- */

void wd_mime_limits_init(struct wd_mime_limits *limits_r);

/* Parse data[0..len) into a tree in `arena`; limits NULL = defaults. Fails
   only when len > WD_MIME_MAX_MESSAGE_SIZE or memory runs out. `data` must
   stay valid and unchanged while the tree is used. */
int wd_mime_tree_parse(struct wd_arena *arena, const uint8_t *data, size_t len,
		       const struct wd_mime_limits *limits, struct wd_mime_tree **tree_r,
		       const char **error_r);

/* Find a parameter by lower-case name; NULL when absent. */
const struct wd_mime_param *wd_mime_content_param(const struct wd_mime_content *content,
						  const char *name);

/* Child `index` (1-based) of a multipart node, or NULL. */
const struct wd_mime_node *wd_mime_node_child(const struct wd_mime_node *node, uint32_t index);

/* ---- pieces and rebuild (mime-rebuild.c) ---- */

enum wd_mime_piece {
	WD_MIME_PIECE_HEADER,    /* a node's header block */
	WD_MIME_PIECE_BODY,      /* a leaf body */
	WD_MIME_PIECE_PREAMBLE,
	WD_MIME_PIECE_DELIMITER, /* before the part `node` */
	WD_MIME_PIECE_CLOSE,
	WD_MIME_PIECE_EPILOGUE,
};

/* Return WD_OK to go on, anything else stops the walk and is returned. */
typedef int wd_mime_piece_cb(void *context, enum wd_mime_piece piece,
			     const struct wd_mime_node *node, struct wd_mime_range range);

/* Visit every piece of the tree in message order, empty ones included. A
   message/rfc822 node yields its header, then its embedded message's pieces. */
int wd_mime_tree_walk(const struct wd_mime_tree *tree, wd_mime_piece_cb *callback,
		      void *context);

/* Append the message rebuilt from the tree's pieces to `out`; it equals the
   input. WD_ERROR only when the buffer cannot grow. */
int wd_mime_tree_rebuild(const struct wd_mime_tree *tree, struct wd_buffer *out);

/* Verify the partition invariants (pieces tile the input, node ranges
   agree with their pieces, links are consistent). For tests and fuzzing. */
int wd_mime_tree_check(const struct wd_mime_tree *tree, const char **error_r);

/* Number of bytes BODY[] returns: the input length (RFC822.SIZE). */
size_t wd_mime_tree_exact_size(const struct wd_mime_tree *tree);

/* ---- IMAP sections (mime-section.c) ---- */

enum wd_mime_section_type {
	WD_MIME_SECTION_BODY,       /* BODY[] or BODY[part] */
	WD_MIME_SECTION_HEADER,
	WD_MIME_SECTION_HEADER_FIELDS,
	WD_MIME_SECTION_HEADER_FIELDS_NOT,
	WD_MIME_SECTION_TEXT,
	WD_MIME_SECTION_MIME,
};

struct wd_mime_section_spec {
	const uint32_t *path; /* part numbers, each ≥ 1 */
	size_t path_len;
	enum wd_mime_section_type type;
	const char *const *fields; /* HEADER.FIELDS(.NOT) names, any case */
	size_t field_count;
};

/* A section's bytes: the ranges of the input in order, then `suffix`. */
struct wd_mime_section {
	struct wd_mime_range *ranges;
	size_t range_count;
	const char *suffix;
	size_t suffix_len;
	uint64_t size; /* total bytes */
};

/* Parse the text between the brackets of BODY[...], e.g. "1.2.HEADER.FIELDS
   (Subject From)" (atoms and quoted strings; keywords in any case). */
int wd_mime_section_spec_parse(struct wd_arena *arena, const char *text, size_t len,
			       struct wd_mime_section_spec *spec_r, const char **error_r);

/* Resolve `spec` against the tree (RFC 3501 §6.4.5):
   - BODY with no path is the whole message; with a path, the part's body
     (for a message/rfc822 part the whole embedded message; part 1 of a
     non-multipart message is its body);
   - HEADER / TEXT / HEADER.FIELDS(.NOT) without a path are the message's;
     with one, the part must be message/rfc822 and its embedded message's
     are returned;
   - MIME needs a path and is the part's header block.
   Part numbers descend through multiparts and into embedded messages. HEADER
   ends with the blank line when the message has one; HEADER + TEXT is always
   the whole message. HEADER.FIELDS(.NOT) lists the selected fields (names
   compared without case, lines without a colon never selected), then the
   header's blank line, or a synthesized CRLF (CRLF CRLF when the last field
   lacks a terminator) when there is none.
   A part that does not exist or does not fit the type is WD_ERROR with a
   message; the IMAP layer then answers with an empty string, as WildDuck
   and Dovecot do. Range arrays are allocated in `arena`. */
int wd_mime_section_get(const struct wd_mime_tree *tree, const struct wd_mime_section_spec *spec,
			struct wd_arena *arena, struct wd_mime_section *section_r,
			const char **error_r);

/* The node a part path names (the root for an empty path), or NULL with an
   error. `as_body_r` (may be NULL) is set when the last number was the "1"
   that names the body of a non-multipart message. */
const struct wd_mime_node *wd_mime_tree_find_part(const struct wd_mime_tree *tree,
						  const uint32_t *path, size_t path_len,
						  bool *as_body_r, const char **error_r);

/* Narrow a section to BODY[...]<offset.length> in place (no copying):
   octets from `offset`, at most `length` of them (UINT64_MAX: to the end);
   an offset past the end gives an empty section. */
void wd_mime_section_partial(struct wd_mime_section *section, uint64_t offset,
			     uint64_t length);

/* Append the section's bytes to `out`. */
int wd_mime_section_write(const struct wd_mime_tree *tree, const struct wd_mime_section *section,
			  struct wd_buffer *out);

/* ---- WildDuck views (mime-wildduck.c) ---- */

/* One element of WildDuck's `header[]`: a complete field, its lines joined
   with CRLF (folds kept as CRLF + whitespace). */
struct wd_mime_wd_field {
	const uint8_t *data;
	size_t len;
};

struct wd_mime_wd_info {
	uint32_t line_count; /* `lineCount` */
	uint64_t size;       /* `size`: length of the normalized body */
};

/* WildDuck's header[] for a node (arena-allocated). */
int wd_mime_wd_header(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
		      struct wd_arena *arena, struct wd_mime_wd_field **fields_r,
		      size_t *count_r);

/* lineCount and size of a node's WildDuck body without building it. */
void wd_mime_wd_info(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
		     struct wd_mime_wd_info *info_r);

/* Append WildDuck's normalized body for a node: for a multipart the
   preamble and epilogue joined as WildDuck joins them, with an LF added when
   they do not end with one; then every LF not preceded by CR becomes CRLF. */
int wd_mime_wd_body(const struct wd_mime_tree *tree, const struct wd_mime_node *node,
		    struct wd_buffer *out);

/* WildDuck's getSize() for the message rooted at `node` (a tree root or an
   embedded message root): the `size` it stores as RFC822.SIZE. */
uint64_t wd_mime_wd_get_size(const struct wd_mime_tree *tree, const struct wd_mime_node *node);

#endif
