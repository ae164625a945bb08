/* cartcalc.c - the cart's pure arithmetic: parseInt, merge rules, totals (no I/O). */
#include "services/cart/cartcalc.h"
#include "libshop/json.h"
#include "libshop/util.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Length of the JavaScript white space (or line terminator) at s, 0 when none. */
static size_t js_space(const unsigned char *s)
{
    if (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        return 1;
    if (s[0] == 0xC2 && s[1] == 0xA0) /* U+00A0 */
        return 2;
    if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) /* U+1680 */
        return 3;
    if (s[0] == 0xE2 && s[1] == 0x80 &&
        ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;                                     /* U+2000-200A, U+2028, U+2029, U+202F */
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) /* U+205F */
        return 3;
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
        return 3;
    if (s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) /* U+FEFF */
        return 3;
    return 0;
}

static bool is_digit(char c, int radix)
{
    if (c >= '0' && c <= '9')
        return true;
    return radix == 16 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
}

double cart_parse_int(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n;
    while ((n = js_space(s)) > 0)
        s += n;
    double sign = 1;
    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    int radix = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        radix = 16;
        s += 2;
    }
    size_t len = 0;
    while (is_digit((char)s[len], radix))
        len++;
    if (len == 0)
        return NAN;
    /* strtod rounds a digit string (decimal or hex) correctly, as V8 does */
    char *buf = shop_xmalloc(len + 3);
    size_t off = 0;
    if (radix == 16) {
        buf[0] = '0';
        buf[1] = 'x';
        off = 2;
    }
    memcpy(buf + off, s, len);
    buf[off + len] = '\0';
    double v = strtod(buf, NULL);
    free(buf);
    return sign * v;
}

double cart_tax(double total)
{
    return total - total / 1.2;
}

json_t *cart_new(void)
{
    return json_pack("{s:i,s:i,s:[]}", "total", 0, "tax", 0, "items");
}

json_t *cart_parse(const char *text, size_t len)
{
    json_error_t err;
    json_t *cart = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &err);
    json_t *items = json_object_get(cart, "items");
    bool ok = json_is_object(cart) && json_is_array(items);
    for (size_t i = 0; ok && i < json_array_size(items); i++)
        ok = json_is_object(json_array_get(items, i));
    if (!ok) {
        json_decref(cart);
        return NULL;
    }
    return cart;
}

/* Index of the first item whose sku equals sku, or -1. */
static long find_item(const json_t *items, const char *sku)
{
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *s = shop_json_str(json_array_get(items, i), "sku");
        if (s && strcmp(s, sku) == 0)
            return (long)i;
    }
    return -1;
}

/* Sets key to the number v (keeping the key's position when it exists). */
static enum cart_rc set_num(json_t *obj, const char *key, double v)
{
    if (!isfinite(v))
        return CART_TOO_LARGE;
    json_object_set_new(obj, key, json_real(v));
    return CART_OK;
}

/* qty = qty_new, subtotal = price * qty_new, for a stored item. */
static enum cart_rc set_qty(json_t *item, double qty)
{
    json_t *price = json_object_get(item, "price");
    if (!json_is_number(price))
        return CART_CORRUPT;
    enum cart_rc rc = set_num(item, "qty", qty);
    if (rc == CART_OK)
        rc = set_num(item, "subtotal", json_number_value(price) * qty);
    return rc;
}

enum cart_rc cart_add(json_t *cart, const char *sku, const json_t *name, double price, double qty)
{
    json_t *items = json_object_get(cart, "items");
    if (!json_is_array(items))
        return CART_CORRUPT;
    long i = find_item(items, sku);
    if (i >= 0) {
        json_t *item = json_array_get(items, (size_t)i);
        json_t *old = json_object_get(item, "qty");
        if (!json_is_number(old))
            return CART_CORRUPT;
        return set_qty(item, json_number_value(old) + qty);
    }
    if (!isfinite(price * qty))
        return CART_TOO_LARGE;
    if (json_array_size(items) >= CART_LINES_MAX)
        return CART_FULL;
    json_t *item = json_object();
    json_object_set_new(item, "qty", json_real(qty));
    json_object_set_new(item, "sku", json_string(sku));
    if (name)
        json_object_set(item, "name", shop_json_mut(name));
    json_object_set_new(item, "price", json_real(price));
    json_object_set_new(item, "subtotal", json_real(price * qty));
    json_array_append_new(items, item);
    return CART_OK;
}

enum cart_rc cart_update(json_t *cart, const char *sku, double qty)
{
    json_t *items = json_object_get(cart, "items");
    if (!json_is_array(items))
        return CART_CORRUPT;
    long i = find_item(items, sku);
    if (i < 0)
        return CART_NOT_IN_CART;
    if (qty == 0) {
        json_array_remove(items, (size_t)i);
        return CART_OK;
    }
    return set_qty(json_array_get(items, (size_t)i), qty);
}

enum cart_rc cart_ship(json_t *cart, const char *location, double cost)
{
    json_t *items = json_object_get(cart, "items");
    if (!json_is_array(items))
        return CART_CORRUPT;
    if (!isfinite(cost))
        return CART_TOO_LARGE;
    struct shop_buf name;
    shop_buf_init(&name, strlen(location) + 16);
    shop_buf_puts(&name, "shipping to ");
    shop_buf_puts(&name, location);
    json_t *item = json_object();
    json_object_set_new(item, "qty", json_integer(1));
    json_object_set_new(item, "sku", json_string("SHIP"));
    json_object_set_new(item, "name", json_stringn(name.data, name.len));
    json_object_set_new(item, "price", json_real(cost));
    json_object_set_new(item, "subtotal", json_real(cost));
    shop_buf_cleanup(&name);
    long i = find_item(items, "SHIP");
    if (i >= 0)
        json_array_set_new(items, (size_t)i, item);
    else
        json_array_append_new(items, item);
    return CART_OK;
}

enum cart_rc cart_recompute(json_t *cart)
{
    json_t *items = json_object_get(cart, "items");
    if (!json_is_array(items))
        return CART_CORRUPT;
    double total = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *sub = json_object_get(json_array_get(items, i), "subtotal");
        if (!json_is_number(sub))
            return CART_CORRUPT;
        total += json_number_value(sub);
    }
    enum cart_rc rc = set_num(cart, "total", total);
    if (rc == CART_OK)
        rc = set_num(cart, "tax", cart_tax(total));
    return rc;
}

char *cart_dump(const json_t *cart)
{
    return shop_json_dumps(cart, SHOP_JSON_COMPACT);
}
