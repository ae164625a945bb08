/* prodcache.h - the cart's short-lived copy of the catalogue's product answers, so that an add
 * does not ask the catalogue again for a product it asked about a moment ago. The catalogue
 * stays the authority: an entry is used at most the staleness window after it was fetched
 * (then the catalogue is asked again), only 200 answers are kept, and the table is bounded. */
#ifndef CART_PRODCACHE_H
#define CART_PRODCACHE_H

#include <stddef.h>

#define PRODCACHE_SLOTS    512  /* direct-mapped by the SKU's hash: a collision replaces */
#define PRODCACHE_BODY_MAX 4096 /* a larger answer is never kept (the catalogue's are ~300 B) */

/* window_ms: how long an entry may be used after its fetch (0 = no cache). Call once before
 * serving; it empties the table. */
void prodcache_init(long window_ms);

/* The body kept for sku if it was fetched less than the window ago: a heap copy (NUL-
 * terminated, freed by the caller) with *len; else NULL. Thread-safe. */
char *prodcache_get(const char *sku, size_t *len);

/* Keeps body, the catalogue's 200 answer for sku to a request sent at asked_ns (shop_now_ns()
 * before the call: the window counts from the moment the catalogue may have read the product).
 * Thread-safe. */
void prodcache_put(const char *sku, const char *body, size_t len, long long asked_ns);

/* Entries held now (fresh or not): for tests. */
unsigned prodcache_count(void);

#endif
