/* http.c - libmicrohttpd glue: two-phase handler (keeps keep-alive on 0.9.75), per-connection
 * request objects reused across keep-alive requests, request accessors, replies, entity tags,
 * request ids, access log. Memory per open connection is kept small (RSS at 900 connections):
 * the path-parameter buffer and the reply scratch buffer are per worker thread, since a handler
 * runs to its reply on one thread (in loop mode per coroutine: requests interleave there);
 * only the small request object and a body that was sent live per connection. In loop mode a
 * handler runs in a coroutine of the worker's event loop (loop.h); when it waits for a backend
 * the connection is suspended, and resumed to send the answer once it is done. The route
 * table is router.c's, the start and stop server.c's. */
#include "libshop/http_internal.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/loop.h"
#include "libshop/trace.h"

#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A refused body up to this size is read and dropped before the 413, so that a client (nginx)
 * still sending it reads the answer instead of a reset, and the connection stays usable.
 * A larger one is answered at once and the connection closed. */
#define DRAIN_MAX (1024 * 1024)

const struct shop_server_conf *shop_http_conf;
static atomic_bool g_stopping;
/* Requests begun and not yet completed, and the CLOSED bit: once set (by the drain, when no
 * request is in flight), no request is begun any more. One word, so that "none in flight" and
 * "none will begin" are decided together. */
static atomic_int g_inflight;
#define CLOSED (1 << 30)
static bool g_loop; /* handlers run in coroutines */

static bool server_stopping(void)
{
    return atomic_load(&g_stopping);
}

void http_stop_begin(void)
{
    atomic_store(&g_stopping, true);
}

int http_inflight(void)
{
    return atomic_load(&g_inflight) & ~CLOSED;
}

bool http_close_if_idle(void)
{
    int none = 0;
    return atomic_compare_exchange_strong(&g_inflight, &none, CLOSED);
}

void http_close(void)
{
    atomic_fetch_or(&g_inflight, CLOSED);
}

/* Counts a request in flight; false once closed: the request is then not begun at all. */
static bool request_admit(void)
{
    int n = atomic_load(&g_inflight);
    while (!(n & CLOSED))
        if (atomic_compare_exchange_weak(&g_inflight, &n, n + 1))
            return true;
    return false;
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

const char *shop_req_query(struct shop_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void shop_req_peer(struct shop_req *req, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    socklen_t salen =
        sa && sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (!sa || getnameinfo(sa, salen, buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
        buf[0] = '\0';
}

const char *shop_req_body(const struct shop_req *req, size_t *len)
{
    *len = req->body.len;
    return req->body.data ? req->body.data : "";
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

static void access_log(struct shop_req *req, double secs)
{
    if (shop_log_level < SHOP_LOG_INFO)
        return;
    char path[160];
    size_t i = 0;
    for (const char *u = req->url; *u && i < sizeof(path) - 1; u++)
        path[i++] = (*u > 0x20 && *u < 0x7f && *u != '"') ? *u : '?';
    path[i] = '\0';
    char trace[33] = "-", span[17];
    shop_trace_ids(trace, span);
    shop_log_access("rid=%s method=%s path=\"%s\" status=%d ms=%.3f trace=%s", req->rid,
                    req->method, path, req->status, secs * 1000.0, trace);
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
    if (shop_http_conf->cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(r, "Timing-Allow-Origin", "*");
    }
    if (shop_http_conf->cors_methods)
        MHD_add_response_header(r, "Access-Control-Allow-Methods", shop_http_conf->cors_methods);
    for (size_t i = 0; i < req->nhdr; i++)
        MHD_add_response_header(r, req->hdr_names[i], req->hdr_values[i]);
    if (req->etag && (status == 200 || status == 304))
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, req->etag);
    if (server_stopping())
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (shop_co_self()) {
        req->resp = r; /* queued when the coroutine is done */
    } else {
        MHD_queue_response(req->conn, (unsigned)status, r);
        MHD_destroy_response(r);
    }

    double secs = (double)(shop_now_ns() - req->start_ns) / 1e9;
    if (req->stats)
        http_stats_count(req->stats, status, secs);
    access_log(req, secs);
}

void shop_reply_text(struct shop_req *req, int status, const char *text)
{
    shop_reply(req, status, shop_http_conf->text_type, text, strlen(text));
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

/* The coroutine's scratch in loop mode, else the thread's. */
static struct thread_scratch *scratch(void)
{
    void **slot = shop_co_slot();
    if (!slot)
        return shop_tls_get(&scratches);
    if (!*slot)
        *slot = scratch_new();
    return *slot;
}

void http_loop_mode(bool on)
{
    g_loop = on;
    shop_co_slot_free_fn(scratch_free);
}

void shop_reply_json_text(struct shop_req *req, int status, const char *json, size_t len)
{
    shop_reply(req, status, shop_http_conf->json_type, json, len);
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
    shop_reply(req, status, shop_http_conf->json_type, out->data, out->len); /* copies */
    scratch_trim(out);
}

void shop_reply_json(struct shop_req *req, int status, json_t *v)
{
    if (!v) { /* a json_pack that failed, e.g. on a string that is not UTF-8 */
        shop_reply_text(req, 500, "response could not be encoded");
        return;
    }
    struct shop_buf *out = shop_reply_scratch();
    int dumped = shop_json_dump(v, shop_http_conf->json_flags, out);
    json_decref(v);
    if (dumped == -1) {
        scratch_trim(out); /* a failed dump may have grown it */
        shop_reply_text(req, 500, "response too large");
    } else {
        shop_reply_scratch_json(req, status);
    }
}

char *http_pathbuf(void)
{
    return scratch()->pathbuf;
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

void http_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct shop_req *req = shop_xcalloc(1, sizeof(*req));
        shop_buf_init(&req->body, shop_http_conf->body_max);
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
    if (n <= shop_http_conf->body_max)
        return false;
    const char *expect = shop_req_header(req, MHD_HTTP_HEADER_EXPECT);
    if (n > DRAIN_MAX || (expect && strcasecmp(expect, "100-continue") == 0))
        return true;
    req->too_big = true;
    return false;
}

/* Loop mode: the request's handler in a coroutine; when it had to wait, its connection is
 * resumed once it is done (http_on_request then queues the answer). */
static void co_dispatch(void *arg)
{
    http_dispatch(arg);
}

static void co_done(void *arg)
{
    struct shop_req *req = arg;
    MHD_resume_connection(req->conn);
}

/* Queues the answer a handler made in a coroutine. */
static void queue_made(struct shop_req *req)
{
    if (!req->resp)
        return;
    MHD_queue_response(req->conn, (unsigned)req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
}

enum MHD_Result http_on_request(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct shop_req *req = *con_cls;
    if (!req) {
        /* phase one: remember the request; queueing now would close the connection. Once the
         * server is closed (it stops), the connection is closed unanswered instead: nothing of
         * the request ran, so its client may send it again elsewhere. */
        req = conn_req(c);
        if (!req || !request_admit())
            return MHD_NO;
        req_begin(req, c, url, method);
        *con_cls = req;
        if (head_size(c, url, method) > HEAD_MAX) {
            req->stats = http_stats_unmatched();
            shop_reply_text(req, 431, "request header too large");
        } else if (refuse_body_now(req)) {
            req->stats = http_stats_unmatched();
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
    if (req->waiting) { /* resumed: its coroutine is done */
        req->waiting = false;
        queue_made(req);
        return MHD_YES;
    }
    if (req->replied)
        return MHD_YES;
    if (req->too_big) {
        req->stats = http_stats_unmatched();
        shop_reply_text(req, 413, "request body too large");
        return MHD_YES;
    }
    if (!g_loop) {
        http_dispatch(req);
    } else if (shop_co_start(co_dispatch, co_done, req)) {
        req->waiting = true;
        MHD_suspend_connection(c);
    } else {
        queue_made(req);
    }
    return MHD_YES;
}

void http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct shop_req *req = *con_cls;
    if (req) {
        if (req->resp) { /* made, never queued: the connection went first */
            MHD_destroy_response(req->resp);
            req->resp = NULL;
        }
        req->waiting = false;
        atomic_fetch_sub(&g_inflight, 1);
    }
    *con_cls = NULL;
}

/* Keep the raw path: we decode per segment so that %2F stays distinguishable from '/'. */
size_t http_no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    shop_log_debug("mhd: %s", line);
}
