/* routes.h - the catalogue service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef CATALOGUE_ROUTES_H
#define CATALOGUE_ROUTES_H

#include "libshop/err.h"
#include "libshop/service.h"

#include <jansson.h>

struct catalogue_config {
    long go_slow_ms;
};
extern struct catalogue_config catalogue_cfg;

/* Every product, in natural order (the snapshot's loader). 0, or -1 with err set. */
int catalogue_load_all(json_t **out, struct shop_err *err);

shop_handler route_by_category, route_categories, catalogue_health, route_product, route_products,
    route_search;

#endif
