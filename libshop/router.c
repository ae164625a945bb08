/* router.c - the route table and dispatch: path segments matched against patterns, per-segment
 * percent-decoding, path parameters checked (D2, D23), 405 with Allow, OPTIONS and 404, and
 * the request's server span (trace.h). */
#include "libshop/http_internal.h"
#include "libshop/log.h"
#include "libshop/trace.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAM_MAX 256

static struct shop_route *g_routes;
static char **g_templates; /* each route's pattern as "/product/{sku}" (span names) */
static size_t g_nroutes;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

long shop_pct_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return (long)o;
}

/* Length of the UTF-8 sequence at s (n bytes left), or 0 when it is not well-formed: no
 * overlong forms, no UTF-16 surrogates, nothing above U+10FFFF (as decodeURIComponent). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || s[0] > 0xF4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

/* A decoded parameter: 1..256 bytes of UTF-8 without '/' or control characters (D2, D23). */
static bool param_ok(const char *v, size_t n)
{
    if (n == 0 || n > PARAM_MAX)
        return false;
    const unsigned char *u = (const unsigned char *)v;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x20 || u[i] == 0x7f || u[i] == '/')
            return false;
        size_t len = utf8_seq(u + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

int shop_route_match(const char *pattern, const char *path, char *buf, size_t buflen,
                     const char **names, const char **values, size_t *nparams, size_t maxparams)
{
    size_t total = strlen(path);
    if (total > 1 && path[total - 1] == '/')
        total--; /* one trailing slash is tolerated, as Express did */
    const char *uend = path + total;
    const char *p = pattern, *u = path;
    size_t used = 0, np = 0;
    int bad = 0;
    for (;;) {
        if (*p == '\0')
            break;
        if (u >= uend || *p != '/' || *u != '/')
            return 0;
        p++;
        u++;
        size_t plen = strcspn(p, "/");
        const char *ue = memchr(u, '/', (size_t)(uend - u));
        size_t ulen = ue ? (size_t)(ue - u) : (size_t)(uend - u);
        if (ulen == 0)
            return 0; /* an empty segment never matches */
        if (p[0] == ':') {
            if (np == maxparams || used + ulen + 1 > buflen)
                return 0;
            long n = shop_pct_decode(u, ulen, buf + used);
            if (n < 0 || !param_ok(buf + used, (size_t)n))
                bad = 1;
            names[np] = p + 1;
            values[np] = buf + used;
            np++;
            used += ulen + 1;
        } else if (!memchr(u, '%', ulen)) { /* the usual literal segment: compare in place */
            if (ulen != plen || memcmp(u, p, plen) != 0)
                return 0;
        } else {
            char lit[PATH_MAX_LEN];
            if (ulen >= sizeof(lit))
                return 0;
            long n = shop_pct_decode(u, ulen, lit);
            if (n < 0 || (size_t)n != plen || memcmp(lit, p, plen) != 0)
                return 0;
        }
        p += plen;
        u += ulen;
    }
    if (u != uend)
        return 0;
    *nparams = np;
    return bad ? -1 : 1;
}

static bool method_is(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

/* Appends a method to a comma-separated Allow list, once. */
static void allow_add(char *allow, size_t size, const char *method)
{
    size_t len = strlen(allow), n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == allow || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return;
    if (len + n + 2 > size)
        return;
    snprintf(allow + len, size - len, "%s%s", len ? "," : "", method);
}

/* The route's template in OpenAPI's form ("/product/{sku}"), the span name's second word. */
static char *route_template(const char *pattern)
{
    struct shop_buf b;
    shop_buf_init(&b, 4096);
    for (const char *p = pattern; *p;) {
        if (*p == ':') {
            size_t n = strcspn(p + 1, "/");
            shop_buf_printf(&b, "{%.*s}", (int)n, p + 1);
            p += n + 1;
        } else {
            shop_buf_putc(&b, *p++);
        }
    }
    char *t = shop_xstrndup(b.data ? b.data : "", b.len);
    shop_buf_cleanup(&b);
    return t;
}

/* Finds the route of the request: its index, or -1 with allow (the methods the path has) filled;
 * *bad is set when the path matched but a parameter is malformed. */
static long find_route(struct shop_req *req, char *allow, size_t allow_size, int *bad)
{
    char *pathbuf = http_pathbuf();
    for (size_t i = 0; i < g_nroutes; i++) {
        const char *names[MAX_PARAMS], *values[MAX_PARAMS];
        size_t np = 0;
        int m = shop_route_match(g_routes[i].pattern, req->url, pathbuf, PATH_MAX_LEN, names,
                                 values, &np, MAX_PARAMS);
        if (m == 0)
            continue;
        if (!method_is(g_routes[i].method, req->method)) {
            allow_add(allow, allow_size, g_routes[i].method);
            if (strcmp(g_routes[i].method, "GET") == 0)
                allow_add(allow, allow_size, "HEAD");
            continue;
        }
        req->stats = http_stats_route(i);
        if (m < 0) {
            *bad = 1;
            return -1;
        }
        memcpy(req->pnames, names, np * sizeof(names[0]));
        memcpy(req->pvalues, values, np * sizeof(values[0]));
        req->nparams = np;
        return (long)i;
    }
    return -1;
}

/* The answer to a request no route takes: 400, OPTIONS, 405 or 404. */
static void reply_unrouted(struct shop_req *req, char *allow, size_t allow_size, int bad)
{
    if (bad) {
        shop_reply_text(req, 400, "bad path parameter");
    } else if (*allow && strcmp(req->method, "OPTIONS") == 0 && shop_http_conf->options_bare) {
        allow_add(allow, allow_size, "OPTIONS");
        shop_reply_add_header(req, "Allow", allow);
        shop_reply(req, 200, NULL, "", 0);
    } else if (*allow && strcmp(req->method, "OPTIONS") == 0) {
        shop_reply_add_header(req, "Allow", allow);
        shop_reply_text(req, 200, allow);
    } else if (*allow) {
        shop_reply_add_header(req, "Allow", allow);
        shop_reply_text(req, 405, "method not allowed");
    } else {
        shop_reply_text(req, 404, "not found");
    }
}

/* The server span's attributes (HTTP semantic conventions) once the answer is known. */
static void span_finish(struct shop_span *span, struct shop_req *req, long route)
{
    if (span->recording) {
        shop_span_attr_str(span, "http.request.method", req->method);
        if (route >= 0)
            shop_span_attr_str(span, "http.route", g_templates[route]);
        shop_span_attr_str(span, "url.path", shop_req_path(req));
        shop_span_attr_int(span, "http.response.status_code", req->status);
        shop_span_attr_str(span, "shop.request_id", req->rid);
        if (req->status >= 500)
            shop_span_fail(span, "server error");
    }
    shop_span_end(span);
}

void http_dispatch(struct shop_req *req)
{
    char allow[128] = "";
    int bad = 0;
    long route = find_route(req, allow, sizeof(allow), &bad);
    struct shop_span span;
    shop_span_begin_server(&span, shop_req_header(req, "traceparent"),
                           shop_req_header(req, "X-Shop-Trace-Id"), "%s %s", req->method,
                           route >= 0 ? g_templates[route] : "");
    span.request_id = req->rid;
    if (route >= 0) {
        g_routes[route].fn(req);
        if (!req->replied) {
            shop_log_warnx("rid=%s handler for %s gave no reply", req->rid,
                           g_routes[route].pattern);
            shop_reply_text(req, 500, "internal error");
        }
    } else {
        if (!req->stats)
            req->stats = http_stats_unmatched();
        reply_unrouted(req, allow, sizeof(allow), bad);
    }
    span_finish(&span, req, route);
}

void http_routes_setup(const struct shop_server_conf *conf)
{
    bool has_metrics = false;
    for (size_t i = 0; i < conf->nroutes; i++)
        if (strcmp(conf->routes[i].pattern, "/metrics") == 0)
            has_metrics = true;
    g_nroutes = conf->nroutes + (has_metrics ? 0 : 1);
    g_routes = shop_xcalloc(g_nroutes, sizeof(*g_routes));
    memcpy(g_routes, conf->routes, conf->nroutes * sizeof(*g_routes));
    if (!has_metrics)
        g_routes[conf->nroutes] = (struct shop_route){"GET", "/metrics", http_metrics_handler};
    g_templates = shop_xcalloc(g_nroutes, sizeof(*g_templates));
    for (size_t i = 0; i < g_nroutes; i++)
        g_templates[i] = route_template(g_routes[i].pattern);
    http_stats_setup(g_routes, g_nroutes);
}

void http_routes_free(void)
{
    http_stats_free();
    for (size_t i = 0; i < g_nroutes; i++)
        free(g_templates[i]);
    free(g_templates);
    g_templates = NULL;
    free(g_routes);
    g_routes = NULL;
    g_nroutes = 0;
}
