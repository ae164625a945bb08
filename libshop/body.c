/* body.c - request bodies and media types: Content-Type and Accept tests, and a body (JSON or
 * an urlencoded form) read as one JSON object. */
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/util.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool shop_ctype_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* true when the media range r (n bytes, parameters already cut off) covers type. */
static bool range_covers(const char *r, size_t n, const char *type)
{
    while (n > 0 && (r[n - 1] == ' ' || r[n - 1] == '\t'))
        n--;
    const char *slash = strchr(type, '/');
    size_t major = (size_t)(slash - type);
    return (n == 3 && memcmp(r, "*/*", 3) == 0) ||
           (n == major + 2 && strncasecmp(r, type, major + 1) == 0 && r[major + 1] == '*') ||
           (n == strlen(type) && strncasecmp(r, type, n) == 0);
}

bool shop_req_accepts(struct shop_req *req, const char *type)
{
    return shop_accept_admits(shop_req_header(req, MHD_HTTP_HEADER_ACCEPT), type);
}

bool shop_accept_admits(const char *a, const char *type)
{
    if (!a || !*a)
        return true;
    while (*a) {
        a += strspn(a, " \t,");
        size_t item = strcspn(a, ",");
        size_t range = strcspn(a, ",;");
        if (range_covers(a, range, type))
            return true;
        a += item;
    }
    return false;
}

static json_t *parse_form(const char *s, size_t len)
{
    json_t *obj = json_object();
    const char *end = s + len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        const char *kend = eq ? eq : stop;
        char *k = shop_xstrndup(s, (size_t)(kend - s));
        char *v = eq ? shop_xstrndup(eq + 1, (size_t)(stop - eq - 1)) : shop_xstrdup("");
        for (char *c = k; *c; c++)
            if (*c == '+')
                *c = ' ';
        for (char *c = v; *c; c++)
            if (*c == '+')
                *c = ' ';
        long kn = shop_pct_decode(k, strlen(k), k);
        long vn = shop_pct_decode(v, strlen(v), v);
        /* a decoded NUL would cut the C string short ("user%00x" is not "user"): not supplied */
        bool has_nul =
            kn > 0 && (strlen(k) != (size_t)kn || (vn > 0 && memchr(v, '\0', (size_t)vn)));
        if (kn > 0 && vn >= 0 && !has_nul && !json_object_get(obj, k))
            json_object_set_new(obj, k, json_stringn(v, (size_t)vn));
        free(k);
        free(v);
        s = stop + 1;
    }
    return obj;
}

json_t *shop_req_body_object(struct shop_req *req)
{
    size_t len;
    const char *data = shop_req_body(req, &len);
    return shop_body_parse(shop_req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE), data, len);
}

json_t *shop_body_parse(const char *ct, const char *body, size_t len)
{
    if (shop_ctype_is(ct, "application/json")) {
        json_error_t err;
        if (len == 0)
            return json_object();
        return shop_json_parse(body, len, &err);
    }
    if (shop_ctype_is(ct, "application/x-www-form-urlencoded"))
        return parse_form(body, len);
    return json_object();
}
