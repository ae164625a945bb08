/* service.c - a service's life cycle around its server: the common start (arguments, log level,
 * the stop signals blocked before any thread) and the open-files limit the server runs with. */
#include "libshop/service.h"
#include "libshop/conf.h"
#include "libshop/http_internal.h"
#include "libshop/log.h"
#include "libshop/trace.h"
#include "shop_version.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_CONNECTIONS 8192

/* SIGTERM and SIGINT stay blocked in every thread (shop_server_run waits for them): blocked
 * here, before the service starts any thread of its own, since threads inherit the mask. */
void http_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void http_block_stop_signals(void)
{
    sigset_t set;
    http_stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void shop_service_init(int argc, char **argv, const char *service)
{
    http_block_stop_signals();
    shop_log_init(service);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("%s %s\n", service, SHOP_VERSION);
            exit(0);
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--version]\nConfigured by environment variables; see the README.\n",
                   service);
            exit(0);
        }
        fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", service, argv[i]);
        exit(2);
    }
    const char *lvl = getenv("LOG_LEVEL");
    if (lvl && *lvl && shop_log_set_level(lvl) == -1)
        shop_fatalx("config: LOG_LEVEL=\"%s\" is not one of error, warn, info, debug", lvl);
    shop_log_info("starting version=%s pid=%d", SHOP_VERSION, (int)getpid());
    /* access lines a second (D28); 0: every request */
    shop_log_set_access_max((unsigned)shop_conf_long("SHOP_ACCESS_LOG_MAX", 1000, 0, 10000000));
    shop_trace_init(service);
}

/* Raises the open-files limit to its hard maximum and returns how many connections to accept:
 * enough for thousands of clients (the libmicrohttpd default is 1020), bounded by the limit. */
unsigned http_connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t n = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64; /* room for backend connections */
    return n > MAX_CONNECTIONS ? MAX_CONNECTIONS : (unsigned)n;
}

struct shop_server_conf shop_service_start(int argc, char **argv, const char *service,
                                           const char *port_vars, const struct shop_route *routes,
                                           size_t nroutes)
{
    shop_service_init(argc, argv, service);
    return (struct shop_server_conf){
        .service = service,
        .port = shop_conf_listen_port(port_vars, 8080),
        .routes = routes,
        .nroutes = nroutes,
    };
}
