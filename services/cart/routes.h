/* routes.h - the cart service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef CART_ROUTES_H
#define CART_ROUTES_H

#include "libshop/metrics.h"
#include "libshop/service.h"

#include <stdbool.h>

struct cart_config {
    long ttl;
    long catalogue_timeout_ms;
    char catalogue_base[320]; /* http://host:port */
};
extern struct cart_config cart_cfg;

extern struct shop_counter items_added;

/* D11: the cart id may not name the user service's counter. Replies 400 and returns false. */
bool cart_id_allowed(struct shop_req *req, const char *id);

/* Sets up the product cache: a catalogue answer is used again for window_ms (0: never). */
void cart_products_init(long window_ms);

shop_handler route_add, route_delete_cart, route_get_cart, cart_health, route_rename_cart,
    route_shipping, route_update;

#endif
