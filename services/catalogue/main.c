/* catalogue - the product catalogue service (docs/api/catalogue.yaml): products, categories and
 * search from MongoDB `catalogue.products`, read-only. The products are cached in memory for
 * CATALOGUE_CACHE_MS (default 1000 ms; 0 = one MongoDB query per request): see cache.h for the
 * staleness bound and docs/BENCHMARKS.md for what it buys. */
#include "libshop/conf.h"
#include "libshop/mongo.h"
#include "libshop/service.h"
#include "services/roboshop.h"
#include "services/catalogue/cache.h"
#include "services/catalogue/routes.h"

static const struct shop_route routes[] = {
    {"GET", "/health", catalogue_health},     {"GET", "/products", route_products},
    {"GET", "/product/:sku", route_product},  {"GET", "/products/:cat", route_by_category},
    {"GET", "/categories", route_categories}, {"GET", "/search/:text", route_search},
};

int catalogue_main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "catalogue", "CATALOGUE_SERVER_PORT", routes);
    conf.cors = true;
    (void)shop_conf_str("MONGO", "true"); /* the course's gate; accepted, not needed */
    catalogue_cfg.go_slow_ms = shop_conf_long("GO_SLOW", 0, 0, 600000);
    long cache_ms = shop_conf_long("CATALOGUE_CACHE_MS", 1000, 0, 60000);
    cat_cache_init(cache_ms, catalogue_load_all);
    conf.per_core = cache_ms > 0; /* answers from its copy of the catalogue (cache.c) */
    shop_mongo_init(shop_conf_str("MONGO_URL", "mongodb://mongodb:27017/catalogue"), "catalogue");
    int rc = shop_server_run(&conf);
    cat_cache_cleanup();
    shop_mongo_cleanup();
    return rc;
}
