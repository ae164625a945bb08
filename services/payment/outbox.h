/* outbox.h - order-history entries that could not be written at checkout (the user service or
 * its MongoDB down), kept in a Redis list and written later by a background thread, retried
 * until the user service takes them: an order never goes missing from a history (D21), across
 * payment restarts (the list is in Redis) and with several payment processes (one drains at a
 * time, under a lock key). */
#ifndef PAYMENT_OUTBOX_H
#define PAYMENT_OUTBOX_H

#include "libshop/err.h"
#include "libshop/metrics.h"

#include <jansson.h>
#include <stdbool.h>

#define OUTBOX_KEY  "payment/outbox"
#define OUTBOX_LOCK "payment/outbox-lock"

extern struct shop_counter history_deferred;  /* entries put in the outbox */
extern struct shop_counter history_recovered; /* entries written from the outbox */

/* Queues the history entry of orderid (cart borrowed) for user. check: whether the user must
 * first be confirmed as registered (the user check did not answer at checkout). cookie: the
 * caller's Cookie header, forwarded on the later calls (may be NULL). Returns 0 or -1 with err. */
int outbox_add(const char *user, const char *orderid, json_t *cart, bool check, const char *cookie,
               struct shop_err *err);

/* Starts the draining thread (every retry_ms, and at once after outbox_add) / stops and joins
 * it. user_base is the user service's base URL. */
void outbox_start(const char *user_base, long retry_ms);
void outbox_stop(void);

#endif
