/* routes.c - the payment service's handlers: /pay (the idempotency claim, user check, the
 * server's cart and its validation, the optional gateway, the confirmed order publish, sale
 * metrics, history or its outbox, cart clean-up) and /health. */
#include "services/payment/routes.h"
#include "libshop/amqp.h"
#include "libshop/client.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/random.h"
#include "libshop/util.h"
#include "libshop/redis.h"
#include "services/payment/idem.h"
#include "services/payment/order.h"
#include "services/payment/outbox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 5000
#define BODY_MAX        (256 * 1024)

struct payment_config payment_cfg;

static const double units_bounds[] = {1, 2, 5, 10, 100};
static const double value_bounds[] = {100, 200, 500, 1000, 2000, 5000, 10000};
struct shop_counter sold_count =
    SHOP_COUNTER_INIT("sold_count_total", "Running count of items sold", SHOP_NUM_PYTHON);
struct shop_histogram units_sold =
    SHOP_HISTOGRAM_INIT("units_sold", "Avergae Unit Sale", SHOP_NUM_PYTHON, units_bounds,
                        sizeof(units_bounds) / sizeof(units_bounds[0]));
struct shop_counter pay_replayed =
    SHOP_COUNTER_INIT("payment_replayed_total",
                      "Pays answered from an earlier one (same idempotency key)", SHOP_NUM_PYTHON);
struct shop_histogram cart_value =
    SHOP_HISTOGRAM_INIT("cart_value", "Avergae Value Sale", SHOP_NUM_PYTHON, value_bounds,
                        sizeof(value_bounds) / sizeof(value_bounds[0]));

#define IDEM_KEEP_S  (24L * 3600) /* a pay is recognised for 24 h (D21) */
#define WAIT_STEP_MS 50
#define WAIT_MAX_S   30

static const struct shop_err_reply redis_error = {.down = "redis not available"};

/* One pay in progress: what the handler's steps share. */
struct pay {
    struct shop_req *req;
    const char *id;
    const char *cookie; /* the caller's Cookie header, forwarded to peers */
    char session[IDEM_SESSION_MAX];
    char *nonce;  /* the cart's nonce, NULL when the cart service knows none */
    char *key;    /* the Redis key of this checkout, NULL: none (no cart) */
    bool claimed; /* our pending record is under key */
    char orderid[37];
    json_t *cart;   /* the server's cart */
    bool cart_read; /* cart came with the nonce (NULL: there was none), read before the claim */
    bool claimed_at_once; /* the claim was the first try's: nothing happened to key before */
    int registered;       /* 1 yes, 0 no, -1 unknown (the user check failed) */
};

/* One call to the user or cart service: base + "/" + verb + "/" + escaped id (+ "?" query), with
 * the caller's Cookie header (harmless without sessions; a session-checking peer sees the
 * caller's). */
static int call_peer(struct pay *p, const char *method, const char *base, const char *verb,
                     const char *query, const char *body, struct shop_http_result *res)
{
    struct shop_peer_call call = {
        .method = method,
        .base = base,
        .verb = verb,
        .id = p->id,
        .query = query,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = CALL_TIMEOUT_MS,
        .request_id = shop_req_id(p->req),
        .cookie = p->cookie,
    };
    return shop_http_call_peer(&call, res);
}

static int call_service(struct pay *p, const char *method, const char *base, const char *verb,
                        const char *body, struct shop_http_result *res)
{
    return call_peer(p, method, base, verb, NULL, body, res);
}

/* Keeps the cart that came with the nonce: an object, or null (no cart). A cart service that
 * does not send one (an older one) leaves p->cart_read false: the cart is asked for later. */
static void keep_cart(struct pay *p, json_t *answer)
{
    json_t *cart = json_object_get(answer, "cart");
    if (json_is_object(cart) || json_is_null(cart)) {
        p->cart = json_is_object(cart) ? json_incref(cart) : NULL;
        p->cart_read = true;
    }
}

/* The cart's nonce and, in the same answer, the cart (GET /nonce/{id}?cart=1 on the cart
 * service). Returns 0 (p->nonce set, or NULL when the cart service has none), or -1 after
 * replying. */
static int fetch_nonce(struct pay *p)
{
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    int rc = call_peer(p, "GET", payment_cfg.cart_base, "nonce", "cart=1", NULL, &res);
    if (rc == 0 && res.status == 200) {
        json_error_t jerr;
        json_t *v = shop_json_parse(res.body.data, res.body.len, &jerr);
        const char *n = shop_json_str(v, "nonce");
        p->nonce = n ? shop_xstrdup(n) : NULL;
        if (n)
            keep_cart(p, v);
        json_decref(v);
    } else if (rc == 0 && res.status == 404) {
        p->cart_read = true; /* neither a nonce nor a cart */
    } else if (rc == 0 && res.status >= 400 && res.status < 500 && res.status != 404) {
        shop_reply_text(p->req, (int)res.status, res.body.data); /* e.g. a session check's 403 */
        rc = -1;
    } else if (rc == -1 || res.status != 404) {
        shop_log_warnx("rid=%s cart nonce of %s: %ld", shop_req_id(p->req), p->id, res.status);
        shop_reply_text(p->req, rc == -1 ? 500 : 503, "cart service not available");
        rc = -1;
    }
    shop_http_result_cleanup(&res);
    return rc;
}

/* Writes the record of this checkout (pending or done). */
static int put_record(struct pay *p, enum idem_state state, bool cleared, bool only_new,
                      struct shop_err *err)
{
    struct idem_record r = {
        .state = state, .cart = shop_xstrdup(p->id), .nonce = p->nonce, .cleared = cleared};
    memcpy(r.orderid, p->orderid, sizeof(r.orderid));
    char *text = idem_record_dump(&r);
    long ttl = state == IDEM_DONE ? IDEM_KEEP_S : payment_cfg.pending_ttl_s;
    int rc = only_new ? shop_redis_set_nx(p->key, text, strlen(text), ttl, err)
                      : shop_redis_set(p->key, text, strlen(text), ttl, err);
    free(text);
    free(r.cart);
    return rc;
}

/* Gives the claim back after a failure before the order was placed: a retry may pay. */
static void release(struct pay *p)
{
    struct shop_err err;
    if (p->claimed && shop_redis_del(p->key, &err) == -1)
        shop_log_warnx("rid=%s checkout key of %s kept until it expires: %s", shop_req_id(p->req),
                       p->id, err.msg);
    p->claimed = false;
}

/* Whether a replay must delete the cart: when the cart came with the nonce, only if there was
 * one (it has the paid checkout's nonce: the first answer could not delete it; a cart made
 * since has a new nonce and never reaches a replay); else (an older cart service) unless the
 * record says the cart was deleted. */
static bool replay_deletes(const struct pay *p, const struct idem_record *r)
{
    if (p->cart_read)
        return p->cart != NULL;
    return !r->cleared;
}

/* The answer to a pay that was placed before: the same order id; the cart is deleted if the
 * first answer could not do it. */
static void replay(struct pay *p, struct idem_record *r)
{
    shop_counter_add(&pay_replayed, 1);
    shop_log_info("rid=%s pay of %s answered from its first: orderid=%s", shop_req_id(p->req),
                  p->id, r->orderid);
    if (replay_deletes(p, r)) {
        struct shop_http_result res;
        shop_http_result_init(&res, BODY_MAX);
        int rc = call_service(p, "DELETE", payment_cfg.cart_base, "cart", NULL, &res);
        shop_http_result_cleanup(&res);
        struct shop_err err;
        memcpy(p->orderid, r->orderid, sizeof(p->orderid));
        if (rc == 0 && (res.status == 200 || res.status == 404))
            put_record(p, IDEM_DONE, true, false, &err);
    }
    shop_reply_json(p->req, 200, json_pack("{s:s}", "orderid", r->orderid));
}

/* Looks the checkout up, before the cart is charged (D21): returns 1 when this request goes on
 * as the owner of a new pending record (or without one: no key), 0 after replying (a replay,
 * a conflict, an error). A pending record of a concurrent duplicate is waited for. */
static int claim(struct pay *p)
{
    if (!p->key)
        return 1;
    unsigned char rnd[16];
    shop_random_bytes(rnd, sizeof(rnd));
    order_uuid4(rnd, p->orderid);
    /* a duplicate holds its worker thread while it waits: at most WAIT_MAX_S, then 409 */
    long wait_s = payment_cfg.pending_ttl_s < WAIT_MAX_S ? payment_cfg.pending_ttl_s : WAIT_MAX_S;
    long long deadline = shop_now_ns() + wait_s * 1000000000LL;
    struct shop_err err;
    int first = put_record(p, IDEM_PENDING, false, true, &err); /* a new checkout: one SET NX */
    if (first != 0) {
        if (first == -1)
            shop_reply_err(p->req, &err, &redis_error);
        p->claimed = p->claimed_at_once = first == 1;
        return first == 1;
    }
    for (;;) { /* the key is taken: a record to answer from or to wait for */
        char *text;
        size_t len;
        int rc = shop_redis_get(p->key, &text, &len, &err);
        struct idem_record r;
        if (rc == 1 && idem_record_parse(text, len, &r)) {
            free(text);
            if (!idem_record_matches(&r, p->id, p->nonce)) {
                shop_reply_text(p->req, 409, "Idempotency-Key already used for another cart");
            } else if (r.state == IDEM_DONE) {
                replay(p, &r);
            } else if (shop_now_ns() > deadline) {
                shop_reply_text(p->req, 409, "the same payment is still in progress");
            } else {
                idem_record_free(&r);
                shop_sleep_ms(WAIT_STEP_MS);
                continue;
            }
            idem_record_free(&r);
            return 0;
        }
        if (rc == 1) { /* not a record of ours: replaced below */
            free(text);
            rc = put_record(p, IDEM_PENDING, false, false, &err) == 0 ? 1 : -1;
        } else if (rc == 0) {
            rc = put_record(p, IDEM_PENDING, false, true, &err);
            if (rc == 0)
                continue; /* taken meanwhile: read it */
        }
        if (rc == -1) {
            shop_reply_err(p->req, &err, &redis_error);
            return 0;
        }
        p->claimed = true;
        return 1;
    }
}

/* The user check (step 2): returns 0 with p->registered set, or -1 after replying. */
static int check_user(struct pay *p)
{
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    int rc = call_service(p, "GET", payment_cfg.user_base, "check", NULL, &res);
    p->registered = res.status == 200 ? 1 : res.status >= 500 ? -1 : 0;
    shop_http_result_cleanup(&res);
    if (rc == -1) { /* the reference's 500 (step 2); no decision makes it a 503 */
        shop_reply_text(p->req, 500, "user service not available");
        return -1;
    }
    return 0;
}

/* The server's cart (D19): the one that came with the nonce when nothing happened under the
 * checkout's key since (else it may be older than what a pay before this one left), else GET
 * /cart/{id}. Returns 0 with p->cart, or -1 after replying. */
static int fetch_cart(struct pay *p)
{
    if (p->cart_read && (p->claimed_at_once || !p->key)) {
        if (p->cart)
            return 0;
        shop_reply_text(p->req, 400, "cart not valid"); /* no cart: nothing to pay */
        return -1;
    }
    json_decref(p->cart);
    p->cart = NULL;
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    int rc = call_service(p, "GET", payment_cfg.cart_base, "cart", NULL, &res);
    if (rc == 0 && res.status == 200) {
        json_error_t jerr;
        p->cart = shop_json_parse(res.body.data, res.body.len, &jerr);
        if (!json_is_object(p->cart)) {
            shop_reply_text(p->req, 500, "cart service answered no cart");
            rc = -1;
        }
    } else if (rc == 0 && res.status == 404) {
        shop_reply_text(p->req, 400, "cart not valid"); /* no cart: nothing to pay */
        rc = -1;
    } else if (rc == 0 && res.status >= 400 && res.status < 500) {
        shop_reply_text(p->req, (int)res.status, res.body.data); /* the cart service's refusal */
        rc = -1;
    } else {
        shop_log_warnx("rid=%s cart %s: %ld", shop_req_id(p->req), p->id, res.status);
        shop_reply_text(p->req, rc == -1 ? 500 : 503, "cart service not available");
        rc = -1;
    }
    shop_http_result_cleanup(&res);
    return rc;
}

/* The client's body is compared, never used (D19): a difference is logged. */
static void compare_body(struct pay *p, const json_t *body, double total)
{
    const json_t *t = json_object_get(body, "total");
    if (json_is_number(t) && fabs(json_number_value(t) - total) > 0.005)
        shop_log_warnx("rid=%s pay %s: the client's total %.2f is not the cart's %.2f (the "
                       "cart's is charged)",
                       shop_req_id(p->req), p->id, json_number_value(t), total);
}

/* The optional payment gateway (D6). Returns 0 to go on, or -1 after replying. */
static int gateway_check(struct shop_req *req)
{
    if (!*payment_cfg.gateway)
        return 0;
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    struct shop_http_call call = {
        .method = "GET",
        .url = payment_cfg.gateway,
        .timeout_ms = payment_cfg.gateway_timeout_ms,
        .request_id = shop_req_id(req),
        .follow_redirects = 1,
    };
    int rc = 0;
    if (shop_http_call(&call, &res) == -1) {
        shop_log_warnx("rid=%s payment gateway %s: %s", shop_req_id(req), payment_cfg.gateway,
                       res.err.msg);
        shop_reply_text(req, 502, "payment gateway not reachable");
        rc = -1;
    } else if (res.status != 200) {
        shop_log_warnx("rid=%s payment gateway answered %ld", shop_req_id(req), res.status);
        /* the gateway's status is relayed; statuses that cannot carry a body become 502 */
        int st = res.status >= 200 && res.status <= 599 && res.status != 204 && res.status != 304
                     ? (int)res.status
                     : 502;
        shop_reply_text(req, st, "payment error");
        rc = -1;
    }
    shop_http_result_cleanup(&res);
    return rc;
}

/* Publishes the order (the optional delay first) and waits for the broker's confirm. Returns 0,
 * or -1 after replying 503. */
static int queue_order(struct pay *p)
{
    if (!p->key) {
        unsigned char rnd[16];
        shop_random_bytes(rnd, sizeof(rnd));
        order_uuid4(rnd, p->orderid);
    }
    if (payment_cfg.delay_ms > 0)
        shop_sleep_ms(payment_cfg.delay_ms);
    json_t *msg = order_message(p->orderid, p->id, p->cart);
    char *text = shop_json_dumps(msg, SHOP_JSON_PYTHON);
    json_decref(msg);
    struct shop_err err;
    int rc = shop_amqp_publish(text, strlen(text), &err);
    free(text);
    if (rc == -1) {
        shop_log_warnx("rid=%s order NOT placed user=%s: %s", shop_req_id(p->req), p->id, err.msg);
        shop_reply_text(p->req, 503, "order not placed: RabbitMQ not available");
        return -1;
    }
    shop_log_info("rid=%s order placed orderid=%s user=%s", shop_req_id(p->req), p->orderid, p->id);
    return 0;
}

/* The history entry of a registered (or not yet known) user: written now, or kept in the
 * outbox and written later (D21: never skipped). */
static void write_history(struct pay *p)
{
    if (p->registered == 0)
        return;
    int rc = -1;
    long status = 0;
    if (p->registered == 1) {
        struct shop_http_result res;
        shop_http_result_init(&res, BODY_MAX);
        json_t *h = order_history(p->orderid, p->cart);
        char *text = shop_json_dumps(h, SHOP_JSON_PYTHON);
        json_decref(h);
        rc = call_service(p, "POST", payment_cfg.user_base, "order", text, &res);
        free(text);
        status = res.status;
        shop_http_result_cleanup(&res);
        if (rc == 0 && status >= 400 && status < 500) {
            shop_log_warnx("rid=%s order history for %s refused (%ld)", shop_req_id(p->req), p->id,
                           status);
            return;
        }
    }
    if (rc == 0 && status == 200)
        return;
    struct shop_err err;
    if (outbox_add(p->id, p->orderid, p->cart, p->registered == -1, p->cookie, &err) == 0)
        shop_log_warnx("rid=%s order history for %s deferred (%ld): in the outbox",
                       shop_req_id(p->req), p->id, status);
    else
        shop_log_warnx("rid=%s order history for %s (order %s) NOT kept: %s", shop_req_id(p->req),
                       p->id, p->orderid, err.msg);
}

/* Steps after the confirm: the sale counted, the record done, history, the cart deleted. The
 * done record is written once, at once after the confirm (a crash after it cannot place the
 * order twice), saying the cart is not deleted yet: a replay tells from the cart that comes with
 * the nonce whether there is one left to delete (replay_deletes). */
static void finish_order(struct pay *p)
{
    double total, units;
    order_check_cart(p->cart, &total, &units);
    shop_counter_add(&sold_count, units);
    shop_histogram_observe(&units_sold, units);
    shop_histogram_observe(&cart_value, total);
    struct shop_err err;
    if (p->claimed && put_record(p, IDEM_DONE, false, false, &err) == -1)
        shop_log_warnx("rid=%s order %s placed but not recorded as done: %s", shop_req_id(p->req),
                       p->orderid, err.msg);
    write_history(p);
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    if (call_service(p, "DELETE", payment_cfg.cart_base, "cart", NULL, &res) == -1) {
        shop_reply_text(p->req, 500, "cart service not available");
    } else if (res.status != 200 && res.status != 404) { /* 404: a concurrent retry's delete */
        shop_reply_text(p->req, (int)res.status, "order history update error");
    } else {
        shop_reply_json(p->req, 200, json_pack("{s:s}", "orderid", p->orderid));
    }
    shop_http_result_cleanup(&res);
}

/* Steps from the claim to the order: returns 0 once the order is placed, -1 after replying. */
static int place(struct pay *p, const json_t *body)
{
    double total, units;
    if (check_user(p) == -1 || fetch_cart(p) == -1)
        return -1;
    if (!order_check_cart(p->cart, &total, &units)) {
        shop_reply_text(p->req, 400, "cart not valid");
        return -1;
    }
    compare_body(p, body, total);
    if (gateway_check(p->req) == -1 || queue_order(p) == -1)
        return -1;
    return 0;
}

/* The key of this checkout: the client's Idempotency-Key, else the natural one (session, cart
 * id, the cart's nonce). Returns 0, or -1 after replying. */
static int checkout_key(struct pay *p)
{
    const char *hk = shop_req_header(p->req, "Idempotency-Key");
    if (hk && !idem_key_ok(hk)) {
        shop_reply_text(p->req, 400, "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return -1;
    }
    if (idem_cookie(p->cookie, payment_cfg.session_cookie, p->session, sizeof(p->session)) < 0)
        p->session[0] = '\0';
    if (fetch_nonce(p) == -1)
        return -1;
    p->key = idem_redis_key(p->session, hk, p->id, p->nonce);
    return 0;
}

/* POST /pay/{id} (docs/api/payment.yaml): D19's server-side cart, D21's once-only order. */
void route_pay(struct shop_req *req)
{
    if (!shop_ctype_is(shop_req_header(req, "Content-Type"), "application/json")) {
        shop_reply_text(req, 415, "body must be application/json"); /* D23: nothing placed */
        return;
    }
    struct pay p = {
        .req = req, .id = shop_req_param(req, "id"), .cookie = shop_req_header(req, "Cookie")};
    size_t len;
    const char *text = shop_req_body(req, &len);
    json_error_t jerr;
    json_t *body = len ? shop_json_parse(text, len, &jerr) : NULL;
    json_t *idj = json_string(p.id);
    if (!idj)
        shop_reply_text(req, 400, "user id is not UTF-8");
    else if (!json_is_object(body))
        shop_reply_text(req, 400, "body is not a JSON object");
    else if (checkout_key(&p) == 0 && claim(&p) == 1) {
        if (place(&p, body) == 0)
            finish_order(&p);
        else
            release(&p);
    }
    json_decref(idj);
    json_decref(body);
    json_decref(p.cart);
    free(p.nonce);
    free(p.key);
}

/* GET /health: "OK" while RabbitMQ takes connections, else 503 naming it (D8). Payment cannot
 * place an order without the broker, so a load balancer should stop sending it payments. */
void payment_health(struct shop_req *req)
{
    struct shop_err err;
    if (shop_amqp_publisher_ping(&err))
        shop_reply_text(req, 200, "OK");
    else
        shop_reply_text(req, 503, "RabbitMQ not available");
}
