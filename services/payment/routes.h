/* routes.h - the payment service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef PAYMENT_ROUTES_H
#define PAYMENT_ROUTES_H

#include "libshop/metrics.h"
#include "libshop/service.h"

struct payment_config {
    char user_base[300]; /* http://USER_HOST:USER_PORT */
    char cart_base[300]; /* http://CART_HOST:CART_PORT */
    const char *gateway; /* "" = no gateway call (D6) */
    long gateway_timeout_ms;
    long delay_ms;
    long pending_ttl_s;         /* how long a pay in progress keeps its key (D21) */
    const char *session_cookie; /* the session cookie's name (SHOP_SESSION_COOKIE) */
};
extern struct payment_config payment_cfg;

extern struct shop_counter sold_count;
extern struct shop_histogram units_sold;
extern struct shop_histogram cart_value;
extern struct shop_counter pay_replayed;

shop_handler payment_health, route_pay;

#endif
