/* http.h - the HTTP server every service runs: libmicrohttpd epoll thread pool (or, with
 * conf.loop, an event loop per worker thread whose handlers wait for Redis and other services
 * without holding it),
 * router with :param segments, bounded bodies, request ids, access log, per-route metrics,
 * graceful stop, sd_notify readiness and socket activation. */
#ifndef SHOP_HTTP_H
#define SHOP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct shop_req; /* one request; valid only inside its handler */
struct shop_buf;

/* A handler answers with exactly one shop_reply* call. Handlers run on worker threads
 * and may block on backends (the pool is sized for it); in loop mode a handler runs in a
 * coroutine, and its Redis calls and its calls to other services (client.h) let the thread
 * serve other requests while they wait. */
typedef void (*shop_handler_fn)(struct shop_req *req);

struct shop_route {
    const char *method;  /* "GET", "POST", "PUT", "DELETE"; GET also answers HEAD */
    const char *pattern; /* "/product/:sku"; literals match exactly (case-sensitive, D23) */
    shop_handler_fn fn;
};

struct shop_server_conf {
    const char *service; /* name in logs and metrics */
    int port;            /* 0 = any free port (tests); ignored under socket activation */
    const struct shop_route *routes;
    size_t nroutes;
    const char *text_type; /* content type of shop_reply_text; default text/html; charset=utf-8 */
    const char *json_type; /* default application/json; charset=utf-8 */
    bool cors;             /* add Access-Control-Allow-Origin and Timing-Allow-Origin: * */
    const char *cors_methods; /* when set, Access-Control-Allow-Methods on every reply too */
    size_t body_max;          /* request body cap (413 above it); default 64 KiB */
    bool options_bare;        /* OPTIONS: empty body, Allow with OPTIONS (Spring, Flask); else
                                 Express's: the method list as the body */
    int json_flags;           /* shop_json_flags for shop_reply_json */
    bool per_core; /* handlers answer from memory and rarely block: by default one worker thread
                    * per core (at least 2) instead of 4, since more threads than cores only
                    * queue for them (SHOP_THREADS still decides) */
    bool loop;     /* an event loop per worker thread: a handler waiting for Redis or for another
                      service does not hold its thread (the calls to MongoDB, MariaDB and RabbitMQ
                      still block it); SHOP_LOOP=0/1 overrides */
};

/* Handles --version/--help, LOG_LEVEL and SHOP_* knobs, logs the version, and blocks SIGTERM
 * and SIGINT (shop_server_run waits for them) before the service starts any thread. Call
 * first in main. */
void shop_service_init(int argc, char **argv, const char *service);

/* Serves until SIGTERM/SIGINT, then quiesces, drains and stops. Returns 0 on a clean stop,
 * 1 when the server could not start. */
int shop_server_run(const struct shop_server_conf *conf);

/* Request accessors. Strings live until the handler returns. */
const char *shop_req_path(const struct shop_req *req);
const char *shop_req_id(const struct shop_req *req);
/* The percent-decoded value of :name, or NULL. Values are checked before the handler runs
 * (D2, D23: UTF-8, no '/', NUL or control characters, at most 256 bytes, else 400). */
const char *shop_req_param(const struct shop_req *req, const char *name);
const char *shop_req_header(struct shop_req *req, const char *name);
/* The raw (not percent-decoded) value of the query argument name, or NULL. */
const char *shop_req_query(struct shop_req *req, const char *name);
/* The connection's peer address as text ("127.0.0.1", "::1") in buf, or "" when unknown. */
void shop_req_peer(struct shop_req *req, char *buf, size_t len);
/* true when the request's Accept header (absent: anything) admits the media type type
 * ("application/json"), exactly or through a wildcard range (all types, or all subtypes of its
 * type); quality values are not weighed. */
bool shop_req_accepts(struct shop_req *req, const char *type);
/* The same test on an Accept header value (NULL or empty admits anything). */
bool shop_accept_admits(const char *accept, const char *type);
/* true when a Content-Type value ct names the media type want (case-insensitive, parameters
 * after ';' ignored); false for NULL. */
bool shop_ctype_is(const char *ct, const char *want);
/* The raw request body (NUL-terminated) and its length. */
const char *shop_req_body(const struct shop_req *req, size_t *len);
/* The body as an object: parsed JSON for application/json, a flat object of strings for
 * application/x-www-form-urlencoded, {} for anything else or no body. Returns a new reference,
 * or NULL when the body claims JSON but is malformed or not an object/array (reply 400). */
json_t *shop_req_body_object(struct shop_req *req);
/* The same for a Content-Type value ct (may be NULL) and a body of len bytes. */
json_t *shop_body_parse(const char *ct, const char *body, size_t len);

/* Replies. Each copies what it needs. */
void shop_reply(struct shop_req *req, int status, const char *content_type, const char *body,
                size_t len);
void shop_reply_text(struct shop_req *req, int status, const char *text);
/* Steals v (decref'd even on failure). */
void shop_reply_json(struct shop_req *req, int status, json_t *v);
/* A body already serialised as JSON, sent with the server's JSON content type. */
void shop_reply_json_text(struct shop_req *req, int status, const char *json, size_t len);
/* The calling thread's reply buffer, emptied: build a JSON body in it, then send it with
 * shop_reply_scratch_json(). Valid until the thread's next shop_reply_json() or
 * shop_reply_scratch(). */
struct shop_buf *shop_reply_scratch(void);
void shop_reply_scratch_json(struct shop_req *req, int status);
/* Strong entity tags for bodies kept between requests (snapshots): made once per body, then
 * compared with If-None-Match on each request without allocating (D23). */
#define SHOP_ETAG_SIZE 19 /* '"', 16 hex digits, '"', NUL */
void shop_etag_make(const void *data, size_t len, char tag[SHOP_ETAG_SIZE]);
/* Before a 200 answer from a body tagged tag (tag must live until the reply is made): when
 * If-None-Match names tag (or is "*"), replies 304 with the ETag and returns true; else returns
 * false and the coming 200 carries the ETag header. */
bool shop_reply_etag(struct shop_req *req, const char *tag);
/* Adds a response header to the reply made next (at most 4 per request). */
void shop_reply_add_header(struct shop_req *req, const char *name, const char *value);

/* Room for a request id with its terminator. A client's X-Request-Id is kept when
 * shop_request_id_ok: 1 to SHOP_RID_MAX - 1 bytes of letters, digits and "-_.:"; otherwise the
 * server makes one up. */
#define SHOP_RID_MAX 72
bool shop_request_id_ok(const char *id);

/* Splits a path into segments and matches it against a pattern; exposed for unit tests.
 * Returns 1 on a match (params filled with decoded values in buf), 0 on no match, -1 when a
 * parameter is malformed (bad escape, not UTF-8, '/', control characters, too long). */
int shop_route_match(const char *pattern, const char *path, char *buf, size_t buflen,
                     const char **names, const char **values, size_t *nparams, size_t maxparams);
/* Percent-decodes n bytes of s into out (NUL-terminated). Returns the length, or -1 on a
 * malformed escape. out must hold n + 1 bytes. */
long shop_pct_decode(const char *s, size_t n, char *out);

#endif
