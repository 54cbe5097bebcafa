#ifndef WD_SD_NOTIFY_H
#define WD_SD_NOTIFY_H

/* The service manager's readiness protocol (systemd's sd_notify, written
 * here so that the daemons need no libsystemd): when the environment has
 * NOTIFY_SOCKET, a state string such as "READY=1", "RELOADING=1\n
 * MONOTONIC_USEC=…", "STOPPING=1" or "STATUS=…" is sent as one datagram to
 * that AF_UNIX socket (a path, or "@name" for the abstract namespace).
 * Without NOTIFY_SOCKET nothing happens, so the daemons call it
 * unconditionally. Unit files: Type=notify (dist/systemd/). */

/* 1 sent, 0 no NOTIFY_SOCKET, -1 failed (errno set; the caller logs). */
int wd_sd_notify(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC= stamp systemd 253+ asks for
   (older ones ignore it). */
int wd_sd_notify_reloading(void);

#endif
