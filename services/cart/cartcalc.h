/* cartcalc.h - the cart's pure arithmetic (docs/api/cart.yaml): JavaScript parseInt, item
 * merge/update/shipping rules, totals and VAT-inclusive tax. No I/O: unit tests include it. */
#ifndef CART_CARTCALC_H
#define CART_CARTCALC_H

#include <jansson.h>
#include <stddef.h>

enum cart_rc {
    CART_OK = 0,
    CART_NOT_IN_CART, /* update: no item with that sku */
    CART_CORRUPT,     /* the stored cart lacks the Cart shape of docs/api/cart.yaml */
    CART_TOO_LARGE,   /* a quantity or amount is no longer a finite number */
    CART_FULL,        /* add: the cart already holds CART_LINES_MAX lines */
};

/* The most lines a cart holds (the SHIP line included): an add of a new SKU past it is refused
 * (D19). The catalogue has far fewer products; the bound keeps every cart small. */
#define CART_LINES_MAX 50

/* JavaScript parseInt(s) without a radix: leading white space, a sign, "0x" for hex, then the
 * longest digit prefix. NaN when there are no digits. */
double cart_parse_int(const char *s);

/* The VAT contained in a gross total (20 %): total - total / 1.2, unrounded. */
double cart_tax(double total);

/* An empty cart {"total":0,"tax":0,"items":[]} (new reference). */
json_t *cart_new(void);

/* Parses a stored cart. Returns a new reference, or NULL when the text is not a JSON object
 * whose "items" is an array of objects. */
json_t *cart_parse(const char *text, size_t len);

/* Adds qty of sku: an item with that sku gets qty += qty and its subtotal recomputed;
 * otherwise {qty, sku, name, price, subtotal} is appended (name omitted when NULL), or
 * CART_FULL when the cart already has CART_LINES_MAX lines. */
enum cart_rc cart_add(json_t *cart, const char *sku, const json_t *name, double price, double qty);

/* Sets the quantity of the first item with sku; 0 removes the item. */
enum cart_rc cart_update(json_t *cart, const char *sku, double qty);

/* Puts the SHIP line {qty:1, sku:"SHIP", name:"shipping to <location>", price:cost,
 * subtotal:cost} in place of an existing one, or at the end. */
enum cart_rc cart_ship(json_t *cart, const char *location, double cost);

/* Recomputes total (sum of subtotals in order) and tax. */
enum cart_rc cart_recompute(json_t *cart);

/* The cart as stored and returned: compact JSON, keys in insertion order (caller frees). */
char *cart_dump(const json_t *cart);

#endif
