/* loop.c - an event loop per worker thread (epoll over its sources' descriptors) and the
 * coroutines requests run in: 1 MiB stacks mapped lazily with a guard page, reused, switched by
 * coswitch.h. The tracer's current span is saved and restored at every switch;
 * ASan and TSan are told about each switch (fibers). */
#include "libshop/loop.h"
#include "libshop/coswitch.h"
#include "libshop/log.h"
#include "libshop/trace.h"
#include "libshop/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define LOOP_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define LOOP_TSAN 1
#endif

#define CO_STACK  (1024 * 1024)
#define FREE_KEEP 64 /* idle coroutines kept per loop; more are destroyed */
#define MAX_SRC   8
#define QUIET     4 /* passes of one request in a row before a request counts as alone */

struct shop_co {
    shop_ctx ctx;
    char *map; /* guard page + stack */
    void (*fn)(void *);
    void (*done)(void *);
    void *arg;
    bool finished; /* fn returned: the coroutine is back in its start position */
    bool waited;   /* fn waited at least once: done() is due when it finishes */
    struct shop_span *span;
    void *slot;
    struct shop_co *next;  /* free list */
    struct shop_co *later; /* the loop's wake-later list */
#ifdef LOOP_TSAN
    void *fiber;
#endif
};

struct shop_loop {
    int ep, evfd;
    struct shop_loop_source *src[MAX_SRC];
    int src_fd[MAX_SRC];
    uint32_t src_ev[MAX_SRC]; /* the events src_fd is watched for */
    unsigned nsrc;
    shop_ctx main;
    struct shop_co *cur, *free;
    struct shop_co *later, **later_tail; /* to wake at the next tick (shop_co_wake_later) */
    bool hurry; /* the last tick woke coroutines after the sources' ticks: poll without waiting */
    unsigned nfree, busy;
    unsigned starts; /* coroutines started in this pass (since the last tick) */
    unsigned quiet;  /* passes in a row, of those that started any, that started one */
#ifdef LOOP_TSAN
    void *main_fiber;
#endif
#ifdef LOOP_ASAN
    const void *main_bottom;
    size_t main_size;
#endif
};

static _Thread_local struct shop_loop *t_loop;
static void (*g_slot_free)(void *);

/* The sanitizers' view of a switch: before it, where execution goes; after it, back. */
static void before_switch(struct shop_loop *l, struct shop_co *to, void **fake)
{
#ifdef LOOP_ASAN
    if (to)
        __sanitizer_start_switch_fiber(fake, to->map + 4096, CO_STACK);
    else
        __sanitizer_start_switch_fiber(fake, l->main_bottom, l->main_size);
#else
    (void)fake;
#endif
#ifdef LOOP_TSAN
    __tsan_switch_to_fiber(to ? to->fiber : l->main_fiber, 0);
#else
    (void)l;
    (void)to;
#endif
}

static void after_switch(struct shop_loop *l, bool on_main, void *fake)
{
#ifdef LOOP_ASAN
    if (on_main)
        __sanitizer_finish_switch_fiber(fake, NULL, NULL);
    else
        __sanitizer_finish_switch_fiber(fake, &l->main_bottom, &l->main_size);
#else
    (void)l;
    (void)on_main;
    (void)fake;
#endif
}

/* ---- coroutines ----------------------------------------------------------------------------- */

/* From a coroutine to the loop's stack. */
static void to_main(struct shop_loop *l, struct shop_co *co)
{
    void *fake = NULL;
    co->span = shop_span_set_current(NULL);
    before_switch(l, NULL, &fake);
    shop_ctx_switch(&co->ctx, &l->main);
    after_switch(l, false, fake);
}

/* A coroutine's life: one function after another, back to the loop after each. */
static void co_main(void)
{
    struct shop_loop *l = t_loop;
    after_switch(l, false, NULL);
    for (;;) {
        struct shop_co *co = l->cur;
        co->fn(co->arg);
        co->finished = true;
        to_main(l, co);
    }
}

/* From the loop's stack into co, back when it waits or finishes. */
static void enter(struct shop_loop *l, struct shop_co *co)
{
    void *fake = NULL;
    struct shop_span *loop_span = shop_span_set_current(co->span);
    l->cur = co;
    before_switch(l, co, &fake);
    shop_ctx_switch(&l->main, &co->ctx);
    after_switch(l, true, fake);
    l->cur = NULL;
    shop_span_set_current(loop_span);
}

static void co_destroy(struct shop_co *co)
{
    if (co->slot && g_slot_free)
        g_slot_free(co->slot);
#ifdef LOOP_TSAN
    __tsan_destroy_fiber(co->fiber);
#endif
    munmap(co->map, CO_STACK + 4096);
    free(co);
}

static struct shop_co *co_get(struct shop_loop *l)
{
    struct shop_co *co = l->free;
    if (co) {
        l->free = co->next;
        l->nfree--;
        return co;
    }
    co = shop_xcalloc(1, sizeof(*co));
    co->map = mmap(NULL, CO_STACK + 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (co->map == MAP_FAILED)
        shop_fatalx("out of memory for a coroutine stack");
    mprotect(co->map, 4096, PROT_NONE); /* an overflow faults instead of writing elsewhere */
    shop_ctx_init(&co->ctx, co->map + 4096, CO_STACK, co_main);
#ifdef LOOP_TSAN
    co->fiber = __tsan_create_fiber(0);
#endif
    return co;
}

static void co_put(struct shop_loop *l, struct shop_co *co)
{
    if (l->nfree >= FREE_KEEP) {
        co_destroy(co);
        return;
    }
    co->next = l->free;
    l->free = co;
    l->nfree++;
}

/* After a switch into co: a finished coroutine goes back to the pool (done() first when the
 * function had waited: its caller is gone). */
static void settle(struct shop_loop *l, struct shop_co *co, bool call_done)
{
    if (!co->finished)
        return;
    l->busy--;
    void (*done)(void *) = co->done;
    void *arg = co->arg;
    co_put(l, co);
    if (call_done && done)
        done(arg);
}

struct shop_co *shop_co_start(void (*fn)(void *), void (*done)(void *), void *arg)
{
    struct shop_loop *l = t_loop;
    struct shop_co *co = co_get(l);
    co->fn = fn;
    co->done = done;
    co->arg = arg;
    co->finished = co->waited = false;
    co->span = shop_span_current(); /* the caller's span is the coroutine's parent */
    l->busy++;
    l->starts++;
    enter(l, co);
    if (co->finished) {
        settle(l, co, false);
        return NULL;
    }
    return co;
}

void shop_co_wait(void)
{
    struct shop_loop *l = t_loop;
    struct shop_co *co = l->cur;
    co->waited = true;
    to_main(l, co);
}

void shop_co_wake(struct shop_co *co)
{
    struct shop_loop *l = t_loop;
    enter(l, co);
    settle(l, co, true);
}

void shop_co_wake_later(struct shop_co *co)
{
    struct shop_loop *l = t_loop;
    co->later = NULL;
    if (l->later)
        *l->later_tail = co;
    else
        l->later = co;
    l->later_tail = &co->later;
}

/* From the loop's stack: wakes the coroutines asked to be woken later, and those asked while they
 * run. Returns how many. */
static unsigned wake_later_all(struct shop_loop *l)
{
    unsigned n = 0;
    while (l->later) {
        struct shop_co *co = l->later;
        l->later = co->later;
        shop_co_wake(co);
        n++;
    }
    return n;
}

struct shop_co *shop_co_self(void)
{
    return t_loop ? t_loop->cur : NULL;
}

void **shop_co_slot(void)
{
    struct shop_co *co = shop_co_self();
    return co ? &co->slot : NULL;
}

void shop_co_slot_free_fn(void (*free_fn)(void *))
{
    g_slot_free = free_fn;
}

unsigned shop_loop_busy(void)
{
    return t_loop ? t_loop->busy : 0;
}

/* The calling coroutine is the only one running, the first this pass started, and the last
 * QUIET passes that started any started one each: under low load no other request is about to
 * come in the same pass. Under load passes start several (counted even when the first was served
 * in place), and one pass of several turns it off until QUIET single ones in a row again. */
bool shop_loop_alone(void)
{
    struct shop_loop *l = t_loop;
    return l && l->cur && l->busy == 1 && l->starts <= 1 && l->quiet >= QUIET;
}

/* ---- the loop ------------------------------------------------------------------------------- */

struct shop_loop *shop_loop_new(void)
{
    struct shop_loop *l = shop_xcalloc(1, sizeof(*l));
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = MAX_SRC};
    if (l->ep < 0 || l->evfd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->evfd, &ev) != 0) {
        if (l->ep >= 0)
            close(l->ep);
        if (l->evfd >= 0)
            close(l->evfd);
        free(l);
        return NULL;
    }
    shop_loop_enter(l);
    return l;
}

void shop_loop_enter(struct shop_loop *l)
{
#ifdef LOOP_TSAN
    if (l)
        l->main_fiber = __tsan_get_current_fiber();
#endif
    t_loop = l;
}

void shop_loop_stop_sources(struct shop_loop *l)
{
    for (unsigned i = 0; i < l->nsrc; i++)
        if (l->src[i]->stop)
            l->src[i]->stop(l->src[i]->arg);
    wake_later_all(l); /* e.g. those that waited for a load a stopped source ended */
}

void shop_loop_free(struct shop_loop *l)
{
    if (!l)
        return;
    shop_loop_stop_sources(l);
    while (l->nsrc > 0) {
        struct shop_loop_source *s = l->src[l->nsrc - 1];
        shop_loop_remove(l, s);
        if (s->destroy)
            s->destroy(s->arg);
    }
    while (l->free) {
        struct shop_co *co = l->free;
        l->free = co->next;
        co_destroy(co);
    }
    close(l->ep);
    close(l->evfd);
    if (t_loop == l)
        t_loop = NULL;
    free(l);
}

struct shop_loop *shop_loop_current(void)
{
    return t_loop;
}

static int src_index(struct shop_loop *l, struct shop_loop_source *s)
{
    for (unsigned i = 0; i < l->nsrc; i++)
        if (l->src[i] == s)
            return (int)i;
    return -1;
}

int shop_loop_add(struct shop_loop *l, struct shop_loop_source *s)
{
    if (l->nsrc == MAX_SRC)
        return -1;
    l->src_fd[l->nsrc] = -1;
    l->src[l->nsrc++] = s;
    return 0;
}

void shop_loop_remove(struct shop_loop *l, struct shop_loop_source *s)
{
    int i = src_index(l, s);
    if (i < 0)
        return;
    shop_loop_watch(l, s, -1, 0);
    for (unsigned k = (unsigned)i; k + 1 < l->nsrc; k++) {
        l->src[k] = l->src[k + 1];
        l->src_fd[k] = l->src_fd[k + 1];
        l->src_ev[k] = l->src_ev[k + 1];
    }
    l->nsrc--;
    /* the epoll data of the sources after i named their old index */
    for (unsigned k = (unsigned)i; k < l->nsrc; k++) {
        if (l->src_fd[k] >= 0) {
            struct epoll_event ev;
            epoll_ctl(l->ep, EPOLL_CTL_DEL, l->src_fd[k], NULL);
            ev.events = l->src_ev[k];
            ev.data.u32 = k;
            epoll_ctl(l->ep, EPOLL_CTL_ADD, l->src_fd[k], &ev);
        }
    }
}

int shop_loop_watch(struct shop_loop *l, struct shop_loop_source *s, int fd, uint32_t events)
{
    int i = src_index(l, s);
    if (i < 0)
        return -1;
    if (l->src_fd[i] >= 0 && l->src_fd[i] != fd) {
        epoll_ctl(l->ep, EPOLL_CTL_DEL, l->src_fd[i], NULL);
        l->src_fd[i] = -1;
    }
    if (fd < 0 || events == 0) {
        if (l->src_fd[i] >= 0)
            epoll_ctl(l->ep, EPOLL_CTL_DEL, l->src_fd[i], NULL);
        l->src_fd[i] = -1;
        return 0;
    }
    if (l->src_fd[i] == fd && l->src_ev[i] == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)i};
    int op = l->src_fd[i] == fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->ep, op, fd, &ev) != 0)
        return -1;
    l->src_fd[i] = fd;
    l->src_ev[i] = events;
    return 0;
}

/* Milliseconds until the nearest source deadline, at most max_ms; 0 while coroutines wait to be
 * woken later. */
static int wait_ms(struct shop_loop *l, int max_ms)
{
    if (l->later || l->hurry)
        return 0;
    long long now = shop_now_ns(), ms = max_ms;
    for (unsigned i = 0; i < l->nsrc; i++) {
        long long d = l->src[i]->deadline ? l->src[i]->deadline(l->src[i]->arg) : 0;
        if (d > 0) {
            long long left = d > now ? (d - now + 999999) / 1000000 : 0;
            if (left < ms)
                ms = left;
        }
    }
    return (int)ms;
}

int shop_loop_poll(struct shop_loop *l, int max_ms)
{
    struct epoll_event evs[MAX_SRC + 1];
    int n = epoll_wait(l->ep, evs, MAX_SRC + 1, wait_ms(l, max_ms));
    l->hurry = false;
    int ready = 0;
    for (int i = 0; i < n; i++) {
        uint32_t k = evs[i].data.u32;
        if (k == MAX_SRC) {
            uint64_t v;
            if (read(l->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                shop_log_warn("loop: eventfd");
        } else if (k < l->nsrc && l->src[k]->ready) {
            l->src[k]->ready(l->src[k]->arg, evs[i].events);
            ready++;
        }
    }
    return ready;
}

void shop_loop_tick(struct shop_loop *l)
{
    long long now = shop_now_ns();
    if (l->starts) {
        l->quiet = l->starts > 1 ? 0 : l->quiet < QUIET ? l->quiet + 1 : QUIET;
        l->starts = 0;
    }
    /* before the sources' ticks (which write what the woken queued) and after them (which may
     * have woken the coroutine whose answer others wait for): none is left waiting a pass. What
     * the woken answered is sent by the daemon's next run: the next poll does not wait. */
    unsigned woken = wake_later_all(l);
    for (unsigned i = 0; i < l->nsrc; i++)
        if (l->src[i]->tick)
            l->src[i]->tick(l->src[i]->arg, now);
    woken += wake_later_all(l);
    if (woken > 0)
        l->hurry = true;
}

void shop_loop_notify(struct shop_loop *l)
{
    uint64_t one = 1;
    if (write(l->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        shop_log_warn("loop: eventfd write");
}
