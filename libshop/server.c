/* server.c - the server's life: listen (SHOP_BIND, or the socket systemd passed), serve on a
 * libmicrohttpd epoll thread pool, or in loop mode on one libmicrohttpd daemon per worker thread
 * driven by that thread's event loop (loop.h; every daemon on the one listening socket), announce
 * readiness with sd_notify, and on SIGTERM/SIGINT
 * quiesce, drain the requests in flight, close to new requests and stop. */
#include "libshop/http_internal.h"
#include "libshop/conf.h"
#include "libshop/log.h"
#include "libshop/loop.h"
#include "libshop/trace.h"
#include "libshop/sdnotify.h"
#include "shop_version.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sched.h>
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

/* The socket systemd passed (made non-blocking), or -1. */
static int passed_socket(void)
{
    if (shop_listen_fds() < 1)
        return -1;
    int fd = SHOP_LISTEN_FDS_START;
    /* a socket shared with another process (a redeploy's hand-over) must not block in accept */
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    shop_log_info("using the socket passed by systemd (fd %d)", fd);
    return fd;
}

/* threads > 0: libmicrohttpd's own epoll thread pool. threads == 0: one daemon run by an event
 * loop (external epoll). On fd when >= 0, else bound to port; limit connections at most. */
static struct MHD_Daemon *start_daemon(int port, unsigned threads, int fd, unsigned limit)
{
    unsigned flags = threads ? MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG
                             : MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_storage sa;
    const struct sockaddr *addr = NULL; /* a socket passed by systemd is bound already */
    if (fd < 0)
        addr = listen_addr(port, &sa, &flags);
    return MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, http_on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        http_mhd_log, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)POOL_SIZE, MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_CONNECTION, http_on_connection, NULL, MHD_OPTION_NOTIFY_COMPLETED,
        http_on_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, http_no_unescape, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_END);
}

/* 4 worker threads, or one per core this process may run on (at least 2, at most 16) for a
 * service whose handlers answer from memory: on 2 cores, 4 busy workers beside the client
 * doubled the p99 (docs/BENCHMARKS.md). */
static long default_threads(const struct shop_server_conf *c)
{
    cpu_set_t set;
    if (!c->per_core)
        return 4;
    int cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 2;
    return cores < 2 ? 2 : cores > 16 ? 16 : cores;
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

/* ---- loop mode --------------------------------------------------------------------------------
 */

enum { PHASE_SERVE, PHASE_QUIESCE, PHASE_STOP };

/* A worker thread of loop mode: its daemon and its event loop. */
struct worker {
    pthread_t thread;
    struct MHD_Daemon *d;
    struct shop_loop *loop;
    struct shop_loop_source mhd; /* the daemon's epoll descriptor */
    atomic_int phase;
    atomic_int told; /* the phase the main thread is done notifying this loop of */
    MHD_socket lfd;  /* the listening socket quiesce gave back */
};

static struct worker *g_workers;
static unsigned g_nworkers;

/* The loop runs the daemon after every poll: nothing to do when its descriptor is ready. */
static void mhd_ready(void *arg, uint32_t events)
{
    (void)arg;
    (void)events;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    shop_loop_enter(w->loop);
    bool quiesced = false;
    while (atomic_load(&w->phase) != PHASE_STOP) {
        if (!quiesced && atomic_load(&w->phase) != PHASE_SERVE) {
            w->lfd = MHD_quiesce_daemon(w->d);
            quiesced = true;
        }
        MHD_UNSIGNED_LONG_LONG to = 0;
        int max_ms = MHD_get_timeout(w->d, &to) == MHD_YES && to < 1000 ? (int)to : 1000;
        shop_loop_poll(w->loop, max_ms);
        MHD_run(w->d);
        shop_loop_tick(w->loop);
    }
    if (!quiesced) /* the stop came before this loop saw the quiesce */
        w->lfd = MHD_quiesce_daemon(w->d);
    /* The server is closed to new requests (drain), so a request this daemon reads from now on
     * is refused before it runs, and none is in flight unless the drain timed out: then what
     * still waits for a backend fails now (503), its answer is queued and its connection
     * resumed before the daemon goes (libmicrohttpd aborts on a suspended connection). */
    shop_loop_stop_sources(w->loop);
    MHD_run(w->d);
    MHD_stop_daemon(w->d);
    /* the main thread may still be writing to the loop's eventfd (workers_phase): the loop is
     * freed once it is done */
    while (atomic_load(&w->told) != PHASE_STOP)
        shop_sleep_ms(1);
    shop_loop_free(w->loop);
    return NULL;
}

/* Starts n daemons and their threads, all on one listening socket: the one systemd passed, or
 * the one the first daemon binds. Only a loop that is polling accepts, so a loop held by a
 * blocking call (a password hash, a catalogue lookup) takes no new connection meanwhile: the
 * others do, as libmicrohttpd's own thread pool shares its socket. (One SO_REUSEPORT socket per
 * loop spreads connections more evenly, but the kernel hands them to a busy loop too.) */
static int workers_start(int port, unsigned n)
{
    int fd = passed_socket();
    unsigned limit = http_connection_limit() / n;
    g_workers = shop_xcalloc(n, sizeof(*g_workers));
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &g_workers[i];
        w->lfd = MHD_INVALID_SOCKET;
        w->d = start_daemon(port, 0, fd, limit < 16 ? 16 : limit);
        const union MHD_DaemonInfo *info =
            w->d ? MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
        w->loop = info ? shop_loop_new() : NULL;
        if (!w->loop) {
            if (w->d)
                MHD_stop_daemon(w->d);
            return -1;
        }
        w->mhd = (struct shop_loop_source){.ready = mhd_ready};
        if (shop_loop_add(w->loop, &w->mhd) == -1 ||
            shop_loop_watch(w->loop, &w->mhd, info->epoll_fd, EPOLLIN) == -1 ||
            pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            shop_loop_free(w->loop);
            MHD_stop_daemon(w->d);
            return -1;
        }
        g_nworkers++;
        if (i == 0 && fd < 0) {
            const union MHD_DaemonInfo *li = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_LISTEN_FD);
            if (!li)
                return -1;
            fd = li->listen_fd;
        }
    }
    shop_loop_enter(NULL); /* the loops are their threads', not this one's */
    return 0;
}

static void workers_phase(int phase)
{
    for (unsigned i = 0; i < g_nworkers; i++) {
        atomic_store(&g_workers[i].phase, phase);
        shop_loop_notify(g_workers[i].loop);
        atomic_store(&g_workers[i].told, phase);
    }
}

/* Stops every worker and closes the listening socket. */
static void workers_stop(void)
{
    workers_phase(PHASE_STOP);
    for (unsigned i = 0; i < g_nworkers; i++)
        pthread_join(g_workers[i].thread, NULL);
    /* every daemon gave the one socket back: closed once, when no loop can touch it any more */
    MHD_socket lfd = g_nworkers ? g_workers[0].lfd : MHD_INVALID_SOCKET;
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    free(g_workers);
    g_workers = NULL;
    g_nworkers = 0;
}

/* Waits, at most drain_ms, for the requests in flight to be answered after quiesce, and closes
 * the server to new requests in the same step as it finds none in flight (http_close_if_idle).
 * Idle keep-alive connections do not hold the stop: a request arriving on one before that is
 * answered with Connection: close; one arriving after it closes its connection unanswered and
 * unrun (a client may retry it), never to be run and then lost with its connection or failed by
 * the stop. */
static void drain(long drain_ms)
{
    long long deadline = shop_now_ns() + drain_ms * 1000000LL;
    shop_sleep_ms(20); /* let requests already on the wire reach a handler */
    while (!http_close_if_idle()) {
        if (shop_now_ns() >= deadline) {
            shop_log_info("drain timeout reached with %d request(s) in flight", http_inflight());
            http_close();
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

    unsigned threads = (unsigned)shop_conf_long("SHOP_THREADS", default_threads(&conf), 1, 256);
    long drain_ms = shop_conf_long("SHOP_DRAIN_MS", 5000, 0, 600000);
    bool loop = shop_conf_bool("SHOP_LOOP", conf.loop);

    sigset_t set;
    http_stop_signals(&set);
    http_block_stop_signals(); /* done by shop_service_init already, unless it was not called */

    struct MHD_Daemon *d = NULL;
    if (loop) {
        http_loop_mode(true);
        if (workers_start(conf.port, threads) == -1) {
            workers_stop();
            shop_log_warn("cannot listen on port %d", conf.port);
            return 1;
        }
    } else {
        d = start_daemon(conf.port, threads, passed_socket(), http_connection_limit());
        if (!d) {
            shop_log_warn("cannot listen on port %d", conf.port);
            return 1;
        }
    }
    unsigned port = bound_port(d ? d : g_workers[0].d);
    shop_log_info("listening port=%u threads=%u%s version=%s", port, threads,
                  loop ? " loop=yes" : "", SHOP_VERSION);
    shop_notifyf("READY=1\nSTATUS=serving on port %u", port);

    int sig = 0;
    sigwait(&set, &sig);
    shop_log_info("signal %d: quiescing and draining", sig);
    shop_notify("STOPPING=1");
    http_stop_begin();
    if (loop) {
        workers_phase(PHASE_QUIESCE);
        drain(drain_ms);
        workers_stop();
    } else {
        /* Closed only once the workers are gone: a worker may still be taking the socket out of
         * its epoll set after quiesce returns, and a closed fd could meanwhile be reused. */
        MHD_socket lfd = MHD_quiesce_daemon(d);
        drain(drain_ms);
        MHD_stop_daemon(d);
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
    }
    shop_trace_shutdown();
    http_routes_free();
    shop_log_info("stopped");
    return 0;
}
