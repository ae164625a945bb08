/* routes.h - the cart service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef CART_ROUTES_H
#define CART_ROUTES_H

#include "libshop/http.h"
#include "libshop/metrics.h"

struct cart_config {
    long ttl;
    long catalogue_timeout_ms;
    char catalogue_base[320]; /* http://host:port */
};
extern struct cart_config cart_cfg;

extern struct shop_counter items_added;

void route_add(struct shop_req *req);
void route_delete_cart(struct shop_req *req);
void route_get_cart(struct shop_req *req);
void route_health(struct shop_req *req);
void route_rename_cart(struct shop_req *req);
void route_shipping(struct shop_req *req);
void route_update(struct shop_req *req);

#endif
