/* routes.h - the user service's handlers (routes.c). */
#ifndef USER_ROUTES_H
#define USER_ROUTES_H

#include "libshop/http.h"

void route_check(struct shop_req *req);
void route_health(struct shop_req *req);
void route_history(struct shop_req *req);
void route_login(struct shop_req *req);
void route_order(struct shop_req *req);
void route_register_user(struct shop_req *req);
void route_uniqueid(struct shop_req *req);
void route_users(struct shop_req *req);

#endif
