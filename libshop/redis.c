/* redis.c - hiredis 0.14 connections kept per worker thread: short connect/command timeouts,
 * AUTH/SELECT on connect, one silent reconnect for a stale connection, a shared fail-fast
 * window after a failed connect (a dead Redis answers in milliseconds), server-side scripts
 * (EVALSHA, EVAL when Redis lacks them) and optimistic updates (GET, then a compare-and-set
 * script). Called in a coroutine of an event loop (loop.h), every command, scripts included,
 * goes into the loop's pipelined connection instead and the coroutine waits for its replies. */
#include "libshop/redis.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/loop.h"
#include "libshop/trace.h"
#include "libshop/util.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/time.h>

#define UPDATE_TRIES 64 /* at least, and more until the command timeout has passed */

/* Internal results: UNAVAILABLE = Redis could not be reached (or is not serving), ERROR = it
 * answered with an error. The public calls turn them into a struct shop_err. */
enum shop_redis_rc {
    SHOP_REDIS_OK = 0,
    SHOP_REDIS_UNAVAILABLE = -1,
    SHOP_REDIS_ERROR = -2,
};

struct conn {
    redisContext *ctx;
    bool used; /* answered at least one command: a failure may just mean it went stale */
};

static struct shop_redis_conf g_conf = {
    .host = "redis",
    .port = 6379,
    .connect_timeout_ms = 500,
    .command_timeout_ms = 2000,
    .retry_after_ms = 250,
};
static _Atomic long long down_until_ns;
static atomic_bool g_down;
static _Thread_local char last_err[200];
static _Thread_local unsigned seed = 12345;

static void set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof(last_err), fmt, ap);
    va_end(ap);
}

/* Fills err from a failed internal result and the thread's last error. Returns -1. */
static int to_err(int rc, struct shop_err *err)
{
    shop_err_set(err, rc == SHOP_REDIS_UNAVAILABLE ? SHOP_ERR_UNAVAILABLE : SHOP_ERR_FAILED, 0,
                 "%s", last_err);
    return -1;
}

static void conn_free(void *p)
{
    struct conn *c = p;
    if (c && c->ctx)
        redisFree(c->ctx);
    free(c);
}

static void *conn_new(void)
{
    return shop_xcalloc(1, sizeof(struct conn));
}

static struct shop_tls conns = SHOP_TLS(conn_new, conn_free);

static struct conn *thread_conn(void)
{
    return shop_tls_get(&conns);
}

static void drop(struct conn *c)
{
    if (c->ctx)
        redisFree(c->ctx);
    c->ctx = NULL;
    c->used = false;
}

/* Opens the fail-fast window and logs the transition to "down" once. */
static void mark_down(void)
{
    atomic_store(&down_until_ns, shop_now_ns() + g_conf.retry_after_ms * 1000000LL);
    if (!atomic_exchange(&g_down, true))
        shop_log_warnx("redis %s:%d unavailable: %s", g_conf.host, g_conf.port, last_err);
}

static void mark_up(void)
{
    if (atomic_exchange(&g_down, false))
        shop_log_info("redis %s:%d reachable again", g_conf.host, g_conf.port);
}

/* Errors of a Redis that is not serving (answer 503): starting, busy, a replica without its
 * master, and OOM - full at maxmemory with the noeviction policy, it refuses writes and keeps
 * every key (the local stack's setting: a session or a cart is never evicted before its TTL). */
static bool busy_error(const char *msg)
{
    return strncmp(msg, "LOADING", 7) == 0 || strncmp(msg, "BUSY", 4) == 0 ||
           strncmp(msg, "MASTERDOWN", 10) == 0 || strncmp(msg, "TRYAGAIN", 8) == 0 ||
           strncmp(msg, "OOM", 3) == 0;
}

/* Sends AUTH and SELECT on a fresh connection. Returns 0 or -1 with last_err set. */
static int handshake(redisContext *ctx)
{
    redisReply *r = NULL;
    if (g_conf.pass[0] && g_conf.user[0])
        r = redisCommand(ctx, "AUTH %s %s", g_conf.user, g_conf.pass);
    else if (g_conf.pass[0])
        r = redisCommand(ctx, "AUTH %s", g_conf.pass);
    if (g_conf.pass[0] && (!r || r->type == REDIS_REPLY_ERROR)) {
        set_err("AUTH failed: %s", r ? r->str : ctx->errstr);
        if (r)
            freeReplyObject(r);
        return -1;
    }
    if (r)
        freeReplyObject(r);
    if (g_conf.db == 0)
        return 0;
    r = redisCommand(ctx, "SELECT %d", g_conf.db);
    int rc = (r && r->type != REDIS_REPLY_ERROR) ? 0 : -1;
    if (rc == -1)
        set_err("SELECT %d failed: %s", g_conf.db, r ? r->str : ctx->errstr);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Connects the thread's connection unless the fail-fast window is open. */
static int conn_open(struct conn *c)
{
    if (shop_now_ns() < atomic_load(&down_until_ns)) {
        set_err("redis %s:%d down (fail-fast window)", g_conf.host, g_conf.port);
        return SHOP_REDIS_UNAVAILABLE;
    }
    redisContext *ctx = redisConnectWithTimeout(g_conf.host, g_conf.port,
                                                shop_ms_timeval(g_conf.connect_timeout_ms));
    if (!ctx || ctx->err) {
        set_err("connect %s:%d: %s", g_conf.host, g_conf.port, ctx ? ctx->errstr : "no memory");
        if (ctx)
            redisFree(ctx);
        mark_down();
        return SHOP_REDIS_UNAVAILABLE;
    }
    redisSetTimeout(ctx, shop_ms_timeval(g_conf.command_timeout_ms));
    redisEnableKeepAlive(ctx);
    if (handshake(ctx) == -1) {
        redisFree(ctx);
        mark_down();
        return SHOP_REDIS_UNAVAILABLE;
    }
    c->ctx = ctx;
    c->used = false;
    mark_up();
    return SHOP_REDIS_OK;
}

/* Turns an answer into a result code; error replies are consumed. */
static int classify(redisReply *r, redisReply **out)
{
    if (r->type != REDIS_REPLY_ERROR) {
        *out = r;
        return SHOP_REDIS_OK;
    }
    set_err("%s", r->str);
    int rc = busy_error(r->str) ? SHOP_REDIS_UNAVAILABLE : SHOP_REDIS_ERROR;
    freeReplyObject(r);
    *out = NULL;
    return rc;
}

/* Sends n pre-formatted commands in one round trip and collects n replies. On a transport
 * failure the connection is dropped; a reused connection is retried once when may_retry
 * (a stale socket after a Redis restart) unless the failure was a timeout. */
static int run_round_trip(struct conn *c, int n, const char *const *cmds, const int *lens,
                          redisReply **replies, bool may_retry);

/* The command's name from its RESP encoding ("*2\r\n$3\r\nGET\r\n..." gives GET). */
static void command_name(const char *cmd, int len, char *out, size_t size)
{
    const char *p = memchr(cmd, '$', (size_t)len), *end = cmd + len;
    p = p ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    size_t n = 0;
    for (p = p ? p + 1 : end; p < end && *p != '\r' && n + 1 < size; p++)
        out[n++] = *p;
    out[n] = '\0';
}

/* ---- the event loop's pipelined connection ------------------------------------------------ */

/* A coroutine waiting for the replies to its n commands (on its own stack). */
struct waiter {
    struct shop_co *co;
    int n, got;
    redisReply **replies;
    long long deadline;
    int rc;
    bool reused;   /* the connection had answered before these commands went out */
    bool timeout;  /* failed because Redis did not answer in time */
    char err[128]; /* why it failed */
    struct waiter *next;
};

/* A loop thread's connection: commands of every coroutine written together, replies handed out
 * in the order the commands went (Redis answers in order). */
struct pipe {
    struct shop_loop_source src;
    struct shop_loop *loop;
    struct conn c; /* connected and handshaken blocking, then driven non-blocking */
    bool pending;  /* commands appended and not yet all written (by the loop's next tick) */
    bool blocked;  /* the socket took part of them: the rest goes once it is writable */
    struct waiter *head, *tail;
    struct turn *turns;  /* the keys this loop's coroutines are updating (one turn each) */
    struct turn *handed; /* turns handed over, their coroutines to be woken by the loop */
    bool stopping;       /* the loop stops: a coroutine handed a turn gives up */
};

/* A coroutine's turn to update a key: one update of a key at a time per loop, the others of the
 * loop in line behind it (on their own stacks), so the compare-and-set of concurrent requests of
 * one loop does not conflict with itself round after round. */
struct turn {
    const char *key;
    struct shop_co *co;
    struct turn *line; /* the next in line for this key */
    struct turn *next; /* the next key being updated, or the next turn handed over */
};

static _Thread_local struct pipe *t_pipe;

static void pipe_watch(struct pipe *p)
{
    if (shop_loop_watch(p->loop, &p->src, p->c.ctx->fd, EPOLLIN | (p->blocked ? EPOLLOUT : 0)))
        shop_log_warn("redis: cannot watch the connection");
}

static void pipe_drop(struct pipe *p)
{
    if (p->c.ctx) {
        shop_loop_watch(p->loop, &p->src, -1, 0);
        drop(&p->c);
    }
    p->pending = p->blocked = false;
}

static void waiter_fail(struct waiter *w, const char *why, bool timeout)
{
    for (int k = 0; k < w->got; k++)
        freeReplyObject(w->replies[k]);
    w->rc = SHOP_REDIS_UNAVAILABLE;
    w->timeout = timeout;
    snprintf(w->err, sizeof(w->err), "%s", why);
}

/* Every waiter fails (the connection is dropped): each is switched into, in order. */
static void pipe_fail(struct pipe *p, const char *why, bool timeout)
{
    char reason[128];
    snprintf(reason, sizeof(reason), "%s", why); /* why may be the context's errstr */
    struct waiter *w = p->head;
    p->head = p->tail = NULL;
    pipe_drop(p);
    while (w) {
        struct waiter *next = w->next;
        waiter_fail(w, reason, timeout);
        shop_co_wake(w->co);
        w = next;
    }
}

/* Hands every complete reply to its waiter; a waiter with all of its replies goes on. */
static void pipe_deliver(struct pipe *p)
{
    while (p->c.ctx && p->head) {
        void *r = NULL;
        if (redisGetReplyFromReader(p->c.ctx, &r) != REDIS_OK) {
            pipe_fail(p, p->c.ctx->errstr, false);
            return;
        }
        if (!r)
            return;
        struct waiter *w = p->head;
        w->replies[w->got++] = r;
        p->c.used = true;
        if (w->got < w->n)
            continue;
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        w->rc = SHOP_REDIS_OK;
        shop_co_wake(w->co);
    }
}

static void pipe_ready(void *arg, uint32_t events)
{
    struct pipe *p = arg;
    (void)events;
    if (!p->c.ctx)
        return;
    if (redisBufferRead(p->c.ctx) != REDIS_OK) {
        pipe_fail(p, p->c.ctx->errstr[0] ? p->c.ctx->errstr : "connection lost", false);
        return;
    }
    pipe_deliver(p);
}

static long long pipe_deadline(void *arg)
{
    struct pipe *p = arg;
    if (p->handed || (p->pending && !p->blocked))
        return 1; /* long past: the loop does not sleep before its tick wakes or writes them */
    return p->head ? p->head->deadline : 0;
}

/* Switches into every coroutine handed a turn (from the loop's stack). */
static void wake_handed(struct pipe *p)
{
    while (p->handed) {
        struct turn *t = p->handed;
        p->handed = t->next;
        t->next = p->turns;
        p->turns = t;
        shop_co_wake(t->co);
    }
}

/* Each iteration: a hung Redis fails every waiter once the oldest one's time is up; what the
 * coroutines queued is written, in one write when the socket takes it. */
static void pipe_tick(void *arg, long long now)
{
    struct pipe *p = arg;
    wake_handed(p);
    if (p->head && now >= p->head->deadline) {
        pipe_fail(p, "command timed out", true);
        return;
    }
    if (!p->c.ctx || !p->pending)
        return;
    int done = 0;
    if (redisBufferWrite(p->c.ctx, &done) != REDIS_OK) {
        pipe_fail(p, p->c.ctx->errstr[0] ? p->c.ctx->errstr : "connection lost", false);
        return;
    }
    p->pending = !done;
    p->blocked = !done; /* then wait until the socket takes more */
    pipe_watch(p);
}

static void pipe_stop(void *arg)
{
    struct pipe *p = arg;
    p->stopping = true;
    pipe_fail(p, "server stopping", true);
    wake_handed(p); /* each gives up and hands its turn on, until no one is in line */
}

static void pipe_destroy(void *arg)
{
    struct pipe *p = arg;
    if (p->c.ctx)
        drop(&p->c);
    if (t_pipe == p)
        t_pipe = NULL;
    free(p);
}

/* The calling coroutine's pipelined connection, or NULL when calls block (not in a coroutine). */
static struct pipe *loop_pipe(void)
{
    if (!shop_co_self())
        return NULL;
    if (!t_pipe) {
        struct pipe *p = shop_xcalloc(1, sizeof(*p));
        p->loop = shop_loop_current();
        p->src = (struct shop_loop_source){pipe_ready, pipe_deadline, pipe_tick,
                                           pipe_stop,  pipe_destroy,  p};
        if (shop_loop_add(p->loop, &p->src) == -1) {
            free(p);
            return NULL;
        }
        t_pipe = p;
    }
    return t_pipe;
}

/* Connects as the blocking connection does, then hands the socket to the loop. */
static int pipe_open(struct pipe *p)
{
    int rc = conn_open(&p->c);
    if (rc != SHOP_REDIS_OK)
        return rc;
    redisContext *ctx = p->c.ctx;
    int fl = fcntl(ctx->fd, F_GETFL);
    if (fl == -1 || fcntl(ctx->fd, F_SETFL, fl | O_NONBLOCK) == -1) {
        set_err("redis: cannot make the socket non-blocking");
        drop(&p->c);
        return SHOP_REDIS_UNAVAILABLE;
    }
    ctx->flags &= ~REDIS_BLOCK; /* hiredis then takes EAGAIN as "later", not as an error */
    pipe_watch(p);
    return SHOP_REDIS_OK;
}

/* Waits up to the deadline for fd to be ready for events. 1 when ready, 0 on time out, -1. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - shop_now_ns();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int k = poll(&pfd, 1, (int)((left + 999999) / 1000000));
        if (k >= 0 || errno != EINTR)
            return k > 0 ? 1 : k;
    }
}

/* The round trip of a lone request (shop_loop_alone), made in place: its commands written, then
 * the socket waited on up to the deadline until every reply is read. Nothing else is about to
 * join the batch, and suspending the request's connection (and resuming it) would cost more
 * system calls than the round trip itself. Sets w as the loop sets a queued waiter. */
static void pipe_direct(struct pipe *p, struct waiter *w)
{
    redisContext *ctx = p->c.ctx;
    int written = 0;
    while (w->got < w->n) {
        void *r = NULL;
        if (!written && redisBufferWrite(ctx, &written) != REDIS_OK)
            break;
        if (written && redisGetReplyFromReader(ctx, &r) != REDIS_OK)
            break;
        if (r) {
            w->replies[w->got++] = r;
            continue;
        }
        int k = wait_fd(ctx->fd, written ? POLLIN : POLLOUT, w->deadline);
        if (k <= 0) {
            waiter_fail(w, k == 0 ? "command timed out" : "poll failed", k == 0);
            pipe_drop(p);
            return;
        }
        if (written && redisBufferRead(ctx) != REDIS_OK)
            break;
    }
    if (w->got == w->n) {
        p->c.used = true;
        w->rc = SHOP_REDIS_OK;
        return;
    }
    waiter_fail(w, ctx->errstr[0] ? ctx->errstr : "connection lost", false);
    pipe_drop(p);
}

/* run_round_trip's twin for a coroutine: queues the commands, waits for the loop to hand over
 * their replies. Same results, retry and fail-fast rules. */
static int pipe_round_trip(struct pipe *p, int n, const char *const *cmds, const int *lens,
                           redisReply **replies, bool may_retry)
{
    for (int attempt = 0;; attempt++) {
        if (!p->c.ctx) {
            int rc = pipe_open(p);
            if (rc != SHOP_REDIS_OK)
                return rc;
        }
        struct waiter w = {.co = shop_co_self(),
                           .n = n,
                           .replies = replies,
                           .deadline = shop_now_ns() + g_conf.command_timeout_ms * 1000000LL,
                           .reused = p->c.used};
        for (int i = 0; i < n; i++)
            if (redisAppendFormattedCommand(p->c.ctx, cmds[i], (size_t)lens[i]) != REDIS_OK)
                shop_fatalx("out of memory for a redis command");
        if (!p->pending && !p->head && shop_loop_alone()) {
            pipe_direct(p, &w);
        } else {
            p->pending = true; /* written by the loop's tick, with whatever else is queued */
            if (p->tail)
                p->tail->next = &w;
            else
                p->head = &w;
            p->tail = &w;
            shop_co_wait();
        }
        if (w.rc == SHOP_REDIS_OK)
            return SHOP_REDIS_OK;
        set_err("redis %s:%d: %s", g_conf.host, g_conf.port, w.err);
        if (!(may_retry && w.reused && attempt == 0 && !w.timeout)) {
            mark_down();
            return SHOP_REDIS_UNAVAILABLE;
        }
    }
}

/* One round trip as a client span: the commands' names, never their keys or values. */
static int run(struct conn *c, int n, const char *const *cmds, const int *lens,
               redisReply **replies, bool may_retry)
{
    struct shop_span span;
    char first[24], last[24];
    command_name(cmds[0], lens[0], first, sizeof(first));
    command_name(cmds[n - 1], lens[n - 1], last, sizeof(last));
    shop_span_begin(&span, SHOP_SPAN_CLIENT, NULL, "%s%s%s", first, n > 1 ? "..." : "",
                    n > 1 ? last : "");
    shop_span_attr_str(&span, "db.system.name", "redis");
    shop_span_attr_str(&span, "db.operation.name", span.name);
    shop_span_attr_str(&span, "server.address", g_conf.host);
    shop_span_attr_int(&span, "server.port", g_conf.port);
    struct pipe *p = loop_pipe();
    int rc = p ? pipe_round_trip(p, n, cmds, lens, replies, may_retry)
               : run_round_trip(c, n, cmds, lens, replies, may_retry);
    if (rc != SHOP_REDIS_OK)
        shop_span_fail(&span, "redis unavailable");
    shop_span_end(&span);
    return rc;
}

static int run_round_trip(struct conn *c, int n, const char *const *cmds, const int *lens,
                          redisReply **replies, bool may_retry)
{
    for (int attempt = 0;; attempt++) {
        if (!c->ctx) {
            int rc = conn_open(c);
            if (rc != SHOP_REDIS_OK)
                return rc;
        }
        bool reused = c->used;
        int i, got = 0, err_no;
        errno = 0;
        for (i = 0; i < n; i++)
            if (redisAppendFormattedCommand(c->ctx, cmds[i], (size_t)lens[i]) != REDIS_OK)
                break;
        if (i == n) {
            for (got = 0; got < n; got++) {
                void *r = NULL;
                if (redisGetReply(c->ctx, &r) != REDIS_OK || !r)
                    break;
                replies[got] = r;
            }
        }
        err_no = errno;
        if (got == n) {
            c->used = true;
            return SHOP_REDIS_OK;
        }
        for (int k = 0; k < got; k++)
            freeReplyObject(replies[k]);
        set_err("redis %s:%d: %s", g_conf.host, g_conf.port,
                c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
        /* a timed-out command is not retried (Redis is hung, not restarted) */
        bool timeout = c->ctx->err == REDIS_ERR_IO && (err_no == EAGAIN || err_no == EWOULDBLOCK);
        drop(c);
        if (!(may_retry && reused && attempt == 0 && !timeout)) {
            mark_down();
            return SHOP_REDIS_UNAVAILABLE;
        }
    }
}

static int run_one(struct conn *c, const char *cmd, int len, redisReply **reply, bool may_retry)
{
    redisReply *r = NULL;
    int rc = run(c, 1, &cmd, &len, &r, may_retry);
    if (rc != SHOP_REDIS_OK) {
        *reply = NULL;
        return rc;
    }
    return classify(r, reply);
}

/* Runs a command expecting an answer of type want. Returns OK with *reply or a failure. */
static int cmd_typed(redisReply **reply, int want, const char *what, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    *reply = NULL;
    if (len < 0) {
        set_err("bad redis command format");
        return SHOP_REDIS_ERROR;
    }
    int rc = run_one(thread_conn(), cmd, len, reply, true);
    redisFreeCommand(cmd);
    if (rc == SHOP_REDIS_OK && (*reply)->type != want && (*reply)->type != REDIS_REPLY_NIL) {
        set_err("%s: unexpected answer type %d", what, (*reply)->type);
        freeReplyObject(*reply);
        *reply = NULL;
        rc = SHOP_REDIS_ERROR;
    }
    return rc;
}

/* The answer of a command that reads one string: 1 with a copy in *val (*len bytes), 0 when the
 * key or index holds nothing, -1 with err set when rc is a failure. Consumes r. */
static int take_string(int rc, redisReply *r, char **val, size_t *len, struct shop_err *err)
{
    *val = NULL;
    *len = 0;
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    int found = r->type == REDIS_REPLY_STRING;
    if (found) {
        *val = shop_xstrndup(r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    return found;
}

int shop_redis_get(const char *key, char **val, size_t *len, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_STRING, "GET", "GET %s", key);
    return take_string(rc, r, val, len, err);
}

int shop_redis_set(const char *key, const char *val, size_t len, long ttl, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_STATUS, "SETEX", "SETEX %s %ld %b", key, ttl, val, len);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    freeReplyObject(r);
    return 0;
}

int shop_redis_del(const char *key, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_INTEGER, "DEL", "DEL %s", key);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    int existed = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return existed;
}

/* The end of a call whose answer is an integer: *value, or -1 with err set (r freed). */
static int integer_answer(int rc, redisReply *r, const char *what, long long *value,
                          struct shop_err *err)
{
    if (rc == SHOP_REDIS_OK && r->type != REDIS_REPLY_INTEGER) {
        set_err("%s: no integer answer", what);
        freeReplyObject(r);
        rc = SHOP_REDIS_ERROR;
    }
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    *value = r->integer;
    freeReplyObject(r);
    return 0;
}

int shop_redis_incr(const char *key, long long *value, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_INTEGER, "INCR", "INCR %s", key);
    return integer_answer(rc, r, "INCR", value, err);
}

int shop_redis_set_nx(const char *key, const char *val, size_t len, long ttl, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_STATUS, "SET NX", "SET %s %b NX EX %ld", key, val, len, ttl);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    int set = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return set;
}

int shop_redis_rpush(const char *key, const char *val, size_t len, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_INTEGER, "RPUSH", "RPUSH %s %b", key, val, len);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    freeReplyObject(r);
    return 0;
}

int shop_redis_lindex(const char *key, long index, char **val, size_t *len, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_STRING, "LINDEX", "LINDEX %s %ld", key, index);
    return take_string(rc, r, val, len, err);
}

long shop_redis_lrem(const char *key, const char *val, size_t len, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_INTEGER, "LREM", "LREM %s 1 %b", key, val, len);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    long n = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
    freeReplyObject(r);
    return n;
}

long shop_redis_llen(const char *key, struct shop_err *err)
{
    redisReply *r;
    int rc = cmd_typed(&r, REDIS_REPLY_INTEGER, "LLEN", "LLEN %s", key);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    long n = r->type == REDIS_REPLY_INTEGER ? (long)r->integer : 0;
    freeReplyObject(r);
    return n;
}

bool shop_redis_ping(void)
{
    redisReply *r;
    if (cmd_typed(&r, REDIS_REPLY_STATUS, "PING", "PING") != SHOP_REDIS_OK)
        return false;
    bool ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    return ok;
}

/* ---- server-side scripts ------------------------------------------------------------------ */

/* A Lua script run by Redis: sent as EVALSHA (its SHA-1, computed once), and as EVAL when Redis
 * answers NOSCRIPT (a fresh or restarted Redis, SCRIPT FLUSH), which also caches it there: one
 * round trip in the usual case, on the blocking or the pipelined connection alike.
 * retry_safe: the transport may resend it once after a stale connection lost it (run()'s rule).
 * Only a script whose second run is harmless says so: a script whose effect could double (a
 * lost reply hides an applied write that a second run would apply again) is never resent, its
 * caller answers 503 as for any failed write. */
struct script {
    const char *text;
    bool retry_safe;
    const char *sha; /* the SHA-1 of text in hex (test_redis_script checks that EVALSHA finds it):
                      * written here, not computed at start, which would map OpenSSL's
                      * libcrypto into services that use nothing else of it (+1.9 MB idle) */
};

/* The optimistic update's write: key becomes ARGV[4] (TTL ARGV[3]) only while it still holds
 * ARGV[2] (ARGV[1] = "1"), or is still absent (ARGV[1] = "0"). 1 when written, 0 on a conflict.
 * Not resent: if a lost reply hid a write, the retry would see a conflict and apply fn twice. */
static struct script cas_script = {.text = "local cur = redis.call('GET', KEYS[1])\n"
                                           "if ARGV[1] == '1' then\n"
                                           "  if cur ~= ARGV[2] then return 0 end\n"
                                           "elseif cur then return 0 end\n"
                                           "redis.call('SETEX', KEYS[1], ARGV[3], ARGV[4])\n"
                                           "return 1\n",
                                   .retry_safe = false,
                                   .sha = "7c85614668aec17c421cba4bc20b724341060d6e"};

#define SCRIPT_MAX_ARGS 8

/* EVAL/EVALSHA of s with its keys and args (argv[0..nargs-1], first nkeys of them are keys):
 * one formatted command. Returns its length, or -1. */
static int script_format(char **cmd, const char *verb, const char *body, int nkeys, int nargs,
                         const char **args, const size_t *lens)
{
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    const char *argv[SCRIPT_MAX_ARGS + 3] = {verb, body, nk};
    size_t argl[SCRIPT_MAX_ARGS + 3] = {strlen(verb), strlen(body), strlen(nk)};
    for (int i = 0; i < nargs; i++) {
        argv[3 + i] = args[i];
        argl[3 + i] = lens[i];
    }
    return redisFormatCommandArgv(cmd, 3 + nargs, argv, argl);
}

static int script_send(struct conn *c, struct script *s, bool by_sha, int nkeys, int nargs,
                       const char **args, const size_t *lens, redisReply **reply)
{
    char *cmd = NULL;
    int len = script_format(&cmd, by_sha ? "EVALSHA" : "EVAL", by_sha ? s->sha : s->text, nkeys,
                            nargs, args, lens);
    *reply = NULL;
    if (len < 0) {
        set_err("bad redis script call");
        return SHOP_REDIS_ERROR;
    }
    int rc = run_one(c, cmd, len, reply, s->retry_safe);
    redisFreeCommand(cmd);
    return rc;
}

/* Runs s: EVALSHA, then EVAL when Redis does not have it (NOSCRIPT: nothing ran). OK with *reply
 * (never an error reply) or a failure. */
static int script_run(struct script *s, int nkeys, int nargs, const char **args, const size_t *lens,
                      redisReply **reply)
{
    if (nargs > SCRIPT_MAX_ARGS) {
        set_err("redis script: too many arguments");
        return SHOP_REDIS_ERROR;
    }
    struct conn *c = thread_conn();
    int rc = script_send(c, s, true, nkeys, nargs, args, lens, reply);
    if (rc == SHOP_REDIS_ERROR && strncmp(last_err, "NOSCRIPT", 8) == 0)
        rc = script_send(c, s, false, nkeys, nargs, args, lens, reply);
    return rc;
}

/* ---- optimistic updates ------------------------------------------------------------------ */

/* Writes val to key (TTL ttl) unless key no longer holds old (NULL: absent). Returns OK when
 * written, 1 on a conflict, or a failure. */
static int compare_and_set(const char *key, long ttl, const redisReply *old, const char *val)
{
    char ttl_s[24];
    snprintf(ttl_s, sizeof(ttl_s), "%ld", ttl);
    bool had = old->type == REDIS_REPLY_STRING;
    const char *args[] = {key, had ? "1" : "0", had ? old->str : "", ttl_s, val};
    size_t lens[] = {strlen(key), 1, had ? old->len : 0, strlen(ttl_s), strlen(val)};
    redisReply *r;
    int rc = script_run(&cas_script, 1, 5, args, lens, &r);
    if (rc != SHOP_REDIS_OK)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER) {
        set_err("compare-and-set: unexpected answer type %d", r->type);
        rc = SHOP_REDIS_ERROR;
    } else {
        rc = r->integer == 1 ? SHOP_REDIS_OK : 1;
    }
    freeReplyObject(r);
    return rc;
}

static int create_key(const char *key, long ttl, const char *val,
                      const struct shop_redis_write *on_create);

static int update(const char *key, long ttl, shop_redis_update_fn fn, void *ud,
                  const struct shop_redis_write *on_create)
{
    long long give_up = shop_now_ns() + g_conf.command_timeout_ms * 1000000LL;
    int attempt;
    for (attempt = 0; attempt < UPDATE_TRIES || shop_now_ns() < give_up; attempt++) {
        redisReply *val = NULL;
        int rc = cmd_typed(&val, REDIS_REPLY_STRING, "GET", "GET %s", key);
        if (rc != SHOP_REDIS_OK)
            return rc;
        char *out = NULL;
        const char *cur = val->type == REDIS_REPLY_STRING ? val->str : NULL;
        int code = fn(cur, cur ? val->len : 0, ud, &out);
        if (code == 0)
            rc = cur ? compare_and_set(key, ttl, val, out) : create_key(key, ttl, out, on_create);
        freeReplyObject(val);
        free(out);
        if (code != 0)
            return code;
        if (rc != 1)
            return rc;
        /* heavy contention on a blocking connection: let the others finish (a coroutine's
         * rivals run while it waits for its replies: no pause there) */
        if (attempt >= 2 && !loop_pipe())
            shop_sleep_ms((long)(rand_r(&seed) % 3));
    }
    set_err("key %s kept changing: gave up after %d tries", key, attempt);
    return SHOP_REDIS_ERROR;
}

/* Waits for the turn t to update t->key on p. 0, or -1 when the loop stops meanwhile. */
static int turn_take(struct pipe *p, struct turn *t)
{
    for (struct turn *h = p->turns; h; h = h->next) {
        if (strcmp(h->key, t->key) != 0)
            continue;
        while (h->line)
            h = h->line;
        h->line = t;
        shop_co_wait(); /* until wake_handed, with t among p->turns */
        if (!p->stopping)
            return 0;
        set_err("server stopping");
        return -1;
    }
    t->next = p->turns;
    p->turns = t;
    return 0;
}

/* Ends t's turn; the next in line (if any) is woken by the loop. */
static void turn_end(struct pipe *p, struct turn *t)
{
    struct turn **at = &p->turns;
    while (*at != t)
        at = &(*at)->next;
    *at = t->next;
    if (t->line) {
        t->line->next = p->handed;
        p->handed = t->line;
    }
}

static int update_in_turn(const char *key, long ttl, shop_redis_update_fn fn, void *ud,
                          const struct shop_redis_write *on_create, struct shop_err *err)
{
    struct pipe *p = loop_pipe();
    struct turn t = {.key = key, .co = shop_co_self()};
    if (p && turn_take(p, &t) == -1) {
        turn_end(p, &t);
        return to_err(SHOP_REDIS_UNAVAILABLE, err);
    }
    int rc = update(key, ttl, fn, ud, on_create);
    if (p)
        turn_end(p, &t);
    return rc < 0 ? to_err(rc, err) : rc;
}

int shop_redis_update(const char *key, long ttl, shop_redis_update_fn fn, void *ud,
                      struct shop_err *err)
{
    return update_in_turn(key, ttl, fn, ud, NULL, err);
}

/* ---- configuration ----------------------------------------------------------------------- */

static int copy_decoded(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstlen)
        return -1;
    return shop_pct_decode(src, n, dst) < 0 ? -1 : 0;
}

static int parse_url(const char *value, int def_port, struct shop_redis_conf *conf)
{
    struct shop_url u;
    if (shop_url_parse(value, &u) == -1 || strcmp(u.scheme, "redis") != 0)
        return -1;
    snprintf(conf->host, sizeof(conf->host), "%s", u.host);
    conf->port = u.port ? u.port : def_port;
    if (copy_decoded(conf->user, sizeof(conf->user), u.user) == -1 ||
        copy_decoded(conf->pass, sizeof(conf->pass), u.pass) == -1)
        return -1;
    if (u.path[0]) {
        char *end;
        errno = 0;
        long db = strtol(u.path, &end, 10);
        if (errno || *end || end == u.path || db < 0 || db > 65535)
            return -1;
        conf->db = (int)db;
    }
    return 0;
}

int shop_redis_conf_parse(const char *value, int def_port, struct shop_redis_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->port = def_port;
    conf->connect_timeout_ms = 500;
    conf->command_timeout_ms = 2000;
    conf->retry_after_ms = 250;
    if (strstr(value, "://"))
        return parse_url(value, def_port, conf);
    return shop_hostport_parse(value, conf->host, sizeof(conf->host), &conf->port);
}

void shop_redis_init_conf(const struct shop_redis_conf *conf)
{
    g_conf = *conf;
    shop_log_info("redis %s:%d db=%d%s", g_conf.host, g_conf.port, g_conf.db,
                  g_conf.pass[0] ? " auth=yes" : "");
}

void shop_redis_init(void)
{
    const char *value = shop_conf_str("REDIS_URL|REDIS_HOST", "redis");
    int port = shop_conf_port("REDIS_PORT", 6379);
    struct shop_redis_conf conf;
    if (shop_redis_conf_parse(value, port, &conf) == -1) {
        const char *url = getenv("REDIS_URL");
        shop_fatalx("config: %s is not redis://[[user]:password@]host[:port][/db] or host[:port]",
                    url && *url ? "REDIS_URL" : "REDIS_HOST");
    }
    shop_redis_init_conf(&conf);
}

void shop_redis_cleanup(void)
{
    shop_tls_drop(&conns);
}

/* ---- fewer round trips (issue 21) -------------------------------------------------------- */

/* Sends the n formatted commands cmds (freed here; a failed format has a length < 0) in one
 * round trip. OK with every reply in reps (error replies included, for the caller to weigh), or
 * a failure (nothing returned). */
static int run_formatted(int n, char **cmds, const int *lens, redisReply **reps, bool may_retry)
{
    int rc = SHOP_REDIS_OK;
    for (int i = 0; i < n; i++)
        if (lens[i] < 0) {
            set_err("bad redis command format");
            rc = SHOP_REDIS_ERROR;
        }
    if (rc == SHOP_REDIS_OK)
        rc = run(thread_conn(), n, (const char *const *)cmds, lens, reps, may_retry);
    for (int i = 0; i < n; i++) {
        if (rc != SHOP_REDIS_OK)
            reps[i] = NULL;
        if (lens[i] >= 0)
            redisFreeCommand(cmds[i]);
    }
    return rc;
}

/* The result of one reply of a batch: OK, or the failure its error reply means (last_err set). */
static int reply_rc(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR)
        return SHOP_REDIS_OK;
    set_err("%s", r->str);
    return busy_error(r->str) ? SHOP_REDIS_UNAVAILABLE : SHOP_REDIS_ERROR;
}

static void free_replies(int n, redisReply **reps)
{
    for (int i = 0; i < n; i++)
        if (reps[i])
            freeReplyObject(reps[i]);
}

/* The update's write of a key that did not exist: SET NX EX (a plain command, no script), after
 * on_create's SETEX in the same round trip. OK when written, 1 when the key exists by now (a
 * conflict: the caller reads it again), or a failure. Never resent: if a lost reply hid the
 * write, a resend would see a conflict and apply fn twice. */
static int create_key(const char *key, long ttl, const char *val,
                      const struct shop_redis_write *on_create)
{
    char *cmds[2];
    int lens[2], n = 0;
    redisReply *reps[2];
    if (on_create)
        lens[n++] = redisFormatCommand(&cmds[0], "SETEX %s %ld %b", on_create->key, on_create->ttl,
                                       on_create->val, on_create->len);
    lens[n] = redisFormatCommand(&cmds[n], "SET %s %b NX EX %ld", key, val, strlen(val), ttl);
    n++;
    int rc = run_formatted(n, cmds, lens, reps, false);
    if (rc != SHOP_REDIS_OK)
        return rc;
    redisReply *set = reps[n - 1];
    rc = reply_rc(set);
    if (rc == SHOP_REDIS_OK && set->type != REDIS_REPLY_STATUS && set->type != REDIS_REPLY_NIL) {
        set_err("SET NX: unexpected answer type %d", set->type);
        rc = SHOP_REDIS_ERROR;
    }
    if (rc == SHOP_REDIS_OK && set->type == REDIS_REPLY_NIL)
        rc = 1;
    if ((rc == SHOP_REDIS_OK || rc == 1) && n == 2 && reps[0]->type == REDIS_REPLY_ERROR)
        shop_log_warnx("redis: %s not written with %s: %s", on_create->key, key, reps[0]->str);
    free_replies(n, reps);
    return rc;
}

int shop_redis_update_new(const char *key, long ttl, shop_redis_update_fn fn, void *ud,
                          const struct shop_redis_write *on_create, struct shop_err *err)
{
    return update_in_turn(key, ttl, fn, ud, on_create, err);
}

int shop_redis_get_n(int n, const char *const *keys, char **vals, size_t *lens,
                     struct shop_err *err)
{
    char *cmds[SHOP_REDIS_GET_MAX];
    int clens[SHOP_REDIS_GET_MAX];
    redisReply *reps[SHOP_REDIS_GET_MAX];
    for (int i = 0; i < n && i < SHOP_REDIS_GET_MAX; i++) {
        vals[i] = NULL;
        lens[i] = 0;
    }
    if (n < 1 || n > SHOP_REDIS_GET_MAX) {
        set_err("redis: %d keys to GET at once", n);
        return to_err(SHOP_REDIS_ERROR, err);
    }
    for (int i = 0; i < n; i++)
        clens[i] = redisFormatCommand(&cmds[i], "GET %s", keys[i]);
    int rc = run_formatted(n, cmds, clens, reps, true);
    for (int i = 0; i < n && rc == SHOP_REDIS_OK; i++) {
        rc = reply_rc(reps[i]);
        if (rc == SHOP_REDIS_OK && reps[i]->type != REDIS_REPLY_STRING &&
            reps[i]->type != REDIS_REPLY_NIL) {
            set_err("key %s holds a non-string value", keys[i]);
            rc = SHOP_REDIS_ERROR;
        }
    }
    for (int i = 0; i < n; i++) {
        bool found = rc == SHOP_REDIS_OK && reps[i]->type == REDIS_REPLY_STRING;
        vals[i] = found ? shop_xstrndup(reps[i]->str, reps[i]->len) : NULL;
        lens[i] = found ? reps[i]->len : 0;
    }
    free_replies(n, reps);
    return rc == SHOP_REDIS_OK ? 0 : to_err(rc, err);
}

int shop_redis_del_expire(const char *key, const char *other, long ttl, struct shop_err *err)
{
    char *cmds[2];
    int lens[2];
    redisReply *reps[2];
    lens[0] = redisFormatCommand(&cmds[0], "DEL %s", key);
    lens[1] = redisFormatCommand(&cmds[1], "EXPIRE %s %ld", other, ttl);
    int rc = run_formatted(2, cmds, lens, reps, true);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    rc = reply_rc(reps[0]);
    if (rc == SHOP_REDIS_OK && reps[0]->type != REDIS_REPLY_INTEGER) {
        set_err("DEL: unexpected answer type %d", reps[0]->type);
        rc = SHOP_REDIS_ERROR;
    }
    int existed = rc == SHOP_REDIS_OK && reps[0]->integer > 0;
    if (rc == SHOP_REDIS_OK && reps[1]->type == REDIS_REPLY_ERROR)
        shop_log_warnx("redis: EXPIRE %s after DEL %s: %s", other, key, reps[1]->str);
    free_replies(2, reps);
    return rc == SHOP_REDIS_OK ? existed : to_err(rc, err);
}

/* ---- sorted sets: the user service's sessions ------------------------------------------------ */

/* shop_redis_incr_zadd: INCR KEYS[1] = n; when the sorted set KEYS[2] exists, ARGV[1]<n> added to
 * it with score n, its ARGV[2] highest-scored members kept, TTL ARGV[3]. Answers {n, 1}, {n, 0}
 * (absent: EXPIRE found nothing) or {n, 2} (another type: ZADD refused, nothing changed but the
 * TTL). Only INCR, EXPIRE, ZADD and ZREMRANGEBYRANK (the user service's Redis ACL). A resend after
 * a lost reply adds one more member nobody was given (the counter never gives its value again),
 * which the cap drops in time: harmless. */
static struct script incr_zadd_script = {
    .text = "local n = redis.call('INCR', KEYS[1])\n"
            "if redis.call('EXPIRE', KEYS[2], ARGV[3]) == 0 then return {n, 0} end\n"
            "local r = redis.pcall('ZADD', KEYS[2], n, ARGV[1] .. string.format('%d', n))\n"
            "if type(r) == 'table' and r.err then return {n, 2} end\n"
            "redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[2]) - 1)\n"
            "return {n, 1}\n",
    .retry_safe = true,
    .sha = "4a8a3731946318f6c7731660672fc9ad1bba92ca"};

/* shop_redis_incr_zadd with create, a new session's: INCR KEYS[1] = n, ARGV[1]<n> added to KEYS[2]
 * (a fresh name only this caller knows) with score n, TTL ARGV[3]. Answers {n, 1}. A resend adds
 * one more member nobody was given: harmless. */
static struct script incr_znew_script = {
    .text = "local n = redis.call('INCR', KEYS[1])\n"
            "redis.call('ZADD', KEYS[2], n, ARGV[1] .. string.format('%d', n))\n"
            "redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
            "return {n, 1}\n",
    .retry_safe = true,
    .sha = "7c873f57d88d5f037dff5f267179d57b080e0259"};

/* shop_redis_zmove_top: KEYS[2] := KEYS[1]'s members but those scored +inf, plus ARGV[1] at +inf,
 * TTL ARGV[2]; KEYS[1] deleted. 1, 0 (KEYS[1] absent) or 2 (another type, left alone). A resend
 * after a lost reply finds KEYS[1] gone and adds ARGV[1] to KEYS[2] again: harmless. */
static struct script zmove_top_script = {
    .text = "local t = redis.call('TYPE', KEYS[1]).ok\n"
            "if t == 'zset' then\n"
            "  redis.call('ZUNIONSTORE', KEYS[2], 1, KEYS[1])\n"
            "  redis.call('ZREMRANGEBYSCORE', KEYS[2], '+inf', '+inf')\n"
            "  redis.call('DEL', KEYS[1])\n"
            "end\n"
            "redis.call('ZADD', KEYS[2], '+inf', ARGV[1])\n"
            "redis.call('EXPIRE', KEYS[2], ARGV[2])\n"
            "if t == 'zset' then return 1 elseif t == 'none' then return 0 end\n"
            "return 2\n",
    .retry_safe = true,
    .sha = "1f6495b3ed59d3be6fd0f86c2b7ac1a7e626a9c7"};

/* shop_redis_json_to_zset: the string KEYS[1], a JSON object whose field ARGV[1] is an array,
 * becomes a sorted set of the array's strings (scores 1, 2, ...) and of its string field ARGV[2]
 * (score +inf), TTL ARGV[3]. 1 when replaced, 0 when left alone. A resend finds a sorted set and
 * leaves it alone. */
static struct script json_to_zset_script = {
    .text = "if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end\n"
            "local ok, doc = pcall(cjson.decode, redis.call('GET', KEYS[1]))\n"
            "if not ok or type(doc) ~= 'table' or type(doc[ARGV[1]]) ~= 'table' then return 0 end\n"
            "local add = {}\n"
            "for i, v in ipairs(doc[ARGV[1]]) do\n"
            "  if type(v) == 'string' then add[#add + 1] = i; add[#add + 1] = v end\n"
            "end\n"
            "if type(doc[ARGV[2]]) == 'string' then\n"
            "  add[#add + 1] = '+inf'; add[#add + 1] = doc[ARGV[2]]\n"
            "end\n"
            "redis.call('DEL', KEYS[1])\n"
            "if #add > 0 then\n"
            "  redis.call('ZADD', KEYS[1], unpack(add))\n"
            "  redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
            "end\n"
            "return 1\n",
    .retry_safe = true,
    .sha = "447aa15f52f4445417652b1b361c7c26cddda053"};

/* Runs a script whose answer is an integer 0..max (or, with pair, {counter, 0..max}): the
 * integer in *code, the counter in *value. 0 or -1 with err set. */
static int script_code(struct script *s, int nkeys, int nargs, const char **args, bool pair,
                       int max, int *code, long long *value, struct shop_err *err)
{
    size_t lens[SCRIPT_MAX_ARGS];
    for (int i = 0; i < nargs && i < SCRIPT_MAX_ARGS; i++)
        lens[i] = strlen(args[i]);
    redisReply *r;
    int rc = script_run(s, nkeys, nargs, args, lens, &r);
    if (rc != SHOP_REDIS_OK)
        return to_err(rc, err);
    bool ok = pair ? r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                         r->element[0]->type == REDIS_REPLY_INTEGER
                   : true;
    const redisReply *c = pair && ok ? r->element[1] : r;
    ok = ok && c->type == REDIS_REPLY_INTEGER && c->integer >= 0 && c->integer <= max;
    if (ok) {
        *code = (int)c->integer;
        if (pair)
            *value = r->element[0]->integer;
    }
    freeReplyObject(r);
    if (!ok) {
        set_err("redis script: unexpected answer");
        return to_err(SHOP_REDIS_ERROR, err);
    }
    return 0;
}

int shop_redis_incr_zadd(const char *counter, const char *key, const char *prefix, long cap,
                         long ttl, bool create, long long *value, struct shop_err *err)
{
    char cap_s[24], ttl_s[24];
    snprintf(cap_s, sizeof(cap_s), "%ld", cap > 0 ? cap : 1);
    snprintf(ttl_s, sizeof(ttl_s), "%ld", ttl);
    const char *args[] = {counter, key, prefix, cap_s, ttl_s};
    int code;
    if (script_code(create ? &incr_znew_script : &incr_zadd_script, 2, 5, args, true, 2, &code,
                    value, err) == -1)
        return -1;
    return code;
}

int shop_redis_zmove_top(const char *src, const char *dst, const char *top, long ttl,
                         struct shop_err *err)
{
    char ttl_s[24];
    snprintf(ttl_s, sizeof(ttl_s), "%ld", ttl);
    const char *args[] = {src ? src : dst, dst, top, ttl_s};
    int code;
    if (script_code(&zmove_top_script, 2, 4, args, false, 2, &code, NULL, err) == -1)
        return -1;
    return code;
}

int shop_redis_json_to_zset(const char *key, const char *field, const char *top, long ttl,
                            struct shop_err *err)
{
    char ttl_s[24];
    snprintf(ttl_s, sizeof(ttl_s), "%ld", ttl);
    const char *args[] = {key, field, top, ttl_s};
    int code;
    if (script_code(&json_to_zset_script, 1, 4, args, false, 1, &code, NULL, err) == -1)
        return -1;
    return code;
}

/* The replies of zhas_touch's n ZSCOREs and its EXPIRE (reps[n]): OK with *result (the call's
 * answer, found[] filled) or a failure. */
static int zhas_answer(int n, redisReply **reps, bool *found, int *result)
{
    for (int i = 0; i < n; i++) {
        if (reps[i]->type == REDIS_REPLY_ERROR && strncmp(reps[i]->str, "WRONGTYPE", 9) == 0) {
            *result = SHOP_REDIS_WRONG_TYPE;
            return SHOP_REDIS_OK;
        }
        int rc = reply_rc(reps[i]);
        if (rc != SHOP_REDIS_OK)
            return rc;
        found[i] = reps[i]->type == REDIS_REPLY_STRING;
    }
    int rc = reply_rc(reps[n]);
    if (rc == SHOP_REDIS_OK && reps[n]->type != REDIS_REPLY_INTEGER) {
        set_err("EXPIRE: unexpected answer type %d", reps[n]->type);
        rc = SHOP_REDIS_ERROR;
    }
    if (rc == SHOP_REDIS_OK)
        *result = reps[n]->integer ? SHOP_REDIS_DONE : SHOP_REDIS_NO_KEY;
    return rc;
}

int shop_redis_zhas_touch(const char *key, long ttl, int n, const char *const *members, bool *found,
                          struct shop_err *err)
{
    char *cmds[SHOP_REDIS_ZHAS_MAX + 1];
    int lens[SHOP_REDIS_ZHAS_MAX + 1];
    redisReply *reps[SHOP_REDIS_ZHAS_MAX + 1];
    if (n < 1 || n > SHOP_REDIS_ZHAS_MAX) {
        set_err("redis: %d members to look up at once", n);
        return to_err(SHOP_REDIS_ERROR, err);
    }
    for (int i = 0; i < n; i++)
        lens[i] = redisFormatCommand(&cmds[i], "ZSCORE %s %s", key, members[i]);
    lens[n] = redisFormatCommand(&cmds[n], "EXPIRE %s %ld", key, ttl);
    int result = SHOP_REDIS_NO_KEY;
    int rc = run_formatted(n + 1, cmds, lens, reps, true);
    if (rc == SHOP_REDIS_OK)
        rc = zhas_answer(n, reps, found, &result);
    free_replies(n + 1, reps);
    if (rc != SHOP_REDIS_OK || result != SHOP_REDIS_DONE)
        for (int i = 0; i < n; i++)
            found[i] = false;
    return rc == SHOP_REDIS_OK ? result : to_err(rc, err);
}
