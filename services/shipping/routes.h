/* routes.h - the shipping service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef SHIPPING_ROUTES_H
#define SHIPPING_ROUTES_H

#include "libshop/http.h"
#include "libshop/json.h"

#define SHIPPING_JSON_FLAGS SHOP_JSON_JAVA /* Jackson-like JSON (shop_json_dump) */

struct shipping_config {
    char cart_base[512]; /* http://host:port, no trailing slash */
    long memory_max_mb;
};
extern struct shipping_config shipping_cfg;

/* Sets up and frees what the handlers keep (the /codes memo, the /memory blocks). */
void shipping_routes_init(void);
void shipping_routes_cleanup(void);

void route_actuator(struct shop_req *req);
void route_actuator_health(struct shop_req *req);
void route_actuator_info(struct shop_req *req);
void route_calc(struct shop_req *req);
void route_cities(struct shop_req *req);
void route_codes(struct shop_req *req);
void route_confirm(struct shop_req *req);
void route_count(struct shop_req *req);
void route_free_memory(struct shop_req *req);
void route_health(struct shop_req *req);
void route_match(struct shop_req *req);
void route_memory(struct shop_req *req);

#endif
