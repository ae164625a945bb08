/* fuzz_route.c - the request path as the router sees it: shop_pct_decode on any bytes, checked
 * against a plain RFC 3986 decoder, and shop_route_match of any path against the shop's route
 * patterns. A match must give back D2-valid values inside the caller's buffer, and the path
 * rebuilt from those values (escaped again) must match with the same values.
 * Input: byte 0 picks the pattern and the buffer size, the rest is the path. */
#include "libshop/client.h"
#include "libshop/http.h"
#include "tests/oracles.h"
#include "libshop/util.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>

#define MAXP 8

static const char *const patterns[] = {
    "/",
    "/_health",
    "/actuator/health",
    "/add/:id/:sku/:qty",
    "/calc/:id",
    "/cart/:id",
    "/categories",
    "/check/:id",
    "/codes",
    "/match/:code/:text",
    "/product/:sku",
    "/products/:cat",
    "/rename/:from/:to",
    "/search/:text",
    "/update/:id/:sku/:qty",
    "/api/rate/:sku/:score",
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

static void check_decode(const uint8_t *data, size_t size)
{
    char *in = fuzz_bytes(data, size), *out = malloc(size + 1), *want = malloc(size + 1);
    FUZZ_CHECK(out && want);
    long got = shop_pct_decode(in, size, out), exp = oracle_pct_decode(in, size, want);
    FUZZ_CHECK(got == exp);
    FUZZ_CHECK(got < 0 || (memcmp(out, want, (size_t)got) == 0 && out[got] == '\0'));
    free(want);
    free(out);
    free(in);
}

static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f || v[i] == '/')
            return false;
    return true;
}

/* The pattern with its parameters filled in from values, each escaped. */
static char *rebuild(const char *pattern, const char **values)
{
    struct shop_buf b;
    shop_buf_init(&b, 1 << 20);
    size_t k = 0;
    for (const char *p = pattern; *p;) {
        size_t seg = strcspn(p + 1, "/");
        shop_buf_putc(&b, '/');
        if (p[1] == ':')
            shop_url_escape_segment(&b, values[k++]);
        else
            shop_buf_append(&b, p + 1, seg);
        p += 1 + seg;
    }
    return b.data ? b.data : shop_xstrdup("");
}

static void check_match(const char *pattern, const char *path, size_t buflen)
{
    char *buf = malloc(buflen);
    const char *names[MAXP], *values[MAXP];
    size_t np = 0;
    FUZZ_CHECK(buf);
    int m = shop_route_match(pattern, path, buf, buflen, names, values, &np, MAXP);
    FUZZ_CHECK(m == -1 || m == 0 || m == 1);
    if (m == 1) {
        for (size_t i = 0; i < np; i++) {
            FUZZ_CHECK(values[i] >= buf && values[i] < buf + buflen);
            FUZZ_CHECK(memchr(values[i], '\0', (size_t)(buf + buflen - values[i])) != NULL);
            FUZZ_CHECK(value_ok(values[i]));
            FUZZ_CHECK(names[i] > pattern && names[i][-1] == ':');
        }
        char *again = rebuild(pattern, values);
        char buf2[8192];
        const char *names2[MAXP], *values2[MAXP];
        size_t np2 = 0;
        FUZZ_CHECK(
            shop_route_match(pattern, again, buf2, sizeof(buf2), names2, values2, &np2, MAXP) == 1);
        FUZZ_CHECK(np2 == np);
        for (size_t i = 0; i < np; i++)
            FUZZ_CHECK(strcmp(values[i], values2[i]) == 0);
        free(again);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decode(data, size);
    if (size == 0)
        return 0;
    const char *pattern = patterns[data[0] % NPATTERNS];
    size_t buflen = data[0] & 0x80 ? 8192 : 1 + (data[0] & 0x7f); /* the server's, or a tight one */
    char *path = fuzz_cstr(data + 1, size - 1);
    check_match(pattern, path, buflen);
    free(path);
    return 0;
}
