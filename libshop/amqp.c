/* amqp.c - RabbitMQ on rabbitmq-c 0.11: the robot-shop topology, a confirming publisher with
 * one connection per thread, and a manual-ack consumer loop that reconnects forever.
 *
 * Why per-thread publisher connections rather than one shared connection behind a mutex: a
 * publish holds its connection until the broker confirms it (an fsync for a persistent
 * message, milliseconds), so a shared connection would serialise every payment behind the
 * slowest confirm; per-thread connections let the worker threads wait in parallel, need no
 * lock, keep delivery-tag bookkeeping trivial (one outstanding publish per channel) and
 * confine a broken connection to the request that found it. RabbitMQ handles a handful of
 * connections per service without effort.
 *
 * Why the publisher has no AMQP heartbeat: nothing services an idle publisher connection
 * between requests, so the broker would close it after two missed heartbeats (and log a
 * warning each time). Instead the socket has TCP keepalive, every publish first drains what
 * the broker sent (a connection.close after a broker restart, EOF) and reconnects when the
 * connection is gone, and every publish waits for its confirm with a timeout. The consumer,
 * whose loop runs all the time, uses a real heartbeat. */
#include "libshop/amqp.h"
#include "libshop/conf.h"
#include "libshop/log.h"
#include "libshop/trace.h"
#include "libshop/util.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHANNEL 1

void shop_amqp_conf_from_env(struct shop_amqp_conf *c)
{
    *c = (struct shop_amqp_conf){
        .host = shop_conf_str("AMQP_HOST", "rabbitmq"),
        .port = shop_conf_port("AMQP_PORT", 5672),
        .vhost = shop_conf_str("AMQP_VHOST", "/"),
        .user = shop_conf_str("AMQP_USER", "guest"),
        .pass = shop_conf_str("AMQP_PASS", "guest"),
        .exchange = "robot-shop",
        .queue = "orders",
        .routing_key = "orders",
        .heartbeat_s = 30,
        .timeout_ms = 5000,
        .confirm_timeout_ms = 5000,
    };
    const char *declare = shop_conf_str("AMQP_DECLARE", "active");
    if (strcmp(declare, "active") != 0 && strcmp(declare, "passive") != 0)
        shop_fatalx("AMQP_DECLARE must be active or passive, not '%s'", declare);
    c->passive = strcmp(declare, "passive") == 0;
}

long shop_amqp_backoff_next(long cur_ms, long min_ms, long max_ms)
{
    if (cur_ms < min_ms)
        return min_ms;
    return cur_ms >= max_ms / 2 ? max_ms : cur_ms * 2;
}

bool shop_amqp_confirm_covers(uint64_t acked_tag, bool multiple, uint64_t tag)
{
    return acked_tag == tag || (multiple && acked_tag >= tag);
}

/* ---- shared connection set-up --------------------------------------------------------- */

/* Describes a failed RPC reply in err. */
static void reply_error(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen)
{
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *m = r.reply.decoded;
        snprintf(err, errlen, "%s: connection closed by the broker: %u %.*s", what,
                 (unsigned)m->reply_code, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = r.reply.decoded;
        snprintf(err, errlen, "%s: channel closed by the broker: %u %.*s", what,
                 (unsigned)m->reply_code, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    } else {
        snprintf(err, errlen, "%s: unexpected reply (type %d)", what, (int)r.reply_type);
    }
}

static bool rpc_ok(amqp_connection_state_t conn, const char *what, char *err, size_t errlen)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    reply_error(r, what, err, errlen);
    return false;
}

static void set_keepalive(int fd)
{
    int on = 1, idle = 30, intvl = 10, cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

struct open_opts {
    int heartbeat_s;
    bool confirm;
    unsigned *messages, *consumers; /* queue counts from queue.declare-ok, optional */
};

/* Connects, logs in, opens channel 1 (in confirm mode when asked) and declares the exchange,
 * the queue and the binding (passive: checks the exchange and the queue). Returns the
 * connection, or NULL with err set. */
static amqp_connection_state_t amqp_open(const struct shop_amqp_conf *c, const struct open_opts *o,
                                         char *err, size_t errlen)
{
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        snprintf(err, errlen, "cannot allocate a connection");
        return NULL;
    }
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = shop_ms_timeval(c->timeout_ms);
    if (!sock) {
        snprintf(err, errlen, "cannot create a socket");
        goto fail;
    }
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    int rc = amqp_socket_open_noblock(sock, c->host, c->port, &tv);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "connect to %s:%d: %s", c->host, c->port, amqp_error_string2(rc));
        goto fail;
    }
    set_keepalive(amqp_socket_get_sockfd(sock));
    amqp_rpc_reply_t r = amqp_login(conn, c->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, o->heartbeat_s,
                                    AMQP_SASL_METHOD_PLAIN, c->user, c->pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_error(r, "login", err, errlen);
        goto fail;
    }
    amqp_channel_open(conn, CHANNEL);
    if (!rpc_ok(conn, "channel.open", err, errlen))
        goto fail;
    if (o->confirm) {
        amqp_confirm_select(conn, CHANNEL);
        if (!rpc_ok(conn, "confirm.select", err, errlen))
            goto fail;
    }
    /* passive (D22): the deploy tool declared the topology; a user without "configure" may check it
     */
    const char *how = c->passive ? " (passive: the deploy tool declares it)" : "";
    char what[96];
    amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(c->exchange),
                          amqp_cstring_bytes("direct"), c->passive, 1, 0, 0, amqp_empty_table);
    snprintf(what, sizeof(what), "exchange.declare %s%s", c->exchange, how);
    if (!rpc_ok(conn, what, err, errlen))
        goto fail;
    amqp_queue_declare_ok_t *q = amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(c->queue),
                                                    c->passive, 1, 0, 0, amqp_empty_table);
    snprintf(what, sizeof(what), "queue.declare %s%s", c->queue, how);
    if (!rpc_ok(conn, what, err, errlen))
        goto fail;
    if (o->messages)
        *o->messages = q->message_count;
    if (o->consumers)
        *o->consumers = q->consumer_count;
    if (!c->passive) { /* passive: a missing binding shows as an unroutable (returned) publish */
        amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(c->queue),
                        amqp_cstring_bytes(c->exchange), amqp_cstring_bytes(c->routing_key),
                        amqp_empty_table);
        if (!rpc_ok(conn, "queue.bind", err, errlen))
            goto fail;
    }
    amqp_maybe_release_buffers(conn);
    return conn;
fail:
    amqp_destroy_connection(conn);
    return NULL;
}

/* Closes politely (channel, then connection, each bounded by a short RPC timeout) and frees. */
static void amqp_close_graceful(amqp_connection_state_t conn)
{
    struct timeval tv = shop_ms_timeval(1000);
    amqp_set_rpc_timeout(conn, &tv);
    amqp_rpc_reply_t r = amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

int shop_amqp_queue_info(const struct shop_amqp_conf *conf, unsigned *messages, unsigned *consumers,
                         struct shop_err *e)
{
    struct open_opts o = {.messages = messages, .consumers = consumers};
    amqp_connection_state_t conn = amqp_open(conf, &o, e->msg, sizeof(e->msg));
    if (!conn)
        return shop_err_set_kind(e, SHOP_ERR_UNAVAILABLE);
    amqp_close_graceful(conn);
    return 0;
}

/* One basic.get on conn: 1 with *m filled (destroy it) and *tag, 0 when the queue is empty,
 * -1 with err set. */
static int take_one(amqp_connection_state_t conn, const char *queue, amqp_message_t *m,
                    uint64_t *tag, char *err, size_t errlen)
{
    amqp_rpc_reply_t r = amqp_basic_get(conn, CHANNEL, amqp_cstring_bytes(queue), 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_error(r, "basic.get", err, errlen);
        return -1;
    }
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD)
        return 0; /* basic.get-empty */
    *tag = ((const amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
    r = amqp_read_message(conn, CHANNEL, m, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_error(r, "reading a message", err, errlen);
        return -1;
    }
    return 1;
}

int shop_amqp_queue_take(const struct shop_amqp_conf *conf, unsigned max,
                         void (*fn)(void *ud, const char *body, size_t len), void *ud,
                         struct shop_err *e)
{
    amqp_connection_state_t conn = amqp_open(conf, &(struct open_opts){0}, e->msg, sizeof(e->msg));
    if (!conn)
        return shop_err_set_kind(e, SHOP_ERR_UNAVAILABLE);
    int taken = 0;
    for (unsigned i = 0; i < max; i++) {
        amqp_message_t m;
        uint64_t tag = 0;
        int rc = take_one(conn, conf->queue, &m, &tag, e->msg, sizeof(e->msg));
        if (rc == -1) {
            amqp_destroy_connection(conn);
            return shop_err_set_kind(e, SHOP_ERR_UNAVAILABLE);
        }
        if (rc == 0)
            break;
        fn(ud, m.body.bytes, m.body.len);
        amqp_destroy_message(&m);
        if (amqp_basic_ack(conn, CHANNEL, tag, 0) != AMQP_STATUS_OK) {
            snprintf(e->msg, sizeof(e->msg), "basic.ack failed");
            amqp_destroy_connection(conn);
            return shop_err_set_kind(e, SHOP_ERR_UNAVAILABLE);
        }
        taken++;
        amqp_maybe_release_buffers(conn);
    }
    amqp_close_graceful(conn);
    return taken;
}

/* ---- publisher ------------------------------------------------------------------------- */

struct pub {
    amqp_connection_state_t conn;
    uint64_t seq; /* delivery tag of the last publish on the channel */
    bool fresh;   /* opened by this request: the open was the round trip, no ping needed */
};

static struct shop_amqp_conf pub_conf;
/* Shared outage state: after a failed connect nobody dials again before retry_at. */
static pthread_mutex_t pub_mu = PTHREAD_MUTEX_INITIALIZER;
static long long pub_retry_at_ns;
static long pub_backoff_ms;
static bool pub_down;
static char pub_last_err[256];

#define PUB_BACKOFF_MIN_MS 200
#define PUB_BACKOFF_MAX_MS 2000

static void pub_free(void *p)
{
    struct pub *pb = p;
    if (pb->conn)
        amqp_close_graceful(pb->conn);
    free(pb);
}

static void *pub_new(void)
{
    return shop_xcalloc(1, sizeof(struct pub));
}

static struct shop_tls pubs = SHOP_TLS(pub_new, pub_free);

void shop_amqp_publisher_init(const struct shop_amqp_conf *conf)
{
    pub_conf = *conf;
}

static void pub_reset(struct pub *p)
{
    if (p->conn)
        amqp_destroy_connection(p->conn);
    p->conn = NULL;
    p->seq = 0;
}

/* Reads whatever the broker sent since the last use without blocking. Returns 0 when the
 * connection still looks usable, -1 when it is closed or closing. */
static int pub_drain(struct pub *p)
{
    for (int i = 0; i < 64; i++) {
        struct timeval zero = {0, 0};
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(p->conn, &f, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK)
            return -1;
        if (f.frame_type == AMQP_FRAME_METHOD &&
            (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))
            return -1;
    }
    amqp_maybe_release_buffers(p->conn);
    return 0;
}

/* Dials for this thread unless the shared back-off says the broker is still down. */
static int pub_connect(struct pub *p, char *err, size_t errlen)
{
    long long now = shop_now_ns();
    pthread_mutex_lock(&pub_mu);
    if (pub_down && now < pub_retry_at_ns) {
        snprintf(err, errlen, "RabbitMQ not available (%s)", pub_last_err);
        pthread_mutex_unlock(&pub_mu);
        return -1;
    }
    pthread_mutex_unlock(&pub_mu);

    char why[256];
    struct open_opts o = {.confirm = true};
    p->conn = amqp_open(&pub_conf, &o, why, sizeof(why));
    pthread_mutex_lock(&pub_mu);
    if (!p->conn) {
        pub_backoff_ms =
            shop_amqp_backoff_next(pub_backoff_ms, PUB_BACKOFF_MIN_MS, PUB_BACKOFF_MAX_MS);
        pub_retry_at_ns = shop_now_ns() + pub_backoff_ms * 1000000LL;
        if (!pub_down)
            shop_log_warnx("amqp: RabbitMQ not available: %s", why);
        pub_down = true;
        snprintf(pub_last_err, sizeof(pub_last_err), "%s", why);
        snprintf(err, errlen, "RabbitMQ not available (%s)", why);
    } else {
        if (pub_down)
            shop_log_info("amqp: RabbitMQ available again at %s:%d", pub_conf.host, pub_conf.port);
        pub_down = false;
        pub_backoff_ms = 0;
    }
    pthread_mutex_unlock(&pub_mu);
    p->seq = 0;
    p->fresh = true;
    return p->conn ? 0 : -1;
}

/* This thread's healthy connection, (re)connecting as needed. NULL with err set. */
static struct pub *pub_get(char *err, size_t errlen)
{
    struct pub *p = shop_tls_get(&pubs);
    if (p->conn && pub_drain(p) == -1) {
        shop_log_info("amqp: publisher connection closed; reconnecting");
        pub_reset(p);
    }
    if (!p->conn && pub_connect(p, err, errlen) == -1)
        return NULL;
    return p;
}

/* Waits for the confirm of tag. Returns 0 (acked), or -1 with err set; *retry tells whether
 * the connection broke (worth one more attempt on a new one). */
static int pub_wait_confirm(struct pub *p, uint64_t tag, char *err, size_t errlen, bool *retry)
{
    long long deadline = shop_now_ns() + pub_conf.confirm_timeout_ms * 1000000LL;
    bool returned = false;
    for (;;) {
        long long left_ms = (deadline - shop_now_ns()) / 1000000LL;
        struct timeval tv = shop_ms_timeval(left_ms);
        amqp_frame_t f;
        int rc =
            left_ms > 0 ? amqp_simple_wait_frame_noblock(p->conn, &f, &tv) : AMQP_STATUS_TIMEOUT;
        if (rc == AMQP_STATUS_TIMEOUT) {
            snprintf(err, errlen, "no confirm from RabbitMQ within %ld ms",
                     pub_conf.confirm_timeout_ms);
            return -1;
        }
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, errlen, "connection lost before the confirm: %s", amqp_error_string2(rc));
            *retry = true;
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        amqp_method_number_t id = f.payload.method.id;
        if (id == AMQP_BASIC_ACK_METHOD) {
            const amqp_basic_ack_t *a = f.payload.method.decoded;
            if (!shop_amqp_confirm_covers(a->delivery_tag, a->multiple, tag))
                continue;
            if (!returned)
                return 0;
            snprintf(err, errlen, "message unroutable (no queue bound to %s/%s)", pub_conf.exchange,
                     pub_conf.routing_key);
            return -1;
        } else if (id == AMQP_BASIC_NACK_METHOD) {
            const amqp_basic_nack_t *n = f.payload.method.decoded;
            if (!shop_amqp_confirm_covers(n->delivery_tag, n->multiple, tag))
                continue;
            snprintf(err, errlen, "RabbitMQ refused the message (basic.nack)");
            return -1;
        } else if (id == AMQP_BASIC_RETURN_METHOD) {
            amqp_message_t m;
            amqp_rpc_reply_t r = amqp_read_message(p->conn, f.channel, &m, 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL) {
                reply_error(r, "reading a returned message", err, errlen);
                return -1;
            }
            amqp_destroy_message(&m);
            returned = true;
        } else if (id == AMQP_CHANNEL_CLOSE_METHOD || id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_channel_close_t *m = f.payload.method.decoded; /* same leading fields */
            snprintf(err, errlen, "closed by the broker: %u %.*s", (unsigned)m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            *retry = true;
            return -1;
        }
    }
}

/* One round trip on a kept connection before the publish: a broker that stopped answering
 * (hung, overloaded) is found before the message is written, so a 503 means no order. Once
 * written, a publish whose confirm times out may still be enqueued when the broker resumes. */
static int pub_ping(struct pub *p, char *err, size_t errlen, bool *retry)
{
    if (p->fresh) {
        p->fresh = false;
        return 0;
    }
    amqp_basic_qos(p->conn, CHANNEL, 0, 0, 0);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(p->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    reply_error(r, "RabbitMQ not answering", err, errlen);
    *retry = !(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
               r.library_error == AMQP_STATUS_TIMEOUT);
    return -1;
}

static int pub_send(struct pub *p, const char *body, size_t len, char *err, size_t errlen,
                    bool *retry)
{
    if (pub_ping(p, err, errlen, retry) == -1)
        return -1;
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    char tp[SHOP_TRACEPARENT_LEN + 1];
    amqp_table_entry_t trace_header; /* the publish span's context, for the consumer's span */
    if (shop_trace_header(tp, sizeof(tp))) {
        trace_header.key = amqp_cstring_bytes("traceparent");
        trace_header.value.kind = AMQP_FIELD_KIND_UTF8;
        trace_header.value.value.bytes = amqp_cstring_bytes(tp);
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = 1;
        props.headers.entries = &trace_header;
    }
    amqp_bytes_t b = {.len = len, .bytes = (void *)(uintptr_t)body};
    int rc = amqp_basic_publish(p->conn, CHANNEL, amqp_cstring_bytes(pub_conf.exchange),
                                amqp_cstring_bytes(pub_conf.routing_key), 1, 0, &props, b);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, errlen, "publish: %s", amqp_error_string2(rc));
        *retry = true;
        return -1;
    }
    p->seq++;
    rc = pub_wait_confirm(p, p->seq, err, errlen, retry);
    amqp_maybe_release_buffers(p->conn);
    return rc;
}

static int publish(const char *body, size_t len, struct shop_err *e);

/* A publish is a producer span; its context travels in the message's traceparent header. */
int shop_amqp_publish(const char *body, size_t len, struct shop_err *e)
{
    struct shop_span span;
    shop_span_begin(&span, SHOP_SPAN_PRODUCER, NULL, "publish %s", pub_conf.exchange);
    shop_span_attr_str(&span, "messaging.system", "rabbitmq");
    shop_span_attr_str(&span, "messaging.operation.type", "send");
    shop_span_attr_str(&span, "messaging.destination.name", pub_conf.exchange);
    shop_span_attr_str(&span, "messaging.rabbitmq.destination.routing_key", pub_conf.routing_key);
    shop_span_attr_int(&span, "messaging.message.body.size", (long long)len);
    int rc = publish(body, len, e);
    if (rc != 0)
        shop_span_fail(&span, e->msg);
    shop_span_end(&span);
    return rc;
}

static int publish(const char *body, size_t len, struct shop_err *e)
{
    char *err = e->msg;
    size_t errlen = sizeof(e->msg);
    shop_err_set_kind(e, SHOP_ERR_UNAVAILABLE); /* whatever fails, the broker does not have it */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct pub *p = pub_get(err, errlen);
        if (!p)
            return -1;
        bool retry = false;
        if (pub_send(p, body, len, err, errlen, &retry) == 0)
            return 0;
        shop_log_warnx("amqp: publish failed: %s%s", err,
                       retry && attempt == 0 ? "; retrying" : "");
        pub_reset(p);
        if (!retry)
            return -1;
    }
    return -1;
}

bool shop_amqp_publisher_ping(struct shop_err *e)
{
    shop_err_set_kind(e, SHOP_ERR_UNAVAILABLE);
    return pub_get(e->msg, sizeof(e->msg)) != NULL;
}

void shop_amqp_publisher_close_thread(void)
{
    shop_tls_drop(&pubs);
}

/* ---- consumer -------------------------------------------------------------------------- */

struct ack {
    uint64_t gen, tag;
};

struct shop_amqp_consumer {
    struct shop_amqp_conf conf;
    int prefetch;
    shop_amqp_deliver_fn fn;
    void *ud;
    int evfd;
    pthread_mutex_t mu; /* guards acks */
    struct ack *acks;
    size_t nacks, cap;
    atomic_bool stop;
    atomic_bool connected;
    atomic_uint in_flight;
    uint64_t gen;         /* consumer thread only */
    long long last_rx_ns; /* consumer thread only: when the broker last sent anything */
};

#define CONS_BACKOFF_MIN_MS 1000
#define CONS_BACKOFF_MAX_MS 30000

struct shop_amqp_consumer *shop_amqp_consumer_new(const struct shop_amqp_conf *conf, int prefetch,
                                                  shop_amqp_deliver_fn fn, void *ud)
{
    struct shop_amqp_consumer *c = shop_xcalloc(1, sizeof(*c));
    c->conf = *conf;
    c->prefetch = prefetch < 1 ? 1 : prefetch > 65535 ? 65535 : prefetch;
    c->fn = fn;
    c->ud = ud;
    c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->evfd == -1)
        shop_fatalx("amqp: eventfd: %s", strerror(errno));
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void shop_amqp_consumer_free(struct shop_amqp_consumer *c)
{
    if (!c)
        return;
    close(c->evfd);
    pthread_mutex_destroy(&c->mu);
    free(c->acks);
    free(c);
}

static void wake(struct shop_amqp_consumer *c)
{
    uint64_t one = 1;
    ssize_t w = write(c->evfd, &one, sizeof(one));
    (void)w; /* EAGAIN means a wake-up is already pending */
}

static void unwake(struct shop_amqp_consumer *c)
{
    uint64_t v;
    ssize_t r = read(c->evfd, &v, sizeof(v));
    (void)r;
}

void shop_amqp_consumer_ack(struct shop_amqp_consumer *c, uint64_t generation, uint64_t tag)
{
    pthread_mutex_lock(&c->mu);
    if (c->nacks == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        c->acks = shop_xrealloc(c->acks, c->cap * sizeof(*c->acks));
    }
    c->acks[c->nacks++] = (struct ack){generation, tag};
    pthread_mutex_unlock(&c->mu);
    wake(c);
}

void shop_amqp_consumer_stop(struct shop_amqp_consumer *c)
{
    atomic_store(&c->stop, true);
    wake(c);
}

bool shop_amqp_consumer_connected(struct shop_amqp_consumer *c)
{
    return atomic_load(&c->connected);
}

unsigned shop_amqp_consumer_in_flight(struct shop_amqp_consumer *c)
{
    return atomic_load(&c->in_flight);
}

/* Sends the queued acks of the current generation. Returns 0 or -1 on a connection error. */
static int flush_acks(struct shop_amqp_consumer *c, amqp_connection_state_t conn)
{
    struct ack local[64];
    pthread_mutex_lock(&c->mu);
    size_t n = c->nacks < 64 ? c->nacks : 64;
    if (n > 0) {
        memcpy(local, c->acks, n * sizeof(*local));
        memmove(c->acks, c->acks + n, (c->nacks - n) * sizeof(*c->acks));
        c->nacks -= n;
    }
    bool more = c->nacks > 0;
    pthread_mutex_unlock(&c->mu);
    if (more)
        wake(c);
    for (size_t i = 0; i < n; i++) {
        if (local[i].gen != c->gen)
            continue; /* the broker requeued it when that connection died */
        int rc = amqp_basic_ack(conn, CHANNEL, local[i].tag, 0);
        if (rc != AMQP_STATUS_OK) {
            shop_log_warnx("amqp: basic.ack: %s", amqp_error_string2(rc));
            return -1;
        }
        atomic_fetch_sub(&c->in_flight, 1);
    }
    return 0;
}

/* Sleeps up to ms or until stop is requested. */
static void wait_stop(struct shop_amqp_consumer *c, long ms)
{
    long long end = shop_now_ns() + ms * 1000000LL;
    while (!atomic_load(&c->stop)) {
        long long left = (end - shop_now_ns()) / 1000000LL;
        if (left <= 0)
            return;
        struct pollfd pf = {.fd = c->evfd, .events = POLLIN};
        if (poll(&pf, 1, (int)(left > 1000 ? 1000 : left)) > 0)
            unwake(c);
    }
}

static amqp_connection_state_t consumer_open(struct shop_amqp_consumer *c, char *err, size_t errlen)
{
    struct open_opts o = {.heartbeat_s = c->conf.heartbeat_s};
    amqp_connection_state_t conn = amqp_open(&c->conf, &o, err, errlen);
    if (!conn)
        return NULL;
    amqp_basic_qos(conn, CHANNEL, 0, (uint16_t)c->prefetch, 0);
    if (!rpc_ok(conn, "basic.qos", err, errlen))
        goto fail;
    amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(c->conf.queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (!rpc_ok(conn, "basic.consume", err, errlen))
        goto fail;
    return conn;
fail:
    amqp_destroy_connection(conn);
    return NULL;
}

/* The traceparent header of a delivered message into out ("" when it has none). */
static void header_traceparent(const amqp_basic_properties_t *props, char *out, size_t size)
{
    out[0] = '\0';
    if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return;
    for (int i = 0; i < props->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &props->headers.entries[i];
        if (e->key.len == 11 && memcmp(e->key.bytes, "traceparent", 11) == 0 &&
            (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES) &&
            e->value.value.bytes.len < size) {
            memcpy(out, e->value.value.bytes.bytes, e->value.value.bytes.len);
            out[e->value.value.bytes.len] = '\0';
            return;
        }
    }
}

/* Handles a frame that is not a delivery. Returns 0 to go on, -1 when the channel or the
 * connection is gone. */
static int other_frame(amqp_connection_state_t conn)
{
    struct timeval zero = {0, 0};
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    if (rc != AMQP_STATUS_OK) {
        shop_log_warnx("amqp: reading a frame: %s", amqp_error_string2(rc));
        return -1;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    amqp_method_number_t id = f.payload.method.id;
    if (id == AMQP_CHANNEL_CLOSE_METHOD || id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_channel_close_t *m = f.payload.method.decoded;
        shop_log_warnx("amqp: %s closed by the broker: %u %.*s",
                       id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection",
                       (unsigned)m->reply_code, (int)m->reply_text.len,
                       (const char *)m->reply_text.bytes);
        return -1;
    }
    if (id == AMQP_BASIC_CANCEL_METHOD) {
        shop_log_warnx("amqp: the broker cancelled the consumer (queue deleted?)");
        return -1;
    }
    return 0;
}

/* Waits until the socket is readable, an ack or stop is signalled, or 1 s passes.
 * Returns 1 when there is input for the library, 0 otherwise. */
static int wait_input(struct shop_amqp_consumer *c, amqp_connection_state_t conn, int timeout_ms)
{
    if (amqp_data_in_buffer(conn) || amqp_frames_enqueued(conn))
        return 1;
    struct pollfd pf[2] = {{.fd = amqp_get_sockfd(conn), .events = POLLIN},
                           {.fd = c->evfd, .events = POLLIN}};
    int n = poll(pf, 2, timeout_ms);
    if (n > 0 && (pf[1].revents & POLLIN))
        unwake(c);
    if (n > 0 && (pf[0].revents & (POLLIN | POLLERR | POLLHUP))) {
        c->last_rx_ns = shop_now_ns();
        return 1;
    }
    return 0;
}

/* Consumes until stop (returns 0 after draining) or a connection failure (-1). */
static int consume_loop(struct shop_amqp_consumer *c, amqp_connection_state_t conn, long drain_ms)
{
    long long drain_deadline = 0;
    long long dead_after_ns =
        c->conf.heartbeat_s > 0 ? 2LL * c->conf.heartbeat_s * 1000000000LL + 5000000000LL : 0;
    c->last_rx_ns = shop_now_ns();
    for (;;) {
        if (flush_acks(c, conn) == -1)
            return -1;
        bool stopping = atomic_load(&c->stop);
        if (stopping) {
            if (!drain_deadline) {
                drain_deadline = shop_now_ns() + drain_ms * 1000000LL;
                shop_log_info("amqp: stopping; %u deliveries in flight",
                              atomic_load(&c->in_flight));
            }
            if (atomic_load(&c->in_flight) == 0)
                return 0;
            if (shop_now_ns() >= drain_deadline) {
                shop_log_warnx("amqp: %u deliveries not acked in time; the broker requeues them",
                               atomic_load(&c->in_flight));
                return 0;
            }
        }
        int ready = wait_input(c, conn, stopping ? 50 : 1000);
        if (!ready && dead_after_ns && shop_now_ns() - c->last_rx_ns > dead_after_ns) {
            shop_log_warnx("amqp: no heartbeat from the broker for %d s", 2 * c->conf.heartbeat_s);
            return -1;
        }
        /* Called even without input so the library sends its heartbeats on time. */
        struct timeval zero = {0, 0};
        amqp_envelope_t env;
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &zero, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            if (!atomic_load(&c->stop)) {
                atomic_fetch_add(&c->in_flight, 1);
                struct shop_amqp_delivery d = {.tag = env.delivery_tag,
                                               .generation = c->gen,
                                               .redelivered = env.redelivered,
                                               .body = env.message.body.bytes,
                                               .len = env.message.body.len};
                header_traceparent(&env.message.properties, d.traceparent, sizeof(d.traceparent));
                c->fn(c->ud, &d);
            } /* else: left unacked; closing the channel requeues it */
            amqp_destroy_envelope(&env);
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (other_frame(conn) == -1)
                return -1;
            continue;
        }
        char err[256];
        reply_error(r, "consume", err, sizeof(err));
        shop_log_warnx("amqp: %s", err);
        return -1;
    }
}

int shop_amqp_consumer_run(struct shop_amqp_consumer *c, long drain_ms)
{
    long backoff = 0;
    while (!atomic_load(&c->stop)) {
        char err[256];
        amqp_connection_state_t conn = consumer_open(c, err, sizeof(err));
        if (!conn) {
            backoff = shop_amqp_backoff_next(backoff, CONS_BACKOFF_MIN_MS, CONS_BACKOFF_MAX_MS);
            shop_log_warnx("amqp: RabbitMQ not available: %s; retrying in %ld ms", err, backoff);
            wait_stop(c, backoff);
            continue;
        }
        backoff = 0;
        c->gen++;
        atomic_store(&c->in_flight, 0);
        atomic_store(&c->connected, true);
        shop_log_info("amqp: consuming queue=%s from %s:%d prefetch=%d", c->conf.queue,
                      c->conf.host, c->conf.port, c->prefetch);
        int rc = consume_loop(c, conn, drain_ms);
        atomic_store(&c->connected, false);
        if (rc == 0) {
            amqp_close_graceful(conn);
        } else {
            shop_log_warnx("amqp: connection lost; unacked deliveries return to the queue");
            amqp_destroy_connection(conn);
        }
    }
    return 0;
}
