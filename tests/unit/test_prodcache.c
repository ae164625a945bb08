/* test_prodcache - the cart's product cache: an entry is used only within its window (counted
 * from when the catalogue was asked), only for its own SKU, never when the window is 0, never
 * for an answer over the size bound, and the table never holds more than its slots. */
#include "check.h"
#include "services/cart/prodcache.c"

#include <stdio.h>

static void test_window(void)
{
    prodcache_init(1000);
    size_t len = 0;
    CHECK(prodcache_get("Watson", &len) == NULL);
    long long now = shop_now_ns();
    prodcache_put("Watson", "{\"price\":1}", 11, now);
    char *got = prodcache_get("Watson", &len);
    CHECK_STR(got, "{\"price\":1}");
    CHECK(len == 11);
    free(got);
    CHECK(prodcache_get("Watso", &len) == NULL);
    /* asked 1.001 s ago: older than the window, never used */
    prodcache_put("Watson", "{\"price\":2}", 11, now - 1001000000LL);
    CHECK(prodcache_get("Watson", &len) == NULL);
    prodcache_put("Watson", "{\"price\":3}", 11, now - 900000000LL);
    got = prodcache_get("Watson", &len);
    CHECK_STR(got, "{\"price\":3}");
    free(got);
}

static void test_off_and_size_bound(void)
{
    size_t len;
    prodcache_init(0);
    prodcache_put("Watson", "{}", 2, shop_now_ns());
    CHECK(prodcache_get("Watson", &len) == NULL);
    CHECK(prodcache_count() == 0);
    prodcache_init(1000);
    static char big[PRODCACHE_BODY_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    prodcache_put("BIG", big, PRODCACHE_BODY_MAX + 1, shop_now_ns());
    CHECK(prodcache_get("BIG", &len) == NULL);
    prodcache_put("BIG", big, PRODCACHE_BODY_MAX, shop_now_ns());
    char *got = prodcache_get("BIG", &len);
    CHECK(got && len == PRODCACHE_BODY_MAX);
    free(got);
}

static void test_bounded(void)
{
    prodcache_init(60000);
    char sku[32], body[64];
    long long now = shop_now_ns();
    for (int i = 0; i < 20 * PRODCACHE_SLOTS; i++) {
        snprintf(sku, sizeof(sku), "SKU-%d", i);
        snprintf(body, sizeof(body), "{\"sku\":\"SKU-%d\"}", i);
        prodcache_put(sku, body, strlen(body), now);
    }
    CHECK(prodcache_count() <= PRODCACHE_SLOTS);
    /* whatever is kept answers for its own SKU only */
    int kept = 0, wrong = 0;
    for (int i = 0; i < 20 * PRODCACHE_SLOTS; i++) {
        snprintf(sku, sizeof(sku), "SKU-%d", i);
        snprintf(body, sizeof(body), "{\"sku\":\"SKU-%d\"}", i);
        size_t len;
        char *got = prodcache_get(sku, &len);
        if (got) {
            kept++;
            wrong += strcmp(got, body) != 0;
        }
        free(got);
    }
    CHECK(kept == (int)prodcache_count());
    CHECK(wrong == 0);
    prodcache_init(0); /* frees every entry (LeakSanitizer) */
}

int main(void)
{
    test_window();
    test_off_and_size_bound();
    test_bounded();
    return check_report("prodcache");
}
