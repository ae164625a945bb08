/* routes.c - the catalogue's handlers: products, one product, a category, the categories and
 * search, answered from the snapshot (cache.h) or, with the cache off, from a fresh read. */
#include "services/catalogue/routes.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/mongo.h"
#include "libshop/util.h"
#include "services/catalogue/cache.h"
#include "services/catalogue/search.h"

#include <stdlib.h>
#include <string.h>

struct catalogue_config catalogue_cfg;

/* The reference spells these two differently on different routes; clients may show them. */
#define DOWN_AVAIABLE  "database not avaiable"
#define DOWN_AVAILABLE "database not available"

/* Runs a find on products (at most limit documents, 0 = all) into a new JSON array. Returns
 * 0, or -1 with err set. */
static int find_products(const json_t *filter, long limit, json_t **out, struct shop_err *err)
{
    json_t *opts = limit > 0 ? json_pack("{s:I}", "limit", (json_int_t)limit) : NULL;
    int rc = shop_mongo_find("products", filter, opts, out, err);
    json_decref(opts);
    return rc;
}

/* Every product, in natural order: the cache's loader. */
int catalogue_load_all(json_t **out, struct shop_err *err)
{
    return find_products(NULL, 0, out, err);
}

/* A failed query: 503 with the reference's text (either spelling) when MongoDB is unreachable
 * (D16), else 500 with a JSON error object. */
static const struct shop_err_reply down_avaiable = {.down = DOWN_AVAIABLE, .failed_json = true};
static const struct shop_err_reply down_available = {.down = DOWN_AVAILABLE, .failed_json = true};

void catalogue_health(struct shop_req *req)
{
    bool up = shop_mongo_ping();
    if (!up)
        cat_cache_forget(); /* MongoDB is gone: stop serving what it said before */
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s,s:b}", "app", "OK", "mongo", up));
}

/* The snapshot to answer from: the cache's, or with the cache off a private one built from a
 * fresh read. NULL with err set when MongoDB could not be read. */
static struct cat_snapshot *snapshot(struct shop_err *err)
{
    if (cat_cache_ttl() > 0)
        return cat_cache_get(err);
    json_t *all;
    if (catalogue_load_all(&all, err) == -1)
        return NULL;
    return cat_snapshot_build(all, err);
}

/* Answers one of the snapshot's whole bodies: all products, or the categories. */
static void reply_whole(struct shop_req *req, bool categories, const struct shop_err_reply *down)
{
    struct shop_err err;
    struct cat_snapshot *s = snapshot(&err);
    if (!s) {
        shop_reply_err(req, &err, down);
        return;
    }
    const struct shop_buf *b = categories ? &s->categories : &s->all;
    if (!shop_reply_etag(req, s->etag))
        shop_reply_json_text(req, 200, b->data, b->len);
    cat_cache_release(s);
}

void route_products(struct shop_req *req)
{
    reply_whole(req, false, &down_avaiable);
}

/* GET /product/{sku} without the cache: one find with the sku. */
static void product_uncached(struct shop_req *req)
{
    json_t *filter = json_pack("{s:s}", "sku", shop_req_param(req, "sku"));
    struct shop_err err;
    json_t *arr;
    if (!filter) /* not UTF-8: no product has that sku */
        shop_reply_text(req, 404, "SKU not found");
    else if (find_products(filter, 1, &arr, &err) == -1)
        shop_reply_err(req, &err, &down_available);
    else if (json_array_size(arr) == 0)
        shop_reply_text(req, 404, "SKU not found"), json_decref(arr);
    else
        shop_reply_json(req, 200, json_incref(json_array_get(arr, 0))), json_decref(arr);
    json_decref(filter);
}

void route_product(struct shop_req *req)
{
    if (catalogue_cfg.go_slow_ms > 0)
        shop_sleep_ms(catalogue_cfg.go_slow_ms);
    if (cat_cache_ttl() <= 0) {
        product_uncached(req);
        return;
    }
    struct shop_err err;
    struct cat_snapshot *s = cat_cache_get(&err);
    if (!s) {
        shop_reply_err(req, &err, &down_available);
        return;
    }
    long i = cat_snapshot_find(s, shop_req_param(req, "sku"));
    if (i < 0)
        shop_reply_text(req, 404, "SKU not found");
    else if (!shop_reply_etag(req, s->etag))
        shop_reply_json_text(req, 200, s->bodies.data + s->off[i], s->off[i + 1] - s->off[i]);
    cat_cache_release(s);
}

/* Answers the products for which keep() holds, ordered by name (by_category, search). */
static void reply_selected(struct shop_req *req, cat_keep_fn keep, const void *arg,
                           const struct shop_err_reply *down)
{
    struct shop_err err;
    struct cat_snapshot *s = snapshot(&err);
    if (!s) {
        shop_reply_err(req, &err, down);
        return;
    }
    if (shop_reply_etag(req, s->etag)) { /* 304: nothing to select */
        cat_cache_release(s);
        return;
    }
    struct shop_buf *out = shop_reply_scratch();
    if (cat_snapshot_select(s, keep, arg, out) == -1)
        shop_reply_text(req, 500, "response too large");
    else
        shop_reply_scratch_json(req, 200);
    cat_cache_release(s);
}

void route_by_category(struct shop_req *req)
{
    reply_selected(req, cat_has_category, shop_req_param(req, "cat"), &down_avaiable);
}

void route_categories(struct shop_req *req)
{
    reply_whole(req, true, &down_available);
}

void route_search(struct shop_req *req)
{
    struct search_query q;
    search_query_parse(shop_req_param(req, "text"), &q);
    reply_selected(req, cat_matches_query, &q, &down_available);
}
