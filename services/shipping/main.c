/* shipping - the shipping service (docs/api/shipping.yaml): countries and cities from MySQL
 * `cities`, answered from an in-memory index kept current by a reload thread (reload.h), the
 * reference's distance/cost calculator, quotes that /confirm requires before it forwards a
 * cost to cart (quote.h, D19), the bounded /memory demo knob (D14) and Spring-style health and
 * actuator endpoints. */
#include "libshop/conf.h"
#include "libshop/log.h"
#include "libshop/mysql.h"
#include "libshop/service.h"
#include "services/roboshop.h"
#include "services/shipping/quote.h"
#include "services/shipping/reload.h"
#include "services/shipping/routes.h"

#include <string.h>

static const struct shop_route routes[] = {
    {"GET", "/health", shipping_health},
    {"GET", "/count", route_count},
    {"GET", "/codes", route_codes},
    {"GET", "/cities/:code", route_cities},
    {"GET", "/match/:code/:text", route_match},
    {"GET", "/calc/:id", route_calc},
    {"POST", "/confirm/:id", route_confirm},
    {"GET", "/memory", route_memory},
    {"GET", "/free", route_free_memory},
    {"GET", "/actuator", route_actuator},
    {"GET", "/actuator/health", route_actuator_health},
    {"GET", "/actuator/info", route_actuator_info},
};

/* The quote signing key: SHIPPING_QUOTE_SECRET (the same on every replica behind one gateway),
 * else a random one for this process (quotes then do not survive a restart or another
 * replica). */
static void quote_key_init(void)
{
    const char *secret = shop_conf_str("SHIPPING_QUOTE_SECRET", NULL);
    if (!secret) {
        quote_key_random();
        shop_log_info("quotes are signed with a random per-process key (set SHIPPING_QUOTE_SECRET"
                      " on every replica to share one)");
        return;
    }
    if (strlen(secret) < QUOTE_KEY_MIN)
        shop_fatalx("SHIPPING_QUOTE_SECRET: at least %d bytes are needed", QUOTE_KEY_MIN);
    quote_key_set(secret, strlen(secret));
}

int shipping_main(int argc, char **argv)
{
    shipping_reload_block_signal(); /* before any thread: only the reload thread takes SIGHUP */
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "shipping", "SHIPPING_SERVER_PORT|SERVER_PORT", routes);
    conf.text_type = "text/plain; charset=utf-8";
    conf.json_type = "application/json";
    conf.json_flags = SHIPPING_JSON_FLAGS;
    conf.per_core = true; /* answers from its index in memory; only /confirm calls cart */
    conf.loop = true;     /* /confirm waits for cart without holding a worker (SHOP_LOOP=0: off) */
    conf.options_bare = true; /* Spring's OPTIONS: Allow, no body (D23) */
    struct shop_mysql_conf db = {.host = "mysql",
                                 .port = 3306,
                                 .user = "shipping",
                                 .password = "RoboShop@1",
                                 .db = "cities"};
    shop_mysql_conf_env(&db);
    /* CART_ENDPOINT is host:port (the course's form); a full http:// URL is accepted too */
    shop_conf_base_url(shipping_cfg.cart_base, sizeof(shipping_cfg.cart_base), "CART_ENDPOINT",
                       "cart:8080");
    shipping_cfg.memory_max_mb = shop_conf_long("SHIPPING_MEMORY_MAX_MB", 512, 0, 1024L * 1024);
    /* seconds between checks of the tables for a change; 0: no index, every answer from SQL */
    long check_s = shop_conf_long("SHIPPING_INDEX_CHECK_S", 30, 0, 86400);
    quote_key_init();
    shop_mysql_init(&db);
    shipping_routes_init();
    if (check_s > 0)
        shipping_reload_start(check_s);
    int rc = shop_server_run(&conf);
    shipping_reload_stop();
    shipping_routes_cleanup();
    shop_mysql_cleanup();
    return rc;
}
