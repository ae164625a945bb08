/* routes.h - the ratings service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef RATINGS_ROUTES_H
#define RATINGS_ROUTES_H

#include "libshop/service.h"

struct ratings_config {
    char catalogue_base[512]; /* no trailing slash */
};
extern struct ratings_config ratings_cfg;

shop_handler route_fetch, ratings_health, route_rate;

#endif
