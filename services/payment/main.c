/* payment - takes payment for a cart (docs/api/payment.yaml): pays the cart the cart service holds
 * (D19), once per checkout (D21: an idempotency record in Redis), calls the optional payment
 * gateway, hands the order to dispatch through RabbitMQ with a publisher confirm (D5: an order is
 * only reported as placed once the broker has it), then counts the sale, records the order
 * history of registered users (or keeps it in an outbox until it can be written) and empties the
 * cart. */
#include "libshop/amqp.h"
#include "libshop/conf.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/redis.h"
#include "libshop/service.h"
#include "services/roboshop.h"
#include "services/payment/outbox.h"
#include "services/payment/routes.h"

static const struct shop_route routes[] = {
    {"GET", "/health", payment_health},
    {"POST", "/pay/:id", route_pay},
};

int payment_main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "payment", "SHOP_PAYMENT_PORT|PAYMENT_SERVER_PORT", routes);
    conf.options_bare = true; /* Flask's OPTIONS: Allow, no body (D23) */
    shop_conf_peer(payment_cfg.user_base, sizeof(payment_cfg.user_base), "USER_HOST", "user",
                   "USER_PORT", 8080);
    shop_conf_peer(payment_cfg.cart_base, sizeof(payment_cfg.cart_base), "CART_HOST", "cart",
                   "CART_PORT", 8080);
    payment_cfg.gateway = shop_conf_str("PAYMENT_GATEWAY", "");
    if (*payment_cfg.gateway && !shop_url_is_http(payment_cfg.gateway))
        shop_fatalx("config: PAYMENT_GATEWAY=\"%s\" is not an http(s) URL", payment_cfg.gateway);
    payment_cfg.gateway_timeout_ms = shop_conf_long("PAYMENT_GATEWAY_TIMEOUT_MS", 5000, 1, 600000);
    payment_cfg.delay_ms = shop_conf_long("PAYMENT_DELAY_MS", 0, 0, 600000);
    /* a pay in progress holds its key as long as its slowest path may take, and a minute */
    payment_cfg.pending_ttl_s =
        (payment_cfg.delay_ms + payment_cfg.gateway_timeout_ms + 4 * 5000) / 1000 + 60;
    payment_cfg.session_cookie = shop_conf_str("SHOP_SESSION_COOKIE", "shop_session");
    long retry_ms = shop_conf_long("PAYMENT_OUTBOX_RETRY_MS", 1000, 10, 3600000);
    struct shop_amqp_conf amqp;
    shop_amqp_conf_from_env(&amqp);
    shop_amqp_publisher_init(&amqp);
    shop_counter_register(&sold_count);
    shop_histogram_register(&units_sold);
    shop_histogram_register(&cart_value);
    shop_counter_register(&pay_replayed);
    shop_counter_register(&history_deferred);
    shop_counter_register(&history_recovered);
    shop_redis_init();
    outbox_start(payment_cfg.user_base, retry_ms);
    int rc = shop_server_run(&conf);
    outbox_stop();
    shop_redis_cleanup();
    shop_amqp_publisher_close_thread();
    return rc;
}
