#ifndef WD_IMAP_COMMANDS_H
#define WD_IMAP_COMMANDS_H

/* The IMAP command table and the command object (STYLE.md "A clean design
 * for a protocol engine", points 5-7).
 *
 * The table is data: one row per command name with its handler, the session
 * states it is allowed in and its flags. The session looks a parsed command
 * up here, checks the state and runs the handler.
 *
 * A running command is a small state machine. Its handler (and every later
 * step) returns what the command waits for:
 *   DONE          the tagged response is written; the command is over;
 *   WAIT_OUTPUT   output is above the high watermark; the same step runs
 *                 again once it drained (cmd->step may be changed first);
 *   WAIT_STORAGE  a worker-pool job was submitted (wd_imap_cmd_job); the
 *                 step named there runs on the loop thread when it is done;
 *   WAIT_INPUT    the command reads raw lines (AUTHENTICATE, IDLE): the
 *                 session hands each line to cmd->on_line.
 *
 * Ownership: the session owns the command; a pending job holds a reference,
 * so the command (and through it the session) lives until the job's
 * completion ran, even when the connection closed meanwhile. Job work
 * functions run on worker threads and may touch only the context they were
 * given (never the session, the connection or the command). */

#include "imap-parser.h"
#include "imap-seqset.h"
#include "wd-buffer.h"
#include "wd-worker-pool.h"

#include <bson/bson.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_imap_session;
struct wd_imap_cmd;
struct wd_spool;

enum wd_imap_state {
	WD_IMAP_STATE_NOT_AUTH = 1 << 0,
	WD_IMAP_STATE_AUTH = 1 << 1,
	WD_IMAP_STATE_SELECTED = 1 << 2,
	WD_IMAP_STATE_LOGOUT = 1 << 3,
};
#define WD_IMAP_STATES_ANY (WD_IMAP_STATE_NOT_AUTH | WD_IMAP_STATE_AUTH | WD_IMAP_STATE_SELECTED)
#define WD_IMAP_STATES_AUTHED (WD_IMAP_STATE_AUTH | WD_IMAP_STATE_SELECTED)

enum wd_imap_cmd_flags {
	/* Uses sequence numbers: no untagged EXPUNGE may be sent while it runs
	   (RFC 3501 §7.4.1, RFC 2180 §4.3). */
	WD_IMAP_CMD_USES_SEQS = 1 << 0,
	/* Changes sequence numbers (EXPUNGE, MOVE, CLOSE). */
	WD_IMAP_CMD_BREAKS_SEQS = 1 << 1,
	/* Allowed with the UID prefix. */
	WD_IMAP_CMD_UID = 1 << 2,
	/* Input after it must not be parsed before it ran: it changes how the
	   stream is read (STARTTLS, COMPRESS, AUTHENTICATE, IDLE) or the
	   parser's limits (ENABLE UTF8=ACCEPT), or ends the session (LOGOUT). */
	WD_IMAP_CMD_BARRIER = 1 << 3,
	/* Only without the UID prefix (an error otherwise). */
	WD_IMAP_CMD_NO_UID = 1 << 4,
};

enum wd_imap_cmd_result {
	WD_IMAP_CMD_DONE,
	WD_IMAP_CMD_WAIT_OUTPUT,
	WD_IMAP_CMD_WAIT_STORAGE,
	WD_IMAP_CMD_WAIT_INPUT,
};

typedef enum wd_imap_cmd_result wd_imap_cmd_fn(struct wd_imap_cmd *cmd);
/* A raw line for a command in WAIT_INPUT (without CRLF). */
typedef enum wd_imap_cmd_result wd_imap_cmd_line_fn(struct wd_imap_cmd *cmd,
						    const uint8_t *line, size_t len);
/* Blocking work on a worker thread; `context` is what wd_imap_cmd_job got. */
typedef void wd_imap_job_fn(void *context);

struct wd_imap_command_def {
	const char *name;    /* upper case */
	wd_imap_cmd_fn *handler;
	unsigned states;     /* enum wd_imap_state bits */
	unsigned flags;      /* enum wd_imap_cmd_flags */
};

/* The row for `name` (upper case), NULL when unknown. */
const struct wd_imap_command_def *wd_imap_command_find(const char *name);
/* The whole table, sorted by name. */
const struct wd_imap_command_def *wd_imap_command_table(size_t *count_r);

struct wd_imap_cmd {
	struct wd_imap_session *session;
	struct wd_imap_cmd *next;       /* queue of the session */
	const struct wd_imap_command_def *def;
	struct wd_imap_command *parsed; /* tag, name, args, arena */
	struct wd_arena *arena;         /* parsed->arena */
	const char *tag;
	const char *name;
	bool uid;

	wd_imap_cmd_fn *step;           /* what runs next */
	wd_imap_cmd_line_fn *on_line;   /* WAIT_INPUT */
	void *context;                  /* the handler's own state (in arena) */
	int refcount;
	bool job_pending;
	/* the session closed while the job waited: a worker skips it
	   (written on the loop thread, read on a worker) */
	atomic_bool abandoned;

	/* a job */
	struct wd_work work;
	wd_imap_job_fn *job_fn;
	void *job_context;
	wd_imap_cmd_fn *job_next;

	/* pseudo command for a parse error: answered in queue order */
	const char *error_status;       /* "BAD" or "NO" */
	const char *error_code;         /* "TOOBIG" or NULL */
	const char *error_text;
	bool error_close;               /* close after answering */

	/* APPEND: its message literals, in order (wd-spool.h) */
	struct wd_spool **spools;
	size_t spool_count;
	bool spool_failed;
};

/* Run `fn(context)` on a worker thread, then `next` on the loop thread.
   Returns WAIT_STORAGE, or DONE after answering "NO [UNAVAILABLE]" when the
   pool refused the job (queue full, shutting down). */
enum wd_imap_cmd_result wd_imap_cmd_job(struct wd_imap_cmd *cmd, wd_imap_job_fn *fn,
					void *context, wd_imap_cmd_fn *next);

/* ---- helpers shared by handlers (imap-cmd-util.c) ---- */

struct wd_store;

/* What a storage job of a mailbox command carries across the thread hop:
   the store and user (copied from the session before the job starts), and
   the outcome. `error` is freed with the command's arena. */
struct wd_imap_store_job {
	struct wd_store *store;
	bson_oid_t user;
	int ret;
	char *error;
};
void wd_imap_store_job_init(struct wd_imap_cmd *cmd, struct wd_imap_store_job *job);
/* wd_imap_store_job_init(), then wd_imap_cmd_job(cmd, fn, job, next). */
enum wd_imap_cmd_result wd_imap_cmd_store_job(struct wd_imap_cmd *cmd,
					      struct wd_imap_store_job *job, wd_imap_job_fn *fn,
					      wd_imap_cmd_fn *next);
/* The command's context: `size` zeroed bytes in its arena, also set as
   cmd->context. NULL after answering NO [SERVERBUG]. */
void *wd_imap_cmd_context_new(struct wd_imap_cmd *cmd, size_t size);
/* Answer NO with the response code that fits a libwdstore error kind
   (ALREADYEXISTS, NONEXISTENT, LIMIT, CANNOT, SERVERBUG...). */
enum wd_imap_cmd_result wd_imap_cmd_store_error(struct wd_imap_cmd *cmd, int ret,
						const char *error);
/* A mailbox name argument as storage keeps it (UTF-8, normalised the way
   imap-core does). NULL after answering BAD. */
const char *wd_imap_cmd_mailbox_arg(struct wd_imap_cmd *cmd, const struct wd_imap_arg *arg);
/* The command has exactly `count` arguments; else answers BAD (false). */
bool wd_imap_cmd_want_args(struct wd_imap_cmd *cmd, size_t count);

/* STATUS values of one mailbox (cmd-status.c), shared with LIST-STATUS. */
struct wd_mailbox;
struct wd_buffer;
struct wd_imap_status_values {
	uint32_t messages, recent, unseen, deleted, uid_next, uid_validity;
	uint64_t highest_modseq, size;
	bson_oid_t id;
};
/* Blocking (worker thread): counts only what `items` asks for. */
int wd_imap_status_compute(struct wd_store *store, const struct wd_mailbox *mailbox,
			   unsigned items, struct wd_imap_status_values *values_r, char **error_r);
/* "* STATUS name (ITEM n ...)\r\n" */
int wd_imap_status_write(struct wd_buffer *out, const char *path, unsigned items,
			 const struct wd_imap_status_values *values, bool utf8,
			 uint64_t append_limit);

/* ---- message commands (imap-cmd-msg.c) ---- */

struct wd_imap_fetch_span;
struct wd_imap_fetch_request;
struct wd_imap_fetch_args;
struct wd_imap_fetch_run;

/* A message set argument: sequence numbers, or UIDs (UID command, or "$"
   which is the saved result as UIDs). */
struct wd_imap_msgset {
	struct wd_imap_seqset set;
	bool uid;
};
/* Parse the set argument; false after answering BAD. */
bool wd_imap_cmd_msgset(struct wd_imap_cmd *cmd, const struct wd_imap_arg *arg,
			struct wd_imap_msgset *set_r);
/* The set as UIDs, normalised ("*" resolved against the view; a UID set
   keeps UIDs the view does not hold). */
int wd_imap_cmd_msgset_uidset(struct wd_imap_cmd *cmd, const struct wd_imap_msgset *set,
			      struct wd_imap_seqset *uids_r);
/* The messages of the set the view holds: spans (runs of consecutive UIDs
   and sequence numbers) and, when uids_r is not NULL, the UIDs. Both freed
   with the command. */
int wd_imap_cmd_msgset_spans(struct wd_imap_cmd *cmd, const struct wd_imap_msgset *set,
			     struct wd_imap_fetch_span **spans_r, size_t *count_r,
			     uint32_t **uids_r, size_t *uid_count_r);
/* Queue `changes` (taken over; NULL: none) on the selected mailbox's sync
   and send the untagged updates it holds (expunges only if expunge_ok). */
struct wd_imap_changes;
void wd_imap_session_sync(struct wd_imap_session *session, struct wd_imap_changes *changes,
			  bool expunge_ok);
/* The same without new changes, at a command's safe point. */
void wd_imap_cmd_sync_emit(struct wd_imap_cmd *cmd, bool expunge_ok);
/* A read of the selected mailbox's changes: prepared on the loop thread,
   run in a job, finished on the loop thread. NOOP and IDLE read this way,
   and a command that adds messages to a mailbox (APPEND, COPY) reads in the
   same job when the selected mailbox is the target, so EXISTS goes out with
   its tagged OK (RFC 3501 §6.3.11). Prepare picks the kind by the sync
   policy (imap-sync.h): the journal, or the whole mailbox after a gap the
   journal may not cover, when Redis came back after being down, or hourly;
   finish records it, so a session never misses changes for long whether
   Redis is up or not. */
enum wd_imap_sync_due;
struct wd_imap_selected_read {
	bool active;
	bool claim_recent;
	bson_oid_t mailbox;
	uint64_t modseq;
	int kind;               /* enum wd_imap_sync_due */
	int64_t started_ms;
	char session_id[32];
	int ret;
	char *error;
	struct wd_imap_changes *changes;
};
/* Inactive when nothing is selected. Release with _clear (done by _init's
   arena cleanup for a command's read). */
void wd_imap_selected_read_prepare(struct wd_imap_session *session,
				   struct wd_imap_selected_read *read);
void wd_imap_selected_read_clear(struct wd_imap_selected_read *read);
void wd_imap_selected_read_init(struct wd_imap_cmd *cmd, struct wd_imap_selected_read *read);
/* Worker thread. With a target, reads only when it is the mailbox read. */
void wd_imap_selected_read_run(struct wd_store *store, struct wd_imap_selected_read *read,
			       const bson_oid_t *target);
/* Loop thread: queue and send what was read when that mailbox is still
   selected (a failed read is logged; the next one brings the changes). */
void wd_imap_selected_read_finish(struct wd_imap_session *session,
				  struct wd_imap_selected_read *read, bool expunge_ok);
void wd_imap_selected_read_apply(struct wd_imap_cmd *cmd, struct wd_imap_selected_read *read,
				 bool expunge_ok);
/* Remove this session's own expunged UIDs (ascending) from the view and send
   EXPUNGE, or VANISHED with QRESYNC. */
void wd_imap_cmd_announce_expunged(struct wd_imap_cmd *cmd, const uint32_t *uids, size_t count);
/* A flag a client may set: a system flag other than \\Recent, or a keyword atom. */
bool wd_imap_flag_valid(const char *flag);
/* qsort() comparison of uint32_t. */
int wd_imap_u32_compare(const void *a, const void *b);
/* "1:3,5" of ascending numbers. */
int wd_imap_write_number_set(struct wd_buffer *out, const uint32_t *numbers, size_t count);

/* FETCH responses streamed from worker-pool steps within the output
   watermarks; the command's context must start with this struct. `done`
   runs on the loop thread when every response was sent. */
struct wd_imap_fetch_stream {
	struct wd_imap_fetch_run *run;
	struct wd_buffer buf;
	int ret;
	bool broken;
	char *error;
	wd_imap_cmd_fn *done;
};
void wd_imap_cmd_fetch_request_init(struct wd_imap_cmd *cmd, struct wd_imap_fetch_request *req,
				    const struct wd_imap_fetch_args *args);
enum wd_imap_cmd_result wd_imap_cmd_fetch_stream(struct wd_imap_cmd *cmd,
						 const struct wd_imap_fetch_request *request,
						 wd_imap_cmd_fn *done);

/* Handlers (cmd-*.c). */
wd_imap_cmd_fn wd_imap_cmd_capability;
wd_imap_cmd_fn wd_imap_cmd_noop;
wd_imap_cmd_fn wd_imap_cmd_check;
wd_imap_cmd_fn wd_imap_cmd_logout;
wd_imap_cmd_fn wd_imap_cmd_starttls;
wd_imap_cmd_fn wd_imap_cmd_login;
wd_imap_cmd_fn wd_imap_cmd_authenticate;
wd_imap_cmd_fn wd_imap_cmd_id;
wd_imap_cmd_fn wd_imap_cmd_enable;
wd_imap_cmd_fn wd_imap_cmd_namespace;
wd_imap_cmd_fn wd_imap_cmd_compress;
wd_imap_cmd_fn wd_imap_cmd_list;
wd_imap_cmd_fn wd_imap_cmd_lsub;
wd_imap_cmd_fn wd_imap_cmd_create;
wd_imap_cmd_fn wd_imap_cmd_delete;
wd_imap_cmd_fn wd_imap_cmd_rename;
wd_imap_cmd_fn wd_imap_cmd_subscribe;
wd_imap_cmd_fn wd_imap_cmd_unsubscribe;
wd_imap_cmd_fn wd_imap_cmd_status;
wd_imap_cmd_fn wd_imap_cmd_getquota;
wd_imap_cmd_fn wd_imap_cmd_getquotaroot;
wd_imap_cmd_fn wd_imap_cmd_select;
wd_imap_cmd_fn wd_imap_cmd_examine;
wd_imap_cmd_fn wd_imap_cmd_close;
wd_imap_cmd_fn wd_imap_cmd_unselect;
wd_imap_cmd_fn wd_imap_cmd_append;
wd_imap_cmd_fn wd_imap_cmd_fetch;
wd_imap_cmd_fn wd_imap_cmd_idle;
wd_imap_cmd_fn wd_imap_cmd_store;
wd_imap_cmd_fn wd_imap_cmd_search;
wd_imap_cmd_fn wd_imap_cmd_expunge;
wd_imap_cmd_fn wd_imap_cmd_copy;
wd_imap_cmd_fn wd_imap_cmd_move;

#endif
