/* kmemo.c - a keyed memo (kmemo.h): a hash table of entries in use order behind one mutex; an
 * entry being loaded carries its flight, which its waiters share and the last one frees; a
 * failed flight may stay on its entry for fail_ms as the answer of every get. A thread waits
 * for a flight on the memo's condition variable; a coroutine waits for a flight of its own loop
 * as a coroutine (shop_co_wait), and the flight's end wakes it through its loop. */
#include "libshop/kmemo.h"
#include "libshop/loop.h"
#include "libshop/util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A coroutine waiting for a flight of its loop (on its stack). */
struct co_waiter {
    struct shop_co *co;
    struct co_waiter *next;
};

/* One load in flight for a key: its answer, for the callers that wait for it. */
struct flight {
    unsigned refs; /* the loader's and each waiter's, under mu */
    bool done;
    struct shop_loop *loop;       /* the loader's loop when it loads in a coroutine, else NULL */
    struct co_waiter *co_waiters; /* coroutines of that loop waiting for the answer */
    void *value;                  /* the answer, held once for the flight; NULL: err */
    struct shop_err err;
    long long ended_ns; /* when a failed load ended (for fail_ms) */
};

struct shop_kmemo_entry {
    struct shop_kmemo_entry *next;          /* hash chain */
    struct shop_kmemo_entry *newer, *older; /* use order */
    struct flight *flight;                  /* the load in flight, or NULL (then never evicted) */
    struct flight *failed;                  /* the last load, failed, kept fail_ms, or NULL */
    void *value;                            /* NULL: none; kept while a new load is in flight */
    long long loaded_ns;                    /* when the load of value started */
    uint32_t hash;
    char key[];
};

void shop_kmemo_init(struct shop_kmemo *m, const struct shop_kmemo_conf *conf)
{
    *m = (struct shop_kmemo){.c = *conf};
    if (!m->c.now_ns)
        m->c.now_ns = shop_now_ns;
    if (m->c.max_keys < 1)
        m->c.max_keys = 1;
    m->nbuckets = 1;
    while (m->nbuckets < m->c.max_keys)
        m->nbuckets *= 2;
    m->buckets = shop_xcalloc(m->nbuckets, sizeof(*m->buckets));
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->loaded, NULL);
}

/* FNV-1a. */
static uint32_t hash_of(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static struct shop_kmemo_entry **chain_of(struct shop_kmemo *m, uint32_t hash)
{
    return &m->buckets[hash & (m->nbuckets - 1)];
}

static struct shop_kmemo_entry *find(struct shop_kmemo *m, const char *key, uint32_t hash)
{
    for (struct shop_kmemo_entry *e = *chain_of(m, hash); e; e = e->next)
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void order_unlink(struct shop_kmemo *m, struct shop_kmemo_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    e->newer = e->older = NULL;
}

/* Makes e the most recently used entry. */
static void touch(struct shop_kmemo *m, struct shop_kmemo_entry *e)
{
    if (m->newest == e)
        return;
    if (e->newer || e->older || m->oldest == e)
        order_unlink(m, e);
    e->older = m->newest;
    if (m->newest)
        m->newest->newer = e;
    m->newest = e;
    if (!m->oldest)
        m->oldest = e;
}

/* Under mu: gives back a reference to f, freeing it with the last one. */
static void flight_release(struct shop_kmemo *m, struct flight *f)
{
    if (--f->refs > 0)
        return;
    if (f->value)
        m->c.drop(f->value);
    free(f);
}

/* Unlinks e from its chain and the use order, drops its value and error and frees it. */
static void entry_free(struct shop_kmemo *m, struct shop_kmemo_entry *e)
{
    struct shop_kmemo_entry **p = chain_of(m, e->hash);
    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    order_unlink(m, e);
    m->count--;
    if (e->value)
        m->c.drop(e->value);
    if (e->failed)
        flight_release(m, e->failed);
    free(e);
}

/* A new entry for key (the newest), evicting the least recently used entry not being loaded
 * when the table is full; NULL when every entry is being loaded. */
static struct shop_kmemo_entry *insert(struct shop_kmemo *m, const char *key, size_t klen,
                                       uint32_t hash)
{
    if (m->count >= m->c.max_keys) {
        struct shop_kmemo_entry *victim = m->oldest;
        while (victim && victim->flight)
            victim = victim->newer;
        if (!victim)
            return NULL;
        entry_free(m, victim);
    }
    struct shop_kmemo_entry *e = shop_xcalloc(1, sizeof(*e) + klen + 1);
    memcpy(e->key, key, klen + 1);
    e->hash = hash;
    e->next = *chain_of(m, hash);
    *chain_of(m, hash) = e;
    m->count++;
    touch(m, e);
    return e;
}

static bool keepable(struct shop_kmemo *m, const void *value)
{
    return !m->c.max_value || !m->c.size || m->c.size(value) <= m->c.max_value;
}

/* Under mu, returns unlocked: loads e's value as the owner of a new flight, keeps it (or the
 * error, for fail_ms; else drops the entry: other errors and oversized values are not kept) and
 * hands the answer to the waiters. */
static void *fill(struct shop_kmemo *m, struct shop_kmemo_entry *e, void *arg, struct shop_err *err)
{
    struct flight *f = shop_xcalloc(1, sizeof(*f));
    f->refs = 1;
    f->loop = shop_co_self() ? shop_loop_current() : NULL;
    e->flight = f;
    if (e->failed)
        flight_release(m, e->failed);
    e->failed = NULL;
    long long start = m->c.now_ns();
    pthread_mutex_unlock(&m->mu);
    void *v = m->c.load(m->c.ud, e->key, arg, err);
    pthread_mutex_lock(&m->mu);
    f->done = true;
    e->flight = NULL;
    if (v) {
        m->c.hold(v);
        f->value = v;
    } else {
        f->err = *err;
        f->ended_ns = m->c.now_ns();
    }
    void *old = e->value; /* given out meanwhile within stale_ms */
    e->value = NULL;
    if (v && keepable(m, v)) {
        m->c.hold(v);
        e->value = v;
        e->loaded_ns = start;
    } else if (!v && m->c.fail_ms > 0) {
        f->refs++;
        e->failed = f;
    } else {
        entry_free(m, e);
    }
    pthread_cond_broadcast(&m->loaded);
    for (struct co_waiter *w = f->co_waiters; w; w = w->next)
        shop_co_wake_later(w->co); /* the loop switches into each once this coroutine waits */
    flight_release(m, f);
    pthread_mutex_unlock(&m->mu);
    if (old)
        m->c.drop(old);
    return v;
}

/* Under mu, returns unlocked: the answer of f (done), shared by a waiter. */
static void *share(struct shop_kmemo *m, struct flight *f, struct shop_err *err)
{
    m->waiting--;
    void *v = f->value;
    if (v)
        m->c.hold(v);
    else
        *err = f->err;
    flight_release(m, f);
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* Under mu, returns unlocked: a thread waits for f's load and shares its answer. */
static void *wait_flight(struct shop_kmemo *m, struct flight *f, struct shop_err *err)
{
    f->refs++;
    m->waiting++;
    while (!f->done)
        pthread_cond_wait(&m->loaded, &m->mu);
    return share(m, f, err);
}

/* Under mu, returns unlocked: a coroutine of f's loop waits for f's load (the loop serves the
 * others meanwhile) and shares its answer. */
static void *co_wait_flight(struct shop_kmemo *m, struct flight *f, struct shop_err *err)
{
    struct co_waiter w = {.co = shop_co_self(), .next = f->co_waiters};
    f->co_waiters = &w;
    f->refs++;
    m->waiting++;
    pthread_mutex_unlock(&m->mu);
    shop_co_wait(); /* until fill() has the answer */
    pthread_mutex_lock(&m->mu);
    return share(m, f, err);
}

/* Under mu, returns unlocked: e's value, held. */
static void *give(struct shop_kmemo *m, struct shop_kmemo_entry *e)
{
    touch(m, e);
    void *v = e->value;
    m->c.hold(v);
    pthread_mutex_unlock(&m->mu);
    return v;
}

static bool within(struct shop_kmemo *m, long long since_ns, long ms)
{
    return m->c.now_ns() - since_ns < ms * 1000000LL;
}

void *shop_kmemo_get(struct shop_kmemo *m, const char *key, void *arg, struct shop_err *err)
{
    size_t klen = strlen(key);
    if (m->c.ttl_ms <= 0 || klen > SHOP_KMEMO_KEY_MAX)
        return m->c.load(m->c.ud, key, arg, err);
    uint32_t hash = hash_of(key);
    pthread_mutex_lock(&m->mu);
    struct shop_kmemo_entry *e = find(m, key, hash);
    if (e && e->value && within(m, e->loaded_ns, m->c.ttl_ms))
        return give(m, e);
    if (e && e->failed && within(m, e->failed->ended_ns, m->c.fail_ms)) {
        *err = e->failed->err;
        pthread_mutex_unlock(&m->mu);
        return NULL;
    }
    if (e && e->flight) {
        if (e->value && (m->c.stale_ms < 0 || within(m, e->loaded_ns, m->c.ttl_ms + m->c.stale_ms)))
            return give(m, e);
        struct shop_loop *l = shop_loop_current();
        if (!l)
            return wait_flight(m, e->flight, err);
        if (e->flight->loop == l && shop_co_self())
            return co_wait_flight(m, e->flight, err);
        /* a loop thread must not block: the load may be its own coroutine's; another loop's
         * would wake it from that loop's thread, which this one does not take */
        e = NULL;
    } else if (!e) {
        e = insert(m, key, klen, hash); /* NULL: the table is full of loads */
    }
    if (e)
        return fill(m, e, arg, err);
    /* this caller loads by itself, without keeping */
    pthread_mutex_unlock(&m->mu);
    return m->c.load(m->c.ud, key, arg, err);
}

void shop_kmemo_forget(struct shop_kmemo *m, const char *key)
{
    pthread_mutex_lock(&m->mu);
    struct shop_kmemo_entry *e = find(m, key, hash_of(key));
    if (e && e->value) { /* a load in flight goes on and keeps its answer */
        m->c.drop(e->value);
        e->value = NULL;
    }
    pthread_mutex_unlock(&m->mu);
}

unsigned shop_kmemo_count(struct shop_kmemo *m, unsigned *waiting)
{
    pthread_mutex_lock(&m->mu);
    unsigned n = m->count;
    if (waiting)
        *waiting = m->waiting;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void shop_kmemo_cleanup(struct shop_kmemo *m)
{
    while (m->oldest)
        entry_free(m, m->oldest);
    free(m->buckets);
    m->buckets = NULL;
    pthread_cond_destroy(&m->loaded);
    pthread_mutex_destroy(&m->mu);
}
