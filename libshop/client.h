/* client.h - outbound HTTP on libcurl: one reused easy handle per thread (keep-alive),
 * timeouts on every call, bounded response bodies. */
#ifndef SHOP_CLIENT_H
#define SHOP_CLIENT_H

#include <stddef.h>

#include "libshop/err.h"
#include "libshop/util.h"

struct shop_http_result {
    long status;          /* HTTP status, 0 when no answer came */
    struct shop_buf body; /* response body, NUL-terminated */
    struct shop_err err;  /* why the transfer failed: UNAVAILABLE when no peer answered (in
                             time), FAILED otherwise */
};

void shop_http_result_init(struct shop_http_result *res, size_t body_max);
void shop_http_result_cleanup(struct shop_http_result *res);

struct shop_http_call {
    const char *method; /* GET, POST, PUT, DELETE */
    const char *url;
    const char *content_type; /* for a body; NULL = none */
    const char *body;
    size_t body_len;
    long timeout_ms;        /* whole-transfer limit; connect limit is min(timeout, 2 s) */
    const char *request_id; /* sent as X-Request-Id when set */
    const char *cookie;     /* sent as the Cookie header when set and not empty (a caller's
                               session forwarded to a peer) */
    int follow_redirects;
};

/* Performs the call (in a coroutine of loop mode, waiting without holding the loop). Returns 0
 * when an HTTP answer arrived (any status; res->status and res->body set), -1 on a transport
 * failure or timeout (res->err says which). res must be initialised; its body is reset first. */
int shop_http_call(const struct shop_http_call *call, struct shop_http_result *res);

/* A call to another shop service's route with one parameter: base + "/" + verb + "/" + id. */
struct shop_peer_call {
    const char *method; /* GET, POST, DELETE */
    const char *base;   /* the service's base URL (shop_conf_base_url) */
    const char *verb;   /* the route's first segment: "product", "cart", "check", ... */
    const char *id;     /* the parameter, percent-encoded here */
    const char *query;  /* a query string (without '?', already encoded), or NULL */
    const char *body;   /* a JSON body, or NULL */
    size_t body_len;
    long timeout_ms;
    const char *request_id; /* forwarded as X-Request-Id */
    const char *cookie;     /* forwarded as the Cookie header when set (the caller's own) */
};

/* Performs a peer call as shop_http_call does (same result), and logs a transport failure
 * with the request id and the URL. */
int shop_http_call_peer(const struct shop_peer_call *peer, struct shop_http_result *res);

/* Percent-encodes a path segment (RFC 3986 unreserved kept) into out. Returns 0 or -1 if full. */
int shop_url_escape_segment(struct shop_buf *out, const char *segment);

#endif
