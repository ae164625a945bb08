/* cart - the shopping cart service (docs/api/cart.yaml): one Redis key per cart holding the cart
 * JSON, prices from the catalogue, every mutation an atomic update of the key (D10). */
#include "libshop/conf.h"
#include "libshop/metrics.h"
#include "libshop/redis.h"
#include "libshop/service.h"
#include "services/roboshop.h"
#include "services/cart/nonce.h"
#include "services/cart/routes.h"

static const struct shop_route routes[] = {
    {"GET", "/health", cart_health},
    {"GET", "/cart/:id", route_get_cart},
    {"DELETE", "/cart/:id", route_delete_cart},
    {"GET", "/rename/:from/:to", route_rename_cart},
    {"GET", "/add/:id/:sku/:qty", route_add},
    {"POST", "/add/:id/:sku/:qty", route_add},
    {"GET", "/update/:id/:sku/:qty", route_update},
    {"POST", "/update/:id/:sku/:qty", route_update},
    {"POST", "/shipping/:id", route_shipping},
    {"GET", "/nonce/:id", route_nonce},
};

/* Builds http://host:port of the catalogue from CATALOGUE_HOST (may carry a port) and
 * CATALOGUE_PORT. */
static void catalogue_init(void)
{
    shop_conf_peer(cart_cfg.catalogue_base, sizeof(cart_cfg.catalogue_base), "CATALOGUE_HOST",
                   "catalogue", "CATALOGUE_PORT", 8080);
    cart_cfg.catalogue_timeout_ms = shop_conf_long("SHOP_CATALOGUE_TIMEOUT_MS", 10000, 100, 600000);
    /* how long a product the catalogue gave may be used again without asking (0 = always ask) */
    cart_products_init(shop_conf_long("CART_PRODUCT_CACHE_MS", 1000, 0, 60000));
}

int cart_main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "cart", "CART_SERVER_PORT", routes);
    conf.cors = true;
    conf.loop = true; /* Redis-bound: requests wait for Redis on an event loop (SHOP_LOOP=0: off) */
    cart_cfg.ttl = shop_conf_long("CART_TTL_SECONDS", 3600, 1, 100L * 365 * 24 * 3600);
    catalogue_init();
    shop_redis_init();
    shop_counter_register(&items_added);
    int rc = shop_server_run(&conf);
    shop_redis_cleanup();
    return rc;
}
