/* test_sdnotify.c - systemd's protocols spoken without libsystemd (sdnotify.c), with this test in
 * systemd's place: it binds the notify socket (a path and an abstract name) and reads what the
 * service sends, and passes a listening socket as fd 3 with LISTEN_PID/LISTEN_FDS. Also the CA
 * store lookup (castore.c). */
#include "libshop/castore.h"
#include "libshop/sdnotify.h"
#include "tests/unit/check.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A datagram socket bound to name (a path, or "@name": abstract), as the service manager has. */
static int manager_socket(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd == -1 ||
        bind(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + len) == -1)
        return -1;
    return fd;
}

/* One message the manager received (empty when none is waiting). */
static const char *received(int fd)
{
    static char buf[2048];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_notify_path(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/shop-notify-%d", (int)getpid());
    unlink(path);
    int m = manager_socket(path);
    CHECK(m != -1);
    setenv("NOTIFY_SOCKET", path, 1);
    CHECK(shop_notifyf("READY=1\nSTATUS=serving on port %u", 8080u) == 1);
    CHECK_STR(received(m), "READY=1\nSTATUS=serving on port 8080");
    CHECK(shop_notify("STOPPING=1") == 1);
    CHECK_STR(received(m), "STOPPING=1");
    close(m);
    unlink(path);
    CHECK(shop_notify("READY=1") == -1); /* nobody listens there any more */
}

static void test_notify_abstract(void)
{
    char name[64];
    snprintf(name, sizeof(name), "@shop-notify-%d", (int)getpid());
    int m = manager_socket(name);
    CHECK(m != -1);
    setenv("NOTIFY_SOCKET", name, 1);
    CHECK(shop_notify("READY=1") == 1);
    CHECK_STR(received(m), "READY=1");
    close(m);
}

static void test_notify_unset_or_bad(void)
{
    unsetenv("NOTIFY_SOCKET");
    CHECK(shop_notify("READY=1") == 0);
    setenv("NOTIFY_SOCKET", "", 1);
    CHECK(shop_notify("READY=1") == 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK(shop_notify("READY=1") == -1);
    unsetenv("NOTIFY_SOCKET");
}

static void set_listen(long pid, const char *n)
{
    char p[32];
    snprintf(p, sizeof(p), "%ld", pid);
    setenv("LISTEN_PID", p, 1);
    setenv("LISTEN_FDS", n, 1);
}

static void test_listen_fds(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    CHECK(shop_listen_fds() == 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s != -1 && dup2(s, SHOP_LISTEN_FDS_START) == SHOP_LISTEN_FDS_START);
    if (s != SHOP_LISTEN_FDS_START)
        close(s);
    set_listen((long)getpid(), "1");
    CHECK(shop_listen_fds() == 1);
    CHECK((fcntl(SHOP_LISTEN_FDS_START, F_GETFD) & FD_CLOEXEC) != 0);
    set_listen((long)getpid() + 1, "1"); /* meant for another process */
    CHECK(shop_listen_fds() == 0);
    set_listen((long)getpid(), "x1");
    CHECK(shop_listen_fds() == 0);
    set_listen((long)getpid(), "2"); /* fd 4 is not open: the variables are not ours */
    close(SHOP_LISTEN_FDS_START + 1);
    CHECK(shop_listen_fds() == 0);
    close(SHOP_LISTEN_FDS_START);
    set_listen((long)getpid(), "1");
    CHECK(shop_listen_fds() == 0);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
}

static void test_ca_store(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/shop-ca-%d.crt", (int)getpid());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    const char *rhel_like[] = {"/nonexistent/ca-certificates.crt", path, NULL};
    CHECK_STR(shop_ca_pick(rhel_like), path);
    const char *none[] = {"/nonexistent/a.crt", "/nonexistent/b.crt", NULL};
    CHECK(shop_ca_pick(none) == NULL);
    CHECK_STR(shop_ca_paths[0], "/etc/ssl/certs/ca-certificates.crt");
    CHECK_STR(shop_ca_paths[1], "/etc/pki/tls/certs/ca-bundle.crt");
    setenv("SSL_CERT_FILE", path, 1); /* the override is read once, on first use */
    CHECK_STR(shop_ca_file(), path);
    unlink(path);
}

int main(void)
{
    test_notify_path();
    test_notify_abstract();
    test_notify_unset_or_bad();
    test_listen_fds();
    test_ca_store();
    return check_report("sdnotify");
}
