/* offload.c - offload.h's helpers: one queue of jobs and up to SHOP_OFFLOAD_HELPERS threads
 * taking them; each loop that gives out jobs has a home, a loop source with an eventfd of its
 * own: a helper rings it when a job is back, and its ready hook wakes the coroutine during the
 * poll, so the daemon's run that follows sends the answer. A job lives on its coroutine's
 * stack. */
#include "libshop/offload.h"
#include "libshop/loop.h"
#include "libshop/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct home;

struct job {
    void (*fn)(void *);
    void *arg;
    struct shop_co *co;
    struct home *home;
    struct job *next;
};

/* A loop's end of the helpers: the finished jobs for its ready hook to wake, and how many jobs are
 * still with a helper (the loop is not freed before they are back). */
struct home {
    struct shop_loop_source src;
    struct shop_loop *loop;
    int efd; /* rung by a helper when a job is back */
    pthread_mutex_t lock;
    pthread_cond_t back; /* out went down */
    struct job *done;
    unsigned out;
};

static _Thread_local struct home *t_home;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work = PTHREAD_COND_INITIALIZER;
static struct job *g_head, *g_tail;
static unsigned g_queued, g_idle, g_helpers;

/* A finished job goes back to its loop: on its done list, then the loop woken. The job (on a
 * coroutine's stack) is not touched once it is on the list; the home is, until out goes down. */
static void hand_back(struct job *j)
{
    struct home *h = j->home;
    pthread_mutex_lock(&h->lock);
    j->next = h->done;
    h->done = j;
    pthread_mutex_unlock(&h->lock);
    uint64_t one = 1;
    while (write(h->efd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&h->lock);
    h->out--;
    pthread_cond_broadcast(&h->back);
    pthread_mutex_unlock(&h->lock);
}

static void *helper_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        while (!g_head) {
            g_idle++;
            pthread_cond_wait(&g_work, &g_lock);
            g_idle--;
        }
        struct job *j = g_head;
        g_head = j->next;
        if (!g_head)
            g_tail = NULL;
        g_queued--;
        pthread_mutex_unlock(&g_lock);
        j->fn(j->arg);
        hand_back(j);
        pthread_mutex_lock(&g_lock);
    }
    return NULL;
}

/* Queues j, starting a helper when the queued jobs outnumber the idle helpers. False when there
 * is no helper at all (none could be started). */
static bool give(struct job *j)
{
    pthread_mutex_lock(&g_lock);
    if (g_queued + 1 > g_idle && g_helpers < SHOP_OFFLOAD_HELPERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, helper_main, NULL) == 0) {
            pthread_setname_np(t, "offload");
            g_helpers++;
        }
        pthread_attr_destroy(&attr);
    }
    bool ok = g_helpers > 0;
    if (ok) {
        j->next = NULL;
        if (g_tail)
            g_tail->next = j;
        else
            g_head = j;
        g_tail = j;
        g_queued++;
        pthread_cond_signal(&g_work);
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

/* The bell rang: the coroutines whose jobs are back go on. */
static void home_ready(void *arg, uint32_t events)
{
    (void)events;
    struct home *h = arg;
    uint64_t rings;
    while (read(h->efd, &rings, sizeof(rings)) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&h->lock);
    struct job *j = h->done;
    h->done = NULL;
    pthread_mutex_unlock(&h->lock);
    while (j) {
        struct job *next = j->next; /* j is gone once its coroutine goes on */
        shop_co_wake(j->co);
        j = next;
    }
}

/* The loop stops: every job still with a helper is waited for (its work has a timeout of its
 * own), and its coroutine goes on. */
static void home_stop(void *arg)
{
    struct home *h = arg;
    pthread_mutex_lock(&h->lock);
    while (h->out > 0)
        pthread_cond_wait(&h->back, &h->lock);
    pthread_mutex_unlock(&h->lock);
    home_ready(h, 0);
}

static void home_destroy(void *arg)
{
    struct home *h = arg;
    home_stop(h);
    close(h->efd);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->back);
    if (t_home == h)
        t_home = NULL;
    free(h);
}

/* The calling thread's home, added to its loop the first time. NULL when the loop has no room. */
static struct home *loop_home(void)
{
    if (t_home)
        return t_home;
    struct home *h = shop_xcalloc(1, sizeof(*h));
    h->loop = shop_loop_current();
    h->src = (struct shop_loop_source){
        .ready = home_ready, .stop = home_stop, .destroy = home_destroy, .arg = h};
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->back, NULL);
    if (h->efd < 0 || shop_loop_add(h->loop, &h->src) == -1 ||
        shop_loop_watch(h->loop, &h->src, h->efd, EPOLLIN) == -1) {
        shop_loop_remove(h->loop, &h->src);
        if (h->efd >= 0)
            close(h->efd);
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->back);
        free(h);
        return NULL;
    }
    return t_home = h;
}

void shop_offload(void (*fn)(void *), void *arg)
{
    struct shop_co *co = shop_co_self();
    struct home *h = co ? loop_home() : NULL;
    if (!h) {
        fn(arg);
        return;
    }
    struct job j = {.fn = fn, .arg = arg, .co = co, .home = h};
    pthread_mutex_lock(&h->lock);
    h->out++;
    pthread_mutex_unlock(&h->lock);
    if (!give(&j)) {
        pthread_mutex_lock(&h->lock);
        h->out--;
        pthread_mutex_unlock(&h->lock);
        fn(arg);
        return;
    }
    shop_co_wait();
}
