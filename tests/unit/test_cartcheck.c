/* test_cartcheck - the quick cart check against jansson (cart_parse) as the oracle: on carts the
 * service writes it must say yes, and on a million and a half mutations of them (flipped,
 * inserted, deleted and spliced bytes, tricky tokens, truncations) it may say yes only where
 * cart_parse accepts too. */
#include "check.h"
#include "services/cart/cartcalc.c"
#include "services/cart/cartcheck.c"

#include <stdlib.h>

static const char *const carts[] = {
    "{\"total\":2001,\"tax\":333.5,\"items\":[{\"qty\":1,\"sku\":\"Watson\",\"name\":\"Watson\","
    "\"price\":2001,\"subtotal\":2001}]}",
    "{\"total\":6036.35,\"tax\":1006.0583333333334,\"items\":[{\"qty\":1,\"sku\":\"Watson\","
    "\"name\":\"Watson\",\"price\":2001,\"subtotal\":2001},{\"qty\":2,\"sku\":\"STAN-1\",\"name\":"
    "\"Stan\",\"price\":1000,\"subtotal\":2000},{\"qty\":1,\"sku\":\"SHIP\",\"name\":\"shipping "
    "to London, United Kingdom\",\"price\":35.35,\"subtotal\":35.35}]}",
    "{\"total\":0,\"tax\":0,\"items\":[]}",
    "{\"items\":[{\"name\":\"caf\xc3\xa9 \\\"robot\\\" \\u00e9 "
    "\xf0\x9f\xa4\x96\"}],\"total\":-0.5}",
    " {\"total\":1, \"items\" : [ { } , {\"a\":[1,true,false,null,{\"b\":\"\\n\\t\\/\"}]} ] }\n",
};

static const char *const tokens[] = {
    "\\u0000",
    "\\ud83e",
    "\\udd16",
    "\\ud83e\\udd16",
    "1e400",
    "1e5",
    "-",
    "01",
    "1.",
    ".5",
    "\xc0\xaf",
    "\xed\xa0\x80",
    "\xf4\x90\x80\x80",
    "\xe0\x80\x80",
    "\xff",
    "\x01",
    "\\x",
    "\"items\":1",
    "\"items\":[1]",
    "\"items\":{}",
    "\"\\u0069tems\":[]",
    ",",
    ":",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    "nul",
    "truex",
    "\x00",
    "999999999999999999999999999999999999",
};

static int ok_both, quick_only;

static void compare(const char *buf, size_t len)
{
    bool quick = cart_check_quick(buf, len);
    json_t *cart = cart_parse(buf, len);
    if (quick && !cart) {
        if (quick_only++ < 5)
            fprintf(stderr, "quick check accepts what cart_parse refuses: %.*s\n", (int)len, buf);
    }
    ok_both += quick && cart;
    json_decref(cart);
}

static size_t mutate(const char *src, char *buf, size_t cap)
{
    size_t len = strlen(src);
    memcpy(buf, src, len);
    for (int k = 1 + rand() % 3; k > 0; k--) {
        size_t at = len ? (size_t)rand() % len : 0;
        switch (rand() % 5) {
        case 0: /* flip a byte */
            if (len)
                buf[at] = (char)(rand() % 256);
            break;
        case 1: /* delete a run */
            if (len) {
                size_t n = 1 + (size_t)rand() % 4;
                if (at + n > len)
                    n = len - at;
                memmove(buf + at, buf + at + n, len - at - n);
                len -= n;
            }
            break;
        case 2: { /* insert a tricky token */
            const char *t = tokens[rand() % (sizeof(tokens) / sizeof(tokens[0]))];
            size_t n = strlen(t) ? strlen(t) : 1; /* "\x00" stands for one NUL byte */
            if (len + n < cap) {
                memmove(buf + at + n, buf + at, len - at);
                memcpy(buf + at, t, n);
                len += n;
            }
            break;
        }
        case 3: /* truncate */
            len = at;
            break;
        default: /* duplicate a slice elsewhere */
            if (len) {
                size_t from = (size_t)rand() % len, n = 1 + (size_t)rand() % 12;
                if (from + n > len)
                    n = len - from;
                if (len + n < cap) {
                    memmove(buf + at + n, buf + at, len - at);
                    memmove(buf + at, buf + (from >= at ? from + n : from), n);
                    len += n;
                }
            }
        }
    }
    return len;
}

int main(void)
{
    for (size_t i = 0; i < sizeof(carts) / sizeof(carts[0]); i++) {
        CHECK(cart_check_quick(carts[i], strlen(carts[i])));
        json_t *c = cart_parse(carts[i], strlen(carts[i]));
        CHECK(c != NULL);
        json_decref(c);
    }
    /* what the quick check refuses by design, so that cart_parse decides */
    const char *unsure[] = {"{\"items\":[],\"x\":1e5}", "{\"\\u0069tems\":[]}",
                            "{\"items\":[],\"s\":\"\\ud83e\\udd16\"}"};
    for (size_t i = 0; i < sizeof(unsure) / sizeof(unsure[0]); i++)
        CHECK(!cart_check_quick(unsure[i], strlen(unsure[i])));
    const char *bad[] = {"",
                         "{",
                         "[]",
                         "{\"items\":{}}",
                         "{\"items\":[1]}",
                         "{\"total\":1}",
                         "{\"items\":[]} x",
                         "{\"items\":[],}",
                         "{\"items\":[{}],\"items\":2}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!cart_check_quick(bad[i], strlen(bad[i])));
    const char *dup = "{\"items\":2,\"items\":[{}]}"; /* the last "items" counts */
    CHECK(cart_check_quick(dup, strlen(dup)));

    srand(7);
    char buf[1024];
    for (int i = 0; i < 1500000; i++) {
        const char *src = carts[(size_t)i % (sizeof(carts) / sizeof(carts[0]))];
        compare(buf, mutate(src, buf, sizeof(buf)));
    }
    CHECK(quick_only == 0);
    CHECK(ok_both > 1000); /* the mutations do not all break the cart */
    return check_report("cartcheck");
}
