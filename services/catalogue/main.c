/* catalogue - the product catalogue service (docs/api/catalogue.yaml): products, categories and
 * search from MongoDB `catalogue.products`, read-only. The products are cached in memory for
 * CATALOGUE_CACHE_MS (default 1000 ms; 0 = one MongoDB query per request): see cache.h for the
 * staleness bound and docs/BENCHMARKS.md for what it buys. */
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/mongo.h"
#include "libshop/util.h"
#include "services/catalogue/cache.h"
#include "services/catalogue/search.h"

#include <stdlib.h>
#include <string.h>

/* The reference spells these two differently on different routes; clients may show them. */
#define DOWN_AVAIABLE  "database not avaiable"
#define DOWN_AVAILABLE "database not available"

static long go_slow_ms;

/* Runs a find and collects the documents as a JSON array. Returns 0, or -1 with err set. */
static int find_products(const bson_t *filter, long limit, json_t **out, bson_error_t *err)
{
    mongoc_client_t *client = shop_mongo_pop();
    mongoc_collection_t *coll = shop_mongo_collection(client, "products");
    bson_t opts = BSON_INITIALIZER;
    if (limit > 0)
        BSON_APPEND_INT64(&opts, "limit", limit);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
    const bson_t *doc;
    json_t *arr = json_array();
    while (mongoc_cursor_next(cur, &doc))
        json_array_append_new(arr, shop_bson_to_json(doc));
    int rc = 0;
    if (mongoc_cursor_error(cur, err)) {
        json_decref(arr);
        arr = NULL;
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&opts);
    mongoc_collection_destroy(coll);
    shop_mongo_push(client);
    *out = arr;
    return rc;
}

/* Every product, in natural order: the cache's loader. */
static int load_all(json_t **out, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    int rc = find_products(&filter, 0, out, err);
    bson_destroy(&filter);
    return rc;
}

/* Answers a failed query: 503 with the reference's text when MongoDB is unreachable (D16),
 * else 500 with a JSON error object. */
static void reply_db_error(struct shop_req *req, const bson_error_t *err, const char *down_text)
{
    if (shop_mongo_unavailable(err)) {
        shop_reply_text(req, 503, down_text);
        return;
    }
    shop_log_warnx("rid=%s query failed: %s", shop_req_id(req), err->message);
    shop_reply_json(req, 500, json_pack("{s:s}", "error", err->message));
}

static void health(struct shop_req *req)
{
    bool up = shop_mongo_ping();
    if (!up)
        cat_cache_forget(); /* MongoDB is gone: stop serving what it said before */
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s,s:b}", "app", "OK", "mongo", up));
}

/* The snapshot to answer from: the cache's, or with the cache off a private one built from a
 * fresh read. NULL with err set when MongoDB could not be read. */
static struct cat_snapshot *snapshot(bson_error_t *err)
{
    if (cat_cache_ttl() > 0)
        return cat_cache_get(err);
    json_t *all;
    if (load_all(&all, err) == -1)
        return NULL;
    return cat_snapshot_build(all, err);
}

/* Answers one of the snapshot's whole bodies: all products, or the categories. */
static void reply_whole(struct shop_req *req, bool categories, const char *down_text)
{
    bson_error_t err;
    struct cat_snapshot *s = snapshot(&err);
    if (!s) {
        reply_db_error(req, &err, down_text);
        return;
    }
    const struct shop_buf *b = categories ? &s->categories : &s->all;
    if (!shop_reply_etag(req, s->etag))
        shop_reply_json_text(req, 200, b->data, b->len);
    cat_cache_release(s);
}

static void products(struct shop_req *req)
{
    reply_whole(req, false, DOWN_AVAIABLE);
}

/* GET /product/{sku} without the cache: one find with the sku. */
static void product_uncached(struct shop_req *req)
{
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "sku", shop_req_param(req, "sku"));
    bson_error_t err;
    json_t *arr;
    if (find_products(&filter, 1, &arr, &err) == -1)
        reply_db_error(req, &err, DOWN_AVAILABLE);
    else if (json_array_size(arr) == 0)
        shop_reply_text(req, 404, "SKU not found"), json_decref(arr);
    else
        shop_reply_json(req, 200, json_incref(json_array_get(arr, 0))), json_decref(arr);
    bson_destroy(&filter);
}

static void product(struct shop_req *req)
{
    if (go_slow_ms > 0)
        shop_sleep_ms(go_slow_ms);
    if (cat_cache_ttl() <= 0) {
        product_uncached(req);
        return;
    }
    bson_error_t err;
    struct cat_snapshot *s = cat_cache_get(&err);
    if (!s) {
        reply_db_error(req, &err, DOWN_AVAILABLE);
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
                           const char *down_text)
{
    bson_error_t err;
    struct cat_snapshot *s = snapshot(&err);
    if (!s) {
        reply_db_error(req, &err, down_text);
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

static void by_category(struct shop_req *req)
{
    reply_selected(req, cat_has_category, shop_req_param(req, "cat"), DOWN_AVAIABLE);
}

static void categories(struct shop_req *req)
{
    reply_whole(req, true, DOWN_AVAILABLE);
}

static void search(struct shop_req *req)
{
    struct search_query q;
    search_query_parse(shop_req_param(req, "text"), &q);
    reply_selected(req, cat_matches_query, &q, DOWN_AVAILABLE);
}

static const struct shop_route routes[] = {
    {"GET", "/health", health},         {"GET", "/products", products},
    {"GET", "/product/:sku", product},  {"GET", "/products/:cat", by_category},
    {"GET", "/categories", categories}, {"GET", "/search/:text", search},
};

int main(int argc, char **argv)
{
    shop_service_init(argc, argv, "catalogue");
    struct shop_server_conf conf = {
        .service = "catalogue",
        .port = shop_conf_listen_port("CATALOGUE_SERVER_PORT", 8080),
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .cors = true,
    };
    (void)shop_conf_str("MONGO", "true"); /* the course's gate; accepted, not needed */
    go_slow_ms = shop_conf_long("GO_SLOW", 0, 0, 600000);
    cat_cache_init(shop_conf_long("CATALOGUE_CACHE_MS", 1000, 0, 60000), load_all);
    shop_mongo_init(shop_conf_str("MONGO_URL", "mongodb://mongodb:27017/catalogue"), "catalogue");
    int rc = shop_server_run(&conf);
    cat_cache_cleanup();
    shop_mongo_cleanup();
    return rc;
}
