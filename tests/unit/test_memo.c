/* test_memo.c - the libshop memo (memo.h) on a fake clock: a fresh value is served without
 * loading, an expired one is loaded again by one caller while the others get the kept value
 * within the staleness bound and wait for that load past it (sharing its answer), a failure
 * drops the value and is remembered for fail_ms, forget drops the value; in a coroutine of a
 * loop a get while another coroutine of the same loop loads waits for that load as a coroutine
 * (a thread's wait would never end) and is woken by the loop's next tick. */
#include "libshop/loop.h"
#include "libshop/memo.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic long long now_ms;
static atomic_int loads;
static atomic_bool fail_next;
/* a load in progress parks here until released, so other callers can be watched meanwhile */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_closed, in_load;

static long long fake_now(void)
{
    return atomic_load(&now_ms) * 1000000LL;
}

static void *load(void *ud, struct shop_err *err)
{
    (void)ud;
    int n = atomic_fetch_add(&loads, 1) + 1;
    pthread_mutex_lock(&gate_mu);
    in_load = true;
    pthread_cond_broadcast(&gate_cv);
    while (gate_closed)
        pthread_cond_wait(&gate_cv, &gate_mu);
    in_load = false;
    pthread_mutex_unlock(&gate_mu);
    if (atomic_exchange(&fail_next, false)) {
        shop_err_set(err, SHOP_ERR_UNAVAILABLE, 0, "down");
        return NULL;
    }
    char text[16];
    snprintf(text, sizeof(text), "v%d", n);
    return shop_memo_bytes_new(text, strlen(text));
}

static struct shop_memo memo;

/* The value a get answers ("" for none), and drops it. */
static const char *get(char buf[16])
{
    struct shop_err err;
    struct shop_memo_bytes *b = shop_memo_get(&memo, &err);
    snprintf(buf, 16, "%s", b ? b->data : (err.kind == SHOP_ERR_UNAVAILABLE ? "down" : "?"));
    shop_memo_bytes_drop(b);
    return buf;
}

static void *get_thread(void *out)
{
    get(out);
    return NULL;
}

static void gate(bool closed)
{
    pthread_mutex_lock(&gate_mu);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* Starts a get on a thread whose load parks at the gate; returns when it is inside the load. */
static pthread_t start_parked_load(char out[16])
{
    pthread_t t;
    gate(true);
    pthread_create(&t, NULL, get_thread, out);
    pthread_mutex_lock(&gate_mu);
    while (!in_load)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    return t;
}

static void test_fresh_and_stale(void)
{
    char a[16], b[16], c[16];
    CHECK_STR(get(a), "v1");
    atomic_store(&now_ms, 999);
    CHECK_STR(get(a), "v1");
    CHECK(atomic_load(&loads) == 1);
    atomic_store(&now_ms, 1500); /* expired: one caller loads, the others get v1 */
    pthread_t t = start_parked_load(c);
    CHECK_STR(get(a), "v1");
    CHECK_STR(get(b), "v1");
    CHECK(atomic_load(&loads) == 2);
    /* past ttl + stale the kept value is not given out: the caller waits for the load */
    atomic_store(&now_ms, 2000);
    pthread_t w;
    pthread_create(&w, NULL, get_thread, b);
    shop_sleep_ms(20); /* gives the waiter time to (wrongly) answer or load */
    CHECK(atomic_load(&loads) == 2);
    gate(false);
    pthread_join(t, NULL);
    pthread_join(w, NULL);
    CHECK_STR(c, "v2");
    CHECK_STR(b, "v2"); /* the waiter shares the load it waited for */
    CHECK(atomic_load(&loads) == 2);
}

static void test_failure(void)
{
    char a[16], c[16];
    atomic_store(&now_ms, 3000); /* v2 (read at 1500) expired, within the bound */
    atomic_store(&fail_next, true);
    pthread_t t = start_parked_load(c);
    CHECK_STR(get(a), "v2"); /* within the bound while the failing load runs */
    gate(false);
    pthread_join(t, NULL);
    CHECK_STR(c, "down");
    atomic_store(&now_ms, 3400); /* fail_ms: remembered, no load */
    CHECK_STR(get(a), "down");
    CHECK(atomic_load(&loads) == 3);
    atomic_store(&now_ms, 3600); /* the value was dropped: the next caller loads */
    CHECK_STR(get(a), "v4");
    shop_memo_forget(&memo);
    CHECK_STR(get(a), "v5");
}

static void memo_init(void *(*load_fn)(void *, struct shop_err *))
{
    shop_memo_init(&memo, &(struct shop_memo_conf){.ttl_ms = 1000,
                                                   .stale_ms = 1000,
                                                   .fail_ms = 500,
                                                   .load = load_fn,
                                                   .hold = shop_memo_bytes_hold,
                                                   .drop = shop_memo_bytes_drop,
                                                   .now_ns = fake_now});
}

/* Coroutines of one loop: the first's load waits on the loop (as a backend call does); the
 * second asks meanwhile, with no value kept, and waits for the first's load as a coroutine. */
static void co_get(void *out)
{
    get(out);
}

static int yielding_loads;

static void *yielding_load(void *ud, struct shop_err *err)
{
    if (yielding_loads++ == 0)
        shop_co_wait();
    return load(ud, err);
}

static void test_loop_waits_as_coroutine(void)
{
    char first[16], second[16] = "", a[16];
    memo_init(yielding_load);
    atomic_store(&loads, 0);
    struct shop_loop *l = shop_loop_new();
    CHECK(l != NULL);
    struct shop_co *co = shop_co_start(co_get, NULL, first);
    CHECK(co != NULL);                          /* its load waits on the loop */
    CHECK(shop_co_start(co_get, NULL, second)); /* waits for that load */
    shop_co_wake(co);
    CHECK_STR(first, "v1");
    CHECK(second[0] == '\0'); /* woken by the loop, not inside the first */
    shop_loop_tick(l);
    CHECK_STR(second, "v1");
    CHECK(atomic_load(&loads) == 1);
    CHECK_STR(get(a), "v1");
    shop_loop_free(l);
    shop_memo_cleanup(&memo);
}

int main(void)
{
    memo_init(load);
    test_fresh_and_stale();
    test_failure();
    shop_memo_cleanup(&memo);
    test_loop_waits_as_coroutine();
    return check_report("memo");
}
