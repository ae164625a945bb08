/* http.c - libmicrohttpd wrapper: two-phase handler (keeps keep-alive on 0.9.75), per-connection
 * request objects reused across keep-alive requests, router, access log, metrics, graceful stop.
 * Memory per open connection is kept small (RSS at 900 connections): the path-parameter
 * buffer and the reply scratch buffer are per worker thread, since a handler runs to its reply
 * on one thread; only the small request object and a body that was sent live per connection. */
#include "libshop/http.h"
#include "libshop/conf.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/util.h"
#include "shop_version.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define MAX_PARAMS   8
#define MAX_HEADERS  4
#define PARAM_MAX    256
#define PATH_MAX_LEN 8192
#define DEFAULT_BODY (64 * 1024)
/* A refused body up to this size is read and dropped before the 413, so that a client (nginx)
 * still sending it reads the answer instead of a reset, and the connection stays usable.
 * A larger one is answered at once and the connection closed. */
#define DRAIN_MAX (1024 * 1024)
/* Request line + headers. libmicrohttpd 0.9.75 reads a request head into the connection's
 * memory pool and needs room left there for the response header: a head that (nearly) fills
 * the pool is handled and then dropped without an answer, or left hanging. So the pool is
 * twice the largest head we serve (nginx forwards request lines up to 8 KiB), and larger
 * heads get 431 before any handler runs. */
#define HEAD_MAX        (8 * 1024)
#define POOL_SIZE       (2 * HEAD_MAX)
#define MAX_CONNECTIONS 8192

/* Status codes counted per route; anything else lands in the last slot as "other". */
static const int counted_codes[] = {200, 201, 204, 301, 304, 400, 404, 405,
                                    406, 413, 415, 500, 502, 503, 504, 507};
#define NCODES (sizeof(counted_codes) / sizeof(counted_codes[0]) + 1)

static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.25,   0.5,   1,    2.5};

struct route_stats {
    const char *label; /* route pattern, or "unmatched" */
    _Atomic unsigned long long codes[NCODES];
    struct shop_histogram duration;
};

struct shop_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    long long start_ns;
    bool replied;
    bool too_big;
    unsigned long long received; /* body bytes seen so far */
    const char *etag;            /* strong ETag of the 200 being made (shop_reply_etag) */
    int status;
    struct route_stats *stats;
    struct shop_buf body;
    const char *pnames[MAX_PARAMS]; /* values point into the thread's path buffer */
    const char *pvalues[MAX_PARAMS];
    size_t nparams;
    char rid[SHOP_RID_MAX];
    const char *hdr_names[MAX_HEADERS];
    char *hdr_values[MAX_HEADERS];
    size_t nhdr;
};

static const struct shop_server_conf *g_conf;
static struct shop_route *g_routes;
static size_t g_nroutes;
static struct route_stats *g_stats; /* g_nroutes + 1 (unmatched) */
static atomic_bool g_stopping;
static atomic_int g_inflight; /* requests begun and not yet completed */

static bool server_stopping(void)
{
    return atomic_load(&g_stopping);
}

/* ---- path decoding and routing ---------------------------------------------------------- */

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

/* ---- request accessors ------------------------------------------------------------------ */

const char *shop_req_path(const struct shop_req *req)
{
    return req->url;
}

const char *shop_req_id(const struct shop_req *req)
{
    return req->rid;
}

const char *shop_req_param(const struct shop_req *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nparams; i++) {
        const char *pn = req->pnames[i];
        if (strncmp(pn, name, n) == 0 && (pn[n] == '/' || pn[n] == '\0'))
            return req->pvalues[i];
    }
    return NULL;
}

const char *shop_req_header(struct shop_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *shop_req_body(const struct shop_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

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
    return shop_body_parse(shop_req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE),
                           req->body.data ? req->body.data : "", req->body.len);
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

/* ---- replies ----------------------------------------------------------------------------- */

void shop_reply_add_header(struct shop_req *req, const char *name, const char *value)
{
    if (req->nhdr == MAX_HEADERS)
        return;
    req->hdr_names[req->nhdr] = name;
    req->hdr_values[req->nhdr] = shop_xstrdup(value);
    req->nhdr++;
}

static size_t code_slot(int status)
{
    for (size_t i = 0; i < NCODES - 1; i++)
        if (counted_codes[i] == status)
            return i;
    return NCODES - 1;
}

static void access_log(struct shop_req *req, double secs)
{
    if (shop_log_level < SHOP_LOG_INFO)
        return;
    char path[160];
    size_t i = 0;
    for (const char *u = req->url; *u && i < sizeof(path) - 1; u++)
        path[i++] = (*u > 0x20 && *u < 0x7f && *u != '"') ? *u : '?';
    path[i] = '\0';
    shop_log_access("rid=%s method=%s path=\"%s\" status=%d ms=%.3f", req->rid, req->method, path,
                    req->status, secs * 1000.0);
}

void shop_reply(struct shop_req *req, int status, const char *content_type, const char *body,
                size_t len)
{
    if (req->replied) {
        shop_log_warnx("rid=%s second reply ignored", req->rid);
        return;
    }
    req->replied = true;
    req->status = status;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return;
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, "X-Request-Id", req->rid);
    if (g_conf->cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(r, "Timing-Allow-Origin", "*");
    }
    if (g_conf->cors_methods)
        MHD_add_response_header(r, "Access-Control-Allow-Methods", g_conf->cors_methods);
    for (size_t i = 0; i < req->nhdr; i++)
        MHD_add_response_header(r, req->hdr_names[i], req->hdr_values[i]);
    if (req->etag && (status == 200 || status == 304))
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, req->etag);
    if (server_stopping())
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_queue_response(req->conn, (unsigned)status, r);
    MHD_destroy_response(r);

    double secs = (double)(shop_now_ns() - req->start_ns) / 1e9;
    if (req->stats) {
        atomic_fetch_add(&req->stats->codes[code_slot(status)], 1);
        shop_histogram_observe(&req->stats->duration, secs);
    }
    access_log(req, secs);
}

void shop_reply_text(struct shop_req *req, int status, const char *text)
{
    shop_reply(req, status, g_conf->text_type, text, strlen(text));
}

/* ---- entity tags ---------------------------------------------------------------------------- */

void shop_etag_make(const void *data, size_t len, char tag[SHOP_ETAG_SIZE])
{
    unsigned long long h = 0xcbf29ce484222325ULL; /* FNV-1a, 64 bits */
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    snprintf(tag, SHOP_ETAG_SIZE, "\"%016llx\"", h);
}

/* true when the If-None-Match value v names tag: "*", or a list entry equal to it under the
 * weak comparison RFC 9110 asks for here (a W/ prefix is ignored). */
static bool etag_listed(const char *v, const char *tag)
{
    size_t tlen = strlen(tag);
    while (*v) {
        v += strspn(v, " \t,");
        if (*v == '*')
            return true;
        if (strncmp(v, "W/", 2) == 0)
            v += 2;
        size_t n = strcspn(v, " \t,");
        if (n == tlen && memcmp(v, tag, n) == 0)
            return true;
        v += n;
    }
    return false;
}

bool shop_reply_etag(struct shop_req *req, const char *tag)
{
    req->etag = tag;
    const char *inm = shop_req_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (!inm || !etag_listed(inm, tag))
        return false;
    shop_reply(req, 304, NULL, "", 0);
    return true;
}

/* ---- per-thread scratch: reply serialisation and path parameters ---------------------------- */

#define OUT_MAX  (32 * 1024 * 1024)
#define OUT_KEEP (64 * 1024) /* a larger scratch buffer is freed after its reply */

struct thread_scratch {
    struct shop_buf out;
    char pathbuf[PATH_MAX_LEN];
};

static void *scratch_new(void)
{
    struct thread_scratch *t = shop_xmalloc(sizeof(*t));
    shop_buf_init(&t->out, OUT_MAX);
    return t;
}

static void scratch_free(void *p)
{
    struct thread_scratch *t = p;
    shop_buf_cleanup(&t->out);
    free(t);
}

static struct shop_tls scratches = SHOP_TLS(scratch_new, scratch_free);

static struct thread_scratch *scratch(void)
{
    return shop_tls_get(&scratches);
}

void shop_reply_json_text(struct shop_req *req, int status, const char *json, size_t len)
{
    shop_reply(req, status, g_conf->json_type, json, len);
}

/* A scratch buffer grown past OUT_KEEP for one large body is given back, not kept per thread. */
static void scratch_trim(struct shop_buf *out)
{
    if (out->cap > OUT_KEEP)
        shop_buf_cleanup(out);
}

struct shop_buf *shop_reply_scratch(void)
{
    struct shop_buf *out = &scratch()->out;
    scratch_trim(out);
    shop_buf_reset(out);
    return out;
}

void shop_reply_scratch_json(struct shop_req *req, int status)
{
    struct shop_buf *out = &scratch()->out;
    shop_reply(req, status, g_conf->json_type, out->data, out->len); /* copies */
    scratch_trim(out);
}

void shop_reply_json(struct shop_req *req, int status, json_t *v)
{
    if (!v) { /* a json_pack that failed, e.g. on a string that is not UTF-8 */
        shop_reply_text(req, 500, "response could not be encoded");
        return;
    }
    struct shop_buf *out = shop_reply_scratch();
    int dumped = shop_json_dump(v, g_conf->json_flags, out);
    json_decref(v);
    if (dumped == -1) {
        scratch_trim(out); /* a failed dump may have grown it */
        shop_reply_text(req, 500, "response too large");
    } else {
        shop_reply_scratch_json(req, status);
    }
}

/* ---- built-in /metrics -------------------------------------------------------------------- */

static void render_http_metrics(struct shop_buf *out)
{
    shop_buf_puts(out, "# HELP http_requests_total Requests answered, by route and status code\n"
                       "# TYPE http_requests_total counter\n");
    for (size_t r = 0; r <= g_nroutes; r++) {
        for (size_t c = 0; c < NCODES; c++) {
            unsigned long long n = atomic_load(&g_stats[r].codes[c]);
            if (!n)
                continue;
            shop_buf_puts(out, "http_requests_total{route=\"");
            shop_metrics_label(out, g_stats[r].label);
            if (c < NCODES - 1)
                shop_buf_printf(out, "\",code=\"%d\"} %llu\n", counted_codes[c], n);
            else
                shop_buf_printf(out, "\",code=\"other\"} %llu\n", n);
        }
    }
    shop_buf_puts(out, "# HELP http_request_duration_seconds Time to answer, by route\n"
                       "# TYPE http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= g_nroutes; r++) {
        if (!atomic_load(&g_stats[r].duration.count))
            continue;
        struct shop_buf lbl;
        shop_buf_init(&lbl, 1024);
        shop_buf_puts(&lbl, "route=\"");
        shop_metrics_label(&lbl, g_stats[r].label);
        shop_buf_putc(&lbl, '"');
        shop_histogram_render(&g_stats[r].duration, lbl.data, 0, out);
        shop_buf_cleanup(&lbl);
    }
    shop_buf_printf(out,
                    "# HELP shop_build_info Service name and version\n"
                    "# TYPE shop_build_info gauge\n"
                    "shop_build_info{service=\"%s\",version=\"%s\"} 1\n",
                    g_conf->service, SHOP_VERSION);
}

static void metrics_handler(struct shop_req *req)
{
    struct shop_buf out;
    shop_buf_init(&out, 4 * 1024 * 1024);
    shop_metrics_render(&out);
    render_http_metrics(&out);
    shop_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
               out.len);
    shop_buf_cleanup(&out);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

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

static void dispatch(struct shop_req *req)
{
    char allow[128] = "";
    int bad = 0;
    char *pathbuf = scratch()->pathbuf;
    for (size_t i = 0; i < g_nroutes; i++) {
        const char *names[MAX_PARAMS], *values[MAX_PARAMS];
        size_t np = 0;
        int m = shop_route_match(g_routes[i].pattern, req->url, pathbuf, PATH_MAX_LEN, names,
                                 values, &np, MAX_PARAMS);
        if (m == 0)
            continue;
        if (!method_is(g_routes[i].method, req->method)) {
            allow_add(allow, sizeof(allow), g_routes[i].method);
            if (strcmp(g_routes[i].method, "GET") == 0)
                allow_add(allow, sizeof(allow), "HEAD");
            continue;
        }
        req->stats = &g_stats[i];
        if (m < 0) {
            bad = 1;
            break;
        }
        memcpy(req->pnames, names, np * sizeof(names[0]));
        memcpy(req->pvalues, values, np * sizeof(values[0]));
        req->nparams = np;
        g_routes[i].fn(req);
        if (!req->replied) {
            shop_log_warnx("rid=%s handler for %s gave no reply", req->rid, g_routes[i].pattern);
            shop_reply_text(req, 500, "internal error");
        }
        return;
    }
    if (!req->stats)
        req->stats = &g_stats[g_nroutes];
    if (bad) {
        shop_reply_text(req, 400, "bad path parameter");
    } else if (*allow && strcmp(req->method, "OPTIONS") == 0 && g_conf->options_bare) {
        allow_add(allow, sizeof(allow), "OPTIONS");
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

/* ---- libmicrohttpd callbacks ---------------------------------------------------------------- */

bool shop_request_id_ok(const char *id)
{
    size_t n = strlen(id);
    bool ok = n > 0 && n < SHOP_RID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)id[i]) || strchr("-_.:", id[i]);
    return ok;
}

static void make_request_id(struct shop_req *req)
{
    const char *given = shop_req_header(req, "X-Request-Id");
    if (given && shop_request_id_ok(given)) {
        memcpy(req->rid, given, strlen(given) + 1);
        return;
    }
    static _Thread_local unsigned long long state;
    if (!state)
        state = (unsigned long long)shop_now_ns() ^ ((unsigned long long)pthread_self() << 16) ^
                (unsigned long long)getpid();
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    snprintf(req->rid, sizeof(req->rid), "%016llx", state);
}

static void req_begin(struct shop_req *req, struct MHD_Connection *c, const char *url,
                      const char *method)
{
    req->conn = c;
    req->url = url;
    req->method = method;
    req->start_ns = shop_now_ns();
    req->replied = false;
    req->too_big = false;
    req->received = 0;
    req->etag = NULL;
    req->status = 0;
    req->stats = NULL;
    req->nparams = 0;
    for (size_t i = 0; i < req->nhdr; i++)
        free(req->hdr_values[i]);
    req->nhdr = 0;
    if (req->body.cap > 4096)
        shop_buf_cleanup(&req->body); /* an idle keep-alive connection keeps no large body */
    else
        shop_buf_reset(&req->body);
    make_request_id(req);
}

static struct shop_req *conn_req(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct shop_req *req = shop_xcalloc(1, sizeof(*req));
        shop_buf_init(&req->body, g_conf->body_max);
        *socket_context = req;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct shop_req *req = *socket_context;
        if (req) {
            shop_buf_cleanup(&req->body);
            for (size_t i = 0; i < req->nhdr; i++)
                free(req->hdr_values[i]);
            free(req);
        }
        *socket_context = NULL;
    }
}

static enum MHD_Result add_len(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* Bytes of the request line and headers (query arguments included), near enough. */
static size_t head_size(struct MHD_Connection *c, const char *url, const char *method)
{
    size_t n = strlen(method) + strlen(url) + 12;
    MHD_get_connection_values(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, add_len, &n);
    return n;
}

/* Phase one of a request whose Content-Length is over the limit: true when the 413 goes out
 * now (the client waits for 100 Continue, or the body is too large to read through); false
 * when the body will be read and dropped first (too_big set). */
static bool refuse_body_now(struct shop_req *req)
{
    const char *cl = shop_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (n <= g_conf->body_max)
        return false;
    const char *expect = shop_req_header(req, MHD_HTTP_HEADER_EXPECT);
    if (n > DRAIN_MAX || (expect && strcasecmp(expect, "100-continue") == 0))
        return true;
    req->too_big = true;
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct shop_req *req = *con_cls;
    if (!req) {
        /* phase one: remember the request; queueing now would close the connection */
        req = conn_req(c);
        if (!req)
            return MHD_NO;
        req_begin(req, c, url, method);
        *con_cls = req;
        atomic_fetch_add(&g_inflight, 1);
        if (head_size(c, url, method) > HEAD_MAX) {
            req->stats = &g_stats[g_nroutes];
            shop_reply_text(req, 431, "request header too large");
        } else if (refuse_body_now(req)) {
            req->stats = &g_stats[g_nroutes];
            shop_reply_text(req, 413, "request body too large");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        req->received += *upload_size;
        if (!req->too_big && shop_buf_append(&req->body, upload_data, *upload_size) == -1)
            req->too_big = true;
        *upload_size = 0;
        return req->too_big && req->received > DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    if (req->replied)
        return MHD_YES;
    if (req->too_big) {
        req->stats = &g_stats[g_nroutes];
        shop_reply_text(req, 413, "request body too large");
        return MHD_YES;
    }
    dispatch(req);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (*con_cls)
        atomic_fetch_sub(&g_inflight, 1);
    *con_cls = NULL;
}

/* Keep the raw path: we decode per segment so that %2F stays distinguishable from '/'. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    shop_log_debug("mhd: %s", line);
}

/* ---- start, run, stop --------------------------------------------------------------------- */

static void setup_routes(const struct shop_server_conf *conf)
{
    bool has_metrics = false;
    for (size_t i = 0; i < conf->nroutes; i++)
        if (strcmp(conf->routes[i].pattern, "/metrics") == 0)
            has_metrics = true;
    g_nroutes = conf->nroutes + (has_metrics ? 0 : 1);
    g_routes = shop_xcalloc(g_nroutes, sizeof(*g_routes));
    memcpy(g_routes, conf->routes, conf->nroutes * sizeof(*g_routes));
    if (!has_metrics)
        g_routes[conf->nroutes] = (struct shop_route){"GET", "/metrics", metrics_handler};
    g_stats = shop_xcalloc(g_nroutes + 1, sizeof(*g_stats));
    for (size_t i = 0; i <= g_nroutes; i++) {
        g_stats[i].label = i < g_nroutes ? g_routes[i].pattern : "unmatched";
        g_stats[i].duration = (struct shop_histogram)SHOP_HISTOGRAM_INIT(
            "http_request_duration_seconds", "", SHOP_NUM_JS, duration_bounds,
            sizeof(duration_bounds) / sizeof(duration_bounds[0]));
    }
}

/* SIGTERM and SIGINT stay blocked in every thread (shop_server_run waits for them): blocked
 * here, before the service starts any thread of its own, since threads inherit the mask. */
static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

static void block_stop_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void shop_service_init(int argc, char **argv, const char *service)
{
    block_stop_signals();
    shop_log_init(service);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("%s %s\n", service, SHOP_VERSION);
            exit(0);
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--version]\nConfigured by environment variables; see the README.\n",
                   service);
            exit(0);
        }
        fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", service, argv[i]);
        exit(2);
    }
    const char *lvl = getenv("LOG_LEVEL");
    if (lvl && *lvl && shop_log_set_level(lvl) == -1)
        shop_fatalx("config: LOG_LEVEL=\"%s\" is not one of error, warn, info, debug", lvl);
    shop_log_info("starting version=%s pid=%d", SHOP_VERSION, (int)getpid());
}

/* Raises the open-files limit to its hard maximum and returns how many connections to accept:
 * enough for thousands of clients (the libmicrohttpd default is 1020), bounded by the limit. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return 1000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t n = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64; /* room for backend connections */
    return n > MAX_CONNECTIONS ? MAX_CONNECTIONS : (unsigned)n;
}

/* The address to listen on (SHOP_BIND, default the IPv4 wildcard) and the flags its family needs:
 * "::" listens on every address of both families. */
static const struct sockaddr *listen_addr(int port, struct sockaddr_storage *sa, unsigned *flags)
{
    shop_conf_bind("SHOP_BIND", "0.0.0.0", port, sa);
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        *flags |= IN6_IS_ADDR_UNSPECIFIED(a) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    }
    return (const struct sockaddr *)sa;
}

static struct MHD_Daemon *start_daemon(const struct shop_server_conf *conf, unsigned threads)
{
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    int fd = -1;
    struct sockaddr_storage sa;
    const struct sockaddr *addr = NULL; /* a socket passed by systemd is bound already */
    if (sd_listen_fds(0) >= 1) {
        fd = SD_LISTEN_FDS_START;
        /* a socket shared with another process (a redeploy's hand-over) must not block in accept */
        int fl = fcntl(fd, F_GETFL);
        if (fl != -1)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        shop_log_info("using the socket passed by systemd (fd %d)", fd);
    } else {
        addr = listen_addr(conf->port, &sa, &flags);
    }
    unsigned limit = connection_limit();
    return MHD_start_daemon(
        flags, (uint16_t)conf->port, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)POOL_SIZE, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_END);
}

/* The port the listening socket is bound to (also for a socket passed by systemd, where
 * libmicrohttpd only knows the port it was given). 0 when unknown. */
static unsigned bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (!info || getsockname(info->listen_fd, (struct sockaddr *)&ss, &len) == -1)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* Waits, at most drain_ms, for the requests in flight to be answered after quiesce. Idle
 * keep-alive connections do not hold the stop; a request arriving on one meanwhile is answered
 * with Connection: close. */
static void drain(long drain_ms)
{
    long long deadline = shop_now_ns() + drain_ms * 1000000LL;
    shop_sleep_ms(20); /* let requests already on the wire reach a handler */
    while (atomic_load(&g_inflight) > 0) {
        if (shop_now_ns() >= deadline) {
            shop_log_info("drain timeout reached with %d request(s) in flight",
                          atomic_load(&g_inflight));
            return;
        }
        shop_sleep_ms(10);
    }
}

int shop_server_run(const struct shop_server_conf *user_conf)
{
    static struct shop_server_conf conf;
    conf = *user_conf;
    if (!conf.text_type)
        conf.text_type = "text/html; charset=utf-8";
    if (!conf.json_type)
        conf.json_type = "application/json; charset=utf-8";
    if (!conf.body_max)
        conf.body_max = DEFAULT_BODY;
    g_conf = &conf;
    setup_routes(&conf);

    unsigned threads = (unsigned)shop_conf_long("SHOP_THREADS", 4, 1, 256);
    long drain_ms = shop_conf_long("SHOP_DRAIN_MS", 5000, 0, 600000);

    sigset_t set;
    stop_signals(&set);
    block_stop_signals(); /* done by shop_service_init already, unless it was not called */

    struct MHD_Daemon *d = start_daemon(&conf, threads);
    if (!d) {
        shop_log_warn("cannot listen on port %d", conf.port);
        return 1;
    }
    unsigned port = bound_port(d);
    shop_log_info("listening port=%u threads=%u version=%s", port, threads, SHOP_VERSION);
    sd_notifyf(0, "READY=1\nSTATUS=serving on port %u", port);

    int sig = 0;
    sigwait(&set, &sig);
    shop_log_info("signal %d: quiescing and draining", sig);
    sd_notify(0, "STOPPING=1");
    atomic_store(&g_stopping, true);
    MHD_socket lfd = MHD_quiesce_daemon(d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    drain(drain_ms);
    MHD_stop_daemon(d);
    free(g_routes);
    free(g_stats);
    shop_log_info("stopped");
    return 0;
}
