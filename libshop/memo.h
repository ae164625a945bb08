/* memo.h - one value read from a backend and kept for a while (shipping's /codes body, the
 * catalogue's product snapshot): a one-key kmemo (kmemo.h), with its rules: fresh for ttl_ms,
 * single-flight, the expired value given out within stale_ms while one caller loads a new one,
 * a failed load's error kept fail_ms. Values are reference-counted by their owner's hold/drop
 * functions, so a caller keeps its value alive while a newer one replaces it. */
#ifndef SHOP_MEMO_H
#define SHOP_MEMO_H

#include "libshop/err.h"
#include "libshop/http.h"
#include "libshop/kmemo.h"

#include <stdatomic.h>
#include <stddef.h>

/* The fields of shop_kmemo_conf of those names, but load has no key. */
struct shop_memo_conf {
    long ttl_ms, stale_ms, fail_ms;
    void *(*load)(void *ud, struct shop_err *err); /* a new value, one reference (the caller's) */
    void (*hold)(void *value);
    void (*drop)(void *value);
    void *ud;
    long long (*now_ns)(void); /* NULL = shop_now_ns */
};

struct shop_memo {
    struct shop_memo_conf c;
    struct shop_kmemo k; /* one key, "" */
};

void shop_memo_init(struct shop_memo *m, const struct shop_memo_conf *conf);
/* The kept value when it is fresh, else per kmemo's rules. Returns a held value (give it
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
