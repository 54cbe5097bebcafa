/* LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE PLAIN / LOGIN (RFC 4616, the
 * LOGIN draft) with SASL-IR (RFC 4959) and "*" to cancel.
 *
 * Both end in one job that runs wd_auth_authenticate() with scope imap on a
 * worker thread, which also claims the session's connection lease
 * (imap-lease.h); the loop thread then applies the result (state, user,
 * per-user connection limit) and answers with the new capability list in
 * the tagged OK. Credentials live in the command's arena and are wiped when
 * it is destroyed. Without TLS (and without imap.insecureAuth) logins are
 * refused with PRIVACYREQUIRED; the capability list said LOGINDISABLED. */
#include "imap-commands.h"
#include "imap-lease.h"
#include "imap-session.h"

#include "wd-arena.h"
#include "wd-auth-login.h"
#include "wd-base64.h"
#include "wd-buffer.h"
#include "wd-conn.h"
#include "wd-log.h"
#include "wd-store-lease.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct login_job {
	struct wd_auth *auth;
	struct wd_store *store;
	unsigned default_limit;        /* imap.maxConnections */
	unsigned limit;                /* the user's, else the default */
	char holder[WD_IMAP_LEASE_HOLDER_MAX];
	enum wd_lease_result lease;
	struct wd_imap_server *server;
	bool lease_taken;              /* handed to the session */
	struct wd_auth_request req;
	struct wd_auth_result result;
	char *username;
	char *password;
	size_t password_len;
	char ip[64];
	char sess[32];
	/* AUTHENTICATE LOGIN: which prompt was answered last */
	int sasl_step;
};

static void wipe_credentials(void *context)
{
	struct login_job *job = context;
	if (job->password != NULL)
		explicit_bzero(job->password, job->password_len);
}

/* A lease the session never took (it ended first, or the login failed
   after the claim) goes back at once instead of running out. */
static void drop_unused_lease(void *context)
{
	struct login_job *job = context;
	if (job->lease == WD_LEASE_GRANTED && !job->lease_taken)
		wd_imap_lease_drop(job->server, &job->result.user, job->holder);
}

static void login_work(void *context)
{
	struct login_job *job = context;
	const struct wd_auth_result *res = &job->result;
	wd_auth_authenticate(job->auth, &job->req, &job->result);
	job->lease = WD_LEASE_UNAVAILABLE;
	if (res->status != WD_AUTH_ACCEPTED || !res->has_user)
		return;
	job->limit = res->imap_max_connections > 0 && res->imap_max_connections < UINT32_MAX ?
			     (unsigned)res->imap_max_connections :
			     job->default_limit;
	if (job->limit > 0)
		job->lease = wd_store_lease_claim(job->store, WD_IMAP_LEASE_KIND, &res->user,
						  job->holder, job->limit, WD_IMAP_LEASE_MS);
}

static enum wd_imap_cmd_result login_done(struct wd_imap_cmd *cmd)
{
	struct login_job *job = cmd->context;
	struct wd_imap_session *session = cmd->session;
	const struct wd_auth_result *res = &job->result;
	wipe_credentials(job);
	switch (res->status) {
	case WD_AUTH_ACCEPTED:
		break;
	case WD_AUTH_RATE_LIMITED:
		return wd_imap_cmd_replyf(cmd, "NO", "LIMIT",
					  "Too many failed logins, try again in %lld seconds",
					  (long long)res->retry_after);
	case WD_AUTH_DISABLED:
	case WD_AUTH_SUSPENDED:
		return wd_imap_cmd_reply(cmd, "NO", "CONTACTADMIN", "Account is not available");
	case WD_AUTH_SCOPE_DISABLED:
		return wd_imap_cmd_reply(cmd, "NO", "AUTHORIZATIONFAILED",
					 "IMAP access is disabled for this account");
	case WD_AUTH_SCOPE_REFUSED:
		return wd_imap_cmd_reply(cmd, "NO", "AUTHENTICATIONFAILED",
					 "Use an application-specific password");
	case WD_AUTH_INTERNAL_ERROR:
		return wd_imap_cmd_reply(cmd, "NO", "UNAVAILABLE",
					 "Authentication is temporarily unavailable");
	default:
		return wd_imap_cmd_reply(cmd, "NO", "AUTHENTICATIONFAILED", "Authentication failed");
	}
	if (!res->has_user)
		return wd_imap_cmd_reply(cmd, "NO", "AUTHENTICATIONFAILED", "Authentication failed");
	job->lease_taken = job->lease == WD_LEASE_GRANTED;
	if (job->lease == WD_LEASE_REFUSED ||
	    wd_imap_session_login(session, &res->user, res->username, job->limit,
				  job->lease == WD_LEASE_GRANTED) < 0) {
		wd_info("imap", "%s: %s refused: more than %u connections", session->id,
			res->username, job->limit);
		return wd_imap_cmd_reply(cmd, "NO", "LIMIT", "Too many simultaneous connections");
	}
	wd_info("imap", "%s: %s logged in from %s", session->id, res->username,
		wd_conn_peer_ip(session->conn));
	struct wd_buffer *out = &session->out;
	wd_buffer_printf(out, "%s OK [CAPABILITY ", cmd->tag);
	wd_imap_session_capabilities(session);
	wd_buffer_append_str(out, "] Logged in\r\n");
	wd_imap_session_send(session);
	return WD_IMAP_CMD_DONE;
}

static struct login_job *login_job_new(struct wd_imap_cmd *cmd)
{
	struct login_job *job = wd_arena_zalloc(cmd->arena, sizeof(*job));
	if (job == NULL)
		return NULL;
	wd_arena_add_cleanup(cmd->arena, wipe_credentials, job);
	wd_arena_add_cleanup(cmd->arena, drop_unused_lease, job);
	job->server = cmd->session->server;
	cmd->context = job;
	return job;
}

static enum wd_imap_cmd_result login_start(struct wd_imap_cmd *cmd, struct login_job *job,
					   const char *user, size_t user_len, const char *pass,
					   size_t pass_len)
{
	struct wd_imap_session *session = cmd->session;
	if (user_len == 0 || user_len > WD_AUTH_MAX_USERNAME || memchr(user, '\0', user_len) ||
	    pass_len > WD_AUTH_MAX_PASSWORD)
		return wd_imap_cmd_reply(cmd, "NO", "AUTHENTICATIONFAILED", "Authentication failed");
	job->username = wd_arena_strndup(cmd->arena, user, user_len);
	job->password = wd_arena_strndup(cmd->arena, pass, pass_len);
	if (job->username == NULL || job->password == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	job->password_len = pass_len;
	job->auth = session->server->deps.auth;
	job->store = session->server->deps.store;
	job->default_limit = session->server->set.max_connections;
	wd_imap_lease_holder(session, job->holder, sizeof(job->holder));
	snprintf(job->ip, sizeof(job->ip), "%s", wd_conn_peer_ip(session->conn));
	snprintf(job->sess, sizeof(job->sess), "%s", session->id);
	job->req.username = job->username;
	job->req.password = job->password;
	job->req.password_len = pass_len;
	job->req.scope = WD_AUTH_SCOPE_IMAP;
	job->req.meta.protocol = "IMAP";
	job->req.meta.ip = job->ip;
	job->req.meta.sess = job->sess;
	/* no lease until login_work claims one (it is skipped when the
	   client is gone first: drop_unused_lease then has nothing to drop) */
	job->lease = WD_LEASE_UNAVAILABLE;
	return wd_imap_cmd_job(cmd, login_work, job, login_done);
}

enum wd_imap_cmd_result wd_imap_cmd_login(struct wd_imap_cmd *cmd)
{
	if (!wd_imap_session_auth_allowed(cmd->session))
		return wd_imap_cmd_reply(cmd, "NO", "PRIVACYREQUIRED",
					 "Plaintext login is disabled, use STARTTLS");
	if (!wd_imap_cmd_want_args(cmd, 2))
		return WD_IMAP_CMD_DONE;
	const char *user, *pass;
	size_t user_len, pass_len;
	if (!wd_imap_arg_get_astring(&cmd->parsed->args[0], &user, &user_len) ||
	    !wd_imap_arg_get_astring(&cmd->parsed->args[1], &pass, &pass_len))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "LOGIN expects a user name and password");
	struct login_job *job = login_job_new(cmd);
	if (job == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	return login_start(cmd, job, user, user_len, pass, pass_len);
}

/* ---- AUTHENTICATE ---- */

enum sasl_mech { SASL_PLAIN, SASL_LOGIN };

/* Decode a client response into the arena (NUL-terminated, length in
   *len_r). "=" is the empty response (SASL-IR). */
static char *sasl_decode(struct wd_imap_cmd *cmd, const uint8_t *data, size_t len, size_t *len_r)
{
	struct wd_buffer buf = WD_BUFFER_INIT;
	buf.limit = WD_AUTH_MAX_PASSWORD * 3;
	char *result = NULL;
	if (len == 1 && data[0] == '=') {
		*len_r = 0;
		return wd_arena_strdup(cmd->arena, "");
	}
	if (len > 0 && wd_base64_decode(data, len, &buf) == 0) {
		*len_r = buf.len;
		result = wd_arena_strndup(cmd->arena, (const char *)wd_buffer_bytes(&buf), buf.len);
	}
	if (buf.data != NULL)
		explicit_bzero(buf.data, buf.cap);
	wd_buffer_release(&buf);
	return result;
}

static enum wd_imap_cmd_result sasl_plain(struct wd_imap_cmd *cmd, const char *msg, size_t len)
{
	/* authzid NUL authcid NUL passwd */
	const char *nul1 = memchr(msg, '\0', len);
	const char *nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg))
					: NULL;
	if (nul2 == NULL)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid SASL PLAIN response");
	const char *authcid = nul1 + 1;
	size_t authcid_len = (size_t)(nul2 - authcid);
	size_t authzid_len = (size_t)(nul1 - msg);
	if (authzid_len > 0 &&
	    (authzid_len != authcid_len || memcmp(msg, authcid, authcid_len) != 0))
		return wd_imap_cmd_reply(cmd, "NO", "AUTHORIZATIONFAILED",
					 "Logging in as another user is not supported");
	return login_start(cmd, cmd->context, authcid, authcid_len, nul2 + 1,
			   len - (size_t)(nul2 + 1 - msg));
}

static enum wd_imap_cmd_result sasl_prompt(struct wd_imap_cmd *cmd, const char *prompt_b64)
{
	struct wd_imap_session *session = cmd->session;
	wd_buffer_printf(&session->out, "+ %s\r\n", prompt_b64);
	wd_imap_session_send(session);
	return WD_IMAP_CMD_WAIT_INPUT;
}

static enum wd_imap_cmd_result sasl_response(struct wd_imap_cmd *cmd, const uint8_t *line,
					     size_t len)
{
	struct login_job *job = cmd->context;
	if (len == 1 && line[0] == '*')
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Authentication cancelled");
	size_t msg_len;
	char *msg = sasl_decode(cmd, line, len, &msg_len);
	if (msg == NULL)
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid base64 in SASL response");
	if (job->sasl_step < 0)
		return sasl_plain(cmd, msg, msg_len);
	if (job->sasl_step == 0) {
		job->username = msg;
		job->sasl_step = 1;
		return sasl_prompt(cmd, "UGFzc3dvcmQ6"); /* "Password:" */
	}
	return login_start(cmd, job, job->username, strlen(job->username), msg, msg_len);
}

enum wd_imap_cmd_result wd_imap_cmd_authenticate(struct wd_imap_cmd *cmd)
{
	size_t count = cmd->parsed->arg_count;
	const char *mech_name;
	if (count < 1 || count > 2 || !wd_imap_arg_get_atom(&cmd->parsed->args[0], &mech_name))
		return wd_imap_cmd_reply(cmd, "BAD", NULL,
					 "AUTHENTICATE expects a mechanism and an optional response");
	enum sasl_mech mech;
	if (strcasecmp(mech_name, "PLAIN") == 0)
		mech = SASL_PLAIN;
	else if (strcasecmp(mech_name, "LOGIN") == 0)
		mech = SASL_LOGIN;
	else
		return wd_imap_cmd_reply(cmd, "NO", "CANNOT", "Unsupported authentication mechanism");
	if (!wd_imap_session_auth_allowed(cmd->session))
		return wd_imap_cmd_reply(cmd, "NO", "PRIVACYREQUIRED",
					 "Plaintext authentication is disabled, use STARTTLS");
	struct login_job *job = login_job_new(cmd);
	if (job == NULL)
		return wd_imap_cmd_reply(cmd, "NO", "SERVERBUG", "Out of memory");
	job->sasl_step = mech == SASL_PLAIN ? -1 : 0;
	cmd->on_line = sasl_response;
	if (count == 2) {
		const char *ir;
		if (!wd_imap_arg_get_atom(&cmd->parsed->args[1], &ir))
			return wd_imap_cmd_reply(cmd, "BAD", NULL, "Invalid initial response");
		return sasl_response(cmd, (const uint8_t *)ir, strlen(ir));
	}
	if (mech == SASL_PLAIN)
		return sasl_prompt(cmd, "");
	return sasl_prompt(cmd, "VXNlcm5hbWU6"); /* "Username:" */
}
