/* memo.h - a value read from a backend and kept for a while (shipping's /codes body, the
 * catalogue's product snapshot): get-or-refresh with a staleness bound, single-flight. One
 * caller at a time loads a new value when the kept one expires; meanwhile the others are given
 * the kept value (for a bounded time) or wait for that load and share its result. A failed load
 * drops the kept value. Values are reference-counted by their owner's hold/drop functions, so
 * a caller keeps its value alive while a newer one replaces it. */
#ifndef SHOP_MEMO_H
#define SHOP_MEMO_H

#include "libshop/err.h"
#include "libshop/http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct shop_memo_conf {
    long ttl_ms;   /* a value is fresh this long after its load started */
    long stale_ms; /* while another caller loads, the expired value is still given out until it
                      is ttl_ms + stale_ms old; -1: for as long as that load takes */
    long fail_ms;  /* a failed load is every caller's answer this long, without loading again;
                      0: only the callers that waited for that load get it */
    /* a new value holding one reference (the memo's), or NULL with err set */
    void *(*load)(void *ud, struct shop_err *err);
    void (*hold)(void *value); /* takes one more reference */
    void (*drop)(void *value); /* gives one back */
    void *ud;
    long long (*now_ns)(void); /* the clock; NULL = shop_now_ns (tests bring their own) */
};

struct shop_memo {
    struct shop_memo_conf c;
    pthread_mutex_t mu;
    pthread_cond_t loaded; /* a load ended */
    void *value;           /* NULL when there is none */
    long long loaded_ns;   /* when the load of value started */
    bool loading;
    unsigned long long loads; /* loads ended so far */
    bool failed;              /* the last load failed */
    long long failed_ns;
    struct shop_err failed_err;
};

void shop_memo_init(struct shop_memo *m, const struct shop_memo_conf *conf);
/* The kept value when it is fresh, else per the rules above. Returns a held value (give it
 * back with conf->drop), or NULL with err set. */
void *shop_memo_get(struct shop_memo *m, struct shop_err *err);
/* Drops the kept value now (its backend is known to be gone): the next caller loads again. */
void shop_memo_forget(struct shop_memo *m);
/* Drops the value and frees the memo's resources (after the last get). */
void shop_memo_cleanup(struct shop_memo *m);

/* A reference-counted copy of some bytes and their strong tag, for a memo that keeps a
 * serialised body. */
struct shop_memo_bytes {
    atomic_int refs;
    size_t len;
    char etag[SHOP_ETAG_SIZE]; /* shop_etag_make of the bytes */
    char data[];               /* NUL-terminated */
};
/* A copy of len bytes of data holding one reference. */
struct shop_memo_bytes *shop_memo_bytes_new(const char *data, size_t len);
/* hold and drop for shop_memo_conf. */
void shop_memo_bytes_hold(void *bytes);
void shop_memo_bytes_drop(void *bytes);

#endif
