/* routes.h - the catalogue service's handlers (routes.c) and the configuration
 * they read, set by main.c before serving. */
#ifndef CATALOGUE_ROUTES_H
#define CATALOGUE_ROUTES_H

#include "libshop/err.h"
#include "libshop/http.h"

#include <jansson.h>

struct catalogue_config {
    long go_slow_ms;
};
extern struct catalogue_config catalogue_cfg;

/* Every product, in natural order (the snapshot's loader). 0, or -1 with err
 * set. */
int catalogue_load_all(json_t **out, struct shop_err *err);

void route_by_category(struct shop_req *req);
void route_categories(struct shop_req *req);
void route_health(struct shop_req *req);
void route_product(struct shop_req *req);
void route_products(struct shop_req *req);
void route_search(struct shop_req *req);

#endif
