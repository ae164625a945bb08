/* kmemo.h - values read from a backend by key and kept for a while (the cart's catalogue answer
 * per SKU, D25; memo.h is a one-key kmemo). A value is used for ttl_ms after its load started,
 * then the next caller loads it again. Single-flight per key: callers that miss a key while
 * another caller loads it are given the expired value within stale_ms, else wait for that load
 * and share its answer, value or error. On a thread running a loop (libshop/loop.h) a coroutine
 * waits as a coroutine, and only for a load of a coroutine of its own loop (woken through the
 * loop when it ends); for any other load it loads by itself: blocking the thread would stop its
 * loop, and with it perhaps the load itself. A failed load drops the key's value; its error is
 * every caller's answer for fail_ms. The table is bounded: at most max_keys entries, the least
 * recently used one evicted for a new key, and a value larger than max_value bytes is given to
 * its callers but not kept; memory is at most max_keys x (about 100 B + key + max_value, or about
 * 400 B for a kept error). A hit takes the mutex for a lookup and hands out a reference (hold),
 * without allocating or copying the value. */
#ifndef SHOP_KMEMO_H
#define SHOP_KMEMO_H

#include "libshop/err.h"

#include <pthread.h>
#include <stddef.h>

#define SHOP_KMEMO_KEY_MAX 128 /* a longer key is never kept: every get of it loads */

struct shop_kmemo_conf {
    long ttl_ms;       /* a value is used this long after its load started; 0: never kept */
    long stale_ms;     /* while another caller loads, the expired value is still given out until it
                          is ttl_ms + stale_ms old; -1: for as long as that load takes */
    long fail_ms;      /* a failed load is every caller's answer this long, without loading again;
                          0: only the callers that waited for that load get it */
    unsigned max_keys; /* entries kept at most (>= 1) */
    size_t max_value;  /* a value whose size() is larger is not kept; 0: no limit */
    /* a new value for key holding one reference (the caller's), or NULL with err set; arg is
     * the caller's own (shop_kmemo_get's arg). Called without the memo's lock. */
    void *(*load)(void *ud, const char *key, void *arg, struct shop_err *err);
    void (*hold)(void *value);         /* takes one more reference */
    void (*drop)(void *value);         /* gives one back */
    size_t (*size)(const void *value); /* its bytes (NULL: max_value is not checked) */
    void *ud;
    long long (*now_ns)(void); /* the clock; NULL = shop_now_ns (tests bring their own) */
};

struct shop_kmemo_entry;

struct shop_kmemo {
    struct shop_kmemo_conf c;
    pthread_mutex_t mu;
    pthread_cond_t loaded;             /* a load ended */
    struct shop_kmemo_entry **buckets; /* hash chains, nbuckets a power of two */
    unsigned nbuckets;
    struct shop_kmemo_entry *newest, *oldest; /* the use order, for eviction */
    unsigned count;                           /* entries */
    unsigned waiting;                         /* callers waiting for a load (for tests) */
};

/* conf->max_keys entries' worth of buckets is allocated here. */
void shop_kmemo_init(struct shop_kmemo *m, const struct shop_kmemo_conf *conf);
/* key's value: the kept one when it is younger than ttl_ms, else the kept error or the expired
 * value per fail_ms and stale_ms, else the answer of a load (this caller's, with arg, or the one
 * in flight). Returns a held value (give it back with
 * conf->drop), or NULL with err set. Thread-safe. */
void *shop_kmemo_get(struct shop_kmemo *m, const char *key, void *arg, struct shop_err *err);
/* Drops key's value now (its backend is known to be gone): the next caller loads again, unless
 * a failed load's error is kept (fail_ms). */
void shop_kmemo_forget(struct shop_kmemo *m, const char *key);
/* Entries held now (with a value, an error or loading), and in *waiting (unless NULL) the callers
 * waiting for a load: for tests. */
unsigned shop_kmemo_count(struct shop_kmemo *m, unsigned *waiting);
/* Drops every value and frees the memo's resources (after the last get). */
void shop_kmemo_cleanup(struct shop_kmemo *m);

#endif
