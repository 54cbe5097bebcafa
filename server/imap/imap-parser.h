#ifndef WD_IMAP_PARSER_H
#define WD_IMAP_PARSER_H

/* Sans-I/O IMAP command parser (RFC 3501 §9, RFC 7888, RFC 3516, RFC 6855).
 *
 * The connection feeds bytes as they arrive; the parser returns one event
 * at a time and says how many bytes it consumed. It never consumes half a
 * token: bytes it did not consume must be presented again, followed by the
 * new ones, on the next call (wd_imap_parser_feed_buffer() does exactly that
 * with a struct wd_buffer). It remembers how far it already scanned, so
 * feeding a long token one byte at a time stays linear. The read buffer of
 * the connection therefore needs room for max_line bytes plus one read.
 *
 * Per command it produces the tag, the command name (upper-cased; "UID x"
 * becomes name x with uid = true) and a typed argument tree in an arena
 * that belongs to the command (struct wd_imap_command, freed with
 * wd_imap_command_destroy()). The tokenizer knows atoms (with BODY[...]
 * sections kept whole, spaces and parentheses included), quoted strings
 * (escapes removed, UTF-8 validated), literals {n}, {n+} and literal8 ~{n},
 * NIL and parenthesised lists.
 *
 * Literals. Each literal header produces WD_IMAP_EVENT_LITERAL. The caller
 * may then call wd_imap_parser_literal_stream() to receive the bytes as
 * WD_IMAP_EVENT_LITERAL_DATA events (APPEND: straight to a spool, never to
 * the arena); otherwise they go into the tree, within max_tree_literals per
 * command. A synchronising literal then produces WD_IMAP_EVENT_CONTINUE:
 * send "+ ..." and keep feeding. A literal that breaks a limit is refused
 * with WD_IMAP_EVENT_ERROR: a synchronising one before the client sends it
 * (the client waits for "+", so the parser simply starts the next command);
 * a non-synchronising one is already on its way (RFC 7888 §4/§5), so the
 * parser reads and discards up to max_discard bytes of it and the rest of
 * the line, or, past that, asks for the connection to be closed. Literal
 * bytes are never interpreted as commands.
 *
 * Errors carry the tag when it was read, a message, and what happens next:
 * the parser recovers by itself (skipping the rest of the line, including
 * its non-synchronising literals) or the connection must close. Line ends
 * are CRLF; a bare LF is accepted as well. Empty lines are ignored. */

#include "wd-arena.h"
#include "wd-buffer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_IMAP_LITERAL_MINUS_MAX 4096

struct wd_imap_parser_limits {
	size_t max_line;          /* bytes of a command outside literal data (64 KiB) */
	uint64_t max_literal;     /* largest literal, APPENDLIMIT (64 MiB) */
	size_t max_tree_literals; /* literal bytes kept in one command's tree (1 MiB) */
	/* a refused non-sync literal is read and dropped up to this, the rest
	   of a too long line up to this plus max_line; more closes the
	   connection (1 MiB) */
	uint64_t max_discard;
	uint32_t max_args;        /* arguments of one command, all levels (4096) */
	uint32_t max_depth;       /* list nesting (16) */
	bool literal_plus;        /* LITERAL+ advertised (false) */
	bool literal_minus;       /* LITERAL- advertised: non-sync up to 4096 bytes (true) */
	bool binary;              /* BINARY advertised: literal8 allowed (true) */
	bool utf8_accept;         /* UTF8=ACCEPT enabled: UTF-8 allowed in atoms (false) */
};

void wd_imap_parser_limits_default(struct wd_imap_parser_limits *limits_r);

enum wd_imap_arg_type {
	WD_IMAP_ARG_ATOM,
	WD_IMAP_ARG_STRING,  /* quoted */
	WD_IMAP_ARG_LITERAL, /* {n}, {n+} or ~{n} */
	WD_IMAP_ARG_NIL,
	WD_IMAP_ARG_LIST,
};

struct wd_imap_arg {
	enum wd_imap_arg_type type;
	bool literal8; /* LITERAL: ~{n}, may hold NUL bytes */
	bool streamed; /* LITERAL: the bytes went to LITERAL_DATA events; str is NULL */
	/* ATOM, STRING, LITERAL, NIL ("NIL" as written): NUL-terminated. */
	const char *str;
	size_t len;
	/* LIST */
	const struct wd_imap_arg *list;
	size_t count;
};

struct wd_imap_command {
	struct wd_arena *arena; /* everything below; the handler may allocate in it */
	const char *tag;
	const char *name; /* upper-case */
	bool uid;         /* "UID <name>" */
	const struct wd_imap_arg *args;
	size_t arg_count;
};

void wd_imap_command_destroy(struct wd_imap_command **cmd);

enum wd_imap_event_type {
	WD_IMAP_EVENT_COMMAND,      /* a whole command: `command`, now the caller's */
	WD_IMAP_EVENT_LITERAL,      /* a literal header: literal_*; may call literal_stream() */
	WD_IMAP_EVENT_CONTINUE,     /* a sync literal is accepted: send "+ ..." now */
	WD_IMAP_EVENT_LITERAL_DATA, /* streamed literal bytes: data/len, last */
	WD_IMAP_EVENT_LINE,         /* after read_line(): one raw line without CRLF */
	WD_IMAP_EVENT_ERROR,        /* error, message, recovery */
};

enum wd_imap_parse_error {
	WD_IMAP_PARSE_ERROR_SYNTAX, /* BAD */
	WD_IMAP_PARSE_ERROR_TOOBIG, /* line or literal too large: [TOOBIG] */
	WD_IMAP_PARSE_ERROR_LIMIT,  /* too many arguments or too deep */
};

enum wd_imap_recovery {
	WD_IMAP_RECOVER_NEXT,  /* the line is over; the parser waits for the next command */
	WD_IMAP_RECOVER_SKIP,  /* the parser drops the rest of the line by itself */
	WD_IMAP_RECOVER_CLOSE, /* send the response, then close the connection */
};

struct wd_imap_event {
	enum wd_imap_event_type type;
	/* COMMAND, LITERAL, CONTINUE, LITERAL_DATA, ERROR: what is known of the
	   command (NULL before it was read: answer "* BAD" untagged). Valid
	   until the next feed. */
	const char *tag;
	const char *name;
	bool uid;
	struct wd_imap_command *command; /* COMMAND */

	/* LITERAL (and CONTINUE) */
	uint64_t literal_size;
	bool literal_sync;
	bool literal8;
	unsigned literal_depth;  /* 0 = top-level argument */
	size_t literal_index;    /* position inside its list (top level: argument number) */

	/* LITERAL_DATA, LINE: points into the fed bytes (valid until those
	   bytes are overwritten) */
	const uint8_t *data;
	size_t len;
	bool last; /* LITERAL_DATA: the literal is complete */

	/* ERROR */
	enum wd_imap_parse_error error;
	enum wd_imap_recovery recovery;
	const char *message;
	bool respond_no;       /* answer NO rather than BAD (APPENDLIMIT) */
	const char *resp_code; /* "TOOBIG" or NULL */
};

struct wd_imap_parser;

struct wd_imap_parser *wd_imap_parser_create(const struct wd_imap_parser_limits *limits);
void wd_imap_parser_destroy(struct wd_imap_parser **parser);

/* Change the limits and capabilities (after ENABLE UTF8=ACCEPT, say);
   applies from the next token on. */
void wd_imap_parser_set_limits(struct wd_imap_parser *parser,
			       const struct wd_imap_parser_limits *limits);

/* Feed data[0..len). Returns WD_OK with *ev_r filled, or WD_AGAIN when the
   bytes are used up (or only part of a token is left). *consumed_r bytes
   were used; data[*consumed_r..len) must be presented again. */
int wd_imap_parser_feed(struct wd_imap_parser *parser, const uint8_t *data, size_t len,
			size_t *consumed_r, struct wd_imap_event *ev_r);
/* The same on a buffer, consuming what was used. */
int wd_imap_parser_feed_buffer(struct wd_imap_parser *parser, struct wd_buffer *buf,
			       struct wd_imap_event *ev_r);

/* Right after WD_IMAP_EVENT_LITERAL: deliver this literal as LITERAL_DATA
   events (at least one, the last with `last` set) instead of into the tree.
   WD_ERROR when called at another time. */
int wd_imap_parser_literal_stream(struct wd_imap_parser *parser);

/* Right after WD_IMAP_EVENT_LITERAL: refuse this literal because of the
   command's own state (APPEND to a missing mailbox, over quota); the caller
   answers the tag itself (NO [TRYCREATE], NO [OVERQUOTA]...). A
   synchronising literal was not sent, so the parser waits for the next
   command (*recovery_r = NEXT); a non-synchronising one is read and
   dropped with the rest of its line (SKIP), or, past max_discard, the
   connection must close (CLOSE). WD_ERROR when called at another time. */
int wd_imap_parser_literal_refuse(struct wd_imap_parser *parser,
				  enum wd_imap_recovery *recovery_r);

/* Between commands: read the next line raw (AUTHENTICATE responses, IDLE's
   DONE) and return it as WD_IMAP_EVENT_LINE. */
int wd_imap_parser_read_line(struct wd_imap_parser *parser);

/* Whether the parser is between commands (nothing half-read). */
bool wd_imap_parser_is_idle(const struct wd_imap_parser *parser);

/* ---- Argument helpers ---- */

/* An atom equal to `word` (ASCII, any case). */
bool wd_imap_arg_atom_equals(const struct wd_imap_arg *arg, const char *word);
/* atom: only ATOM. */
bool wd_imap_arg_get_atom(const struct wd_imap_arg *arg, const char **str_r);
/* astring: ATOM, NIL (as the text "NIL"), STRING or a literal held in the
   tree; a literal8 or one with a NUL byte is not a string. */
bool wd_imap_arg_get_astring(const struct wd_imap_arg *arg, const char **str_r, size_t *len_r);
/* string: STRING or a literal held in the tree. */
bool wd_imap_arg_get_string(const struct wd_imap_arg *arg, const char **str_r, size_t *len_r);
/* nstring: as string, or NIL (then *str_r = NULL). */
bool wd_imap_arg_get_nstring(const struct wd_imap_arg *arg, const char **str_r, size_t *len_r);
bool wd_imap_arg_get_list(const struct wd_imap_arg *arg, const struct wd_imap_arg **list_r,
			  size_t *count_r);

#endif
