/* memo.c - get-or-refresh with a staleness bound, single-flight (see memo.h). */
#include "libshop/memo.h"
#include "libshop/util.h"

#include <stdlib.h>
#include <string.h>

void shop_memo_init(struct shop_memo *m, const struct shop_memo_conf *conf)
{
    *m = (struct shop_memo){.c = *conf};
    if (!m->c.now_ns)
        m->c.now_ns = shop_now_ns;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->loaded, NULL);
}

static long long ms_ns(long ms)
{
    return ms * 1000000LL;
}

/* Under mu: the kept value held for the caller. */
static void *give(struct shop_memo *m)
{
    void *v = m->value;
    m->c.hold(v);
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* Under mu, returns unlocked: loads a new value and publishes it, or the failure. */
static void *load(struct shop_memo *m, struct shop_err *err)
{
    long long start = m->c.now_ns();
    m->loading = true;
    pthread_mutex_unlock(&m->mu);
    void *v = m->c.load(m->c.ud, err);
    pthread_mutex_lock(&m->mu);
    void *old = m->value;
    m->value = v;
    m->loaded_ns = start;
    m->failed = v == NULL;
    if (!v) {
        m->failed_ns = m->c.now_ns();
        m->failed_err = *err;
    } else {
        m->c.hold(v); /* the caller's reference */
    }
    m->loading = false;
    m->loads++;
    pthread_cond_broadcast(&m->loaded);
    pthread_mutex_unlock(&m->mu);
    if (old)
        m->c.drop(old);
    return v;
}

void *shop_memo_get(struct shop_memo *m, struct shop_err *err)
{
    pthread_mutex_lock(&m->mu);
    for (;;) {
        long long age = m->c.now_ns() - m->loaded_ns;
        if (m->value && age < ms_ns(m->c.ttl_ms))
            return give(m);
        if (m->failed && m->c.now_ns() - m->failed_ns < ms_ns(m->c.fail_ms))
            break;
        if (!m->loading)
            return load(m, err);
        if (m->value && (m->c.stale_ms < 0 || age < ms_ns(m->c.ttl_ms + m->c.stale_ms)))
            return give(m);
        unsigned long long seen = m->loads;
        while (m->loading && m->loads == seen)
            pthread_cond_wait(&m->loaded, &m->mu);
        /* the load waited for is the newest there is: its answer is ours, however long it took */
        if (m->loads != seen && m->value)
            return give(m);
        if (m->loads != seen && m->failed)
            break;
    }
    *err = m->failed_err;
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

void shop_memo_forget(struct shop_memo *m)
{
    pthread_mutex_lock(&m->mu);
    void *old = m->value;
    m->value = NULL;
    pthread_mutex_unlock(&m->mu);
    if (old)
        m->c.drop(old);
}

void shop_memo_cleanup(struct shop_memo *m)
{
    shop_memo_forget(m);
    pthread_cond_destroy(&m->loaded);
    pthread_mutex_destroy(&m->mu);
}

struct shop_memo_bytes *shop_memo_bytes_new(const char *data, size_t len)
{
    struct shop_memo_bytes *b = shop_xmalloc(sizeof(*b) + len + 1);
    atomic_init(&b->refs, 1);
    b->len = len;
    memcpy(b->data, data, len);
    shop_etag_make(data, len, b->etag);
    b->data[len] = '\0';
    return b;
}

void shop_memo_bytes_hold(void *bytes)
{
    atomic_fetch_add(&((struct shop_memo_bytes *)bytes)->refs, 1);
}

void shop_memo_bytes_drop(void *bytes)
{
    struct shop_memo_bytes *b = bytes;
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}
