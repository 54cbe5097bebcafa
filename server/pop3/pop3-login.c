/* The login job of PASS and AUTH (pop3-login.h). */
#include "pop3-login.h"
#include "pop3-session.h"

#include "wd-auth-login.h"
#include "wd-conn.h"
#include "wd-log.h"
#include "wd-store-user.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct login_job {
	struct wd_auth *auth;
	struct wd_store *store;
	unsigned max_messages;
	struct wd_auth_request req;
	struct wd_auth_result result;
	char *username;
	char *password;
	size_t password_len;
	char ip[64];
	char sess[32];
	/* the listing, when the login succeeded */
	int list_ret;
	char *list_error;
	struct wd_pop3_maildrop maildrop;
	int64_t max_download;
	int64_t download_limit;
	/* the answer, sent after the failure delay */
	const char *code;
	char text[160];
};

static void login_job_free(void *context)
{
	struct login_job *job = context;
	if (job->password != NULL) {
		explicit_bzero(job->password, job->password_len);
		free(job->password);
	}
	free(job->username);
	free(job->list_error);
	wd_pop3_maildrop_free(&job->maildrop);
}

static void login_work(void *context)
{
	struct login_job *job = context;
	wd_auth_authenticate(job->auth, &job->req, &job->result);
	explicit_bzero(job->password, job->password_len);
	if (job->result.status != WD_AUTH_ACCEPTED || !job->result.has_user)
		return;
	/* users.pop3MaxMessages when set, else pop3.maxMessages */
	int64_t user_max = job->result.pop3_max_messages;
	unsigned max = user_max > 0 ? (user_max > WD_POP3_MAILDROP_MAX ? WD_POP3_MAILDROP_MAX
								      : (unsigned)user_max)
				    : job->max_messages;
	job->list_ret = wd_store_pop3_list(job->store, &job->result.user, max, &job->maildrop,
					   &job->list_error);
	if (job->list_ret == 0)
		job->download_limit = wd_store_pop3_download_limit(job->store, &job->result.user,
								   job->max_download);
}

/* After the delay: the refusal, and the end of the connection after too
   many of them. */
static enum wd_pop3_cmd_result login_refused(struct wd_pop3_cmd *cmd)
{
	struct login_job *job = cmd->context;
	struct wd_pop3_session *session = cmd->session;
	if (session->auth_failures >= WD_POP3_MAX_AUTH_FAILURES) {
		session->close_after = true;
		return wd_pop3_cmd_err(cmd, job->code, "%s; too many failures, closing", job->text);
	}
	return wd_pop3_cmd_err(cmd, job->code, "%s", job->text);
}

static enum wd_pop3_cmd_result refuse(struct wd_pop3_cmd *cmd, const char *code, const char *text)
{
	struct login_job *job = cmd->context;
	struct wd_pop3_session *session = cmd->session;
	session->auth_failures++;
	job->code = code;
	if (text != job->text)
		snprintf(job->text, sizeof(job->text), "%s", text);
	wd_info("pop3", "%s: login as %s from %s refused: %s", session->id,
		job->username != NULL ? job->username : "?", wd_conn_peer_ip(session->conn),
		job->text);
	return wd_pop3_cmd_delay(cmd, session->server->set.auth_delay_ms, login_refused);
}

static enum wd_pop3_cmd_result login_done(struct wd_pop3_cmd *cmd)
{
	struct login_job *job = cmd->context;
	struct wd_pop3_session *session = cmd->session;
	const struct wd_auth_result *res = &job->result;
	switch (res->status) {
	case WD_AUTH_ACCEPTED:
		break;
	case WD_AUTH_RATE_LIMITED:
		snprintf(job->text, sizeof(job->text),
			 "Too many failed logins, try again in %lld seconds",
			 (long long)res->retry_after);
		return refuse(cmd, "AUTH", job->text);
	case WD_AUTH_DISABLED:
	case WD_AUTH_SUSPENDED:
		return refuse(cmd, "SYS/PERM", "Account is not available");
	case WD_AUTH_SCOPE_DISABLED:
		return refuse(cmd, "SYS/PERM", "POP3 access is disabled for this account");
	case WD_AUTH_SCOPE_REFUSED:
		return refuse(cmd, "AUTH", "Use an application-specific password");
	case WD_AUTH_INTERNAL_ERROR:
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Authentication is temporarily unavailable");
	default:
		return refuse(cmd, "AUTH", "Authentication failed");
	}
	if (!res->has_user)
		return refuse(cmd, "AUTH", "Authentication failed");
	if (job->list_ret < 0) {
		wd_warning("pop3", "%s: %s: cannot list the maildrop: %s", session->id,
			   res->username, job->list_error != NULL ? job->list_error : "?");
		if (job->list_ret == WD_STORE_ERR_NOT_FOUND)
			return wd_pop3_cmd_err(cmd, "SYS/PERM", "Mailbox not found for user");
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Cannot open the maildrop, try again later");
	}
	if (wd_pop3_session_login(session, &res->user, res->username, &job->maildrop) < 0)
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Out of memory");
	session->download_limit = job->download_limit;
	wd_info("pop3", "%s: %s logged in from %s, %zu messages", session->id, res->username,
		wd_conn_peer_ip(session->conn), session->maildrop.count);
	return wd_pop3_cmd_ok(cmd, "maildrop has %zu message%s (%llu octets)",
			      session->maildrop.count, session->maildrop.count == 1 ? "" : "s",
			      (unsigned long long)session->maildrop.size);
}

enum wd_pop3_cmd_result wd_pop3_login_start(struct wd_pop3_cmd *cmd, const char *user,
					    size_t user_len, const char *pass, size_t pass_len)
{
	struct wd_pop3_session *session = cmd->session;
	struct login_job *job = wd_pop3_cmd_context_new(cmd, sizeof(*job), login_job_free);
	if (job == NULL)
		return WD_POP3_CMD_DONE;
	job->username = strndup(user, user_len);
	if (job->username == NULL)
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Out of memory");
	if (user_len == 0 || user_len > WD_AUTH_MAX_USERNAME || memchr(user, '\0', user_len) ||
	    pass_len == 0 || pass_len > WD_AUTH_MAX_PASSWORD)
		return refuse(cmd, "AUTH", "Authentication failed");
	job->password = malloc(pass_len + 1);
	if (job->password == NULL)
		return wd_pop3_cmd_err(cmd, "SYS/TEMP", "Out of memory");
	memcpy(job->password, pass, pass_len);
	job->password[pass_len] = '\0';
	job->password_len = pass_len;
	job->auth = session->server->deps.auth;
	job->store = session->server->deps.store;
	job->max_messages = session->server->set.max_messages;
	job->max_download = session->server->set.max_download;
	snprintf(job->ip, sizeof(job->ip), "%s", wd_conn_peer_ip(session->conn));
	snprintf(job->sess, sizeof(job->sess), "%s", session->id);
	job->req.username = job->username;
	job->req.password = job->password;
	job->req.password_len = pass_len;
	job->req.scope = WD_AUTH_SCOPE_POP3;
	job->req.meta.protocol = "POP3";
	job->req.meta.ip = job->ip;
	job->req.meta.sess = job->sess;
	return wd_pop3_cmd_job(cmd, login_work, job, login_done);
}
