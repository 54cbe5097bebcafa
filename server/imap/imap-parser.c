/* Resumable IMAP command parser; see imap-parser.h for the contract.
 *
 * State lives in the parser object, not on the stack: `state` says which
 * part of a command comes next, `expect` what may follow inside the
 * argument list, and `scan` how many bytes of the pending (unconsumed)
 * token were already checked, with `bracket` the only extra scanner state
 * (inside BODY[...] and inside a quoted string there). The scanners only
 * advance `scan` over whole units (a UTF-8 character, a backslash escape),
 * so resuming needs nothing else.
 *
 * Arguments are pushed on a scratch stack (malloc'd, at most max_args
 * entries) with one start index per open list; closing a list copies its
 * entries into an arena array, so the finished tree is plain arrays. A
 * literal in the tree gets its arena block when the caller has decided not
 * to stream it; that block is bounded by max_tree_literals per command.
 *
 * Error recovery is a state too: P_SKIP drops bytes up to the next LF (a
 * line that goes on for more than max_discard + max_line dropped bytes
 * closes) and
 * looks at the tail of the dropped line for a "{n+}" header, whose bytes
 * P_DISCARD then drops as well (so literal data is never read as a
 * command); P_DEAD repeats the "close" error. */
#include "imap-parser.h"

#include "imap-utf7.h"
#include "wd-result.h"
#include "wd-str.h"

#include <stdlib.h>
#include <string.h>

enum parser_state {
	P_TAG,
	P_NAME,
	P_ARGS,
	P_LIT_DECIDE, /* EVENT_LITERAL returned; waiting for the caller's choice */
	P_LIT_DATA,
	P_DISCARD,
	P_SKIP,
	P_LINE,
	P_DEAD,
};

enum expect {
	EXP_TOKEN,          /* after SP: an argument */
	EXP_TOKEN_OR_CLOSE, /* after "(": an argument or ")" */
	EXP_SEP,            /* after an argument: SP, ")" or the line end */
};

/* What a step did: loop on, return WD_AGAIN, or return an event. */
enum step { STEP_CONT, STEP_AGAIN, STEP_EVENT };

#define SKIP_TAIL_MAX 32

/* Arena block of one command (a malloc of 1 KiB with the chunk header). */
#define COMMAND_ARENA_BLOCK (1024 - 32)

struct wd_imap_parser {
	struct wd_imap_parser_limits limits;
	enum parser_state state;
	enum expect expect;
	bool line_requested;

	size_t scan;     /* bytes of the pending token already checked */
	uint8_t bracket; /* 0, 1 inside "[...]", 2 in a quoted string there */
	size_t line_used;

	struct wd_arena *arena;       /* the command being read */
	struct wd_imap_command *cmd;
	struct wd_arena *stale_arena; /* freed on the next feed (ev->tag lives there) */

	struct wd_imap_arg *args; /* scratch stack */
	size_t nargs, args_cap;
	size_t *levels; /* levels[d]: first scratch index of the list at depth d */
	unsigned depth;
	size_t total_args;
	size_t tree_literal_bytes;

	uint64_t lit_size, lit_left;
	bool lit_sync, lit8, lit_stream, lit_nul;
	char *lit_buf;

	uint64_t discard_left;
	uint64_t skipped; /* bytes of the line P_SKIP dropped so far */
	uint8_t tail[SKIP_TAIL_MAX];
	size_t tail_len;
};

void wd_imap_parser_limits_default(struct wd_imap_parser_limits *limits_r)
{
	memset(limits_r, 0, sizeof(*limits_r));
	limits_r->max_line = 64 * 1024;
	limits_r->max_literal = 64 * 1024 * 1024;
	limits_r->max_tree_literals = 1024 * 1024;
	limits_r->max_discard = 1024 * 1024;
	limits_r->max_args = 4096;
	limits_r->max_depth = 16;
	limits_r->literal_minus = true;
	limits_r->binary = true;
}

static void sanitize_limits(struct wd_imap_parser_limits *l)
{
	struct wd_imap_parser_limits def;

	wd_imap_parser_limits_default(&def);
	if (l->max_line == 0)
		l->max_line = def.max_line;
	if (l->max_args == 0)
		l->max_args = def.max_args;
	if (l->max_depth == 0)
		l->max_depth = def.max_depth;
}

struct wd_imap_parser *wd_imap_parser_create(const struct wd_imap_parser_limits *limits)
{
	struct wd_imap_parser *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	if (limits != NULL)
		p->limits = *limits;
	else
		wd_imap_parser_limits_default(&p->limits);
	sanitize_limits(&p->limits);
	p->levels = calloc((size_t)p->limits.max_depth + 1, sizeof(*p->levels));
	if (p->levels == NULL) {
		free(p);
		return NULL;
	}
	p->state = P_TAG;
	return p;
}

void wd_imap_parser_destroy(struct wd_imap_parser **parser)
{
	struct wd_imap_parser *p = *parser;

	if (p == NULL)
		return;
	*parser = NULL;
	wd_arena_destroy(&p->arena);
	wd_arena_destroy(&p->stale_arena);
	free(p->args);
	free(p->levels);
	free(p);
}

void wd_imap_parser_set_limits(struct wd_imap_parser *p, const struct wd_imap_parser_limits *limits)
{
	uint32_t old_depth = p->limits.max_depth;
	struct wd_imap_parser_limits l = *limits;

	sanitize_limits(&l);
	if (l.max_depth > old_depth) {
		size_t *levels = realloc(p->levels, ((size_t)l.max_depth + 1) * sizeof(*levels));
		if (levels == NULL)
			l.max_depth = old_depth; /* keep the old bound rather than fail */
		else
			p->levels = levels;
	}
	p->limits = l;
}

void wd_imap_command_destroy(struct wd_imap_command **cmd)
{
	if (*cmd == NULL)
		return;
	struct wd_arena *arena = (*cmd)->arena;
	*cmd = NULL;
	wd_arena_destroy(&arena);
}

bool wd_imap_parser_is_idle(const struct wd_imap_parser *p)
{
	return p->state == P_TAG && p->cmd == NULL && p->scan == 0;
}

int wd_imap_parser_read_line(struct wd_imap_parser *p)
{
	if (!wd_imap_parser_is_idle(p))
		return WD_ERROR;
	p->state = P_LINE;
	p->scan = 0;
	return WD_OK;
}

int wd_imap_parser_literal_stream(struct wd_imap_parser *p)
{
	if (p->state != P_LIT_DECIDE)
		return WD_ERROR;
	p->lit_stream = true;
	return WD_OK;
}

static enum step refuse_literal(struct wd_imap_parser *p, struct wd_imap_event *ev,
				enum wd_imap_parse_error code, const char *message, bool no);

int wd_imap_parser_literal_refuse(struct wd_imap_parser *p, enum wd_imap_recovery *recovery_r)
{
	struct wd_imap_event ev;

	if (p->state != P_LIT_DECIDE)
		return WD_ERROR;
	refuse_literal(p, &ev, WD_IMAP_PARSE_ERROR_SYNTAX, "Literal refused", false);
	*recovery_r = ev.recovery;
	return WD_OK;
}

/* ---- command state ---- */

static void command_reset(struct wd_imap_parser *p)
{
	if (p->arena != NULL) {
		/* ev->tag may point into it until the next feed */
		wd_arena_destroy(&p->stale_arena);
		p->stale_arena = p->arena;
		p->arena = NULL;
	}
	p->cmd = NULL;
	p->nargs = 0;
	p->depth = 0;
	p->total_args = 0;
	p->tree_literal_bytes = 0;
	p->line_used = 0;
	p->scan = 0;
	p->bracket = 0;
	p->lit_stream = false;
	p->lit_buf = NULL;
	p->state = P_TAG;
}

static void event_command_info(const struct wd_imap_parser *p, struct wd_imap_event *ev)
{
	if (p->cmd != NULL) {
		ev->tag = p->cmd->tag;
		ev->name = p->cmd->name;
		ev->uid = p->cmd->uid;
	}
}

static enum step fail(struct wd_imap_parser *p, struct wd_imap_event *ev,
		      enum wd_imap_parse_error code, enum wd_imap_recovery recovery,
		      const char *message)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = WD_IMAP_EVENT_ERROR;
	event_command_info(p, ev);
	ev->error = code;
	ev->recovery = recovery;
	ev->message = message;
	if (code == WD_IMAP_PARSE_ERROR_TOOBIG)
		ev->resp_code = "TOOBIG";
	command_reset(p);
	switch (recovery) {
	case WD_IMAP_RECOVER_NEXT:
		break;
	case WD_IMAP_RECOVER_SKIP:
		p->state = P_SKIP;
		p->tail_len = 0;
		p->skipped = 0;
		break;
	case WD_IMAP_RECOVER_CLOSE:
		p->state = P_DEAD;
		break;
	}
	return STEP_EVENT;
}

/* A refused literal whose header was consumed: a synchronising one was not
   sent (the line is over); a non-synchronising one is on its way. */
static enum step refuse_literal(struct wd_imap_parser *p, struct wd_imap_event *ev,
				enum wd_imap_parse_error code, const char *message, bool no)
{
	uint64_t size = p->lit_size;

	if (p->lit_sync) {
		fail(p, ev, code, WD_IMAP_RECOVER_NEXT, message);
	} else if (size <= p->limits.max_discard) {
		fail(p, ev, code, WD_IMAP_RECOVER_SKIP, message);
		p->state = P_DISCARD;
		p->discard_left = size;
	} else {
		fail(p, ev, code, WD_IMAP_RECOVER_CLOSE, message);
	}
	ev->respond_no = no && p->state != P_DEAD;
	return STEP_EVENT;
}

static bool push_arg(struct wd_imap_parser *p, const struct wd_imap_arg *arg)
{
	if (p->nargs == p->args_cap) {
		size_t cap = p->args_cap == 0 ? 16 : p->args_cap * 2;
		if (cap > (size_t)p->limits.max_args + 1)
			cap = (size_t)p->limits.max_args + 1;
		if (cap <= p->nargs)
			return false;
		struct wd_imap_arg *args = realloc(p->args, cap * sizeof(*args));
		if (args == NULL)
			return false;
		p->args = args;
		p->args_cap = cap;
	}
	p->args[p->nargs++] = *arg;
	return true;
}

/* Copy scratch entries [start, nargs) into the arena. */
static const struct wd_imap_arg *take_args(struct wd_imap_parser *p, size_t start, size_t *count_r)
{
	size_t count = p->nargs - start;
	struct wd_imap_arg *arr;

	*count_r = count;
	arr = wd_arena_alloc(p->arena, (count == 0 ? 1 : count) * sizeof(*arr));
	if (arr != NULL && count > 0)
		memcpy(arr, p->args + start, count * sizeof(*arr));
	p->nargs = start;
	return arr;
}

/* ---- scanners ---- */

static bool is_eol_byte(uint8_t c)
{
	return c == '\r' || c == '\n';
}

/* 1 or 2 for a line end at d, 0 when more bytes are needed, -1 for a CR
   that is not followed by LF. */
static int scan_eol(const uint8_t *d, size_t avail)
{
	if (d[0] == '\n')
		return 1;
	if (avail < 2)
		return 0;
	return d[1] == '\n' ? 2 : -1;
}

enum word_kind { WORD_TAG, WORD_NAME, WORD_ATOM };

static bool atom_char(uint8_t c, enum word_kind kind)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	switch (c) {
	case '(': case ')': case '{': case '"':
		return false;
	case '+': case '*': case '%': case '\\':
		return kind == WORD_ATOM;
	default:
		return true;
	}
}

/* Step *i over one UTF-8 character: 1, or 0 when it is cut off by the end
   of the input (scan resumes at its first byte), or -1 when invalid. */
static int utf8_skip(const uint8_t *d, size_t avail, size_t *i)
{
	uint32_t cp;
	int n = wd_imap_utf8_decode(d + *i, avail - *i, &cp);

	if (n > 0)
		*i += (size_t)n;
	return n > 0 ? 1 : n;
}

/* FETCH items whose "[...]" may hold spaces and parentheses. */
static bool bracket_prefix(const uint8_t *d, size_t len)
{
	static const char *const names[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};
	for (size_t i = 0; i < WD_N_ELEMENTS(names); i++) {
		if (strlen(names[i]) == len && wd_mem_eq_nocase(d, names[i], len))
			return true;
	}
	return false;
}

/* Returns the word's length once a delimiter (SP, parenthesis, CR, LF)
   follows it, 0 when more bytes are needed, -1 on an invalid byte. */
static long scan_word(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
		      enum word_kind kind, const char **error_r)
{
	size_t i = p->scan;

	while (i < avail) {
		uint8_t c = d[i];
		if (p->bracket == 1) {
			if (c == ']')
				p->bracket = 0;
			else if (c == '"')
				p->bracket = 2;
			else if (c < 0x20 || c >= 0x7f)
				goto bad_section;
			i++;
			continue;
		}
		if (p->bracket == 2) {
			if (c == '\\') {
				if (i + 1 >= avail)
					break;
				i += 2;
				continue;
			}
			if (c == '"')
				p->bracket = 1;
			else if (c < 0x20 || c >= 0x7f)
				goto bad_section;
			i++;
			continue;
		}
		if (c == ' ' || c == '(' || c == ')' || is_eol_byte(c)) {
			p->scan = 0;
			if (i == 0) {
				*error_r = "Missing argument";
				return -1;
			}
			return (long)i;
		}
		if (c == '[' && kind == WORD_ATOM && bracket_prefix(d, i)) {
			p->bracket = 1;
			i++;
			continue;
		}
		if (c >= 0x80 && kind == WORD_ATOM && p->limits.utf8_accept) {
			int r = utf8_skip(d, avail, &i);
			if (r == 0)
				break;
			if (r < 0) {
				*error_r = "Invalid UTF-8 in atom";
				goto fail;
			}
			continue;
		}
		if (!atom_char(c, kind)) {
			*error_r = kind == WORD_TAG ? "Invalid tag" :
				   kind == WORD_NAME ? "Invalid command name" :
				   "Invalid character in atom";
			goto fail;
		}
		i++;
	}
	p->scan = i;
	return 0;
bad_section:
	*error_r = "Invalid character in section";
fail:
	p->scan = 0;
	p->bracket = 0;
	return -1;
}

/* d[0] is '"'. Returns the length with both quotes, 0 or -1 as above. */
static long scan_quoted(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
			const char **error_r)
{
	size_t i = p->scan > 0 ? p->scan : 1;

	while (i < avail) {
		uint8_t c = d[i];
		if (c == '"') {
			p->scan = 0;
			return (long)(i + 1);
		}
		if (c == '\\') {
			if (i + 1 >= avail)
				break;
			if (d[i + 1] != '"' && d[i + 1] != '\\') {
				*error_r = "Invalid escape in quoted string";
				goto fail;
			}
			i += 2;
			continue;
		}
		if (c == 0 || is_eol_byte(c)) {
			*error_r = c == 0 ? "NUL in quoted string" : "Unterminated quoted string";
			goto fail;
		}
		if (c >= 0x80) {
			int r = utf8_skip(d, avail, &i);
			if (r == 0)
				break;
			if (r < 0) {
				*error_r = "Invalid UTF-8 in quoted string";
				goto fail;
			}
			continue;
		}
		i++;
	}
	p->scan = i;
	return 0;
fail:
	p->scan = 0;
	return -1;
}

/* d[0] is '{' (or "~{" when lit8). Reads "{n}" or "{n+}" and the line end.
   Returns the header length, 0 when incomplete, -1 when invalid. */
static long scan_literal_header(const uint8_t *d, size_t avail, bool lit8, uint64_t *size_r,
				bool *nonsync_r, const char **error_r)
{
	size_t i = lit8 ? 2 : 1, digits = 0;
	uint64_t n = 0;

	for (; i < avail && d[i] >= '0' && d[i] <= '9'; i++) {
		if (++digits > 19) {
			*error_r = "Literal size too large";
			return -1;
		}
		n = n * 10 + (uint64_t)(d[i] - '0');
	}
	if (i == avail)
		return 0;
	if (digits == 0) {
		*error_r = "Invalid literal size";
		return -1;
	}
	*nonsync_r = false;
	if (d[i] == '+') {
		*nonsync_r = true;
		if (++i == avail)
			return 0;
	}
	if (d[i] != '}') {
		*error_r = "Invalid literal header";
		return -1;
	}
	if (++i == avail)
		return 0;
	int eol = is_eol_byte(d[i]) ? scan_eol(d + i, avail - i) : -1;
	if (eol == 0)
		return 0;
	if (eol < 0) {
		*error_r = "Literal header must end the line";
		return -1;
	}
	*size_r = n;
	return (long)(i + (size_t)eol);
}

/* ---- steps ---- */

static enum step line_consume(struct wd_imap_parser *p, struct wd_imap_event *ev, size_t n,
			      size_t *used_r)
{
	*used_r += n;
	p->line_used += n;
	if (p->line_used > p->limits.max_line)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, WD_IMAP_RECOVER_SKIP,
			    "Command line too long");
	return STEP_CONT;
}

static char *arena_upper(struct wd_arena *arena, const uint8_t *s, size_t len)
{
	char *r = wd_arena_strndup(arena, (const char *)s, len);
	if (r != NULL) {
		for (size_t i = 0; i < len; i++)
			if (r[i] >= 'a' && r[i] <= 'z')
				r[i] = (char)(r[i] - 'a' + 'A');
	}
	return r;
}

static enum step oom(struct wd_imap_parser *p, struct wd_imap_event *ev)
{
	return fail(p, ev, WD_IMAP_PARSE_ERROR_LIMIT, WD_IMAP_RECOVER_CLOSE, "Out of memory");
}

static enum step step_tag(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
			  size_t *used_r, struct wd_imap_event *ev)
{
	const char *error = "Syntax error";

	if (p->scan == 0 && is_eol_byte(d[0])) {
		int eol = scan_eol(d, avail);
		if (eol == 0)
			return STEP_AGAIN;
		if (eol < 0)
			return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
				    "CR without LF");
		*used_r = (size_t)eol; /* empty line: ignored */
		return STEP_CONT;
	}
	long n = scan_word(p, d, avail, WORD_TAG, &error);
	if (n == 0)
		return STEP_AGAIN;
	if (n < 0)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP, error);
	/* small blocks: a command's arena lives as long as the command, an
	   IDLE for hours; larger commands take more blocks */
	p->arena = wd_arena_create(COMMAND_ARENA_BLOCK);
	p->cmd = p->arena == NULL ? NULL : wd_arena_zalloc(p->arena, sizeof(*p->cmd));
	if (p->cmd == NULL)
		return oom(p, ev);
	p->cmd->arena = p->arena;
	p->cmd->tag = wd_arena_strndup(p->arena, (const char *)d, (size_t)n);
	if (p->cmd->tag == NULL)
		return oom(p, ev);
	if (d[n] != ' ')
		return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
			    is_eol_byte(d[n]) ? "Missing command" : "Invalid tag");
	p->state = P_NAME;
	return line_consume(p, ev, (size_t)n + 1, used_r);
}

static enum step step_name(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
			   size_t *used_r, struct wd_imap_event *ev)
{
	const char *error = "Syntax error";
	long n = scan_word(p, d, avail, WORD_NAME, &error);

	if (n == 0)
		return STEP_AGAIN;
	if (n < 0)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP, error);
	const char *name = arena_upper(p->arena, d, (size_t)n);
	if (name == NULL)
		return oom(p, ev);
	bool uid_prefix = !p->cmd->uid && strcmp(name, "UID") == 0;
	if (uid_prefix)
		p->cmd->uid = true;
	else
		p->cmd->name = name;
	if (d[n] == ' ') {
		if (!uid_prefix)
			p->state = P_ARGS;
		p->expect = EXP_TOKEN;
		return line_consume(p, ev, (size_t)n + 1, used_r);
	}
	if (!is_eol_byte(d[n]) || uid_prefix)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
			    uid_prefix ? "Missing command after UID" : "Invalid command name");
	p->state = P_ARGS;
	p->expect = EXP_SEP;
	return line_consume(p, ev, (size_t)n, used_r);
}

static bool count_arg(struct wd_imap_parser *p)
{
	return ++p->total_args <= p->limits.max_args;
}

static enum step too_many_args(struct wd_imap_parser *p, struct wd_imap_event *ev)
{
	return fail(p, ev, WD_IMAP_PARSE_ERROR_LIMIT, WD_IMAP_RECOVER_SKIP, "Too many arguments");
}

static enum step finish_command(struct wd_imap_parser *p, struct wd_imap_event *ev)
{
	struct wd_imap_command *cmd = p->cmd;

	cmd->args = take_args(p, 0, &cmd->arg_count);
	if (cmd->args == NULL)
		return oom(p, ev);
	memset(ev, 0, sizeof(*ev));
	ev->type = WD_IMAP_EVENT_COMMAND;
	ev->command = cmd;
	event_command_info(p, ev);
	p->arena = NULL; /* the caller owns it now */
	command_reset(p);
	return STEP_EVENT;
}

static enum step step_separator(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
				size_t *used_r, struct wd_imap_event *ev)
{
	uint8_t c = d[0];

	if (c == ' ') {
		p->expect = EXP_TOKEN;
		return line_consume(p, ev, 1, used_r);
	}
	if (c == ')') {
		if (p->depth == 0)
			return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
				    "Unexpected ')'");
		struct wd_imap_arg list = { .type = WD_IMAP_ARG_LIST };
		list.list = take_args(p, p->levels[p->depth], &list.count);
		if (list.list == NULL)
			return oom(p, ev);
		p->depth--;
		if (!push_arg(p, &list))
			return oom(p, ev);
		return line_consume(p, ev, 1, used_r);
	}
	if (is_eol_byte(c)) {
		int eol = scan_eol(d, avail);
		if (eol == 0)
			return STEP_AGAIN;
		if (eol < 0)
			return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
				    "CR without LF");
		if (p->depth > 0)
			return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
				    "Missing ')'");
		*used_r += (size_t)eol;
		return finish_command(p, ev);
	}
	return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
		    "Expected space, ')' or end of line after argument");
}

static enum step push_string(struct wd_imap_parser *p, struct wd_imap_event *ev,
			     enum wd_imap_arg_type type, const uint8_t *s, size_t len)
{
	struct wd_imap_arg arg = { .type = type, .len = len };
	char *str = wd_arena_strndup(p->arena, (const char *)s, len);

	if (str == NULL)
		return oom(p, ev);
	arg.str = str;
	if (type == WD_IMAP_ARG_ATOM && len == 3 && wd_mem_eq_nocase(s, "NIL", 3))
		arg.type = WD_IMAP_ARG_NIL;
	if (!push_arg(p, &arg))
		return oom(p, ev);
	p->expect = EXP_SEP;
	return STEP_CONT;
}

static enum step push_quoted(struct wd_imap_parser *p, struct wd_imap_event *ev,
			     const uint8_t *d, size_t n)
{
	/* d[0..n) is the quoted string with its quotes; drop the escapes */
	char *str = wd_arena_alloc(p->arena, n);
	size_t len = 0;

	if (str == NULL)
		return oom(p, ev);
	for (size_t i = 1; i + 1 < n; i++) {
		if (d[i] == '\\')
			i++;
		str[len++] = (char)d[i];
	}
	str[len] = '\0';
	struct wd_imap_arg arg = { .type = WD_IMAP_ARG_STRING, .str = str, .len = len };
	if (!push_arg(p, &arg))
		return oom(p, ev);
	p->expect = EXP_SEP;
	return STEP_CONT;
}

static enum step literal_header(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
				size_t *used_r, struct wd_imap_event *ev, bool lit8)
{
	const char *error = "Syntax error";
	uint64_t size;
	bool nonsync;
	long n = scan_literal_header(d, avail, lit8, &size, &nonsync, &error);

	if (n == 0)
		return STEP_AGAIN;
	if (n < 0)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP, error);
	/* The header is consumed before any check: a refused non-sync
	   literal's bytes must then be discarded, never read as a command. */
	*used_r += (size_t)n;
	p->line_used += (size_t)n;
	p->lit_size = p->lit_left = size;
	p->lit_sync = !nonsync;
	p->lit8 = lit8;
	p->lit_stream = false;
	p->lit_nul = false;

	if (p->line_used > p->limits.max_line)
		return refuse_literal(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, "Command line too long",
				      false);
	if (lit8 && !p->limits.binary)
		return refuse_literal(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX,
				      "literal8 needs BINARY", false);
	if (nonsync && !p->limits.literal_plus && !p->limits.literal_minus)
		return refuse_literal(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX,
				      "Non-synchronizing literals are not supported", false);
	if (size > p->limits.max_literal)
		return refuse_literal(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, "Literal too large",
				      p->lit_sync);
	if (nonsync && !p->limits.literal_plus && size > WD_IMAP_LITERAL_MINUS_MAX)
		return refuse_literal(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG,
				      "Non-synchronizing literal larger than 4096 bytes", false);
	if (!count_arg(p))
		return refuse_literal(p, ev, WD_IMAP_PARSE_ERROR_LIMIT, "Too many arguments",
				      false);

	memset(ev, 0, sizeof(*ev));
	ev->type = WD_IMAP_EVENT_LITERAL;
	event_command_info(p, ev);
	ev->literal_size = size;
	ev->literal_sync = p->lit_sync;
	ev->literal8 = lit8;
	ev->literal_depth = p->depth;
	ev->literal_index = p->nargs - (p->depth > 0 ? p->levels[p->depth] : 0);
	p->state = P_LIT_DECIDE;
	return STEP_EVENT;
}

static enum step step_token(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
			    size_t *used_r, struct wd_imap_event *ev)
{
	const char *error = "Syntax error";
	uint8_t c = d[0];
	long n;

	if (p->scan == 0) {
		if (c == ')' && p->expect == EXP_TOKEN_OR_CLOSE) {
			p->expect = EXP_SEP;
			return step_separator(p, d, avail, used_r, ev);
		}
		if (c == ' ' || c == ')' || is_eol_byte(c))
			return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
				    c == ' ' ? "Unexpected space" :
				    c == ')' ? "Unexpected ')'" : "Missing argument");
		if (c == '(') {
			if (!count_arg(p))
				return too_many_args(p, ev);
			if (p->depth >= p->limits.max_depth)
				return fail(p, ev, WD_IMAP_PARSE_ERROR_LIMIT, WD_IMAP_RECOVER_SKIP,
					    "Lists nested too deeply");
			p->levels[++p->depth] = p->nargs;
			p->expect = EXP_TOKEN_OR_CLOSE;
			return line_consume(p, ev, 1, used_r);
		}
		if (c == '{')
			return literal_header(p, d, avail, used_r, ev, false);
		if (c == '~') {
			if (avail < 2)
				return STEP_AGAIN;
			if (d[1] == '{')
				return literal_header(p, d, avail, used_r, ev, true);
		}
	}
	if (c == '"') {
		n = scan_quoted(p, d, avail, &error);
		if (n == 0)
			return STEP_AGAIN;
		if (n < 0)
			return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP, error);
		if (!count_arg(p))
			return too_many_args(p, ev);
		if (line_consume(p, ev, (size_t)n, used_r) == STEP_EVENT)
			return STEP_EVENT;
		return push_quoted(p, ev, d, (size_t)n);
	}
	n = scan_word(p, d, avail, WORD_ATOM, &error);
	if (n == 0)
		return STEP_AGAIN;
	if (n < 0)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP, error);
	if (!count_arg(p))
		return too_many_args(p, ev);
	if (line_consume(p, ev, (size_t)n, used_r) == STEP_EVENT)
		return STEP_EVENT;
	return push_string(p, ev, WD_IMAP_ARG_ATOM, d, (size_t)n);
}

static enum step step_literal_decide(struct wd_imap_parser *p, struct wd_imap_event *ev)
{
	struct wd_imap_arg arg = {
		.type = WD_IMAP_ARG_LITERAL, .literal8 = p->lit8, .streamed = p->lit_stream,
		.len = (size_t)p->lit_size,
	};

	if (!p->lit_stream) {
		if (p->lit_size > p->limits.max_tree_literals - p->tree_literal_bytes)
			return refuse_literal(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG,
					      "Literal too large", p->lit_sync);
		p->lit_buf = wd_arena_alloc(p->arena, (size_t)p->lit_size + 1);
		if (p->lit_buf == NULL)
			return oom(p, ev);
		p->lit_buf[p->lit_size] = '\0';
		p->tree_literal_bytes += (size_t)p->lit_size;
		arg.str = p->lit_buf;
	}
	if (!push_arg(p, &arg))
		return oom(p, ev);
	p->state = P_LIT_DATA;
	if (!p->lit_sync)
		return STEP_CONT;
	memset(ev, 0, sizeof(*ev));
	ev->type = WD_IMAP_EVENT_CONTINUE;
	event_command_info(p, ev);
	ev->literal_size = p->lit_size;
	ev->literal_sync = true;
	ev->literal8 = p->lit8;
	return STEP_EVENT;
}

static enum step step_literal_data(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
				   size_t *used_r, struct wd_imap_event *ev)
{
	size_t n = p->lit_left < avail ? (size_t)p->lit_left : avail;

	if (p->lit_left > 0 && avail == 0)
		return STEP_AGAIN;
	if (!p->lit_stream) {
		size_t off = (size_t)(p->lit_size - p->lit_left);
		memcpy(p->lit_buf + off, d, n);
		if (!p->lit8 && memchr(d, 0, n) != NULL)
			p->lit_nul = true;
	}
	p->lit_left -= n;
	*used_r += n;
	if (p->lit_left == 0) {
		p->state = P_ARGS;
		p->expect = EXP_SEP;
		p->lit_buf = NULL;
	}
	if (p->lit_stream) {
		memset(ev, 0, sizeof(*ev));
		ev->type = WD_IMAP_EVENT_LITERAL_DATA;
		event_command_info(p, ev);
		ev->data = d;
		ev->len = n;
		ev->last = p->lit_left == 0;
		return STEP_EVENT;
	}
	if (p->lit_left == 0 && p->lit_nul)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_SKIP,
			    "NUL in literal (use literal8)");
	return p->lit_left == 0 ? STEP_CONT : STEP_AGAIN;
}

/* The dropped line ended with "{n+}" or "~{n+}" (then its n bytes follow)? */
static bool tail_nonsync_literal(const struct wd_imap_parser *p, uint64_t *size_r)
{
	size_t i = p->tail_len;
	uint64_t n = 0, mul = 1;
	size_t digits = 0;

	if (i > 0 && p->tail[i - 1] == '\n')
		i--;
	if (i > 0 && p->tail[i - 1] == '\r')
		i--;
	if (i < 4 || p->tail[i - 1] != '}' || p->tail[i - 2] != '+')
		return false;
	i -= 2;
	while (i > 0 && p->tail[i - 1] >= '0' && p->tail[i - 1] <= '9' && digits < 19) {
		n += (uint64_t)(p->tail[i - 1] - '0') * mul;
		mul *= 10;
		digits++;
		i--;
	}
	if (digits == 0 || i == 0 || p->tail[i - 1] != '{')
		return false;
	*size_r = n;
	return true;
}

static enum step step_skip(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
			   size_t *used_r, struct wd_imap_event *ev)
{
	const uint8_t *lf = memchr(d, '\n', avail);
	size_t n = lf == NULL ? avail : (size_t)(lf - d) + 1;
	uint64_t size;

	/* keep the last bytes of the line */
	if (n >= SKIP_TAIL_MAX) {
		memcpy(p->tail, d + n - SKIP_TAIL_MAX, SKIP_TAIL_MAX);
		p->tail_len = SKIP_TAIL_MAX;
	} else {
		if (p->tail_len + n > SKIP_TAIL_MAX) {
			size_t drop = p->tail_len + n - SKIP_TAIL_MAX;
			memmove(p->tail, p->tail + drop, p->tail_len - drop);
			p->tail_len -= drop;
		}
		memcpy(p->tail + p->tail_len, d, n);
		p->tail_len += n;
	}
	*used_r += n;
	/* a line without end (an endless stream, a COMPRESS bomb) is not
	   skipped forever. The count starts where the parser stopped, which
	   may leave up to a line's worth of scanned bytes to skip; the bound
	   is checked at the line end too, so the outcome does not depend on
	   how the input was split */
	p->skipped += lf == NULL ? n : n - 1;
	if (p->skipped > p->limits.max_discard + p->limits.max_line + 2)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, WD_IMAP_RECOVER_CLOSE,
			    "Line too long, closing the connection");
	if (lf == NULL)
		return STEP_AGAIN;
	bool literal = tail_nonsync_literal(p, &size);
	p->tail_len = 0;
	if (!literal) {
		command_reset(p);
		return STEP_CONT;
	}
	if (size > p->limits.max_discard)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, WD_IMAP_RECOVER_CLOSE,
			    "Literal too large to skip");
	p->state = P_DISCARD;
	p->discard_left = size;
	return STEP_CONT;
}

static enum step step_discard(struct wd_imap_parser *p, size_t avail, size_t *used_r)
{
	size_t n = p->discard_left < avail ? (size_t)p->discard_left : avail;

	p->discard_left -= n;
	*used_r += n;
	if (p->discard_left > 0)
		return STEP_AGAIN;
	p->state = P_SKIP;
	p->tail_len = 0;
	p->skipped = 0;
	return STEP_CONT;
}

static enum step step_line(struct wd_imap_parser *p, const uint8_t *d, size_t avail,
			   size_t *used_r, struct wd_imap_event *ev)
{
	/* only the first max_line + 2 bytes (a full line and CRLF) decide */
	size_t window = avail < p->limits.max_line + 2 ? avail : p->limits.max_line + 2;
	const uint8_t *lf = memchr(d + p->scan, '\n', window - p->scan);

	if (lf == NULL) {
		p->scan = window;
		if (window == p->limits.max_line + 2) {
			p->scan = 0;
			return fail(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, WD_IMAP_RECOVER_SKIP,
				    "Line too long");
		}
		return STEP_AGAIN;
	}
	size_t len = (size_t)(lf - d);
	*used_r += len + 1;
	if (len > 0 && d[len - 1] == '\r')
		len--;
	memset(ev, 0, sizeof(*ev));
	ev->type = WD_IMAP_EVENT_LINE;
	ev->data = d;
	ev->len = len;
	p->scan = 0;
	p->state = P_TAG;
	if (len > p->limits.max_line)
		return fail(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, WD_IMAP_RECOVER_NEXT,
			    "Line too long");
	return STEP_EVENT;
}

int wd_imap_parser_feed(struct wd_imap_parser *p, const uint8_t *data, size_t len,
			size_t *consumed_r, struct wd_imap_event *ev)
{
	size_t i = 0;

	if (data == NULL)
		data = (const uint8_t *)""; /* len is 0 */
	wd_arena_destroy(&p->stale_arena);
	memset(ev, 0, sizeof(*ev));
	for (;;) {
		const uint8_t *d = data + i;
		size_t avail = len - i, used = 0;
		enum step step;

		if (avail == 0 && p->state != P_LIT_DECIDE && p->state != P_DEAD &&
		    !(p->state == P_LIT_DATA && p->lit_left == 0)) {
			*consumed_r = i;
			return WD_AGAIN;
		}
		/* Tokens are scanned no further than one byte past the line
		   limit, so whether a long line fails as "too long" or on a bad
		   byte does not depend on how the input was chunked. */
		size_t window = avail;
		if (p->state == P_TAG || p->state == P_NAME || p->state == P_ARGS) {
			size_t budget = p->line_used < p->limits.max_line ?
						p->limits.max_line - p->line_used + 1 : 1;
			if (window > budget)
				window = budget;
		}
		switch (p->state) {
		case P_TAG:
			step = step_tag(p, d, window, &used, ev);
			break;
		case P_NAME:
			step = step_name(p, d, window, &used, ev);
			break;
		case P_ARGS:
			if (p->expect == EXP_SEP && p->scan == 0)
				step = step_separator(p, d, window, &used, ev);
			else
				step = step_token(p, d, window, &used, ev);
			break;
		case P_LIT_DECIDE:
			step = step_literal_decide(p, ev);
			break;
		case P_LIT_DATA:
			step = step_literal_data(p, d, avail, &used, ev);
			break;
		case P_DISCARD:
			step = step_discard(p, avail, &used);
			break;
		case P_SKIP:
			step = step_skip(p, d, avail, &used, ev);
			break;
		case P_LINE:
			step = step_line(p, d, avail, &used, ev);
			break;
		case P_DEAD:
		default:
			*consumed_r = i;
			fail(p, ev, WD_IMAP_PARSE_ERROR_SYNTAX, WD_IMAP_RECOVER_CLOSE,
			     "Connection must be closed");
			return WD_OK;
		}
		i += used;
		if (step == STEP_EVENT) {
			*consumed_r = i;
			return WD_OK;
		}
		if (step == STEP_AGAIN) {
			/* a pending token counts against the line limit too */
			if ((p->state == P_TAG || p->state == P_NAME || p->state == P_ARGS) &&
			    p->line_used + (len - i) > p->limits.max_line) {
				fail(p, ev, WD_IMAP_PARSE_ERROR_TOOBIG, WD_IMAP_RECOVER_SKIP,
				     "Command line too long");
				*consumed_r = i;
				return WD_OK;
			}
			*consumed_r = i;
			return WD_AGAIN;
		}
	}
}

int wd_imap_parser_feed_buffer(struct wd_imap_parser *p, struct wd_buffer *buf,
			       struct wd_imap_event *ev_r)
{
	size_t consumed = 0;
	int ret = wd_imap_parser_feed(p, wd_buffer_bytes(buf), buf->len, &consumed, ev_r);

	wd_buffer_consume(buf, consumed);
	return ret;
}
