/* client.c - outbound HTTP with libcurl: connections to the same service are reused (the
 * thread's or the loop's, curlrun.h); in a request's coroutine the call waits without holding
 * its loop. */
#include "libshop/client.h"
#include "libshop/castore.h"
#include "libshop/curlrun.h"
#include "libshop/log.h"
#include "libshop/trace.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void shop_http_result_init(struct shop_http_result *res, size_t body_max)
{
    res->status = 0;
    res->err = (struct shop_err){0};
    shop_buf_init(&res->body, body_max);
}

void shop_http_result_cleanup(struct shop_http_result *res)
{
    shop_buf_cleanup(&res->body);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct shop_http_result *res = ud;
    if (shop_buf_append(&res->body, p, size * n) == -1) {
        shop_err_set(&res->err, SHOP_ERR_FAILED, 0, "response body larger than %zu bytes",
                     res->body.max);
        return 0;
    }
    return size * n;
}

/* A transfer that found no peer to talk to, or none that answered in time, is UNAVAILABLE. */
static enum shop_err_kind transport_kind(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_ABORTED_BY_CALLBACK: /* curlrun.c: the loop stopped with the call in flight */
        return SHOP_ERR_UNAVAILABLE;
    default:
        return SHOP_ERR_FAILED;
    }
}

/* A forwarded Cookie header as its own header line (the lean libcurl has no cookie engine, so
 * CURLOPT_COOKIE would be ignored). A value with a line break is not sent. */
static struct curl_slist *add_cookie(struct curl_slist *hdrs, const char *cookie)
{
    if (!cookie || !*cookie || strpbrk(cookie, "\r\n"))
        return hdrs;
    size_t n = strlen("Cookie: ") + strlen(cookie) + 1;
    char *line = shop_xmalloc(n);
    snprintf(line, n, "Cookie: %s", cookie);
    hdrs = curl_slist_append(hdrs, line); /* copies the line */
    free(line);
    return hdrs;
}

static int http_call(const struct shop_http_call *call, struct shop_http_result *res,
                     const char *traceparent);

/* Every outbound call is a client span whose context travels in the traceparent header. */
int shop_http_call(const struct shop_http_call *call, struct shop_http_result *res)
{
    struct shop_span span;
    char tp[SHOP_TRACEPARENT_LEN + 1];
    shop_span_begin(&span, SHOP_SPAN_CLIENT, NULL, "%s", call->method);
    shop_trace_header(tp, sizeof(tp));
    shop_span_attr_str(&span, "http.request.method", call->method);
    shop_span_attr_str(&span, "url.full", call->url);
    int rc = http_call(call, res, tp);
    if (rc == 0)
        shop_span_attr_int(&span, "http.response.status_code", res->status);
    if (rc != 0 || res->status >= 500)
        shop_span_fail(&span, rc != 0 ? res->err.msg : "server error");
    shop_span_end(&span);
    return rc;
}

/* The call's header lines: no Expect, its content type, request id, cookie and traceparent. */
static struct curl_slist *request_headers(const struct shop_http_call *call,
                                          const char *traceparent)
{
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
    char line[160];
    if (call->content_type) {
        snprintf(line, sizeof(line), "Content-Type: %s", call->content_type);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (call->request_id) {
        snprintf(line, sizeof(line), "X-Request-Id: %s", call->request_id);
        hdrs = curl_slist_append(hdrs, line);
    }
    hdrs = add_cookie(hdrs, call->cookie);
    if (*traceparent) {
        snprintf(line, sizeof(line), "traceparent: %s", traceparent);
        hdrs = curl_slist_append(hdrs, line);
    }
    return hdrs;
}

static void set_options(CURL *h, const struct shop_http_call *call, struct shop_http_result *res,
                        struct curl_slist *hdrs, char *errbuf)
{
    long connect_ms = call->timeout_ms < 2000 ? call->timeout_ms : 2000;
    curl_easy_setopt(h, CURLOPT_URL, call->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, call->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, call->follow_redirects ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    const char *ca = shop_ca_file(); /* NULL: libcurl's own default */
    if (ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    if (strcmp(call->method, "GET") != 0) {
        if (call->body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        }
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method);
    }
}

static int http_call(const struct shop_http_call *call, struct shop_http_result *res,
                     const char *traceparent)
{
    res->status = 0;
    res->err = (struct shop_err){0};
    shop_buf_reset(&res->body);
    CURL *h = shop_curl_handle();
    if (!h) {
        shop_err_set(&res->err, SHOP_ERR_FAILED, 0, "cannot create a curl handle");
        return -1;
    }
    curl_easy_reset(h);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = request_headers(call, traceparent);
    set_options(h, call, res, hdrs, errbuf);
    CURLcode rc = shop_curl_perform(h);
    /* the handle outlives this call: it must not keep pointers to the header list or errbuf */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
    shop_curl_release(h);
    if (rc != CURLE_OK) {
        if (res->err.kind == SHOP_ERR_NONE)
            shop_err_set(&res->err, transport_kind(rc), (long)rc, "%s",
                         errbuf[0] ? errbuf : curl_easy_strerror(rc));
        res->status = 0;
        return -1;
    }
    if (!res->body.data)
        shop_buf_append(&res->body, "", 0);
    return 0;
}

int shop_url_escape_segment(struct shop_buf *out, const char *segment)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)segment; *p && rc == 0; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            rc = shop_buf_putc(out, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = shop_buf_append(out, e, 3);
        }
    }
    return rc;
}

int shop_http_call_peer(const struct shop_peer_call *peer, struct shop_http_result *res)
{
    struct shop_buf url; /* the call's own: a coroutine's call may overlap another's */
    shop_buf_init(&url, 4096);
    int rc = shop_buf_printf(&url, "%s/%s/", peer->base, peer->verb);
    if (rc == 0)
        rc = shop_url_escape_segment(&url, peer->id);
    if (rc == 0 && peer->query)
        rc = shop_buf_printf(&url, "?%s", peer->query);
    if (rc != 0) {
        res->status = 0;
        shop_err_set(&res->err, SHOP_ERR_FAILED, 0, "URL too long");
    } else {
        struct shop_http_call call = {
            .method = peer->method,
            .url = url.data,
            .content_type = peer->body ? "application/json" : NULL,
            .body = peer->body,
            .body_len = peer->body_len,
            .timeout_ms = peer->timeout_ms,
            .request_id = peer->request_id,
            .cookie = peer->cookie,
        };
        rc = shop_http_call(&call, res);
    }
    if (rc != 0)
        shop_log_warnx("rid=%s %s %s: %s", peer->request_id ? peer->request_id : "-", peer->method,
                       url.len ? url.data : peer->base, res->err.msg);
    shop_buf_cleanup(&url);
    return rc ? -1 : 0;
}
