/* test_router.c - route matching, path parameters and percent-decoding (decision D2). */
#include "libshop/http.h"
#include "tests/unit/check.h"

static int match(const char *pattern, const char *path, const char **v0, const char **v1)
{
    static char buf[4096];
    const char *names[8], *values[8];
    size_t n = 0;
    int m = shop_route_match(pattern, path, buf, sizeof(buf), names, values, &n, 8);
    if (m == 1) {
        if (v0)
            *v0 = n > 0 ? values[0] : NULL;
        if (v1)
            *v1 = n > 1 ? values[1] : NULL;
    }
    return m;
}

static void test_literals(void)
{
    CHECK(match("/health", "/health", NULL, NULL) == 1);
    CHECK(match("/health", "/HEALTH", NULL, NULL) == 0); /* case-sensitive (D23) */
    CHECK(match("/health", "/Health", NULL, NULL) == 0);
    CHECK(match("/health", "/health/", NULL, NULL) == 1); /* one trailing slash */
    CHECK(match("/health", "/health//", NULL, NULL) == 0);
    CHECK(match("/health", "/healthz", NULL, NULL) == 0);
    CHECK(match("/health", "/health/x", NULL, NULL) == 0);
    CHECK(match("/products", "/product", NULL, NULL) == 0);
    CHECK(match("/health", "/", NULL, NULL) == 0);
    CHECK(match("/health", "", NULL, NULL) == 0);
}

static void test_params(void)
{
    const char *a = NULL, *b = NULL;
    CHECK(match("/product/:sku", "/product/STAN-1", &a, NULL) == 1);
    CHECK_STR(a, "STAN-1");
    CHECK(match("/product/:sku", "/product/", NULL, NULL) == 0); /* empty param */
    CHECK(match("/product/:sku", "/product//x", NULL, NULL) == 0);
    CHECK(match("/rename/:from/:to", "/rename/anonymous-1/user/", &a, &b) == 1);
    CHECK_STR(a, "anonymous-1");
    CHECK_STR(b, "user");
    CHECK(match("/products/:cat", "/products/Artificial%20Intelligence", &a, NULL) == 1);
    CHECK_STR(a, "Artificial Intelligence");
    CHECK(match("/search/:text", "/search/a+b", &a, NULL) == 1);
    CHECK_STR(a, "a+b"); /* '+' is not a space in a path */
    CHECK(match("/search/:text", "/search/caf%C3%A9", &a, NULL) == 1);
    CHECK_STR(a, "caf\xc3\xa9");
    /* literal segments: compared exactly (D23), in place or after percent-decoding */
    CHECK(match("/products", "/PRODUCTS", NULL, NULL) == 0);
    CHECK(match("/product/:sku", "/%50roduct/Watson", NULL, NULL) == 0); /* %50 is 'P' */
    CHECK(match("/product/:sku", "/%70roduct/Watson", &a, NULL) == 1);
    CHECK_STR(a, "Watson");
    CHECK(match("/products", "/product", NULL, NULL) == 0);
    CHECK(match("/product", "/products", NULL, NULL) == 0);
    CHECK(match("/products", "/%70roduct", NULL, NULL) == 0);
}

static void test_bad_params(void)
{
    CHECK(match("/product/:sku", "/product/a%2Fb", NULL, NULL) == -1); /* decoded '/' */
    CHECK(match("/product/:sku", "/product/a%00b", NULL, NULL) == -1); /* NUL */
    CHECK(match("/product/:sku", "/product/a%0Ab", NULL, NULL) == -1); /* control */
    CHECK(match("/product/:sku", "/product/%zz", NULL, NULL) == -1);   /* bad escape */
    CHECK(match("/product/:sku", "/product/%4", NULL, NULL) == -1);    /* short escape */
    /* D23: a decoded parameter must be UTF-8, as decodeURIComponent demands */
    CHECK(match("/product/:sku", "/product/%FF", NULL, NULL) == -1);
    CHECK(match("/product/:sku", "/product/a%C3", NULL, NULL) == -1);         /* cut short */
    CHECK(match("/product/:sku", "/product/%C3%28", NULL, NULL) == -1);       /* bad continuation */
    CHECK(match("/product/:sku", "/product/%C0%AF", NULL, NULL) == -1);       /* overlong '/' */
    CHECK(match("/product/:sku", "/product/%E0%80%80", NULL, NULL) == -1);    /* overlong */
    CHECK(match("/product/:sku", "/product/%ED%A0%80", NULL, NULL) == -1);    /* surrogate */
    CHECK(match("/product/:sku", "/product/%F4%90%80%80", NULL, NULL) == -1); /* > U+10FFFF */
    CHECK(match("/product/:sku", "/product/%F5%80%80%80", NULL, NULL) == -1);
    CHECK(match("/product/:sku", "/product/\xff", NULL, NULL) == -1); /* raw byte, same rule */
    const char *v = NULL;
    CHECK(match("/product/:sku", "/product/%F0%9F%98%80a", &v, NULL) == 1);
    CHECK_STR(v, "\xf0\x9f\x98\x80"
                 "a");
    CHECK(match("/product/:sku", "/product/%EF%BF%BF%F4%8F%BF%BF", NULL, NULL) == 1);
    char longp[400] = "/product/";
    for (int i = 9; i < 9 + 257; i++)
        longp[i] = 'x';
    longp[9 + 257] = '\0';
    CHECK(match("/product/:sku", longp, NULL, NULL) == -1); /* 257 bytes */
    longp[9 + 256] = '\0';
    CHECK(match("/product/:sku", longp, NULL, NULL) == 1); /* 256 bytes is fine */
}

static void test_decode(void)
{
    char out[64];
    CHECK(shop_pct_decode("a%41%62c", 8, out) == 4);
    CHECK_STR(out, "aAbc");
    CHECK(shop_pct_decode("%", 1, out) == -1);
    CHECK(shop_pct_decode("%g0", 3, out) == -1);
    CHECK(shop_pct_decode("100%25", 6, out) == 4);
    CHECK_STR(out, "100%");
}

int main(void)
{
    test_literals();
    test_params();
    test_bad_params();
    test_decode();
    return check_report("router");
}
