/* http_internal.h - what the HTTP server's own files share (http.c, router.c, http_metrics.c,
 * server.c, service.c): the request object, the route table and its statistics. Private to
 * libshop: services include libshop/http.h and libshop/service.h only. */
#ifndef SHOP_HTTP_INTERNAL_H
#define SHOP_HTTP_INTERNAL_H

#include "libshop/http.h"
#include "libshop/util.h"

#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>

#define MAX_PARAMS   8
#define MAX_HEADERS  4
#define PATH_MAX_LEN 8192
/* Request line + headers. libmicrohttpd 0.9.75 reads a request head into the connection's
 * memory pool and needs room left there for the response header: a head that (nearly) fills
 * the pool is handled and then dropped without an answer, or left hanging. So the pool is
 * twice the largest head we serve (nginx forwards request lines up to 8 KiB), and larger
 * heads get 431 before any handler runs. */
#define HEAD_MAX  (8 * 1024)
#define POOL_SIZE (2 * HEAD_MAX)

struct route_stats; /* a route's request counts and durations (http_metrics.c) */

struct shop_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    long long start_ns;
    bool replied;
    bool too_big;
    unsigned long long received; /* body bytes seen so far */
    const char *etag;            /* strong ETag of the 200 being made (shop_reply_etag) */
    int status;
    struct route_stats *stats;
    struct shop_buf body;
    const char *pnames[MAX_PARAMS]; /* values point into the thread's path buffer */
    const char *pvalues[MAX_PARAMS];
    size_t nparams;
    char rid[SHOP_RID_MAX];
    const char *hdr_names[MAX_HEADERS];
    char *hdr_values[MAX_HEADERS];
    size_t nhdr;
    /* loop mode: a handler running in a coroutine makes its answer here, queued once the
     * coroutine is done (after the connection's resume when it waited) */
    struct MHD_Response *resp;
    bool waiting; /* the connection is suspended while its coroutine waits */
};

/* The running server's configuration, defaults filled in (set by shop_server_run). */
extern const struct shop_server_conf *shop_http_conf;

/* http.c: the libmicrohttpd callbacks, the thread's path buffer, the stop and the requests in
 * flight. */
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_size, void **con_cls);
void http_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code);
void http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                       enum MHD_RequestTerminationCode toe);
size_t http_no_unescape(void *cls, struct MHD_Connection *c, char *s);
void http_mhd_log(void *cls, const char *fmt, va_list ap);
char *http_pathbuf(void);
void http_stop_begin(void); /* replies from now on close their connection */
int http_inflight(void);
/* Closes the server to new requests if none is in flight (true), atomically with that check:
 * a request that arrives later (on a keep-alive connection) closes its connection unanswered
 * before anything of it runs, which a client may retry. http_close closes it whatever is in
 * flight. */
bool http_close_if_idle(void);
void http_close(void);
/* Loop mode (server.c): handlers run in coroutines of the worker's event loop. */
void http_loop_mode(bool on);

/* router.c: the route table (the service's routes and the built-in /metrics) and dispatch. */
void http_routes_setup(const struct shop_server_conf *conf);
void http_routes_free(void);
void http_dispatch(struct shop_req *req);

/* http_metrics.c: per-route statistics, nroutes + 1 of them (the last for unmatched paths). */
void http_stats_setup(const struct shop_route *routes, size_t nroutes);
void http_stats_free(void);
struct route_stats *http_stats_route(size_t i); /* i == nroutes: unmatched */
struct route_stats *http_stats_unmatched(void);
void http_stats_count(struct route_stats *s, int status, double secs);
void http_metrics_handler(struct shop_req *req);

/* service.c: the stop signals and the open-files limit. */
void http_stop_signals(sigset_t *set);
void http_block_stop_signals(void);
unsigned http_connection_limit(void);

#endif
