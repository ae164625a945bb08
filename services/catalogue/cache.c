/* cache.c - the catalogue's product snapshot (see cache.h for the staleness bound): parsed
 * once per period, with the bodies of /products, /categories and every /product/{sku}
 * serialised once, so the hot reads are a lookup and a copy. Reference-counted, so a
 * request keeps its snapshot alive while a newer one replaces it. */
#include "services/catalogue/cache.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/memo.h"
#include "services/catalogue/search.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (64u * 1024 * 1024)

static struct shop_memo memo;
static long ttl_ms_conf;
static cat_load_fn loader;

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct category strings of products (array of objects), sorted. New reference. */
static json_t *distinct_categories(const json_t *products)
{
    size_t cap = 16, n = 0;
    const char **names = shop_xcalloc(cap, sizeof(*names));
    for (size_t i = 0; i < json_array_size(products); i++) {
        json_t *cats = json_object_get(json_array_get(products, i), "categories");
        for (size_t j = 0; j < json_array_size(cats); j++) {
            const char *c = json_string_value(json_array_get(cats, j));
            if (!c)
                continue;
            if (n == cap)
                names = shop_xrealloc(names, (cap *= 2) * sizeof(*names));
            names[n++] = c;
        }
    }
    qsort(names, n, sizeof(*names), by_string);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            json_array_append_new(out, json_string(names[i]));
    free(names);
    return out;
}

bool cat_has_category(const struct cat_snapshot *s, size_t i, const void *cat)
{
    json_t *cats = json_object_get(json_array_get(s->products, i), "categories");
    for (size_t j = 0; j < json_array_size(cats); j++) {
        const char *c = json_string_value(json_array_get(cats, j));
        if (c && strcmp(c, cat) == 0)
            return true;
    }
    return false;
}

bool cat_matches_query(const struct cat_snapshot *s, size_t i, const void *query)
{
    const struct search_query *q = query;
    size_t len = s->woff[i + 1] - s->woff[i];
    return q->nterms > 0 && len > 0 && search_words_match(q, s->words.data + s->woff[i], len);
}

static void snapshot_free(struct cat_snapshot *s)
{
    json_decref(s->products);
    shop_buf_cleanup(&s->all);
    shop_buf_cleanup(&s->categories);
    shop_buf_cleanup(&s->bodies);
    free(s->off);
    free(s->by_name);
    shop_buf_cleanup(&s->words);
    free(s->woff);
    free(s);
}

/* Appends product i's body and search words, recording where they start. Returns 0 or -1
 * when full. */
static int add_product(struct cat_snapshot *s, size_t i)
{
    json_t *p = json_array_get(s->products, i);
    s->off[i] = s->bodies.len;
    s->woff[i] = s->words.len;
    return shop_json_dump(p, 0, &s->bodies) |
           search_index_words(json_string_value(json_object_get(p, "name")), &s->words) |
           search_index_words(json_string_value(json_object_get(p, "description")), &s->words);
}

struct cat_snapshot *cat_snapshot_build(json_t *products, struct shop_err *err)
{
    struct cat_snapshot *s = shop_xcalloc(1, sizeof(*s));
    s->products = products;
    s->n = json_array_size(products);
    s->off = shop_xcalloc(s->n + 1, sizeof(*s->off));
    s->by_name = shop_xcalloc(s->n + 1, sizeof(*s->by_name));
    s->woff = shop_xcalloc(s->n + 1, sizeof(*s->woff));
    search_name_order(products, s->by_name);
    shop_buf_init(&s->all, BODY_MAX);
    shop_buf_init(&s->categories, BODY_MAX);
    shop_buf_init(&s->bodies, BODY_MAX);
    shop_buf_init(&s->words, BODY_MAX);
    json_t *cats = distinct_categories(products);
    int rc = shop_json_dump(products, 0, &s->all) | shop_json_dump(cats, 0, &s->categories);
    json_decref(cats);
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        rc = add_product(s, i);
    s->off[s->n] = s->bodies.len;
    s->woff[s->n] = s->words.len;
    if (rc != 0) {
        snapshot_free(s);
        shop_err_set(err, SHOP_ERR_FAILED, 0, "catalogue too large to cache");
        return NULL;
    }
    /* every body answered from the snapshot is a function of the products (and the path), so
     * one tag made from all of them, once, serves each route */
    shop_etag_make(s->all.data, s->all.len, s->etag);
    atomic_init(&s->refs, 1); /* the cache's own reference */
    return s;
}

void cat_cache_release(struct cat_snapshot *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        snapshot_free(s);
}

static void snapshot_hold(void *s)
{
    atomic_fetch_add(&((struct cat_snapshot *)s)->refs, 1);
}

static void snapshot_drop(void *s)
{
    cat_cache_release(s);
}

/* The memo's loader: MongoDB's products as a snapshot. */
static void *snapshot_load(void *ud, struct shop_err *err)
{
    (void)ud;
    json_t *arr = NULL;
    return loader(&arr, err) == 0 ? cat_snapshot_build(arr, err) : NULL;
}

/* A snapshot stays fresh for ttl_ms; while one request re-reads it the others are served the
 * old one for as long as that read takes; a failed read is every request's answer for ttl_ms. */
void cat_cache_init(long ttl_ms, cat_load_fn load)
{
    ttl_ms_conf = ttl_ms;
    loader = load;
    shop_memo_init(&memo, &(struct shop_memo_conf){.ttl_ms = ttl_ms,
                                                   .stale_ms = -1,
                                                   .fail_ms = ttl_ms,
                                                   .load = snapshot_load,
                                                   .hold = snapshot_hold,
                                                   .drop = snapshot_drop});
}

long cat_cache_ttl(void)
{
    return ttl_ms_conf;
}

struct cat_snapshot *cat_cache_get(struct shop_err *err)
{
    memset(err, 0, sizeof(*err));
    if (ttl_ms_conf <= 0)
        return NULL;
    return shop_memo_get(&memo, err);
}

void cat_cache_forget(void)
{
    if (ttl_ms_conf > 0)
        shop_memo_forget(&memo);
}

void cat_cache_cleanup(void)
{
    if (ttl_ms_conf > 0)
        shop_memo_cleanup(&memo);
}

long cat_snapshot_find(const struct cat_snapshot *s, const char *sku)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *v = json_string_value(json_object_get(json_array_get(s->products, i), "sku"));
        if (v && strcmp(v, sku) == 0)
            return (long)i;
    }
    return -1;
}

int cat_snapshot_select(const struct cat_snapshot *s, cat_keep_fn keep, const void *arg,
                        struct shop_buf *out)
{
    int rc = shop_buf_putc(out, '[');
    bool first = true;
    for (size_t k = 0; rc == 0 && k < s->n; k++) {
        size_t i = s->by_name[k];
        if (!keep(s, i, arg))
            continue;
        if (!first)
            rc |= shop_buf_putc(out, ',');
        rc |= shop_buf_append(out, s->bodies.data + s->off[i], s->off[i + 1] - s->off[i]);
        first = false;
    }
    return rc | shop_buf_putc(out, ']');
}
