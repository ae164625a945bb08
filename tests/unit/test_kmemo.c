/* test_kmemo.c - the keyed memo (libshop/kmemo.h) on a fake clock: a value is used until ttl_ms
 * after its load started, then loaded again; errors and oversized values are never kept; N
 * threads missing one key at once make one load and share its value or its error; the table
 * never holds more than max_keys entries and evicts the least recently used; a value stays
 * alive while a caller holds it, and every value is freed in the end (counted, and ASan); in a
 * coroutine of a loop a miss of a key being loaded by another coroutine of the same loop waits
 * as a coroutine (the loop goes on) and shares that load's value or error, woken at the loop's
 * next tick or when its sources stop; a load of another thread's loop is not waited for (that
 * thread could not wake this loop's coroutine): the miss loads by itself. */
#include "libshop/kmemo.h"
#include "libshop/loop.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* A reference-counted value whose frees are counted. */
struct val {
    atomic_int refs;
    char text[48];
};
static atomic_int live; /* values not freed yet */

static void val_hold(void *v)
{
    atomic_fetch_add(&((struct val *)v)->refs, 1);
}

static void val_drop(void *v)
{
    if (v && atomic_fetch_sub(&((struct val *)v)->refs, 1) == 1) {
        memset(v, 0, sizeof(struct val)); /* a later use reads garbage (and ASan sees it) */
        free(v);
        atomic_fetch_sub(&live, 1);
    }
}

static size_t val_size(const void *v)
{
    return strlen(((const struct val *)v)->text);
}

static _Atomic long long now_ms;
static atomic_int loads;
static atomic_bool fail_next;
/* a load parks here while the gate is closed, so other callers can be watched meanwhile */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static int in_load;

static long long fake_now(void)
{
    return atomic_load(&now_ms) * 1000000LL;
}

static void gate(bool closed)
{
    pthread_mutex_lock(&gate_mu);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void *load(void *ud, const char *key, void *arg, struct shop_err *err)
{
    (void)ud;
    (void)arg;
    int n = atomic_fetch_add(&loads, 1) + 1;
    pthread_mutex_lock(&gate_mu);
    in_load++;
    pthread_cond_broadcast(&gate_cv);
    while (gate_closed)
        pthread_cond_wait(&gate_cv, &gate_mu);
    in_load--;
    pthread_mutex_unlock(&gate_mu);
    if (atomic_exchange(&fail_next, false)) {
        shop_err_set(err, SHOP_ERR_UNAVAILABLE, 0, "down");
        return NULL;
    }
    struct val *v = shop_xcalloc(1, sizeof(*v));
    atomic_init(&v->refs, 1);
    snprintf(v->text, sizeof(v->text), "%s#%d", key, n);
    atomic_fetch_add(&live, 1);
    return v;
}

static struct shop_kmemo memo;

static void memo_init(long ttl_ms, unsigned max_keys, size_t max_value)
{
    atomic_store(&loads, 0);
    atomic_store(&now_ms, 0);
    shop_kmemo_init(&memo, &(struct shop_kmemo_conf){.ttl_ms = ttl_ms,
                                                     .max_keys = max_keys,
                                                     .max_value = max_value,
                                                     .load = load,
                                                     .hold = val_hold,
                                                     .drop = val_drop,
                                                     .size = val_size,
                                                     .now_ns = fake_now});
}

/* The answer of a get of key ("down" for the load's error), into buf. */
static const char *get(const char *key, char buf[48])
{
    struct shop_err err;
    struct val *v = shop_kmemo_get(&memo, key, NULL, &err);
    snprintf(buf, 48, "%.40s", v ? v->text : (err.kind == SHOP_ERR_UNAVAILABLE ? err.msg : "?"));
    val_drop(v);
    return buf;
}

static unsigned count(void)
{
    return shop_kmemo_count(&memo, NULL);
}

static void memo_done(void)
{
    shop_kmemo_cleanup(&memo);
    CHECK(atomic_load(&live) == 0); /* every value freed once: no reference kept or lost */
}

static void test_expiry(void)
{
    char a[48];
    memo_init(1000, 16, 0);
    CHECK_STR(get("k", a), "k#1");
    atomic_store(&now_ms, 999);
    CHECK_STR(get("k", a), "k#1");
    CHECK_STR(get("j", a), "j#2"); /* another key is its own entry */
    CHECK(atomic_load(&loads) == 2);
    atomic_store(&now_ms, 1000); /* ttl after the load started: loaded again */
    CHECK_STR(get("k", a), "k#3");
    CHECK_STR(get("k", a), "k#3");
    CHECK_STR(get("j", a), "j#2");
    memo_done();
    memo_init(0, 16, 0); /* ttl 0: every get loads, nothing is kept */
    CHECK_STR(get("k", a), "k#1");
    CHECK_STR(get("k", a), "k#2");
    CHECK(count() == 0);
    memo_done();
}

static void test_errors_and_size_not_kept(void)
{
    char a[48];
    memo_init(60000, 16, 8);
    atomic_store(&fail_next, true);
    CHECK_STR(get("k", a), "down");
    CHECK(count() == 0);
    CHECK_STR(get("k", a), "k#2"); /* the error was not kept: loaded again */
    CHECK_STR(get("k", a), "k#2");
    CHECK_STR(get("long-key", a), "long-key#3"); /* 10 bytes > max_value 8: given, not kept */
    CHECK_STR(get("long-key", a), "long-key#4");
    CHECK(count() == 1);
    memo_done();
}

static void test_eviction(void)
{
    char a[48], key[16];
    memo_init(60000, 4, 0);
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        get(key, a);
    }
    struct shop_err err;
    struct val *held = shop_kmemo_get(&memo, "k1", NULL, &err); /* k1 is now the newest */
    CHECK_STR(get("k4", a), "k4#5");                            /* evicts k0, the oldest */
    CHECK(count() == 4);
    CHECK_STR(get("k1", a), "k1#2");
    CHECK_STR(get("k0", a), "k0#6"); /* evicts k2 */
    CHECK_STR(get("k3", a), "k3#4");
    CHECK_STR(get("k2", a), "k2#7"); /* evicts k4 */
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "x%d", i);
        get(key, a);
        CHECK(count() <= 4 && atomic_load(&live) <= 5); /* 4 kept + the one held */
    }
    CHECK_STR(held->text, "k1#2"); /* evicted meanwhile, alive while held */
    val_drop(held);
    memo_done();
}

struct racer {
    const char *key;
    char got[48];
};

static void *racer_fn(void *arg)
{
    struct racer *r = arg;
    get(r->key, r->got);
    return NULL;
}

/* Waits (with a generous deadline) until n callers wait for a load; false if they never do. */
static bool waiting_reaches(unsigned n)
{
    for (int i = 0; i < 10000; i++) {
        unsigned w;
        shop_kmemo_count(&memo, &w);
        if (w >= n)
            return true;
        shop_sleep_ms(1);
    }
    return false;
}

/* N threads miss one key at once: one load, whose answer (want) all of them get. */
static void race(int n, bool fail, const char *want)
{
    struct racer r[8];
    pthread_t t[8];
    int before = atomic_load(&loads);
    atomic_store(&fail_next, fail);
    gate(true);
    for (int i = 0; i < n; i++) {
        r[i].key = "sf";
        pthread_create(&t[i], NULL, racer_fn, &r[i]);
    }
    CHECK(waiting_reaches((unsigned)n - 1));
    gate(false);
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        CHECK_STR(r[i].got, want);
    }
    CHECK(atomic_load(&loads) == before + 1);
}

static void test_single_flight(void)
{
    char a[48];
    memo_init(1000, 16, 0);
    race(8, false, "sf#1");
    CHECK_STR(get("sf", a), "sf#1");
    atomic_store(&now_ms, 1000);
    race(8, true, "down"); /* they share the failure, which is not kept */
    CHECK(count() == 0);
    CHECK_STR(get("sf", a), "sf#3");
    memo_done();
}

/* Coroutines of one loop: the first's load waits on the loop (as a backend call does); the
 * others miss the same key meanwhile and wait for that load as coroutines, not as threads (which
 * would block the loop, and with it the load, forever). */
static void co_get(void *arg)
{
    struct racer *r = arg;
    get(r->key, r->got);
}

static int yielding_loads;
static struct shop_co *parked; /* the coroutine whose load waits */

static void *yielding_load(void *ud, const char *key, void *arg, struct shop_err *err)
{
    if (yielding_loads++ == 0) {
        parked = shop_co_self();
        shop_co_wait();
    }
    return load(ud, key, arg, err);
}

static void test_loop_waits_as_coroutine(bool fail)
{
    memo_init(60000, 16, 0);
    memo.c.load = yielding_load;
    yielding_loads = 0;
    struct shop_loop *l = shop_loop_new();
    CHECK(l != NULL);
    struct racer first = {.key = "co"}, second = {.key = "co"}, third = {.key = "co"};
    struct shop_co *co = shop_co_start(co_get, NULL, &first);
    CHECK(co != NULL && parked == co);           /* its load waits on the loop */
    CHECK(shop_co_start(co_get, NULL, &second)); /* both wait for that load */
    CHECK(shop_co_start(co_get, NULL, &third));
    unsigned waiting = 0;
    shop_kmemo_count(&memo, &waiting);
    CHECK(waiting == 2);
    CHECK(yielding_loads == 1);
    atomic_store(&fail_next, fail);
    shop_co_wake(co); /* the load ends; the others are woken by the loop, not inside it */
    CHECK_STR(first.got, fail ? "down" : "co#1");
    CHECK(second.got[0] == '\0' && third.got[0] == '\0');
    if (fail)
        shop_loop_stop_sources(l); /* a stopping loop wakes them too */
    else
        shop_loop_tick(l);
    CHECK_STR(second.got, fail ? "down" : "co#1");
    CHECK_STR(third.got, fail ? "down" : "co#1");
    CHECK(atomic_load(&loads) == 1 && shop_loop_busy() == 0);
    shop_kmemo_count(&memo, &waiting);
    CHECK(waiting == 0);
    shop_loop_free(l);
    memo_done();
}

/* A coroutine whose key is being loaded by a coroutine of another thread's loop loads by itself. */
static atomic_int other_step; /* 1: the other loop's load is in flight; 2: it may end */
static struct racer other = {.key = "x"};
static bool other_parked; /* checked after the join: CHECK is for the main thread */

static void *other_thread(void *arg)
{
    (void)arg;
    struct shop_loop *l = shop_loop_new();
    struct shop_co *co = shop_co_start(co_get, NULL, &other);
    other_parked = co != NULL; /* its load waits */
    atomic_store(&other_step, 1);
    while (atomic_load(&other_step) != 2)
        shop_sleep_ms(1);
    if (co)
        shop_co_wake(co);
    shop_loop_free(l);
    return NULL;
}

static void test_other_loop_not_waited_for(void)
{
    memo_init(60000, 16, 0);
    memo.c.load = yielding_load;
    yielding_loads = 0;
    atomic_store(&other_step, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    while (atomic_load(&other_step) != 1)
        shop_sleep_ms(1);
    struct shop_loop *l = shop_loop_new();
    struct racer mine = {.key = "x"};
    CHECK(shop_co_start(co_get, NULL, &mine) == NULL); /* loaded by itself, done */
    CHECK_STR(mine.got, "x#1");
    atomic_store(&other_step, 2);
    pthread_join(t, NULL);
    CHECK(other_parked);
    CHECK_STR(other.got, "x#2");
    char a[48];
    CHECK_STR(get("x", a), "x#2"); /* the flight's owner keeps its value */
    shop_loop_free(l);
    memo_done();
}

int main(void)
{
    test_expiry();
    test_errors_and_size_not_kept();
    test_eviction();
    test_single_flight();
    test_loop_waits_as_coroutine(false);
    test_loop_waits_as_coroutine(true);
    test_other_loop_not_waited_for();
    return check_report("kmemo");
}
