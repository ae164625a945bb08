/* test_cartcalc - the cart's pure arithmetic against the reference's examples (docs/api/cart.yaml).
 */
#include "services/cart/cartcalc.c"
#include "tests/unit/check.h"

#include <stdio.h>

#include <math.h>

static const char *num(double v)
{
    static char buf[64];
    shop_fmt_double(v, SHOP_NUM_JS, buf, sizeof(buf));
    return buf;
}

static void test_parse_int(void)
{
    CHECK(cart_parse_int("2abc") == 2);
    CHECK(cart_parse_int("1.9") == 1);
    CHECK(cart_parse_int(" 3") == 3);
    CHECK(cart_parse_int("+4") == 4);
    CHECK(cart_parse_int("010") == 10);
    CHECK(cart_parse_int("0x10") == 16);
    CHECK(cart_parse_int("0X1f") == 31);
    CHECK(cart_parse_int("-0x10") == -16);
    CHECK(cart_parse_int("1e3") == 1);
    CHECK(cart_parse_int("-5") == -5);
    CHECK(cart_parse_int("\xc2\xa0"
                         "7") == 7); /* U+00A0 is JS white space */
    CHECK(cart_parse_int("\xe3\x80\x80"
                         "8x") == 8);
    CHECK(isnan(cart_parse_int("")));
    CHECK(isnan(cart_parse_int("abc")));
    CHECK(isnan(cart_parse_int("0x")));
    CHECK(isnan(cart_parse_int("-")));
    CHECK(isnan(cart_parse_int(" +x1")));
    CHECK(cart_parse_int("0xg") != cart_parse_int("0xg")); /* NaN */
    CHECK(cart_parse_int("99999999999999999999") == 1e20);
    CHECK(isinf(cart_parse_int("1"
                               "0000000000000000000000000000000000000000000000000000000000"
                               "0000000000000000000000000000000000000000000000000000000000000"
                               "0000000000000000000000000000000000000000000000000000000000000"
                               "0000000000000000000000000000000000000000000000000000000000000"
                               "0000000000000000000000000000000000000000000000000000000000000"
                               "00000000000000000000000000")));
    double z = cart_parse_int("-0");
    CHECK(z == 0 && signbit(z));
}

static void test_tax(void)
{
    CHECK_STR(num(cart_tax(2001)), "333.5");
    CHECK_STR(num(cart_tax(67)), "11.166666666666664");
    CHECK_STR(num(cart_tax(0)), "0");
    CHECK_STR(num(cart_tax(2135)), "355.83333333333326");
}

/* A three-line cart with shipping, built the way the service builds it. */
static void test_reference_cart(void)
{
    json_t *cart = cart_new();
    char *s = cart_dump(cart);
    CHECK_STR(s, "{\"total\":0,\"tax\":0,\"items\":[]}");
    free(s);
    json_t *watson = json_string("Watson"), *stan = json_string("Stan");
    CHECK(cart_add(cart, "Watson", watson, 2001, 1) == CART_OK);
    CHECK(cart_recompute(cart) == CART_OK);
    CHECK_STR(num(json_number_value(json_object_get(cart, "tax"))), "333.5");
    CHECK(cart_add(cart, "STAN-1", stan, 67, 1) == CART_OK);
    CHECK(cart_add(cart, "STAN-1", stan, 67, 1) == CART_OK); /* merged: qty 2 */
    CHECK(cart_ship(cart, "United Kingdom London", 35.35) == CART_OK);
    CHECK(cart_recompute(cart) == CART_OK);
    s = cart_dump(cart);
    CHECK_STR(s,
              "{\"total\":2170.35,\"tax\":361.7249999999999,\"items\":["
              "{\"qty\":1,\"sku\":\"Watson\",\"name\":\"Watson\",\"price\":2001,\"subtotal\":2001},"
              "{\"qty\":2,\"sku\":\"STAN-1\",\"name\":\"Stan\",\"price\":67,\"subtotal\":134},"
              "{\"qty\":1,\"sku\":\"SHIP\",\"name\":\"shipping to United Kingdom London\","
              "\"price\":35.35,\"subtotal\":35.35}]}");
    /* a stored cart reads back to the same bytes */
    json_t *again = cart_parse(s, strlen(s));
    CHECK(again != NULL);
    char *s2 = cart_dump(again);
    CHECK_STR(s2, s);
    free(s2);
    free(s);

    /* a second shipping replaces the SHIP line in place; a later add goes after it */
    CHECK(cart_ship(again, "France Paris", 27.05) == CART_OK);
    CHECK(cart_add(again, "RMC", NULL, 42, 2) == CART_OK);
    CHECK(cart_recompute(again) == CART_OK);
    json_t *items = json_object_get(again, "items");
    CHECK(json_array_size(items) == 4);
    CHECK_STR(shop_json_str(json_array_get(items, 2), "name"), "shipping to France Paris");
    CHECK_STR(shop_json_str(json_array_get(items, 3), "sku"), "RMC");
    CHECK(json_object_get(json_array_get(items, 3), "name") == NULL);
    CHECK_STR(num(json_number_value(json_object_get(again, "total"))), "2246.05");

    /* update: SHIP/0 drops shipping, qty changes recompute the subtotal, unknown sku */
    CHECK(cart_update(again, "SHIP", 0) == CART_OK);
    CHECK(cart_update(again, "Watson", 3) == CART_OK);
    CHECK(cart_update(again, "nope", 1) == CART_NOT_IN_CART);
    CHECK(cart_recompute(again) == CART_OK);
    CHECK(json_array_size(items) == 3);
    CHECK_STR(num(json_number_value(json_object_get(json_array_get(items, 0), "subtotal"))),
              "6003");
    CHECK_STR(num(json_number_value(json_object_get(again, "total"))), "6221");
    CHECK(cart_update(again, "Watson", 0) == CART_OK);
    CHECK(cart_update(again, "STAN-1", 0) == CART_OK);
    CHECK(cart_update(again, "RMC", 0) == CART_OK);
    CHECK(cart_recompute(again) == CART_OK);
    s = cart_dump(again);
    CHECK_STR(s, "{\"total\":0,\"tax\":0,\"items\":[]}");
    free(s);
    json_decref(again);
    json_decref(cart);
    json_decref(watson);
    json_decref(stan);
}

static void test_key_order_kept(void)
{
    const char *stored = "{\"items\":[{\"sku\":\"A\",\"price\":2,\"qty\":1,\"subtotal\":2}],"
                         "\"tax\":0,\"total\":0,\"extra\":true}";
    json_t *cart = cart_parse(stored, strlen(stored));
    CHECK(cart != NULL);
    CHECK(cart_add(cart, "A", NULL, 99, 2) == CART_OK); /* stored price wins */
    CHECK(cart_recompute(cart) == CART_OK);
    char *s = cart_dump(cart);
    CHECK_STR(s, "{\"items\":[{\"sku\":\"A\",\"price\":2,\"qty\":3,\"subtotal\":6}],"
                 "\"tax\":1,\"total\":6,\"extra\":true}");
    free(s);
    json_decref(cart);
}

static void test_corrupt(void)
{
    const char *bad[] = {
        "abc", "[]", "{}", "{\"items\":{}}", "{\"items\":[1]}", "42", "\"x\"", "{\"items\":[{}],"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(cart_parse(bad[i], strlen(bad[i])) == NULL);
    const char *nosub = "{\"items\":[{\"sku\":\"A\",\"price\":2,\"qty\":1,\"subtotal\":\"2\"}]}";
    json_t *cart = cart_parse(nosub, strlen(nosub));
    CHECK(cart != NULL);
    CHECK(cart_recompute(cart) == CART_CORRUPT);
    json_decref(cart);
    const char *noprice = "{\"items\":[{\"sku\":\"A\",\"qty\":1,\"subtotal\":2}]}";
    cart = cart_parse(noprice, strlen(noprice));
    CHECK(cart_update(cart, "A", 2) == CART_CORRUPT);
    CHECK(cart_add(cart, "A", NULL, 2, 1) == CART_CORRUPT);
    json_decref(cart);
    const char *noqty = "{\"items\":[{\"sku\":\"A\",\"price\":1,\"subtotal\":2}]}";
    cart = cart_parse(noqty, strlen(noqty));
    CHECK(cart_add(cart, "A", NULL, 2, 1) == CART_CORRUPT);
    json_decref(cart);
    /* integers beyond int64 in a stored cart still read (as doubles, like JavaScript) */
    const char *big = "{\"total\":0,\"tax\":0,\"items\":[{\"qty\":100000000000000000000,"
                      "\"sku\":\"A\",\"price\":1,\"subtotal\":100000000000000000000}]}";
    cart = cart_parse(big, strlen(big));
    CHECK(cart != NULL);
    CHECK(cart_recompute(cart) == CART_OK);
    char *s = cart_dump(cart);
    CHECK(s && strstr(s, "\"total\":100000000000000000000,") != NULL);
    free(s);
    CHECK(cart_add(cart, "A", NULL, 1, 1e308) == CART_OK);
    CHECK(cart_add(cart, "A", NULL, 1, 1e308) == CART_TOO_LARGE);
    json_decref(cart);
}

/* D19: a cart holds at most CART_LINES_MAX lines; more of a SKU already there still merges. */
static void test_lines_bounded(void)
{
    json_t *cart = cart_new();
    char sku[16];
    bool ok = true;
    for (int i = 0; i < CART_LINES_MAX; i++) {
        snprintf(sku, sizeof(sku), "SKU-%d", i);
        ok = ok && cart_add(cart, sku, NULL, 1, 1) == CART_OK;
    }
    CHECK(ok);
    CHECK(cart_add(cart, "ONE-MORE", NULL, 1, 1) == CART_FULL);
    CHECK(json_array_size(json_object_get(cart, "items")) == CART_LINES_MAX);
    CHECK(cart_add(cart, "SKU-0", NULL, 1, 3) == CART_OK);
    CHECK(cart_update(cart, "SKU-1", 0) == CART_OK);
    CHECK(cart_add(cart, "ONE-MORE", NULL, 1, 1) == CART_OK);
    json_decref(cart);
}

int main(void)
{
    test_lines_bounded();
    test_parse_int();
    test_tax();
    test_reference_cart();
    test_key_order_kept();
    test_corrupt();
    return check_report("cartcalc");
}
