/* shipping - the shipping service (docs/api/shipping.yaml): countries and cities from MySQL
 * `cities` (the /codes body kept for 1 s), the reference's distance/cost calculator, /confirm
 * forwarding to cart, the bounded /memory demo knob (D14) and Spring-style health and
 * actuator endpoints. */
#include "libshop/conf.h"
#include "libshop/mysql.h"
#include "libshop/service.h"
#include "services/shipping/routes.h"

static const struct shop_route routes[] = {
    {"GET", "/health", route_health},
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

int main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "shipping", "SHIPPING_SERVER_PORT|SERVER_PORT", routes);
    conf.text_type = "text/plain; charset=utf-8";
    conf.json_type = "application/json";
    conf.json_flags = SHIPPING_JSON_FLAGS;
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
    shop_mysql_init(&db);
    shipping_routes_init();
    int rc = shop_server_run(&conf);
    shipping_routes_cleanup();
    shop_mysql_cleanup();
    return rc;
}
