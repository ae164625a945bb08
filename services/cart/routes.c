/* routes.c - the cart service's handlers: carts read, renamed, deleted and changed by atomic
 * updates of their Redis key, with prices from the catalogue. */
#include "services/cart/routes.h"
#include "libshop/client.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/kmemo.h"
#include "libshop/log.h"
#include "libshop/memo.h"
#include "libshop/metrics.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "services/cart/cartcalc.h"
#include "services/cart/cartcheck.h"
#include "services/cart/nonce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cart_config cart_cfg;

#define STR_(x)     #x
#define STR(x)      STR_(x)
#define COUNTER_KEY "anonymous-counter" /* the user service's key shares the keyspace (D11) */

/* Codes of the update callbacks (positive: handled by the caller, nothing written). */
enum {
    UPD_NO_CART = 1,
    UPD_CORRUPT,
    UPD_NOT_IN_CART,
    UPD_TOO_LARGE,
    UPD_FULL,
};

struct shop_counter items_added =
    SHOP_COUNTER_INIT("items_added", "running count of items added to cart", SHOP_NUM_JS);

/* ---- replies ------------------------------------------------------------------------------ */

static void reply_error(struct shop_req *req, int status, const char *msg)
{
    shop_reply_json(req, status, json_pack("{s:s}", "error", msg));
}

/* 503 when Redis is unreachable (D16), 500 with the reason for any other Redis failure. */
static const struct shop_err_reply redis_error = {
    .down = "redis not available", .down_json = true, .failed_json = true};

static void reply_cart(struct shop_req *req, const char *text)
{
    shop_reply_json_text(req, 200, text, strlen(text));
}

/* Answers an update's outcome: the stored cart, or the matching error. */
static void reply_update(struct shop_req *req, int rc, const char *text, const struct shop_err *err)
{
    switch (rc) {
    case 0:
        reply_cart(req, text);
        break;
    case UPD_NO_CART:
        shop_reply_text(req, 404, "cart not found");
        break;
    case UPD_NOT_IN_CART:
        shop_reply_text(req, 404, "not in cart");
        break;
    case UPD_CORRUPT:
        shop_log_warnx("rid=%s stored cart is corrupt", shop_req_id(req));
        reply_error(req, 500, "stored cart is not valid cart JSON");
        break;
    case UPD_TOO_LARGE:
        shop_reply_text(req, 400, "quantity too large");
        break;
    case UPD_FULL:
        shop_reply_text(req, 400, "cart full: at most " STR(CART_LINES_MAX) " lines");
        break;
    default:
        shop_reply_err(req, err, &redis_error);
    }
}

bool cart_id_allowed(struct shop_req *req, const char *id)
{
    if (strcmp(id, COUNTER_KEY) != 0)
        return true;
    shop_reply_text(req, 400, "cart id not allowed");
    return false;
}

/* ---- atomic cart updates ------------------------------------------------------------------ */

enum op { OP_ADD, OP_UPDATE, OP_SHIP };

struct update {
    enum op op;
    const char *sku;
    double qty;
    const json_t *name; /* add: the product's name */
    double price;       /* add: the product's price; ship: the cost */
    const char *location;
    char *result; /* the last text handed to Redis */
};

static int map_rc(enum cart_rc rc)
{
    switch (rc) {
    case CART_OK:
        return 0;
    case CART_NOT_IN_CART:
        return UPD_NOT_IN_CART;
    case CART_TOO_LARGE:
        return UPD_TOO_LARGE;
    case CART_FULL:
        return UPD_FULL;
    default:
        return UPD_CORRUPT;
    }
}

static enum cart_rc apply(json_t *cart, const struct update *u)
{
    switch (u->op) {
    case OP_ADD:
        return cart_add(cart, u->sku, u->name, u->price, u->qty);
    case OP_UPDATE:
        return cart_update(cart, u->sku, u->qty);
    default:
        return cart_ship(cart, u->location, u->price);
    }
}

/* shop_redis_update callback: current cart text -> new cart text. */
static int update_cb(const char *cur, size_t len, void *ud, char **out)
{
    struct update *u = ud;
    json_t *cart;
    if (cur)
        cart = cart_parse(cur, len);
    else if (u->op == OP_ADD)
        cart = cart_new();
    else
        return UPD_NO_CART;
    if (!cart)
        return UPD_CORRUPT;
    enum cart_rc rc = apply(cart, u);
    if (rc == CART_OK)
        rc = cart_recompute(cart);
    if (rc == CART_OK) {
        free(u->result);
        u->result = cart_dump(cart);
        *out = shop_xstrdup(u->result);
    }
    json_decref(cart);
    return map_rc(rc);
}

static void run_update(struct shop_req *req, const char *id, struct update *u)
{
    struct shop_err err;
    struct cart_nonce nonce = {0};
    if (u->op == OP_ADD) /* a cart the add creates gets a new nonce (D21), in the same write */
        cart_nonce_new(id, &nonce);
    int rc = shop_redis_update_new(id, cart_cfg.ttl, update_cb, u, nonce.key ? &nonce.write : NULL,
                                   &err);
    cart_nonce_free(&nonce);
    if (rc == 0 && u->op == OP_ADD)
        shop_counter_add(&items_added, u->qty);
    reply_update(req, rc, u->result, &err);
    free(u->result);
    u->result = NULL;
}

/* ---- catalogue ---------------------------------------------------------------------------- */

/* JavaScript's `instock == 0` for the JSON values a catalogue can hold. */
static bool out_of_stock(const json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v) == 0;
    if (json_is_false(v))
        return true;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
            s++;
        if (!*s)
            return true;
        double d = strtod(s, &end);
        while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
            end++;
        return end != s && !*end && d == 0;
    }
    return false;
}

/* The product object of a catalogue answer, or NULL. */
static json_t *product_of(const char *text, size_t len)
{
    json_error_t err;
    json_t *p = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &err);
    if (json_is_object(p))
        return p;
    json_decref(p);
    return NULL;
}

/* The catalogue's product answers by SKU (D25): a fresh answer is used again without asking,
 * concurrent adds of one SKU ask once (once per worker loop in loop mode), only product answers of
 * at most PRODUCT_BODY_MAX bytes are kept, at most PRODUCT_KEYS of them (about 2 MiB). */
#define PRODUCT_KEYS     512
#define PRODUCT_BODY_MAX 4096 /* the catalogue's are ~300 B */
static struct shop_kmemo products;

/* The kmemo's load: the catalogue's answer for sku as a shop_memo_bytes, or NULL with err: kind
 * SHOP_ERR_REJECTED for no such product, else the message of the 500. */
static void *load_product(void *ud, const char *sku, void *arg, struct shop_err *err)
{
    (void)ud;
    struct shop_req *req = arg;
    struct shop_http_result res;
    shop_http_result_init(&res, 256 * 1024);
    struct shop_peer_call call = {.method = "GET",
                                  .base = cart_cfg.catalogue_base,
                                  .verb = "product",
                                  .id = sku,
                                  .timeout_ms = cart_cfg.catalogue_timeout_ms,
                                  .request_id = shop_req_id(req)};
    struct shop_memo_bytes *body = NULL;
    json_t *product = NULL;
    if (shop_http_call_peer(&call, &res) == -1) {
        shop_err_set(err, SHOP_ERR_FAILED, 0, "%s", res.err.msg);
    } else if (res.status != 200) {
        shop_err_set(err, SHOP_ERR_REJECTED, res.status, "product not found");
    } else if (!(product = product_of(res.body.data, res.body.len))) {
        shop_log_warnx("rid=%s catalogue answered no product object", shop_req_id(req));
        shop_err_set(err, SHOP_ERR_FAILED, 0, "catalogue answer is not a product");
    } else {
        body = shop_memo_bytes_new(res.body.data, res.body.len);
    }
    json_decref(product);
    shop_http_result_cleanup(&res);
    return body;
}

static size_t product_size(const void *body)
{
    return ((const struct shop_memo_bytes *)body)->len;
}

void cart_products_init(long window_ms)
{
    shop_kmemo_init(&products, &(struct shop_kmemo_conf){.ttl_ms = window_ms,
                                                         .max_keys = PRODUCT_KEYS,
                                                         .max_value = PRODUCT_BODY_MAX,
                                                         .load = load_product,
                                                         .hold = shop_memo_bytes_hold,
                                                         .drop = shop_memo_bytes_drop,
                                                         .size = product_size});
}

/* Fetches the product (the catalogue's answer, or one it gave less than the window ago).
 * Returns 0 with *product set, or replies and returns -1. */
static int fetch_product(struct shop_req *req, const char *sku, json_t **product)
{
    struct shop_err err;
    struct shop_memo_bytes *body = shop_kmemo_get(&products, sku, req, &err);
    *product = body ? product_of(body->data, body->len) : NULL;
    shop_memo_bytes_drop(body);
    if (*product)
        return 0;
    if (body)
        reply_error(req, 500, "catalogue answer is not a product");
    else if (err.kind == SHOP_ERR_REJECTED)
        shop_reply_text(req, 404, "product not found");
    else
        reply_error(req, 500, err.msg);
    return -1;
}

/* ---- routes ------------------------------------------------------------------------------- */

void cart_health(struct shop_req *req)
{
    bool up = shop_redis_ping();
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s,s:b}", "app", "OK", "redis", up));
}

/* A stored value that GET and rename may hand on as it is: checked quickly when it looks like
 * the carts this service writes, with jansson otherwise (whose answer is final). */
static bool stored_cart_ok(const char *text, size_t len)
{
    if (cart_check_quick(text, len))
        return true;
    json_t *cart = cart_parse(text, len);
    bool ok = cart != NULL;
    json_decref(cart);
    return ok;
}

/* Reads a stored cart for GET and rename. Returns 1 with *text (freed by the caller), or
 * replies and returns 0. */
static int stored_cart(struct shop_req *req, const char *id, char **text, size_t *len)
{
    struct shop_err err;
    int rc = shop_redis_get(id, text, len, &err);
    if (rc == -1)
        shop_reply_err(req, &err, &redis_error);
    else if (rc == 0)
        shop_reply_text(req, 404, "cart not found");
    else if (!stored_cart_ok(*text, *len))
        reply_update(req, UPD_CORRUPT, NULL, NULL);
    else
        return 1;
    free(*text);
    *text = NULL;
    return 0;
}

void route_get_cart(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    char *text;
    size_t len;
    if (!cart_id_allowed(req, id) || !stored_cart(req, id, &text, &len))
        return;
    shop_reply_json_text(req, 200, text, len);
    free(text);
}

void route_delete_cart(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    if (!cart_id_allowed(req, id))
        return;
    struct shop_err err;
    int rc = cart_delete(id, &err);
    if (rc == -1)
        shop_reply_err(req, &err, &redis_error);
    else if (rc == 1)
        shop_reply_text(req, 200, "OK");
    else
        shop_reply_text(req, 404, "cart not found");
}

void route_rename_cart(struct shop_req *req)
{
    const char *from = shop_req_param(req, "from"), *to = shop_req_param(req, "to");
    char *text;
    size_t len;
    if (!cart_id_allowed(req, from) || !cart_id_allowed(req, to) ||
        !stored_cart(req, from, &text, &len))
        return;
    struct shop_err err;
    /* `to` now holds another cart: it takes that cart's nonce (D21) */
    if (cart_nonce_copy(from, to, &err) == 0 &&
        shop_redis_set(to, text, len, cart_cfg.ttl, &err) == 0)
        shop_reply_json_text(req, 200, text, len);
    else
        shop_reply_err(req, &err, &redis_error);
    free(text);
}

/* Parses :qty as parseInt does. Replies 400 and returns false when it is not a number. */
static bool quantity(struct shop_req *req, double *q)
{
    *q = cart_parse_int(shop_req_param(req, "qty"));
    if (isnan(*q) || isinf(*q)) {
        shop_reply_text(req, 400, "quantity must be a number");
        return false;
    }
    return true;
}

void route_add(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id"), *sku = shop_req_param(req, "sku");
    struct update u = {.op = OP_ADD, .sku = sku};
    if (!cart_id_allowed(req, id) || !quantity(req, &u.qty))
        return;
    if (u.qty < 1) {
        shop_reply_text(req, 400, "quantity has to be greater than zero");
        return;
    }
    json_t *product;
    if (fetch_product(req, sku, &product) == -1)
        return;
    json_t *price = json_object_get(product, "price");
    if (out_of_stock(json_object_get(product, "instock"))) {
        shop_reply_text(req, 404, "out of stock");
    } else if (!json_is_number(price)) {
        reply_error(req, 500, "product has no price");
    } else {
        u.name = json_object_get(product, "name");
        u.price = json_number_value(price);
        run_update(req, id, &u);
    }
    json_decref(product);
}

void route_update(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    struct update u = {.op = OP_UPDATE, .sku = shop_req_param(req, "sku")};
    if (!cart_id_allowed(req, id) || !quantity(req, &u.qty))
        return;
    if (u.qty < 0) {
        shop_reply_text(req, 400, "negative quantity not allowed");
        return;
    }
    run_update(req, id, &u);
}

void route_shipping(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    if (!cart_id_allowed(req, id))
        return;
    json_t *body = shop_req_body_object(req);
    if (!body) {
        shop_reply_text(req, 400, "malformed JSON");
        return;
    }
    json_t *distance = json_object_get(body, "distance"), *cost = json_object_get(body, "cost");
    const char *location = shop_json_str(body, "location");
    if (!json_is_number(distance) || !json_is_number(cost) || !location) {
        shop_reply_text(req, 400, "shipping data missing");
    } else {
        struct update u = {.op = OP_SHIP, .price = json_number_value(cost), .location = location};
        run_update(req, id, &u);
    }
    json_decref(body);
}
