/* test_loop.c - the event loop and its coroutines: a coroutine that never waits finishes inside
 * shop_co_start; waiting ones go on, each on its own stack, in the order they are woken; done()
 * runs once per waited coroutine; the per-coroutine slot and the tracer's current span stay with
 * their coroutine across switches; a source's ready, tick and deadline hooks are called; stop
 * and destroy run at shop_loop_free; a source keeps its events when one before it is removed;
 * coroutines asked to be woken later (by a coroutine) run at the next tick, in the order asked, and
 * the poll after it does not wait. */
#include "libshop/loop.h"
#include "libshop/trace.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
    int id;
    int steps; /* waits before finishing */
    int *log;  /* ids appended as each step runs */
    size_t *nlog;
    int done; /* done() calls */
    bool slot_ok;
    bool span_ok;
    struct shop_co *co;
};

static void slot_free(void *p)
{
    free(p);
}

static void job_fn(void *arg)
{
    struct job *j = arg;
    struct shop_span mine; /* never begun: only its address is compared */
    shop_span_set_current(&mine);
    void **slot = shop_co_slot();
    if (!*slot)
        *slot = malloc(16);
    memcpy(*slot, &j->id, sizeof(j->id));
    char local[4096]; /* each coroutine has its own stack */
    memset(local, j->id, sizeof(local));
    j->slot_ok = j->span_ok = true;
    for (int s = 0; s < j->steps; s++) {
        j->log[(*j->nlog)++] = j->id;
        shop_co_wait();
        j->slot_ok = j->slot_ok && memcmp(*shop_co_slot(), &j->id, sizeof(j->id)) == 0;
        j->span_ok = j->span_ok && shop_span_current() == &mine;
        for (size_t i = 0; i < sizeof(local); i++)
            if (local[i] != (char)j->id)
                j->slot_ok = false;
    }
    j->log[(*j->nlog)++] = j->id;
    shop_span_set_current(NULL);
}

static void job_done(void *arg)
{
    ((struct job *)arg)->done++;
}

static void test_coroutines(void)
{
    struct shop_loop *l = shop_loop_new();
    CHECK(l != NULL && shop_loop_current() == l);
    CHECK(shop_co_self() == NULL && shop_co_slot() == NULL);
    int log[64];
    size_t nlog = 0;
    struct job jobs[3] = {{.id = 1, .steps = 0}, {.id = 2, .steps = 2}, {.id = 3, .steps = 1}};
    struct shop_span outer;
    shop_span_set_current(&outer);
    for (int i = 0; i < 3; i++) {
        jobs[i].log = log;
        jobs[i].nlog = &nlog;
        jobs[i].co = shop_co_start(job_fn, job_done, &jobs[i]);
        CHECK(shop_span_current() == &outer); /* the loop's own span is back after a switch */
    }
    CHECK(jobs[0].co == NULL && jobs[0].done == 0); /* finished inside start: no done() */
    CHECK(jobs[1].co != NULL && jobs[2].co != NULL);
    CHECK(shop_loop_busy() == 2);
    shop_co_wake(jobs[2].co); /* woken out of start order */
    shop_co_wake(jobs[1].co);
    shop_co_wake(jobs[1].co);
    CHECK(shop_span_current() == &outer);
    int want[] = {1, 2, 3, 3, 2, 2};
    CHECK(nlog == 6 && memcmp(log, want, sizeof(want)) == 0);
    CHECK(jobs[1].done == 1 && jobs[2].done == 1);
    CHECK(jobs[1].slot_ok && jobs[2].slot_ok && jobs[1].span_ok && jobs[2].span_ok);
    CHECK(shop_loop_busy() == 0);
    /* a pooled coroutine runs the next function */
    struct job again = {.id = 4, .steps = 1, .log = log, .nlog = &nlog};
    again.co = shop_co_start(job_fn, job_done, &again);
    CHECK(again.co != NULL);
    shop_co_wake(again.co);
    CHECK(again.done == 1 && log[nlog - 1] == 4 && again.slot_ok);
    shop_span_set_current(NULL);
    shop_loop_free(l);
    CHECK(shop_loop_current() == NULL);
}

struct src_state {
    int fds[2];
    int ready, ticks, stops, destroys;
    long long deadline;
};

static void s_ready(void *arg, uint32_t ev)
{
    struct src_state *s = arg;
    char b[8];
    (void)ev;
    if (read(s->fds[0], b, sizeof(b)) > 0)
        s->ready++;
}
static long long s_deadline(void *arg)
{
    return ((struct src_state *)arg)->deadline;
}
static void s_tick(void *arg, long long now)
{
    (void)now;
    ((struct src_state *)arg)->ticks++;
}
static void s_stop(void *arg)
{
    ((struct src_state *)arg)->stops++;
}
static void s_destroy(void *arg)
{
    ((struct src_state *)arg)->destroys++;
}

static void test_sources(void)
{
    struct shop_loop *l = shop_loop_new();
    struct src_state st = {0};
    CHECK(pipe(st.fds) == 0);
    struct shop_loop_source src = {s_ready, s_deadline, s_tick, s_stop, s_destroy, &st};
    CHECK(shop_loop_add(l, &src) == 0);
    CHECK(shop_loop_watch(l, &src, st.fds[0], 0x001 /* EPOLLIN */) == 0);
    CHECK(shop_loop_poll(l, 0) == 0 && st.ready == 0);
    CHECK(write(st.fds[1], "x", 1) == 1);
    CHECK(shop_loop_poll(l, 5000) == 1 && st.ready == 1);
    st.deadline = 1; /* long past: the poll does not wait */
    CHECK(shop_loop_poll(l, 60000) == 0);
    shop_loop_tick(l);
    CHECK(st.ticks == 1);
    shop_loop_notify(l); /* wakes a poll that would wait */
    st.deadline = 0;
    CHECK(shop_loop_poll(l, 60000) == 0);
    shop_loop_free(l);
    CHECK(st.stops == 1 && st.destroys == 1);
    close(st.fds[0]);
    close(st.fds[1]);
}

static uint32_t out_events;
static void out_ready(void *arg, uint32_t ev)
{
    (void)arg;
    out_events |= ev;
}

/* A source watched for writing keeps that interest when another source before it is removed
 * (the loop renumbers the sources after the removed one and adds them to epoll again), and
 * watching again with the same or other events does what it says. */
static void test_watch_events(void)
{
    struct shop_loop *l = shop_loop_new();
    struct src_state st = {0};
    int out[2];
    CHECK(pipe(st.fds) == 0 && pipe(out) == 0);
    struct shop_loop_source first = {.ready = s_ready, .arg = &st};
    struct shop_loop_source writer = {.ready = out_ready};
    CHECK(shop_loop_add(l, &first) == 0 && shop_loop_add(l, &writer) == 0);
    CHECK(shop_loop_watch(l, &first, st.fds[0], 0x001 /* EPOLLIN */) == 0);
    CHECK(shop_loop_watch(l, &writer, out[1], 0x004 /* EPOLLOUT */) == 0);
    CHECK(shop_loop_watch(l, &writer, out[1], 0x004) == 0); /* unchanged: still watched */
    CHECK(shop_loop_poll(l, 5000) == 1 && (out_events & 0x004));
    shop_loop_remove(l, &first);
    out_events = 0;
    CHECK(shop_loop_poll(l, 5000) == 1 && (out_events & 0x004));
    CHECK(shop_loop_watch(l, &writer, out[1], 0x001) == 0); /* the write end never reads */
    out_events = 0;
    CHECK(shop_loop_poll(l, 0) == 0 && out_events == 0);
    shop_loop_free(l);
    close(st.fds[0]);
    close(st.fds[1]);
    close(out[0]);
    close(out[1]);
}

/* A coroutine that records shop_loop_alone() when it starts, then waits once. */
static bool alone_seen;
static void alone_fn(void *arg)
{
    (void)arg;
    alone_seen = shop_loop_alone();
    shop_co_wait();
}

/* One pass (what happens between two ticks) that starts one alone_fn coroutine and finishes it;
 * what shop_loop_alone() said in it. */
static bool pass_of_one(struct shop_loop *l)
{
    struct shop_co *a = shop_co_start(alone_fn, NULL, NULL);
    bool seen = alone_seen;
    shop_co_wake(a);
    shop_loop_tick(l);
    return seen;
}

/* shop_loop_alone: only when the coroutine runs alone, is the first its pass started, and the
 * last 4 passes that started any started one each. */
static void test_alone(void)
{
    struct shop_loop *l = shop_loop_new();
    CHECK(!shop_loop_alone()); /* not in a coroutine */
    for (int i = 0; i < 4; i++)
        CHECK(!pass_of_one(l)); /* not yet 4 quiet passes */
    CHECK(pass_of_one(l));
    struct shop_co *a = shop_co_start(alone_fn, NULL, NULL);
    CHECK(alone_seen);
    struct shop_co *b = shop_co_start(alone_fn, NULL, NULL);
    CHECK(!alone_seen); /* a second one of the same pass, the first still waiting */
    shop_co_wake(a);
    shop_co_wake(b);
    shop_loop_tick(l); /* that pass started two */
    for (int i = 0; i < 4; i++)
        CHECK(!pass_of_one(l)); /* quiet again only after 4 single passes */
    shop_loop_tick(l);
    shop_loop_tick(l); /* passes that start none do not count either way */
    CHECK(pass_of_one(l));
    shop_loop_free(l);
}

/* A coroutine that asks for the others to be woken later, in its order. */
static struct shop_co *later_order[3];

static void waker_fn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        shop_co_wake_later(later_order[i]);
}

static void test_wake_later(void)
{
    struct shop_loop *l = shop_loop_new();
    int log[16];
    size_t nlog = 0;
    struct job jobs[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (struct job){.id = i + 1, .steps = 1, .log = log, .nlog = &nlog};
        jobs[i].co = shop_co_start(job_fn, job_done, &jobs[i]);
        CHECK(jobs[i].co != NULL);
    }
    later_order[0] = jobs[2].co, later_order[1] = jobs[0].co, later_order[2] = jobs[1].co;
    CHECK(shop_co_start(waker_fn, NULL, NULL) == NULL);
    CHECK(nlog == 3); /* asked, not woken: not from inside a coroutine */
    shop_loop_tick(l);
    CHECK(nlog == 6 && log[3] == 3 && log[4] == 1 && log[5] == 2);
    CHECK(jobs[0].done == 1 && jobs[1].done == 1 && jobs[2].done == 1 && shop_loop_busy() == 0);
    /* woken in the tick: what they answered is sent at once, the next poll does not wait */
    long long t0 = shop_now_ns();
    shop_loop_poll(l, 2000);
    CHECK(shop_now_ns() - t0 < 1000000000LL);
    shop_loop_free(l);
}

int main(void)
{
    shop_co_slot_free_fn(slot_free);
    test_coroutines();
    test_sources();
    test_watch_events();
    test_alone();
    test_wake_later();
    return check_report("loop");
}
