/* routes.h - the dispatch service's handlers (routes.c) and the configuration they read, set by
 * main.c before serving. */
#ifndef DISPATCH_ROUTES_H
#define DISPATCH_ROUTES_H

#include "libshop/consumer.h"
#include "libshop/metrics.h"
#include "libshop/service.h"

#include <stdbool.h>

/* Where dispatch publishes the messages it cannot process (durable, bound to the robot-shop
 * exchange with this routing key). */
#define DISPATCH_DEAD_LETTER_QUEUE "orders.dead"

struct dispatch_config {
    long delay_ms; /* DISPATCH_DELAY_MS; -1 = the reference's random 42-83 ms */
    long error_percent;
    long max_attempts; /* DISPATCH_MAX_ATTEMPTS: deliveries of one order that may start work */
    long record_ttl_s; /* DISPATCH_RECORD_TTL_S: how long an order's record is kept */
    long ack_delay_ms; /* DISPATCH_ACK_DELAY_MS: fault injection, a pause before each ack */
};
extern struct dispatch_config dispatch_cfg;
extern struct shop_consumer *dispatch_pool; /* started by main.c */

extern struct shop_counter orders_dispatched;
extern struct shop_counter orders_failed;
extern struct shop_counter bad_messages;
extern struct shop_counter duplicates;
extern struct shop_counter dead_letters;
extern struct shop_counter record_errors;

/* shop_consumer_conf's accept and work (consumer.h). */
void *dispatch_accept(void *ud, const struct shop_amqp_delivery *d);
bool dispatch_work(struct shop_consumer *p, void *ud, void *job, bool redelivered);
void dispatch_free_job(void *job);

shop_handler dispatch_health;

#endif
