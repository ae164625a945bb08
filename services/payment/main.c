/* payment - takes payment for a cart (docs/api/payment.yaml): checks the user, validates the cart,
 * calls the optional payment gateway, counts the sale, hands the order to dispatch through RabbitMQ
 * with a publisher confirm (D5: an order is only reported as placed once the broker has it),
 * records the order history of registered users and empties the cart. */
#include "libshop/amqp.h"
#include "libshop/client.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/util.h"
#include "services/payment/order.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 5000
#define BODY_MAX        (256 * 1024)

static struct {
    char user_base[300]; /* http://USER_HOST:USER_PORT */
    char cart_base[300]; /* http://CART_HOST:CART_PORT */
    const char *gateway; /* "" = no gateway call (D6) */
    long gateway_timeout_ms;
    long delay_ms;
} cfg;

static const double units_bounds[] = {1, 2, 5, 10, 100};
static const double value_bounds[] = {100, 200, 500, 1000, 2000, 5000, 10000};
static struct shop_counter sold_count =
    SHOP_COUNTER_INIT("sold_count_total", "Running count of items sold", SHOP_NUM_PYTHON);
static struct shop_histogram units_sold =
    SHOP_HISTOGRAM_INIT("units_sold", "Avergae Unit Sale", SHOP_NUM_PYTHON, units_bounds,
                        sizeof(units_bounds) / sizeof(units_bounds[0]));
static struct shop_histogram cart_value =
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
    if (!*cfg.gateway)
        return 0;
    struct shop_http_result res;
    shop_http_result_init(&res, BODY_MAX);
    struct shop_http_call call = {
        .method = "GET",
        .url = cfg.gateway,
        .timeout_ms = cfg.gateway_timeout_ms,
        .request_id = shop_req_id(req),
        .follow_redirects = 1,
    };
    int rc = 0;
    if (shop_http_call(&call, &res) == -1) {
        shop_log_warnx("rid=%s payment gateway %s: %s", shop_req_id(req), cfg.gateway, res.error);
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
    randombytes_buf(rnd, sizeof(rnd));
    order_uuid4(rnd, orderid);
    if (cfg.delay_ms > 0)
        shop_sleep_ms(cfg.delay_ms);
    json_t *msg = order_message(orderid, id, cart);
    char *text = shop_json_dumps(msg, SHOP_JSON_PYTHON);
    json_decref(msg);
    char err[320];
    int rc = shop_amqp_publish(text, strlen(text), err, sizeof(err));
    free(text);
    if (rc == -1) {
        shop_log_warnx("rid=%s order NOT placed user=%s: %s", shop_req_id(req), id, err);
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
        int rc = call_service(req, "POST", cfg.user_base, "order", id, text, &res);
        free(text);
        if (rc == -1) {
            shop_reply_text(req, 500, "user service not available");
            goto out;
        }
        if (res.status != 200)
            shop_log_warnx("rid=%s order history for %s answered %ld (ignored)", shop_req_id(req),
                           id, res.status);
    }
    if (call_service(req, "DELETE", cfg.cart_base, "cart", id, NULL, &res) == -1) {
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
static void pay(struct shop_req *req)
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
    int rc = call_service(req, "GET", cfg.user_base, "check", id, NULL, &res);
    bool registered = res.status == 200;
    shop_http_result_cleanup(&res);
    if (rc == -1) { /* the reference's 500; no decision makes it a 503 */
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
static void health(struct shop_req *req)
{
    char err[320];
    if (shop_amqp_publisher_ping(err, sizeof(err)))
        shop_reply_text(req, 200, "OK");
    else
        shop_reply_text(req, 503, "RabbitMQ not available");
}

static const struct shop_route routes[] = {
    {"GET", "/health", health},
    {"POST", "/pay/:id", pay},
};

int main(int argc, char **argv)
{
    shop_service_init(argc, argv, "payment");
    if (sodium_init() < 0)
        shop_fatalx("libsodium initialisation failed");
    struct shop_server_conf conf = {
        .service = "payment",
        .port = shop_conf_listen_port("SHOP_PAYMENT_PORT|PAYMENT_SERVER_PORT", 8080),
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .options_bare = true, /* Flask's OPTIONS: Allow, no body (D23) */
    };
    shop_conf_peer(cfg.user_base, sizeof(cfg.user_base), "USER_HOST", "user", "USER_PORT", 8080);
    shop_conf_peer(cfg.cart_base, sizeof(cfg.cart_base), "CART_HOST", "cart", "CART_PORT", 8080);
    cfg.gateway = shop_conf_str("PAYMENT_GATEWAY", "");
    if (*cfg.gateway && !shop_url_is_http(cfg.gateway))
        shop_fatalx("config: PAYMENT_GATEWAY=\"%s\" is not an http(s) URL", cfg.gateway);
    cfg.gateway_timeout_ms = shop_conf_long("PAYMENT_GATEWAY_TIMEOUT_MS", 5000, 1, 600000);
    cfg.delay_ms = shop_conf_long("PAYMENT_DELAY_MS", 0, 0, 600000);
    struct shop_amqp_conf amqp;
    shop_amqp_conf_from_env(&amqp);
    shop_amqp_publisher_init(&amqp);
    shop_counter_register(&sold_count);
    shop_histogram_register(&units_sold);
    shop_histogram_register(&cart_value);
    int rc = shop_server_run(&conf);
    shop_amqp_publisher_close_thread();
    return rc;
}
