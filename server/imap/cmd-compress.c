/* COMPRESS DEFLATE (RFC 4978), when imap.enableCompression is on. The OK is
 * sent uncompressed; everything after it goes through raw deflate with the
 * configured window (memory per session, see STYLE.md). */
#include "imap-commands.h"
#include "imap-session.h"

#include "wd-conn.h"
#include "wd-log.h"

enum wd_imap_cmd_result wd_imap_cmd_compress(struct wd_imap_cmd *cmd)
{
	struct wd_imap_session *session = cmd->session;
	const struct wd_imap_settings *set = &session->server->set;
	if (!wd_imap_cmd_want_args(cmd, 1))
		return WD_IMAP_CMD_DONE;
	if (!wd_imap_arg_atom_equals(&cmd->parsed->args[0], "DEFLATE"))
		return wd_imap_cmd_reply(cmd, "BAD", NULL, "Unknown compression mechanism");
	if (!set->compression)
		return wd_imap_cmd_reply(cmd, "NO", "CANNOT", "Compression is not enabled");
	if (wd_conn_is_compressed(session->conn))
		return wd_imap_cmd_reply(cmd, "NO", "COMPRESSIONACTIVE", "DEFLATE active already");
	wd_imap_cmd_reply(cmd, "OK", NULL, "DEFLATE active");
	const char *error;
	if (wd_conn_start_deflate(session->conn, set->deflate_window_bits, set->deflate_mem_level,
				  &error) < 0) {
		wd_warning("imap", "%s: COMPRESS failed: %s", session->id, error);
		session->close_after = true;
	}
	return WD_IMAP_CMD_DONE;
}
