/* nonce.h - each cart's nonce (D21): a random value a cart gets when its first add creates it,
 * kept beside the cart under its own key so that the cart JSON is unchanged. Payment reads it
 * (GET /nonce/{id}) to name a checkout of this very cart: a retried pay finds the same nonce
 * even after the cart is gone, a new cart with the same content has a new one. */
#ifndef CART_NONCE_H
#define CART_NONCE_H

#include "libshop/err.h"
#include "libshop/service.h"

/* How long a nonce outlives its cart: a pay may be retried for 24 h (D21). */
#define CART_NONCE_KEEP_S (24L * 3600)

/* Gives the cart id a new nonce (a cart created by an add). Returns 0 or -1 with err set. */
int cart_nonce_rotate(const char *id, struct shop_err *err);
/* Gives `to` the nonce of `from` (a new one when `from` has none): rename. Returns 0 or -1. */
int cart_nonce_copy(const char *from, const char *to, struct shop_err *err);
/* Keeps the nonce of a deleted cart for CART_NONCE_KEEP_S more (a retried pay finds it). */
void cart_nonce_keep(const char *id);

/* GET /nonce/{id}: {"nonce": "…"}; a cart without one (stored before nonces) gets one here;
 * 404 when there is neither a cart nor a nonce. Internal (payment's call). */
shop_handler route_nonce;

#endif
