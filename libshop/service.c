/* service.c - the common start of every service (see service.h). */
#include "libshop/service.h"
#include "libshop/conf.h"

struct shop_server_conf shop_service_start(int argc, char **argv, const char *service,
                                           const char *port_vars, const struct shop_route *routes,
                                           size_t nroutes)
{
    shop_service_init(argc, argv, service);
    return (struct shop_server_conf){
        .service = service,
        .port = shop_conf_listen_port(port_vars, 8080),
        .routes = routes,
        .nroutes = nroutes,
    };
}
