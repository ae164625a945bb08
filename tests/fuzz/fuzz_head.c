/* fuzz_head.c - a request head as the server reads it: the path of the request line routed
 * against the shop's patterns with the server's own buffer size, and the headers libshop
 * interprets itself (Accept, Content-Type, X-Request-Id). Header names and media types compare
 * case-insensitively, so the answer must not change with the case of the value; a kept request
 * id must be short and plain (it goes into logs and replies). A body after the blank line is
 * parsed as its Content-Type says (fuzz_body checks that parsing in depth).
 * Input: "METHOD PATH VERSION\r\n", "Name: value\r\n" lines, "\r\n" and a body, as on the wire. */
#include "libshop/http.h"
#include "libshop/json.h"
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include <stdbool.h>
#include <strings.h>

static const char *const patterns[] = {
    "/health",
    "/cart/:id",
    "/add/:id/:sku/:qty",
    "/match/:code/:text",
    "/product/:sku",
    "/api/rate/:sku/:score",
    "/search/:text",
    "/rename/:from/:to",
    "/codes",
    "/actuator/health",
};
static const char *const types[] = {"application/json", "text/html", "text/plain",
                                    "application/x-www-form-urlencoded"};

static char *upper(const char *s)
{
    size_t n = strlen(s);
    char *u = fuzz_cstr(s, n);
    for (size_t i = 0; i < n; i++)
        u[i] = (char)toupper((unsigned char)u[i]);
    return u;
}

static void route(const char *line)
{
    const char *sp = strchr(line, ' ');
    if (!sp)
        return;
    size_t n = strcspn(sp + 1, " ");
    char *path = fuzz_cstr(sp + 1, n), *buf = malloc(8192);
    FUZZ_CHECK(buf);
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        const char *names[8], *values[8];
        size_t np = 0;
        int m = shop_route_match(patterns[i], path, buf, 8192, names, values, &np, 8);
        FUZZ_CHECK(m >= -1 && m <= 1);
        for (size_t k = 0; m == 1 && k < np; k++)
            FUZZ_CHECK(strlen(values[k]) <= 256 && !strchr(values[k], '/'));
    }
    free(buf);
    free(path);
}

static void header(const char *name, const char *value)
{
    char *up = upper(value);
    if (strcasecmp(name, "Accept") == 0) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            FUZZ_CHECK(shop_accept_admits(value, types[i]) == shop_accept_admits(up, types[i]));
    } else if (strcasecmp(name, "Content-Type") == 0) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            FUZZ_CHECK(shop_ctype_is(value, types[i]) == shop_ctype_is(up, types[i]));
    } else if (strcasecmp(name, "X-Request-Id") == 0 && shop_request_id_ok(value)) {
        size_t n = strlen(value);
        FUZZ_CHECK(n > 0 && n < SHOP_RID_MAX);
        FUZZ_CHECK(strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789-_.:") == n);
    }
    free(up);
}

/* The body after the head, parsed as its Content-Type says. */
static void body(const char *ctype, const uint8_t *data, size_t size)
{
    char *b = fuzz_bytes(data, size);
    json_t *v = shop_body_parse(ctype, b, size);
    FUZZ_CHECK(!v || json_is_object(v) || json_is_array(v));
    json_decref(v);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = memmem(data, size, "\r\n\r\n", 4);
    size_t head_len = end ? (size_t)(end - data) : size;
    char *text = fuzz_cstr(data, head_len);
    const char *ctype = NULL;
    char *save = NULL;
    char *line = strtok_r(text, "\r\n", &save);
    if (line)
        route(line);
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *value = colon + 1;
        value += strspn(value, " \t");
        header(line, value);
        if (strcasecmp(line, "Content-Type") == 0)
            ctype = value;
    }
    if (end)
        body(ctype, end + 4, size - head_len - 4);
    FUZZ_CHECK(shop_accept_admits(NULL, "application/json") && shop_accept_admits("", "text/html"));
    free(text);
    return 0;
}
