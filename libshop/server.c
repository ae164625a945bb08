/* server.c - the server's life: listen (SHOP_BIND, or the socket systemd passed), serve on a
 * libmicrohttpd epoll thread pool, announce readiness with sd_notify, and on SIGTERM/SIGINT
 * quiesce, drain the requests in flight and stop. */
#include "libshop/http_internal.h"
#include "libshop/conf.h"
#include "libshop/log.h"
#include "libshop/trace.h"
#include "libshop/sdnotify.h"
#include "shop_version.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#define DEFAULT_BODY (64 * 1024)

/* The address to listen on (SHOP_BIND, default the IPv4 wildcard) and the flags its family needs:
 * "::" listens on every address of both families. */
static const struct sockaddr *listen_addr(int port, struct sockaddr_storage *sa, unsigned *flags)
{
    shop_conf_bind("SHOP_BIND", "0.0.0.0", port, sa);
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        *flags |= IN6_IS_ADDR_UNSPECIFIED(a) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    }
    return (const struct sockaddr *)sa;
}

static struct MHD_Daemon *start_daemon(const struct shop_server_conf *conf, unsigned threads)
{
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    int fd = -1;
    struct sockaddr_storage sa;
    const struct sockaddr *addr = NULL; /* a socket passed by systemd is bound already */
    if (shop_listen_fds() >= 1) {
        fd = SHOP_LISTEN_FDS_START;
        /* a socket shared with another process (a redeploy's hand-over) must not block in accept */
        int fl = fcntl(fd, F_GETFL);
        if (fl != -1)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        shop_log_info("using the socket passed by systemd (fd %d)", fd);
    } else {
        addr = listen_addr(conf->port, &sa, &flags);
    }
    unsigned limit = http_connection_limit();
    return MHD_start_daemon(
        flags, (uint16_t)conf->port, NULL, NULL, http_on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        http_mhd_log, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)POOL_SIZE, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_CONNECTION, http_on_connection, NULL, MHD_OPTION_NOTIFY_COMPLETED,
        http_on_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, http_no_unescape, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_END);
}

/* The port the listening socket is bound to (also for a socket passed by systemd, where
 * libmicrohttpd only knows the port it was given). 0 when unknown. */
static unsigned bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&ss, &len) == -1)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* Waits, at most drain_ms, for the requests in flight to be answered after quiesce. Idle
 * keep-alive connections do not hold the stop; a request arriving on one meanwhile is answered
 * with Connection: close. */
static void drain(long drain_ms)
{
    long long deadline = shop_now_ns() + drain_ms * 1000000LL;
    shop_sleep_ms(20); /* let requests already on the wire reach a handler */
    while (http_inflight() > 0) {
        if (shop_now_ns() >= deadline) {
            shop_log_info("drain timeout reached with %d request(s) in flight", http_inflight());
            return;
        }
        shop_sleep_ms(10);
    }
}

int shop_server_run(const struct shop_server_conf *user_conf)
{
    static struct shop_server_conf conf;
    conf = *user_conf;
    if (!conf.text_type)
        conf.text_type = "text/html; charset=utf-8";
    if (!conf.json_type)
        conf.json_type = "application/json; charset=utf-8";
    if (!conf.body_max)
        conf.body_max = DEFAULT_BODY;
    shop_http_conf = &conf;
    http_routes_setup(&conf);
    shop_trace_metrics_register(); /* after the service's own metrics, which clients may read first
                                    */

    unsigned threads = (unsigned)shop_conf_long("SHOP_THREADS", 4, 1, 256);
    long drain_ms = shop_conf_long("SHOP_DRAIN_MS", 5000, 0, 600000);

    sigset_t set;
    http_stop_signals(&set);
    http_block_stop_signals(); /* done by shop_service_init already, unless it was not called */

    struct MHD_Daemon *d = start_daemon(&conf, threads);
    if (!d) {
        shop_log_warn("cannot listen on port %d", conf.port);
        return 1;
    }
    unsigned port = bound_port(d);
    shop_log_info("listening port=%u threads=%u version=%s", port, threads, SHOP_VERSION);
    shop_notifyf("READY=1\nSTATUS=serving on port %u", port);

    int sig = 0;
    sigwait(&set, &sig);
    shop_log_info("signal %d: quiescing and draining", sig);
    shop_notify("STOPPING=1");
    http_stop_begin();
    /* Closed only once the workers are gone: a worker may still be taking the socket out of its
     * epoll set after quiesce returns, and a closed fd could meanwhile be reused. */
    MHD_socket lfd = MHD_quiesce_daemon(d);
    drain(drain_ms);
    MHD_stop_daemon(d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    shop_trace_shutdown();
    http_routes_free();
    shop_log_info("stopped");
    return 0;
}
