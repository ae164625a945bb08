/* order.h - payment's pure order logic (no I/O): cart validation, sale metrics input,
 * UUIDv4 text and the JSON documents sent to RabbitMQ and to the user service. */
#ifndef PAYMENT_ORDER_H
#define PAYMENT_ORDER_H

#include <jansson.h>
#include <stdbool.h>

/* The check of the cart about to be paid (the server's, D19). A cart is valid when `items` is an
 * array of objects, some item has sku "SHIP", at least one other item, each of those with a
 * numeric `qty` > 0, no line with a negative `subtotal`, and `total` a number > 0. On success
 * fills *total and *units (sum of qty over non-SHIP items) and returns true. The reference
 * accepted any total other than 0 and a SHIP line alone; it answered 500 for a missing `items`
 * or `qty` (D3: bad input gets a 4xx, never a crash). */
bool order_check_cart(const json_t *cart, double *total, double *units);

/* Formats 16 random bytes as a version-4 UUID, lowercase canonical form (36 chars + NUL). */
void order_uuid4(const unsigned char rnd[16], char out[37]);

/* {"orderid": …, "user": …, "cart": …} in that key order (the AMQP message). New reference;
 * cart is borrowed. */
json_t *order_message(const char *orderid, const char *user, json_t *cart);

/* {"orderid": …, "cart": …} (the order-history entry). New reference; cart is borrowed. */
json_t *order_history(const char *orderid, json_t *cart);

#endif
