/* sdnotify.c - systemd's notify and socket-activation protocols spoken directly (see sdnotify.h):
 * the binaries link no libsystemd, so they run on any host with only the C library. */
#include "libshop/sdnotify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A whole decimal number of env var name in [0, max], or -1. */
static long env_number(const char *name, long max)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > max)
        return -1;
    return v;
}

int shop_listen_fds(void)
{
    long pid = env_number("LISTEN_PID", 0x7fffffffL);
    long n = env_number("LISTEN_FDS", 4096);
    if (pid != (long)getpid() || n <= 0)
        return 0;
    for (int fd = SHOP_LISTEN_FDS_START; fd < SHOP_LISTEN_FDS_START + n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl == -1)
            return 0; /* not open: the variables do not describe this process */
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    return (int)n;
}

/* The manager's address from $NOTIFY_SOCKET: a path, or "@name" in the abstract namespace.
 * Returns the address length, 0 when unset, -1 when unusable. */
static socklen_t notify_addr(struct sockaddr_un *sa)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa->sun_path))
        return (socklen_t)-1;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, len);
    if (path[0] == '@')
        sa->sun_path[0] = '\0';
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

int shop_notify(const char *state)
{
    struct sockaddr_un sa;
    socklen_t len = notify_addr(&sa);
    if (len == 0)
        return 0;
    if (len == (socklen_t)-1)
        return -1;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    close(fd);
    return sent == (ssize_t)strlen(state) ? 1 : -1;
}

int shop_notifyf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return shop_notify(buf);
}
