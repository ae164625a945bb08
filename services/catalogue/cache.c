/* cache.c - the catalogue's product snapshot (see cache.h for the staleness bound): parsed
 * once per period, with the bodies of /products, /categories and every /product/{sku}
 * serialised once, so the hot reads are a lookup and a copy. Reference-counted, so a
 * request keeps its snapshot alive while a newer one replaces it. */
#include "services/catalogue/cache.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "services/catalogue/search.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (64u * 1024 * 1024)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;         /* current, failed_* */
static pthread_mutex_t refresh_mu = PTHREAD_MUTEX_INITIALIZER; /* one reader of MongoDB */
static struct cat_snapshot *current;
static long long failed_ns;
static struct shop_err failed_err;
static long long ttl_ns;
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
    s->loaded_ns = shop_now_ns();
    atomic_init(&s->refs, 1); /* the cache's own reference */
    return s;
}

void cat_cache_release(struct cat_snapshot *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        snapshot_free(s);
}

void cat_cache_init(long ttl_ms, cat_load_fn load)
{
    ttl_ms_conf = ttl_ms;
    ttl_ns = ttl_ms * 1000000LL;
    loader = load;
}

long cat_cache_ttl(void)
{
    return ttl_ms_conf;
}

/* Under mu: a referenced fresh snapshot, or NULL. *failed is set when a recent read failed. */
static struct cat_snapshot *fresh_locked(long long now, bool *failed, struct shop_err *err)
{
    *failed = false;
    if (current && now - current->loaded_ns < ttl_ns) {
        atomic_fetch_add(&current->refs, 1);
        return current;
    }
    if (!current && failed_ns && now - failed_ns < ttl_ns) {
        *failed = true;
        *err = failed_err;
    }
    return NULL;
}

/* Reads MongoDB and publishes the result (a snapshot, or the failure). Call with refresh_mu. */
static struct cat_snapshot *refresh(struct shop_err *err)
{
    json_t *arr = NULL;
    struct cat_snapshot *s = NULL, *old;
    if (loader(&arr, err) == 0)
        s = cat_snapshot_build(arr, err);
    pthread_mutex_lock(&mu);
    old = current;
    current = s;
    if (s) {
        failed_ns = 0;
        atomic_fetch_add(&s->refs, 1); /* the caller's reference */
    } else {
        failed_ns = shop_now_ns();
        failed_err = *err;
    }
    pthread_mutex_unlock(&mu);
    cat_cache_release(old);
    return s;
}

struct cat_snapshot *cat_cache_get(struct shop_err *err)
{
    memset(err, 0, sizeof(*err));
    if (ttl_ns <= 0)
        return NULL;
    for (;;) {
        bool failed;
        pthread_mutex_lock(&mu);
        struct cat_snapshot *s = fresh_locked(shop_now_ns(), &failed, err);
        pthread_mutex_unlock(&mu);
        if (s)
            return s;
        if (failed)
            return NULL;
        if (pthread_mutex_trylock(&refresh_mu) == 0) {
            s = refresh(err);
            pthread_mutex_unlock(&refresh_mu);
            return s;
        }
        /* another thread is reading: serve the stale snapshot meanwhile, if there is one */
        pthread_mutex_lock(&mu);
        s = current;
        if (s)
            atomic_fetch_add(&s->refs, 1);
        pthread_mutex_unlock(&mu);
        if (s)
            return s;
        pthread_mutex_lock(&refresh_mu); /* wait for that read, then look again */
        pthread_mutex_unlock(&refresh_mu);
    }
}

void cat_cache_forget(void)
{
    pthread_mutex_lock(&mu);
    struct cat_snapshot *old = current;
    current = NULL;
    pthread_mutex_unlock(&mu);
    cat_cache_release(old);
}

void cat_cache_cleanup(void)
{
    cat_cache_forget();
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
