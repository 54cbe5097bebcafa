#ifndef WILDDUCK_DOVECOT_LOG_H
#define WILDDUCK_DOVECOT_LOG_H

/* Log routing for code of ours loaded into Dovecot: libwdcommon's log
 * (wd_log) and libmongoc's go to Dovecot's log (i_info, i_warning, ...)
 * when called on the thread that loaded the plugin. Dovecot's logging is
 * not thread-safe and libmongoc's server monitors run in threads of their
 * own, so lines from any other thread are written to stderr in one write
 * (Dovecot's log process records them as errors). libmongoc's chatter
 * below warnings is dropped, and so is FerretDB's refusal of endSessions
 * at every pool shutdown.
 *
 * init in a plugin's init function, deinit in its deinit. */

void wildduck_dovecot_log_init(void);
void wildduck_dovecot_log_deinit(void);

#endif
