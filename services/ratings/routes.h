/* routes.h - the ratings service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef RATINGS_ROUTES_H
#define RATINGS_ROUTES_H

#include "libshop/http.h"

struct ratings_config {
    char catalogue_base[512]; /* no trailing slash */
};
extern struct ratings_config ratings_cfg;

void route_fetch(struct shop_req *req);
void route_health(struct shop_req *req);
void route_rate(struct shop_req *req);

#endif
