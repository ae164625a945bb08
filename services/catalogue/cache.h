/* cache.h - the catalogue's in-memory snapshot of all products: the catalogue is small and
 * read-only for the shop, so one find per staleness period replaces one find per request.
 * Kept in the libshop memo (memo.h). Staleness bound: a snapshot is served for at most ttl_ms
 * after its read started (plus, for requests that arrive while another thread re-reads it, the
 * time of that one find). A failed re-read drops the snapshot and is remembered for ttl_ms, so
 * during a MongoDB outage every request answers 503 at once and one request per period probes
 * the database. */
#ifndef CATALOGUE_CACHE_H
#define CATALOGUE_CACHE_H

#include "libshop/err.h"
#include "libshop/http.h"
#include "libshop/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>

struct cat_snapshot {
    json_t *products;           /* array of product objects; never modified once published */
    struct shop_buf all;        /* body of GET /products */
    struct shop_buf categories; /* body of GET /categories */
    struct shop_buf bodies;     /* bodies of GET /product/{sku}, back to back */
    struct shop_buf words;      /* stemmed words of each name + description (search.h) */
    size_t n;                   /* number of products */
    size_t *off;                /* product i's body: bodies.data + off[i] up to off[i + 1] */
    size_t *woff;               /* product i's words: words.data + woff[i] up to woff[i + 1] */
    size_t *by_name;            /* product indices in name order (search_name_order) */
    char etag[SHOP_ETAG_SIZE];  /* strong tag of every body answered from it (D23) */
    atomic_int refs;
};

/* Reads every product (new array in *out); returns 0, or -1 with err set. */
typedef int (*cat_load_fn)(json_t **out, struct shop_err *err);

/* ttl_ms 0 disables the cache (cat_cache_get then always fails with err->kind SHOP_ERR_NONE). */
void cat_cache_init(long ttl_ms, cat_load_fn load);
long cat_cache_ttl(void);
/* A referenced snapshot (give it back with cat_cache_release), or NULL with err set when
 * MongoDB could not be read. */
struct cat_snapshot *cat_cache_get(struct shop_err *err);
void cat_cache_release(struct cat_snapshot *s);
/* Drops the snapshot now (health found MongoDB down): the next request reads again. */
void cat_cache_forget(void);
void cat_cache_cleanup(void);

/* A snapshot of products (stolen), as the cache builds them; one built outside the cache (the
 * cache-off path) is released with cat_cache_release too. NULL with err set when it would
 * exceed the size bound. */
struct cat_snapshot *cat_snapshot_build(json_t *products, struct shop_err *err);
/* Appends to out a JSON array of the products i for which keep(s, i, arg) is true, in name
 * order, joined from the pre-serialised bodies. Returns 0, or -1 when out is full. */
typedef bool (*cat_keep_fn)(const struct cat_snapshot *s, size_t i, const void *arg);
int cat_snapshot_select(const struct cat_snapshot *s, cat_keep_fn keep, const void *arg,
                        struct shop_buf *out);
/* cat_keep_fn: product i's "categories" hold the string cat exactly. */
bool cat_has_category(const struct cat_snapshot *s, size_t i, const void *cat);
/* cat_keep_fn: product i's name or description matches query (a struct search_query). */
bool cat_matches_query(const struct cat_snapshot *s, size_t i, const void *query);
/* Index of the product with exactly this sku, or -1. */
long cat_snapshot_find(const struct cat_snapshot *s, const char *sku);

#endif
