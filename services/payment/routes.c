/* routes.c - the payment service's handlers: /pay (user check, cart validation, the optional
 * gateway, sale metrics, the confirmed order publish, history and cart clean-up) and /health. */
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
#include "services/payment/order.h"

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
struct shop_histogram cart_value =
    SHOP_HISTOGRAM_INIT("cart_value", "Avergae Value Sale", SHOP_NUM_PYTHON, value_bounds,
                        sizeof(value_bounds) / sizeof(value_bounds[0]));

/* One call to the user or cart service: base + "/" + verb + "/" + escaped id. */
static int call_service(struct shop_req *req, const char *method, const char *base,
                        const char *verb, const char *id, const char *body,
                        struct shop_http_result *res)
{
    struct shop_peer_call call = {
        .method = method,
        .base = base,
        .verb = verb,
        .id = id,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = CALL_TIMEOUT_MS,
        .request_id = shop_req_id(req),
    };
    return shop_http_call_peer(&call, res);
}

/* Step 4 (D6). Returns 0 to go on, or -1 after replying. */
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

/* Steps 6-7: a new order id, the optional delay, the confirmed publish. Returns 0 or -1
 * after replying 503. */
static int queue_order(struct shop_req *req, const char *id, json_t *cart, char orderid[37])
{
    unsigned char rnd[16];
    shop_random_bytes(rnd, sizeof(rnd));
    order_uuid4(rnd, orderid);
    if (payment_cfg.delay_ms > 0)
        shop_sleep_ms(payment_cfg.delay_ms);
    json_t *msg = order_message(orderid, id, cart);
    char *text = shop_json_dumps(msg, SHOP_JSON_PYTHON);
    json_decref(msg);
    struct shop_err err;
    int rc = shop_amqp_publish(text, strlen(text), &err);
    free(text);
    if (rc == -1) {
        shop_log_warnx("rid=%s order NOT placed user=%s: %s", shop_req_id(req), id, err.msg);
        shop_reply_text(req, 503, "order not placed: RabbitMQ not available");
        return -1;
    }
    shop_log_info("rid=%s order placed orderid=%s user=%s", shop_req_id(req), orderid, id);
    return 0;
}

/* Steps 8-10 once the order is queued. */
static void finish_order(struct shop_req *req, const char *id, json_t *cart, bool registered,
                         const char *orderid)
{
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    if (registered) {
        json_t *h = order_history(orderid, cart);
        char *text = shop_json_dumps(h, SHOP_JSON_PYTHON);
        json_decref(h);
        int rc = call_service(req, "POST", payment_cfg.user_base, "order", id, text, &res);
        free(text);
        if (rc == -1) {
            shop_reply_text(req, 500, "user service not available");
            goto out;
        }
        if (res.status != 200)
            shop_log_warnx("rid=%s order history for %s answered %ld (ignored)", shop_req_id(req),
                           id, res.status);
    }
    if (call_service(req, "DELETE", payment_cfg.cart_base, "cart", id, NULL, &res) == -1) {
        shop_reply_text(req, 500, "cart service not available");
        goto out;
    }
    if (res.status != 200) {
        shop_reply_text(req, (int)res.status, "order history update error");
        goto out;
    }
    shop_reply_json(req, 200, json_pack("{s:s}", "orderid", orderid));
out:
    shop_http_result_cleanup(&res);
}

/* POST /pay/{id}: the reference's steps, in its order (docs/api/payment.yaml). */
void route_pay(struct shop_req *req)
{
    if (!shop_ctype_is(shop_req_header(req, "Content-Type"), "application/json")) {
        shop_reply_text(req, 415, "body must be application/json"); /* D23: nothing placed */
        return;
    }
    const char *id = shop_req_param(req, "id");
    size_t len;
    const char *body = shop_req_body(req, &len);
    json_error_t jerr;
    json_t *cart = len ? shop_json_parse(body, len, &jerr) : NULL;
    json_t *idj = json_string(id);
    if (!idj) {
        shop_reply_text(req, 400, "user id is not UTF-8");
        goto out;
    }
    if (!json_is_object(cart)) {
        shop_reply_text(req, 400, "body is not a JSON object");
        goto out;
    }
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    int rc = call_service(req, "GET", payment_cfg.user_base, "check", id, NULL, &res);
    bool registered = res.status == 200;
    shop_http_result_cleanup(&res);
    if (rc == -1) { /* the reference's 500 (step 2); no decision makes it a 503 */
        shop_reply_text(req, 500, "user service not available");
        goto out;
    }
    double total, units;
    if (!order_check_cart(cart, &total, &units)) {
        shop_reply_text(req, 400, "cart not valid");
        goto out;
    }
    if (gateway_check(req) == -1)
        goto out;
    shop_counter_add(&sold_count, units);
    shop_histogram_observe(&units_sold, units);
    shop_histogram_observe(&cart_value, total);
    char orderid[37];
    if (queue_order(req, id, cart, orderid) == -1)
        goto out;
    finish_order(req, id, cart, registered, orderid);
out:
    json_decref(idj);
    json_decref(cart);
}

/* GET /health: "OK" while RabbitMQ takes connections, else 503 naming it (D8). Payment cannot
 * place an order without the broker, so a load balancer should stop sending it payments. */
void route_health(struct shop_req *req)
{
    struct shop_err err;
    if (shop_amqp_publisher_ping(&err))
        shop_reply_text(req, 200, "OK");
    else
        shop_reply_text(req, 503, "RabbitMQ not available");
}
