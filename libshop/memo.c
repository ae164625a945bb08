/* memo.c - a memo (memo.h) as a one-key kmemo. */
#include "libshop/memo.h"
#include "libshop/util.h"

#include <stdlib.h>
#include <string.h>

/* kmemo's load: the memo's own. */
static void *load_one(void *ud, const char *key, void *arg, struct shop_err *err)
{
    (void)key;
    (void)arg;
    struct shop_memo *m = ud;
    return m->c.load(m->c.ud, err);
}

void shop_memo_init(struct shop_memo *m, const struct shop_memo_conf *conf)
{
    m->c = *conf;
    shop_kmemo_init(&m->k, &(struct shop_kmemo_conf){.ttl_ms = conf->ttl_ms,
                                                     .stale_ms = conf->stale_ms,
                                                     .fail_ms = conf->fail_ms,
                                                     .max_keys = 1,
                                                     .load = load_one,
                                                     .hold = conf->hold,
                                                     .drop = conf->drop,
                                                     .ud = m,
                                                     .now_ns = conf->now_ns});
}

void *shop_memo_get(struct shop_memo *m, struct shop_err *err)
{
    return shop_kmemo_get(&m->k, "", NULL, err);
}

void shop_memo_forget(struct shop_memo *m)
{
    shop_kmemo_forget(&m->k, "");
}

void shop_memo_cleanup(struct shop_memo *m)
{
    shop_kmemo_cleanup(&m->k);
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
