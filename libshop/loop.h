/* loop.h - an event loop per worker thread and the coroutines requests run in (private to
 * libshop). A loop watches file descriptors of its sources (a backend connection, the HTTP
 * daemon); a request runs in a coroutine of its thread's loop, and a backend call that would
 * wait queues its work, then shop_co_wait()s: the loop goes on with other requests and switches
 * back into the coroutine (shop_co_wake) when the answer is there. Everything of a loop happens
 * on its own thread; no call here is thread-safe except shop_loop_notify. */
#ifndef SHOP_LOOP_H
#define SHOP_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct shop_loop;
struct shop_co;

/* What a loop calls back for one of its sources. Any hook may be NULL. */
struct shop_loop_source {
    void (*ready)(void *arg, uint32_t events); /* its fd is ready (epoll events) */
    long long (*deadline)(void *arg);          /* the next time tick must run (ns), 0: none */
    void (*tick)(void *arg, long long now);    /* every iteration: flush, expire deadlines */
    void (*stop)(void *arg);                   /* the loop stops: finish every waiter */
    void (*destroy)(void *arg);                /* the loop is freed */
    void *arg;
};

/* A loop, made the calling thread's (shop_loop_enter). NULL when out of descriptors. */
struct shop_loop *shop_loop_new(void);
/* Calls every source's stop and then destroy hook, and frees the loop. */
void shop_loop_free(struct shop_loop *l);
/* Makes l the calling thread's loop (the thread that runs it; NULL: none). */
void shop_loop_enter(struct shop_loop *l);
/* The calling thread's loop, or NULL on a thread without one. */
struct shop_loop *shop_loop_current(void);

/* Sources. add returns 0 or -1; the source struct must live until it is removed. fd may be -1
 * (no descriptor yet); shop_loop_watch sets or changes it (events 0: not watched; the same fd
 * and events again: no system call). A watched descriptor is unwatched before it is closed. */
int shop_loop_add(struct shop_loop *l, struct shop_loop_source *s);
void shop_loop_remove(struct shop_loop *l, struct shop_loop_source *s);
int shop_loop_watch(struct shop_loop *l, struct shop_loop_source *s, int fd, uint32_t events);

/* One iteration: waits at most max_ms (or until the nearest deadline, or shop_loop_notify) for
 * ready descriptors and calls their sources' ready hooks. Returns the number of ready sources. */
int shop_loop_poll(struct shop_loop *l, int max_ms);
/* Calls every source's tick hook (after the loop's other work of the iteration). */
void shop_loop_tick(struct shop_loop *l);
/* Calls every source's stop hook. */
void shop_loop_stop_sources(struct shop_loop *l);
/* Wakes the loop's poll from another thread. */
void shop_loop_notify(struct shop_loop *l);

/* Runs fn(arg) in a coroutine of the calling thread's loop until it finishes or waits. Returns
 * NULL when fn finished; else the coroutine, which goes on when woken, and done(arg) is called
 * (on the loop's stack) once fn has finished. */
struct shop_co *shop_co_start(void (*fn)(void *), void (*done)(void *), void *arg);
/* In a coroutine: switches back to the loop until shop_co_wake. */
void shop_co_wait(void);
/* From the loop (never from a coroutine): switches into co until it waits again or finishes. */
void shop_co_wake(struct shop_co *co);
/* From a coroutine of the calling thread's loop (or its own stack): co, a waiting coroutine of
 * the same loop, is woken at the loop's next tick (or when its sources stop), in the order
 * asked. For an answer that another coroutine of the loop produced. */
void shop_co_wake_later(struct shop_co *co);
/* The running coroutine, or NULL on the loop's own stack or a thread without a loop. */
struct shop_co *shop_co_self(void);
/* The running coroutine's one pointer of request state (NULL outside a coroutine). What is
 * stored there stays with the coroutine across requests; free_fn, set once per process before
 * any loop runs, frees it when the coroutine is destroyed. */
void **shop_co_slot(void);
void shop_co_slot_free_fn(void (*free_fn)(void *));
/* Coroutines of the calling thread's loop that are running a function (started, not finished). */
unsigned shop_loop_busy(void);
/* In a coroutine: it is the only one running and the loop's last few passes started one request
 * each (low load), so a backend round trip may be made in place instead of batched. */
bool shop_loop_alone(void);

#endif
