/* routes.h - the user service's handlers (routes.c). */
#ifndef USER_ROUTES_H
#define USER_ROUTES_H

#include "libshop/service.h"

shop_handler route_check, user_health, route_history, route_login, route_order, route_register_user,
    route_uniqueid, route_users;

/* Reads the user service's limits (USER_ORDERS_MAX, the login back-off, the hashes allowed at
 * once from SHOP_THREADS). Call once before serving. */
void user_routes_setup(void);

#endif
