/* sdnotify.h - systemd's service protocols without libsystemd: readiness and status messages
 * (sd_notify: a datagram to $NOTIFY_SOCKET) and socket activation (sockets passed from fd 3 on,
 * $LISTEN_FDS of them, for the process $LISTEN_PID), as systemd documents them. */
#ifndef SHOP_SDNOTIFY_H
#define SHOP_SDNOTIFY_H

/* The first file descriptor systemd passes (SD_LISTEN_FDS_START). */
#define SHOP_LISTEN_FDS_START 3

/* The number of sockets systemd passed to this process (fds 3, 4, ...; each made close-on-exec),
 * 0 when none were passed or they were meant for another process. */
int shop_listen_fds(void);

/* Sends state ("READY=1", "STATUS=...", newline-separated assignments) to the service manager.
 * 1 when sent, 0 when there is no manager to tell ($NOTIFY_SOCKET unset), -1 on an error. */
int shop_notify(const char *state);

/* shop_notify with a printf-style message (truncated at 1 KiB). */
int shop_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
