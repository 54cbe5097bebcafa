#ifndef WD_LMTP_COMMANDS_H
#define WD_LMTP_COMMANDS_H

/* The LMTP command table and the command object (STYLE.md "A clean design
 * for a protocol engine", points 5-7, as in server/imap).
 *
 * The table is data: verb, handler, flags. The session splits a line
 * (lmtp-command.h), looks the verb up, checks the flags (LHLO first) and
 * runs the handler. Commands run one at a time, in the order they came:
 * that is what makes pipelined replies come out in order (RFC 2920).
 *
 * A running command is a small state machine; each step returns
 *   DONE          its reply is written;
 *   WAIT_STORAGE  a worker-pool job was submitted (wd_lmtp_cmd_job); the
 *                 step named there runs on the loop thread afterwards;
 *   WAIT_DATA     DATA only: the message follows; the session feeds it to
 *                 cmd->on_data and runs cmd->step after its end.
 *
 * Ownership: the session owns the command; a pending job holds a
 * reference, so the command and its session live until the job's
 * completion ran, even when the connection closed meanwhile. Job functions
 * run on worker threads and touch only the context they were given. */

#include "lmtp-command.h"
#include "lmtp-parser.h"
#include "wd-worker-pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_lmtp_session;
struct wd_lmtp_cmd;

enum wd_lmtp_cmd_flags {
	WD_LMTP_CMD_NEEDS_LHLO = 1 << 0, /* 503 before LHLO */
};

enum wd_lmtp_cmd_result {
	WD_LMTP_CMD_DONE,
	WD_LMTP_CMD_WAIT_STORAGE,
	WD_LMTP_CMD_WAIT_DATA,
};

typedef enum wd_lmtp_cmd_result wd_lmtp_cmd_fn(struct wd_lmtp_cmd *cmd);
/* Message bytes for DATA (unstuffed). */
typedef void wd_lmtp_data_fn(struct wd_lmtp_cmd *cmd, const uint8_t *data, size_t len);
typedef void wd_lmtp_job_fn(void *context);

struct wd_lmtp_command_def {
	const char *verb; /* upper case */
	wd_lmtp_cmd_fn *handler;
	unsigned flags;
};

/* The row for `verb` (upper case), NULL when unknown. */
const struct wd_lmtp_command_def *wd_lmtp_command_find(const char *verb);

struct wd_lmtp_cmd {
	struct wd_lmtp_session *session;
	const struct wd_lmtp_command_def *def;
	char verb[WD_LMTP_VERB_MAX];
	const char *args;            /* after the verb, NUL-terminated (in args_buf) */
	size_t args_len;

	wd_lmtp_cmd_fn *step;        /* what runs next */
	wd_lmtp_data_fn *on_data;    /* WAIT_DATA */
	int refcount;
	bool job_pending;

	/* the handler's own state, freed with the command */
	void *context;
	void (*context_free)(void *context);

	/* a job */
	struct wd_work work;
	wd_lmtp_job_fn *job_fn;
	void *job_context;
	wd_lmtp_cmd_fn *job_next;

	/* DATA: how the message ended (DATA_END) */
	enum wd_lmtp_data_status data_status;
	uint64_t data_size;
	bool data_aborted;

	char args_buf[];
};

/* Run `fn(context)` on a worker thread, then `next` on the loop thread.
   False when the pool refused the job (queue full, shutting down): nothing
   was written, the handler answers 4xx itself. */
bool wd_lmtp_cmd_job(struct wd_lmtp_cmd *cmd, wd_lmtp_job_fn *fn, void *context,
		     wd_lmtp_cmd_fn *next);

/* The handlers (cmd-*.c). */
enum wd_lmtp_cmd_result wd_lmtp_cmd_lhlo(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_helo(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_mail(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_rcpt(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_data(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_rset(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_noop(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_quit(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_vrfy(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_help(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_starttls(struct wd_lmtp_cmd *cmd);
enum wd_lmtp_cmd_result wd_lmtp_cmd_not_implemented(struct wd_lmtp_cmd *cmd);

#endif
