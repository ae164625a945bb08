/* service.h - a service's start in one call: shop_service_init (arguments, log level, the stop
 * signals blocked before any thread) and the server configuration every service begins with. */
#ifndef SHOP_SERVICE_H
#define SHOP_SERVICE_H

#include "libshop/http.h"

/* A handler's function type, to declare a service's handlers in one line:
 *     shop_handler cart_health, route_get_cart;  */
typedef void shop_handler(struct shop_req *req);

/* Runs shop_service_init(argc, argv, service) and returns a configuration for service with
 * its routes and the port read from port_vars ("A|B": the first one set; default 8080). */
struct shop_server_conf shop_service_start(int argc, char **argv, const char *service,
                                           const char *port_vars, const struct shop_route *routes,
                                           size_t nroutes);

/* The same with a route array's length taken from the array. */
#define SHOP_SERVICE_START(argc, argv, service, port_vars, routes)                                 \
    shop_service_start((argc), (argv), (service), (port_vars), (routes),                           \
                       sizeof(routes) / sizeof((routes)[0]))

#endif
