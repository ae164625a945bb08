/* prodcache.c - the cart's product cache (prodcache.h): a fixed table of PRODCACHE_SLOTS
 * slots, each the last answer fetched for a SKU hashing to it with the time of its fetch, behind
 * one mutex (held only to compare and copy a few hundred bytes). Memory is bounded by the
 * table: at most PRODCACHE_SLOTS × (SKU + PRODCACHE_BODY_MAX) bytes. */
#include "services/cart/prodcache.h"
#include "libshop/util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    char *sku;  /* NULL: empty */
    char *body; /* NUL-terminated copy */
    size_t len;
    long long at_ns; /* when the request that fetched it was sent */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[PRODCACHE_SLOTS];
static long long window_ns;

static void slot_clear(struct slot *s)
{
    free(s->sku);
    free(s->body);
    memset(s, 0, sizeof(*s));
}

void prodcache_init(long window_ms)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < PRODCACHE_SLOTS; i++)
        slot_clear(&slots[i]);
    window_ns = window_ms > 0 ? window_ms * 1000000LL : 0;
    pthread_mutex_unlock(&mu);
}

/* FNV-1a of the SKU, reduced to a slot. */
static struct slot *slot_of(const char *sku)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)sku; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &slots[h % PRODCACHE_SLOTS];
}

char *prodcache_get(const char *sku, size_t *len)
{
    char *out = NULL;
    pthread_mutex_lock(&mu);
    struct slot *s = slot_of(sku);
    if (window_ns > 0 && s->sku && strcmp(s->sku, sku) == 0 &&
        shop_now_ns() - s->at_ns < window_ns) {
        out = shop_xmalloc(s->len + 1);
        memcpy(out, s->body, s->len + 1);
        *len = s->len;
    }
    pthread_mutex_unlock(&mu);
    return out;
}

void prodcache_put(const char *sku, const char *body, size_t len, long long asked_ns)
{
    if (len > PRODCACHE_BODY_MAX)
        return;
    char *k = shop_xstrdup(sku), *b = shop_xmalloc(len + 1);
    memcpy(b, body, len);
    b[len] = '\0';
    pthread_mutex_lock(&mu);
    if (window_ns > 0) {
        struct slot *s = slot_of(sku);
        slot_clear(s);
        *s = (struct slot){.sku = k, .body = b, .len = len, .at_ns = asked_ns};
        k = b = NULL;
    }
    pthread_mutex_unlock(&mu);
    free(k);
    free(b);
}

unsigned prodcache_count(void)
{
    unsigned n = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < PRODCACHE_SLOTS; i++)
        n += slots[i].sku != NULL;
    pthread_mutex_unlock(&mu);
    return n;
}
