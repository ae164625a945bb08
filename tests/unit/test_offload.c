/* test_offload.c - offload.h: outside a coroutine the work runs in place; in coroutines it runs
 * on helper threads, several at once (more than the loop has threads), while the coroutines
 * wait and the loop is free; every coroutine goes on with its own answer during the loop's poll;
 * more jobs than helpers all run; a loop freed with jobs out waits for them and lets their
 * coroutines finish. */
#include "libshop/loop.h"
#include "libshop/offload.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <time.h>

/* A gate that opens once `want` jobs have arrived at it (or after 5 s). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_open = PTHREAD_COND_INITIALIZER;
static int gate_arrived, gate_want;

struct work {
    int in, out;      /* the job's answer: in * 2 */
    pthread_t ran_on; /* the thread the job ran on */
    bool met;         /* the job saw gate_want jobs at the gate at once */
    int sleep_ms;
    int done;     /* done() calls of its coroutine */
    int answered; /* the coroutine read its answer after the wait */
    struct shop_co *co;
};

static void work_fn(void *arg)
{
    struct work *w = arg;
    w->ran_on = pthread_self();
    if (gate_want) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&gate_lock);
        gate_arrived++;
        pthread_cond_broadcast(&gate_open);
        while (gate_arrived < gate_want &&
               pthread_cond_timedwait(&gate_open, &gate_lock, &until) == 0) {
        }
        w->met = gate_arrived >= gate_want;
        pthread_mutex_unlock(&gate_lock);
    }
    if (w->sleep_ms)
        shop_sleep_ms(w->sleep_ms);
    w->out = w->in * 2;
}

static void co_fn(void *arg)
{
    struct work *w = arg;
    shop_offload(work_fn, w);
    w->answered = w->out;
}

static void co_done(void *arg)
{
    ((struct work *)arg)->done++;
}

/* Polls the loop until no coroutine is busy, at most 10 s. Only polls: a coroutine goes on
 * during the poll that sees its job back (the server runs its daemon right after the poll, so
 * an answer made then goes out at once; one made in a later tick would wait). */
static void run_until_idle(struct shop_loop *l)
{
    long long until = shop_now_ns() + 10000000000LL;
    while (shop_loop_busy() > 0 && shop_now_ns() < until)
        shop_loop_poll(l, 100);
}

static void test_in_place(void)
{
    struct work w = {.in = 21};
    shop_offload(work_fn, &w); /* no loop here */
    CHECK(w.out == 42 && pthread_equal(w.ran_on, pthread_self()));
}

/* n coroutines, each with a job; gate: the jobs must all be at the gate at once. */
static void test_jobs(int n, bool gate)
{
    struct shop_loop *l = shop_loop_new();
    struct work w[16] = {{0}};
    gate_arrived = 0;
    gate_want = gate ? n : 0;
    for (int i = 0; i < n; i++) {
        w[i].in = i + 1;
        w[i].co = shop_co_start(co_fn, co_done, &w[i]);
        CHECK(w[i].co != NULL); /* waiting: the loop is back */
    }
    CHECK(shop_loop_busy() == (unsigned)n);
    run_until_idle(l);
    CHECK(shop_loop_busy() == 0);
    for (int i = 0; i < n; i++) {
        CHECK(w[i].answered == 2 * (i + 1) && w[i].done == 1);
        CHECK(!pthread_equal(w[i].ran_on, pthread_self()));
        if (gate)
            CHECK(w[i].met);
    }
    gate_want = 0;
    shop_loop_free(l);
}

static void test_free_with_jobs_out(void)
{
    struct shop_loop *l = shop_loop_new();
    struct work w = {.in = 5, .sleep_ms = 50};
    w.co = shop_co_start(co_fn, co_done, &w);
    CHECK(w.co != NULL);
    shop_loop_free(l); /* stop waits for the job, then the coroutine finishes */
    CHECK(w.answered == 10 && w.done == 1);
}

int main(void)
{
    test_in_place();
    test_jobs(1, false);
    test_jobs(4, true);                         /* four at once, on one loop thread */
    test_jobs(SHOP_OFFLOAD_HELPERS + 4, false); /* more than the helpers: queued, all run */
    test_jobs(3, false);                        /* the helpers, idle now, are used again */
    test_free_with_jobs_out();
    return check_report("offload");
}
