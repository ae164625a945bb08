/* routes.h - the shipping service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef SHIPPING_ROUTES_H
#define SHIPPING_ROUTES_H

#include "libshop/json.h"
#include "libshop/service.h"

#define SHIPPING_JSON_FLAGS SHOP_JSON_JAVA /* Jackson-like JSON (shop_json_dump) */

struct shipping_config {
    char cart_base[512]; /* http://host:port, no trailing slash */
    long memory_max_mb;
};
extern struct shipping_config shipping_cfg;

/* Sets up and frees what the handlers keep (the /codes memo, the /memory blocks). */
void shipping_routes_init(void);
void shipping_routes_cleanup(void);

shop_handler route_actuator, route_actuator_health, route_actuator_info, route_calc, route_cities,
    route_codes, route_confirm, route_count, route_free_memory, shipping_health, route_match,
    route_memory;

#endif
