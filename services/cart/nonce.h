/* nonce.h - each cart's nonce (D21): a random value a cart gets when its first add creates it,
 * kept beside the cart under its own key so that the cart JSON is unchanged. Payment reads it
 * (GET /nonce/{id}) to name a checkout of this very cart: a retried pay finds the same nonce
 * even after the cart is gone, a new cart with the same content has a new one. */
#ifndef CART_NONCE_H
#define CART_NONCE_H

#include "libshop/err.h"
#include "libshop/redis.h"
#include "libshop/service.h"

/* How long a nonce outlives its cart: a pay may be retried for 24 h (D21). */
#define CART_NONCE_KEEP_S (24L * 3600)

#define CART_NONCE_HEX 32 /* 16 random bytes */

/* A new nonce of a cart (a random value) and its write, which the add that creates the cart
 * makes with it (shop_redis_update_new). */
struct cart_nonce {
    char *key; /* heap; NULL: none made */
    char val[CART_NONCE_HEX + 1];
    struct shop_redis_write write; /* SETEX key (its TTL) val */
};
void cart_nonce_new(const char *id, struct cart_nonce *n);
void cart_nonce_free(struct cart_nonce *n);
/* Gives `to` the nonce of `from` (a new one when `from` has none): rename. Returns 0 or -1. */
int cart_nonce_copy(const char *from, const char *to, struct shop_err *err);
/* Deletes the cart id and keeps its nonce CART_NONCE_KEEP_S more (a retried pay finds it), in
 * one round trip. Returns 1 when the cart existed, 0 when not, -1 with err set. */
int cart_delete(const char *id, struct shop_err *err);

/* GET /nonce/{id}: {"nonce": "…"}; a cart without one (stored before nonces) gets one here;
 * 404 when there is neither a cart nor a nonce. Internal (payment's call). */
shop_handler route_nonce;

#endif
