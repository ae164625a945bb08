/* order.c - payment's pure order logic: cart validation, UUIDv4 text, message documents. */
#include "services/payment/order.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool is_ship(const json_t *item)
{
    const char *sku = json_string_value(json_object_get(item, "sku"));
    return sku && strcmp(sku, "SHIP") == 0;
}

/* A line's amount: a finite number >= 0 (the cart service's own arithmetic writes no other). */
static bool amount_ok(const json_t *v)
{
    return json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) >= 0;
}

bool order_check_cart(const json_t *cart, double *total, double *units)
{
    const json_t *items = json_object_get(cart, "items");
    if (!json_is_object(cart) || !json_is_array(items))
        return false;
    bool has_ship = false;
    double n = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        const json_t *item = json_array_get(items, i);
        if (!json_is_object(item))
            return false;
        const json_t *sub = json_object_get(item, "subtotal");
        if (sub && !amount_ok(sub)) /* D19: no negative line (a shipping cost of -2000) */
            return false;
        if (is_ship(item)) {
            has_ship = true;
            continue;
        }
        const json_t *qty = json_object_get(item, "qty");
        /* sold_count is a counter: a quantity must be a finite number > 0 (D3, D19) */
        if (!amount_ok(qty) || json_number_value(qty) == 0)
            return false;
        n += json_number_value(qty);
    }
    const json_t *t = json_object_get(cart, "total");
    /* D19: an empty cart (no product line) or a total <= 0 is not paid */
    if (!has_ship || n == 0 || !amount_ok(t) || json_number_value(t) == 0 || !isfinite(n))
        return false;
    *total = json_number_value(t);
    *units = n;
    return true;
}

void order_uuid4(const unsigned char rnd[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    memcpy(b, rnd, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

json_t *order_message(const char *orderid, const char *user, json_t *cart)
{
    json_t *m = json_object();
    json_object_set_new(m, "orderid", json_string(orderid));
    json_object_set_new(m, "user", json_string(user));
    json_object_set(m, "cart", cart);
    return m;
}

json_t *order_history(const char *orderid, json_t *cart)
{
    json_t *m = json_object();
    json_object_set_new(m, "orderid", json_string(orderid));
    json_object_set(m, "cart", cart);
    return m;
}
