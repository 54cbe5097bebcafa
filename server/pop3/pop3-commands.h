#ifndef WD_POP3_COMMANDS_H
#define WD_POP3_COMMANDS_H

/* The POP3 command table and the command object (STYLE.md "A clean design
 * for a protocol engine"; the IMAP engine's imap-commands.h is the model).
 *
 * The table is data: one row per keyword with its handler, the states it
 * is allowed in and its flags. A running command is a small state machine
 * whose handler (and every later step) returns what it waits for:
 *   DONE          its response is written; the command is over;
 *   WAIT_OUTPUT   output is above the high watermark: cmd->step runs again
 *                 once it drained (a multi-line response continues there);
 *   WAIT_STORAGE  a worker-pool job was submitted (wd_pop3_cmd_job) or a
 *                 delay started (wd_pop3_cmd_delay): the step named there
 *                 runs on the loop thread when it is over;
 *   WAIT_INPUT    the command reads one raw line (AUTH without an initial
 *                 response): the session hands it to cmd->on_line.
 *
 * Ownership: the session owns the command; a pending job holds a
 * reference, so the command (and the session) lives until the job's
 * completion ran, even when the connection closed meanwhile. Job work
 * functions run on worker threads and touch only the context they were
 * given. */

#include "pop3-parser.h"
#include "wd-worker-pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_pop3_session;
struct wd_pop3_cmd;

enum wd_pop3_state {
	WD_POP3_STATE_AUTHORIZATION = 1 << 0,
	WD_POP3_STATE_TRANSACTION = 1 << 1,
	/* QUIT in TRANSACTION: the changes are being applied */
	WD_POP3_STATE_UPDATE = 1 << 2,
};
#define WD_POP3_STATES_ANY (WD_POP3_STATE_AUTHORIZATION | WD_POP3_STATE_TRANSACTION)

enum wd_pop3_cmd_flags {
	/* Input after it must not be parsed before it ran: it changes how the
	   stream is read (STLS, AUTH) or ends the session (QUIT). */
	WD_POP3_CMD_BARRIER = 1 << 0,
};

enum wd_pop3_cmd_result {
	WD_POP3_CMD_DONE,
	WD_POP3_CMD_WAIT_OUTPUT,
	WD_POP3_CMD_WAIT_STORAGE,
	WD_POP3_CMD_WAIT_INPUT,
};

typedef enum wd_pop3_cmd_result wd_pop3_cmd_fn(struct wd_pop3_cmd *cmd);
/* A raw line for a command in WAIT_INPUT (without its line end). */
typedef enum wd_pop3_cmd_result wd_pop3_cmd_line_fn(struct wd_pop3_cmd *cmd,
						    const uint8_t *line, size_t len);
/* Blocking work on a worker thread; `context` is what wd_pop3_cmd_job got. */
typedef void wd_pop3_job_fn(void *context);

struct wd_pop3_command_def {
	const char *name;    /* upper case */
	wd_pop3_cmd_fn *handler;
	unsigned states;     /* enum wd_pop3_state bits */
	unsigned flags;      /* enum wd_pop3_cmd_flags */
};

/* The row for `name` (upper case), NULL when unknown. */
const struct wd_pop3_command_def *wd_pop3_command_find(const char *name);
/* The whole table, sorted by name. */
const struct wd_pop3_command_def *wd_pop3_command_table(size_t *count_r);

/* Longest argument text kept with a command: PASS with the longest
   password libwdauth takes, and room for AUTH's initial response. */
#define WD_POP3_ARGS_MAX WD_POP3_LINE_MAX

struct wd_pop3_cmd {
	struct wd_pop3_session *session;
	struct wd_pop3_cmd *next;       /* queue of the session */
	const struct wd_pop3_command_def *def;
	const char *name;               /* keyword (in this allocation) */
	char *args;                     /* argument text, NUL-terminated (malloc'd) */
	size_t args_len;

	wd_pop3_cmd_fn *step;           /* what runs next */
	wd_pop3_cmd_line_fn *on_line;   /* WAIT_INPUT */
	void *context;                  /* the handler's own state (malloc'd) */
	void (*context_free)(void *context);
	int refcount;
	bool pending;                   /* a job or a delay is running */
	/* a multi-line response is half sent: a failure can only end the
	   connection, never add an -ERR line inside the response */
	bool in_response;

	/* a job */
	struct wd_work work;
	wd_pop3_job_fn *job_fn;
	void *job_context;
	wd_pop3_cmd_fn *job_next;

	/* pseudo command for a parse error: answered in queue order */
	const char *error_text;
	char name_buf[WD_POP3_KEYWORD_MAX + 1];
};

/* Run `fn(context)` on a worker thread, then `next` on the loop thread.
   Returns WAIT_STORAGE, or DONE after answering "-ERR [SYS/TEMP]" when the
   pool refused the job (queue full, shutting down). */
enum wd_pop3_cmd_result wd_pop3_cmd_job(struct wd_pop3_cmd *cmd, wd_pop3_job_fn *fn,
					void *context, wd_pop3_cmd_fn *next);
/* Run `next` after `ms` milliseconds (the failed-login delay). */
enum wd_pop3_cmd_result wd_pop3_cmd_delay(struct wd_pop3_cmd *cmd, unsigned ms,
					  wd_pop3_cmd_fn *next);
/* The command's context: `size` zeroed bytes, freed with the command by
   `context_free` (may be NULL) and then free(). NULL after answering
   -ERR. */
void *wd_pop3_cmd_context_new(struct wd_pop3_cmd *cmd, size_t size,
			      void (*context_free)(void *context));

/* Answer "+OK text" / "-ERR [code] text" and return DONE. `code` is an RFC
   2449 response code without brackets, or NULL. */
enum wd_pop3_cmd_result wd_pop3_cmd_ok(struct wd_pop3_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
enum wd_pop3_cmd_result wd_pop3_cmd_err(struct wd_pop3_cmd *cmd, const char *code,
					const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The message number argument of LIST, UIDL, RETR, TOP, DELE: a message of
   the maildrop that is not deleted. Returns its index (0-based), or -1
   after answering -ERR. */
long wd_pop3_cmd_message_arg(struct wd_pop3_cmd *cmd, const struct wd_pop3_arg *arg);

/* Handlers (cmd-*.c). */
wd_pop3_cmd_fn wd_pop3_cmd_capa;
wd_pop3_cmd_fn wd_pop3_cmd_user;
wd_pop3_cmd_fn wd_pop3_cmd_pass;
wd_pop3_cmd_fn wd_pop3_cmd_auth;
wd_pop3_cmd_fn wd_pop3_cmd_stls;
wd_pop3_cmd_fn wd_pop3_cmd_quit;
wd_pop3_cmd_fn wd_pop3_cmd_stat;
wd_pop3_cmd_fn wd_pop3_cmd_list;
wd_pop3_cmd_fn wd_pop3_cmd_uidl;
wd_pop3_cmd_fn wd_pop3_cmd_retr;
wd_pop3_cmd_fn wd_pop3_cmd_top;
wd_pop3_cmd_fn wd_pop3_cmd_dele;
wd_pop3_cmd_fn wd_pop3_cmd_rset;
wd_pop3_cmd_fn wd_pop3_cmd_noop;

#endif
