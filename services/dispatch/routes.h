/* routes.h - the dispatch service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef DISPATCH_ROUTES_H
#define DISPATCH_ROUTES_H

#include "libshop/consumer.h"
#include "libshop/metrics.h"
#include "libshop/service.h"

#include <stdbool.h>

struct dispatch_config {
    long delay_ms; /* DISPATCH_DELAY_MS; -1 = the reference's random 42-83 ms */
    long error_percent;
};
extern struct dispatch_config dispatch_cfg;
extern struct shop_consumer *dispatch_pool; /* started by main.c */

extern struct shop_counter orders_dispatched;
extern struct shop_counter orders_failed;
extern struct shop_counter bad_messages;

/* shop_consumer_conf's accept and work (consumer.h). */
void *dispatch_accept(void *ud, const struct shop_amqp_delivery *d);
bool dispatch_work(struct shop_consumer *p, void *ud, void *orderid, bool redelivered);

shop_handler route_health;

#endif
