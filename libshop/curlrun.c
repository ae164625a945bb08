/* curlrun.c - curlrun.h: a thread's easy handle (shop_tls), or a loop's hub: a libcurl multi
 * handle whose sockets sit in an epoll set of the hub's own, watched by the loop as one source
 * (libcurl's timer is the source's deadline), and the easy handles the loop's coroutines use,
 * kept for reuse. A transfer that ends wakes its coroutine during the poll (or, when libcurl's
 * timer ended it, in the tick, and the loop is rung so that the daemon sends the answer). */
#include "libshop/curlrun.h"
#include "libshop/loop.h"
#include "libshop/util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define HUB_SPARE  16 /* easy handles a loop keeps for reuse */
#define HUB_EVENTS 16

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static CURL *easy_new(void)
{
    pthread_once(&once, global_init);
    return curl_easy_init();
}

static struct shop_tls thread_handles = SHOP_TLS(easy_new, curl_easy_cleanup); /* CURL is void */

/* A transfer on a hub: its coroutine, and its result once it ended. */
struct transfer {
    CURL *h;
    struct shop_co *co;
    CURLcode rc;
    struct transfer *next; /* the hub's transfers in flight */
};

struct hub {
    struct shop_loop_source src;
    struct shop_loop *loop;
    CURLM *multi;
    int ep;              /* the sockets libcurl asked to watch */
    long long deadline;  /* libcurl's timer (ns), 0: none */
    struct transfer *in; /* in flight */
    CURL *spare[HUB_SPARE];
    unsigned nspare;
};

static _Thread_local struct hub *t_hub;

/* libcurl's CURLMOPT_SOCKETFUNCTION: a socket to watch for what, or no more. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    (void)socketp;
    struct hub *hub = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(hub->ep, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.fd = s};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (epoll_ctl(hub->ep, EPOLL_CTL_MOD, s, &ev) != 0 &&
        epoll_ctl(hub->ep, EPOLL_CTL_ADD, s, &ev) != 0)
        return -1;
    return 0;
}

/* libcurl's CURLMOPT_TIMERFUNCTION: when to call it back (-1: never). */
static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct hub *hub = userp;
    hub->deadline = timeout_ms < 0 ? 0 : shop_now_ns() + timeout_ms * 1000000LL;
    return 0;
}

/* The transfers libcurl says have ended leave the hub and their coroutines go on. Returns how
 * many did. */
static unsigned wake_ended(struct hub *hub)
{
    unsigned n = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(hub->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer **p = &hub->in;
        while (*p && (*p)->h != msg->easy_handle)
            p = &(*p)->next;
        struct transfer *t = *p;
        CURLcode rc = msg->data.result; /* msg is gone once the handle is removed */
        curl_multi_remove_handle(hub->multi, msg->easy_handle);
        if (!t)
            continue;
        *p = t->next;
        t->rc = rc;
        shop_co_wake(t->co);
        n++;
    }
    return n;
}

static void hub_ready(void *arg, uint32_t events)
{
    (void)events;
    struct hub *hub = arg;
    struct epoll_event evs[HUB_EVENTS];
    int n = epoll_wait(hub->ep, evs, HUB_EVENTS, 0);
    for (int i = 0; i < n; i++) {
        int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        int running;
        curl_multi_socket_action(hub->multi, evs[i].data.fd, flags, &running);
    }
    wake_ended(hub);
}

static long long hub_deadline(void *arg)
{
    return ((struct hub *)arg)->deadline;
}

static void hub_tick(void *arg, long long now)
{
    struct hub *hub = arg;
    if (!hub->deadline || now < hub->deadline)
        return;
    hub->deadline = 0;
    int running;
    curl_multi_socket_action(hub->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (wake_ended(hub) > 0)
        shop_loop_notify(hub->loop); /* the daemon runs after the next poll: at once */
}

/* The loop stops: every transfer still in flight ends now, as aborted. */
static void hub_stop(void *arg)
{
    struct hub *hub = arg;
    while (hub->in) {
        struct transfer *t = hub->in;
        hub->in = t->next;
        curl_multi_remove_handle(hub->multi, t->h);
        t->rc = CURLE_ABORTED_BY_CALLBACK;
        shop_co_wake(t->co);
    }
}

static void hub_destroy(void *arg)
{
    struct hub *hub = arg;
    hub_stop(hub);
    while (hub->nspare > 0)
        curl_easy_cleanup(hub->spare[--hub->nspare]);
    curl_multi_cleanup(hub->multi);
    close(hub->ep);
    if (t_hub == hub)
        t_hub = NULL;
    free(hub);
}

/* The calling coroutine's hub, added to its loop the first time; NULL outside a coroutine, or
 * when it cannot be made (the call then blocks, as on a worker thread). */
static struct hub *loop_hub(void)
{
    if (!shop_co_self())
        return NULL;
    if (t_hub)
        return t_hub;
    pthread_once(&once, global_init);
    struct hub *hub = shop_xcalloc(1, sizeof(*hub));
    hub->loop = shop_loop_current();
    hub->src =
        (struct shop_loop_source){hub_ready, hub_deadline, hub_tick, hub_stop, hub_destroy, hub};
    hub->ep = epoll_create1(EPOLL_CLOEXEC);
    hub->multi = curl_multi_init();
    if (hub->ep < 0 || !hub->multi || shop_loop_add(hub->loop, &hub->src) == -1 ||
        shop_loop_watch(hub->loop, &hub->src, hub->ep, EPOLLIN) == -1) {
        shop_loop_remove(hub->loop, &hub->src);
        if (hub->multi)
            curl_multi_cleanup(hub->multi);
        if (hub->ep >= 0)
            close(hub->ep);
        free(hub);
        return NULL;
    }
    curl_multi_setopt(hub->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(hub->multi, CURLMOPT_SOCKETDATA, hub);
    curl_multi_setopt(hub->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(hub->multi, CURLMOPT_TIMERDATA, hub);
    return t_hub = hub;
}

CURL *shop_curl_handle(void)
{
    struct hub *hub = loop_hub();
    if (!hub)
        return shop_tls_get(&thread_handles);
    return hub->nspare > 0 ? hub->spare[--hub->nspare] : easy_new();
}

CURLcode shop_curl_perform(CURL *h)
{
    struct hub *hub = loop_hub();
    if (!hub)
        return curl_easy_perform(h);
    struct transfer t = {.h = h, .co = shop_co_self(), .rc = CURLE_OK, .next = hub->in};
    if (curl_multi_add_handle(hub->multi, h) != CURLM_OK)
        return CURLE_FAILED_INIT;
    hub->in = &t;
    shop_co_wait();
    return t.rc;
}

void shop_curl_release(CURL *h)
{
    struct hub *hub = loop_hub();
    if (!hub || !h)
        return; /* the thread's own handle stays with the thread */
    if (hub->nspare < HUB_SPARE)
        hub->spare[hub->nspare++] = h;
    else
        curl_easy_cleanup(h);
}
