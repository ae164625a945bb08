/* bare.c - the benchmarks' bare libmicrohttpd responder: the physical limit a service is
 * compared with. Same server set-up as libshop/server.c (epoll pool, 8 KiB per connection,
 * two-phase handler so keep-alive holds), no router, no metrics, no logging; each request runs
 * the backend round trips given on the command line, with the raw client libraries and
 * per-thread connections, and answers the last step's result.
 *
 * usage: bare PORT STEP...      (threads: BARE_THREADS, default 4 like SHOP_THREADS)
 * STEP is "kind|arg|arg..."; "{N}" in an argument is the N-th path segment (1-based) and
 * "{body}" the request body:
 *   hello                          {"hello":"world"} (no backend)
 *   mongo|DB.COLL                  find {} -> JSON array              (MONGO_URL)
 *   mongo|DB.COLL|FIELD|VALUE      find {FIELD: VALUE} limit 1 -> one document or 404
 *   redis|CMD|ARG...               one command; a nil answer is 404 only in the last step
 *                                  (REDIS_HOST, REDIS_PORT)
 *   redis-loop|CMD|ARG...          the same answer, but the request waits in a coroutine while
 *                                  its thread's event loop pipelines every queued command on the
 *                                  thread's one non-blocking connection (issue 21 item 1's
 *                                  prototype). Any such step switches the whole responder to
 *                                  that design: one libmicrohttpd daemon and one epoll loop per
 *                                  thread on a shared listening socket, each handler in a
 *                                  coroutine, its connection suspended while it waits
 *                                  (BARE_LOOP=1: that design without a redis-loop step;
 *                                  BARE_REUSEPORT=1: a SO_REUSEPORT socket per thread)
 *   mysql|DB|USER|PASS|SQL|ARG...  prepared once per thread, ARGs bound as strings, all rows
 *                                  -> JSON array of arrays            (DB_HOST, DB_PORT)
 *   http|METHOD|URL[|any]          libcurl, one reused handle per thread; status >= 400 -> 502
 *                                  unless "any" (then every answer counts)
 *   amqp|EXCHANGE|KEY              persistent publish of the body, waits for the confirm
 *                                  (AMQP_HOST, AMQP_PORT, AMQP_USER, AMQP_PASS)
 */
#include "libshop/coswitch.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <mongoc/mongoc.h>
#include <mysql.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_STEPS 8
#define MAX_ARGS  12
#define MAX_SEGS  8
#define MAX_COLS  16
#define OUT_MAX   (4 * 1024 * 1024)

enum kind { K_HELLO, K_MONGO, K_REDIS, K_MYSQL, K_HTTP, K_AMQP, K_RLOOP };

struct step {
    enum kind kind;
    int nargs;
    char *args[MAX_ARGS];
};

/* A growable output buffer with a hard cap; one per request. */
struct out {
    char *data;
    size_t len, cap;
    int status;
};

struct req {
    struct co *co; /* loop mode: the coroutine running this request */
    char path[1024];
    char body[64 * 1024];
    size_t body_len;
};

static struct step steps[MAX_STEPS];
static int nsteps;
static mongoc_client_pool_t *mongo_pool;

static void die(const char *what)
{
    fprintf(stderr, "bare: %s\n", what);
    exit(1);
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static void out_add(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        if (cap > OUT_MAX)
            die("response too large");
        o->data = realloc(o->data, cap);
        if (!o->data)
            die("out of memory");
        o->cap = cap;
    }
    memcpy(o->data + o->len, s, n);
    o->len += n;
    o->data[o->len] = '\0';
}

static void out_set(struct out *o, int status, const char *s)
{
    o->len = 0;
    o->status = status;
    out_add(o, s, strlen(s));
}

/* Expands {N} (path segment N) and {body} of tmpl into dst (size n). */
static void expand(const char *tmpl, const struct req *r, char *dst, size_t n)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < n;) {
        if (strncmp(p, "{body}", 6) == 0) {
            size_t k = r->body_len < n - 1 - o ? r->body_len : n - 1 - o;
            memcpy(dst + o, r->body, k);
            o += k;
            p += 6;
        } else if (p[0] == '{' && p[1] >= '1' && p[1] <= '9' && p[2] == '}') {
            int want = p[1] - '0', seg = 0;
            const char *s = r->path;
            while (*s) {
                if (*s == '/') {
                    seg++;
                    s++;
                    continue;
                }
                size_t len = strcspn(s, "/");
                if (seg == want) {
                    size_t k = len < n - 1 - o ? len : n - 1 - o;
                    memcpy(dst + o, s, k);
                    o += k;
                    break;
                }
                s += len;
            }
            p += 3;
        } else {
            dst[o++] = *p++;
        }
    }
    dst[o] = '\0';
}

/* ---- MongoDB ------------------------------------------------------------------------------- */

static void run_mongo(const struct step *st, const struct req *r, struct out *o)
{
    char ns[256], val[512];
    snprintf(ns, sizeof(ns), "%s", st->args[0]);
    char *dot = strchr(ns, '.');
    if (!dot)
        die("mongo step needs DB.COLL");
    *dot = '\0';
    mongoc_client_t *c = mongoc_client_pool_pop(mongo_pool);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, ns, dot + 1);
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    bool one = st->nargs >= 3;
    if (one) {
        expand(st->args[2], r, val, sizeof(val));
        BSON_APPEND_UTF8(&filter, st->args[1], val);
        BSON_APPEND_INT64(&opts, "limit", 1);
    }
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    const bson_t *doc;
    int n = 0;
    o->len = 0;
    o->status = 200;
    if (!one)
        out_add(o, "[", 1);
    while (mongoc_cursor_next(cur, &doc)) {
        size_t len;
        char *j = bson_as_relaxed_extended_json(doc, &len);
        if (n++ && !one)
            out_add(o, ",", 1);
        out_add(o, j, len);
        bson_free(j);
    }
    if (!one)
        out_add(o, "]", 1);
    bson_error_t err;
    if (mongoc_cursor_error(cur, &err))
        out_set(o, 503, err.message);
    else if (one && n == 0)
        out_set(o, 404, "not found");
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
    mongoc_collection_destroy(coll);
    mongoc_client_pool_push(mongo_pool, c);
}

/* ---- Redis --------------------------------------------------------------------------------- */

static __thread redisContext *t_redis;

/* The answer of a step from its reply (freed here). */
static void redis_answer(redisReply *rep, struct out *o, bool last)
{
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) {
        o->len = 0;
        o->status = 200;
        out_add(o, rep->str, rep->len);
    } else if (rep->type == REDIS_REPLY_INTEGER) {
        char num[64];
        snprintf(num, sizeof(num), "{\"n\":%lld}", rep->integer);
        out_set(o, 200, num);
    } else if (rep->type == REDIS_REPLY_NIL) {
        out_set(o, last ? 404 : 200, last ? "not found" : "null");
    } else {
        out_set(o, 500, rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    }
    freeReplyObject(rep);
}

/* A Redis step's arguments with the request's placeholders filled in. */
static void expand_args(const struct step *st, const struct req *r, char bufs[][1024],
                        const char **argv, size_t *lens)
{
    for (int i = 0; i < st->nargs; i++) {
        expand(st->args[i], r, bufs[i], sizeof(bufs[i]));
        argv[i] = bufs[i];
        lens[i] = strlen(bufs[i]);
    }
}

static void run_redis(const struct step *st, const struct req *r, struct out *o, bool last)
{
    if (!t_redis) {
        struct timeval tv = {2, 0};
        t_redis = redisConnectWithTimeout(env_or("REDIS_HOST", "127.0.0.1"),
                                          atoi(env_or("REDIS_PORT", "6379")), tv);
        if (!t_redis || t_redis->err) {
            redisFree(t_redis);
            t_redis = NULL;
            out_set(o, 503, "redis down");
            return;
        }
    }
    char bufs[MAX_ARGS][1024];
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    expand_args(st, r, bufs, argv, lens);
    redisReply *rep = redisCommandArgv(t_redis, st->nargs, argv, lens);
    if (!rep) {
        redisFree(t_redis);
        t_redis = NULL;
        out_set(o, 503, "redis down");
        return;
    }
    redis_answer(rep, o, last);
}

/* ---- MariaDB ------------------------------------------------------------------------------- */

static __thread MYSQL *t_mysql;
static __thread MYSQL_STMT *t_stmt[MAX_STEPS];

static void mysql_drop(void)
{
    for (int i = 0; i < MAX_STEPS; i++)
        if (t_stmt[i])
            mysql_stmt_close(t_stmt[i]), t_stmt[i] = NULL;
    mysql_close(t_mysql);
    t_mysql = NULL;
}

static MYSQL_STMT *mysql_stmt_for(int idx, const struct step *st)
{
    if (!t_mysql) {
        mysql_thread_init();
        t_mysql = mysql_init(NULL);
        unsigned timeout = 2;
        mysql_options(t_mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
        if (!mysql_real_connect(t_mysql, env_or("DB_HOST", "127.0.0.1"), st->args[1], st->args[2],
                                st->args[0], (unsigned)atoi(env_or("DB_PORT", "3306")), NULL, 0)) {
            fprintf(stderr, "bare: mysql: %s\n", mysql_error(t_mysql));
            mysql_drop();
            return NULL;
        }
        mysql_set_character_set(t_mysql, "utf8mb4");
    }
    if (!t_stmt[idx]) {
        t_stmt[idx] = mysql_stmt_init(t_mysql);
        if (mysql_stmt_prepare(t_stmt[idx], st->args[3], strlen(st->args[3]))) {
            fprintf(stderr, "bare: prepare: %s\n", mysql_stmt_error(t_stmt[idx]));
            mysql_drop();
            return NULL;
        }
    }
    return t_stmt[idx];
}

static void run_mysql(int idx, const struct step *st, const struct req *r, struct out *o)
{
    MYSQL_STMT *s = mysql_stmt_for(idx, st);
    if (!s) {
        out_set(o, 503, "mysql down");
        return;
    }
    int np = st->nargs - 4;
    char pv[MAX_ARGS][512];
    MYSQL_BIND pb[MAX_ARGS];
    unsigned long pl[MAX_ARGS];
    memset(pb, 0, sizeof(pb));
    for (int i = 0; i < np; i++) {
        expand(st->args[4 + i], r, pv[i], sizeof(pv[i]));
        pl[i] = strlen(pv[i]);
        pb[i].buffer_type = MYSQL_TYPE_STRING;
        pb[i].buffer = pv[i];
        pb[i].buffer_length = pl[i];
        pb[i].length = &pl[i];
    }
    if ((np > 0 && mysql_stmt_bind_param(s, pb)) || mysql_stmt_execute(s)) {
        out_set(o, 503, mysql_stmt_error(s));
        mysql_drop();
        return;
    }
    MYSQL_RES *meta = mysql_stmt_result_metadata(s);
    unsigned nc = meta ? mysql_num_fields(meta) : 0;
    if (nc > MAX_COLS)
        nc = MAX_COLS;
    char cv[MAX_COLS][256];
    unsigned long cl[MAX_COLS];
    my_bool isnull[MAX_COLS];
    MYSQL_BIND cb[MAX_COLS];
    memset(cb, 0, sizeof(cb));
    for (unsigned i = 0; i < nc; i++) {
        cb[i].buffer_type = MYSQL_TYPE_STRING;
        cb[i].buffer = cv[i];
        cb[i].buffer_length = sizeof(cv[i]) - 1;
        cb[i].length = &cl[i];
        cb[i].is_null = &isnull[i];
    }
    if (nc)
        mysql_stmt_bind_result(s, cb);
    o->len = 0;
    o->status = 200;
    out_add(o, "[", 1);
    int rows = 0, rc;
    while (nc && ((rc = mysql_stmt_fetch(s)) == 0 || rc == MYSQL_DATA_TRUNCATED)) {
        if (rows++)
            out_add(o, ",", 1);
        out_add(o, "[", 1);
        for (unsigned i = 0; i < nc; i++) {
            if (i)
                out_add(o, ",", 1);
            out_add(o, "\"", 1);
            if (!isnull[i])
                out_add(o, cv[i], cl[i] < sizeof(cv[i]) - 1 ? cl[i] : sizeof(cv[i]) - 1);
            out_add(o, "\"", 1);
        }
        out_add(o, "]", 1);
    }
    out_add(o, "]", 1);
    mysql_stmt_free_result(s);
    if (meta)
        mysql_free_result(meta);
}

/* ---- HTTP (libcurl) ------------------------------------------------------------------------ */

static __thread CURL *t_curl;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    out_add(ud, p, size * n);
    return size * n;
}

static void run_http(const struct step *st, const struct req *r, struct out *o)
{
    char url[2048];
    expand(st->args[1], r, url, sizeof(url));
    if (!t_curl)
        t_curl = curl_easy_init();
    CURL *h = t_curl;
    curl_easy_reset(h);
    o->len = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, o);
    if (strcmp(st->args[0], "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, st->args[0]);
    if (curl_easy_perform(h) != CURLE_OK) {
        out_set(o, 502, "http call failed");
        return;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    bool any = st->nargs > 2 && strcmp(st->args[2], "any") == 0;
    o->status = status >= 400 && !any ? 502 : 200;
    if (!o->data)
        out_add(o, "", 0);
}

/* ---- RabbitMQ ------------------------------------------------------------------------------ */

static __thread amqp_connection_state_t t_amqp;

static bool amqp_ok(amqp_rpc_reply_t r)
{
    return r.reply_type == AMQP_RESPONSE_NORMAL;
}

static bool amqp_open(void)
{
    t_amqp = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(t_amqp);
    struct timeval tv = {2, 0};
    if (!sock ||
        amqp_socket_open_noblock(sock, env_or("AMQP_HOST", "127.0.0.1"),
                                 atoi(env_or("AMQP_PORT", "5672")), &tv) != AMQP_STATUS_OK ||
        !amqp_ok(amqp_login(t_amqp, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                            env_or("AMQP_USER", "guest"), env_or("AMQP_PASS", "guest"))) ||
        !amqp_channel_open(t_amqp, 1) || !amqp_ok(amqp_get_rpc_reply(t_amqp)) ||
        !amqp_confirm_select(t_amqp, 1) || !amqp_ok(amqp_get_rpc_reply(t_amqp))) {
        amqp_destroy_connection(t_amqp);
        t_amqp = NULL;
        return false;
    }
    return true;
}

static void run_amqp(const struct step *st, const struct req *r, struct out *o)
{
    if (!t_amqp && !amqp_open()) {
        out_set(o, 503, "amqp down");
        return;
    }
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    amqp_bytes_t body = {r->body_len, (void *)(uintptr_t)r->body};
    int rc = amqp_basic_publish(t_amqp, 1, amqp_cstring_bytes(st->args[0]),
                                amqp_cstring_bytes(st->args[1]), 0, 0, &props, body);
    amqp_frame_t f;
    struct timeval tv = {5, 0};
    if (rc == AMQP_STATUS_OK)
        rc = amqp_simple_wait_frame_noblock(t_amqp, &f, &tv);
    if (rc != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_METHOD ||
        f.payload.method.id != AMQP_BASIC_ACK_METHOD) {
        amqp_destroy_connection(t_amqp);
        t_amqp = NULL;
        out_set(o, 503, "publish not confirmed");
        return;
    }
    out_set(o, 200, "{\"orderid\":\"bare\"}");
}

/* ---- Redis on a per-thread event loop (step redis-loop) ------------------------------------ */

/* Each thread owns one libmicrohttpd daemon (external epoll mode, the listening socket shared),
 * one non-blocking Redis connection and an epoll loop over both. A request runs in a coroutine;
 * a redis-loop step appends its command to the thread's output buffer and switches back to the
 * loop, which suspends the connection. Once per iteration the loop writes every queued command
 * in one write and reads every reply there is; each reply switches into its coroutine (in the
 * order the commands went out), and a coroutine that finished resumes its connection, whose
 * handler then queues the answer. No thread ever waits for another. */

#define CO_STACK (256 * 1024)

struct co {
    shop_ctx ctx; /* saved while switched out */
    char *stack;
    struct MHD_Connection *conn;
    struct req *r;
    struct out o;
    redisReply *reply; /* handed over by the loop; NULL when the connection failed */
    bool done;
    struct co *next; /* in the loop's queue of waiters, or its free list */
};

struct loop {
    struct MHD_Daemon *d;
    int listen_fd, ep, rfd;
    bool want_out;
    redisContext *rc;
    redisReader *reader;
    char *obuf;
    size_t olen, ocap;
    struct co *wait_head, *wait_tail, *free;
    struct co *cur;
    shop_ctx main;
    unsigned long long requests, commands, writes, reads, iterations; /* printed at the end */
};

static bool loop_mode;
static __thread struct loop *t_loop;
static struct loop *loops[256];
static unsigned nloops;

static void run_steps(const struct req *r, struct out *o);

/* A coroutine's life: one request after another, back to the loop after each. */
static void co_main(void)
{
    struct loop *l = t_loop;
    struct co *co = l->cur;
    for (;;) {
        run_steps(co->r, &co->o);
        co->done = true;
        shop_ctx_switch(&co->ctx, &l->main);
    }
}

static void co_enter(struct loop *l, struct co *co)
{
    l->cur = co;
    shop_ctx_switch(&l->main, &co->ctx);
    l->cur = NULL;
}

static struct co *co_get(struct loop *l)
{
    struct co *co = l->free;
    if (co) {
        l->free = co->next;
        return co;
    }
    co = calloc(1, sizeof(*co));
    if (!co || !(co->stack = malloc(CO_STACK)))
        die("out of memory");
    shop_ctx_init(&co->ctx, co->stack, CO_STACK, co_main);
    return co;
}

static void co_put(struct loop *l, struct co *co)
{
    co->next = l->free;
    l->free = co;
}

static void loop_watch_redis(struct loop *l, int op, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = 1};
    epoll_ctl(l->ep, op, l->rfd, &ev);
    l->want_out = out;
}

static bool loop_connect(struct loop *l)
{
    struct timeval tv = {2, 0};
    l->rc = redisConnectWithTimeout(env_or("REDIS_HOST", "127.0.0.1"),
                                    atoi(env_or("REDIS_PORT", "6379")), tv);
    if (!l->rc || l->rc->err) {
        redisFree(l->rc);
        l->rc = NULL;
        return false;
    }
    l->rfd = l->rc->fd;
    fcntl(l->rfd, F_SETFL, fcntl(l->rfd, F_GETFL) | O_NONBLOCK);
    l->reader = redisReaderCreate();
    loop_watch_redis(l, EPOLL_CTL_ADD, false);
    return true;
}

/* A coroutine whose request is answered goes back to the pool and its connection resumes. */
static void loop_run(struct loop *l, struct co *co)
{
    co_enter(l, co);
    if (co->done)
        MHD_resume_connection(co->conn);
}

/* The connection broke: every waiter gets NULL (503), a later command reconnects. */
static void loop_fail(struct loop *l)
{
    epoll_ctl(l->ep, EPOLL_CTL_DEL, l->rfd, NULL);
    redisFree(l->rc); /* closes rfd */
    redisReaderFree(l->reader);
    l->rc = NULL;
    l->reader = NULL;
    l->rfd = -1;
    l->olen = 0;
    struct co *co = l->wait_head;
    l->wait_head = l->wait_tail = NULL;
    while (co) {
        struct co *next = co->next;
        co->reply = NULL;
        loop_run(l, co);
        co = next;
    }
}

/* Called from a coroutine: queues the command, waits for its reply (NULL: Redis is down). */
static redisReply *loop_command(int argc, const char **argv, const size_t *lens)
{
    struct loop *l = t_loop;
    struct co *co = l->cur;
    char *cmd;
    if (l->rfd < 0 && !loop_connect(l))
        return NULL;
    long long n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0)
        return NULL;
    if (l->olen + (size_t)n > l->ocap) {
        l->ocap = (l->olen + (size_t)n) * 2;
        l->obuf = realloc(l->obuf, l->ocap);
        if (!l->obuf)
            die("out of memory");
    }
    memcpy(l->obuf + l->olen, cmd, (size_t)n);
    l->olen += (size_t)n;
    l->commands++;
    redisFreeCommand(cmd);
    co->next = NULL;
    co->reply = NULL;
    if (l->wait_tail)
        l->wait_tail->next = co;
    else
        l->wait_head = co;
    l->wait_tail = co;
    shop_ctx_switch(&co->ctx, &l->main);
    return co->reply;
}

static void run_redis_loop(const struct step *st, const struct req *r, struct out *o, bool last)
{
    char bufs[MAX_ARGS][1024];
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    expand_args(st, r, bufs, argv, lens);
    redisReply *rep = loop_command(st->nargs, argv, lens);
    if (!rep)
        out_set(o, 503, "redis down");
    else
        redis_answer(rep, o, last);
}

/* Writes what is queued, in one write when the socket takes it all. */
static void loop_flush(struct loop *l)
{
    if (l->rfd < 0)
        return;
    if (l->olen) {
        ssize_t n = send(l->rfd, l->obuf, l->olen, MSG_NOSIGNAL);
        l->writes++;
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            loop_fail(l);
            return;
        }
        if (n > 0) {
            memmove(l->obuf, l->obuf + n, l->olen - (size_t)n);
            l->olen -= (size_t)n;
        }
    }
    if ((l->olen > 0) != l->want_out)
        loop_watch_redis(l, EPOLL_CTL_MOD, l->olen > 0);
}

/* Reads every reply there is and hands each to its waiter, in order. */
static void loop_read(struct loop *l)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(l->rfd, buf, sizeof(buf), 0);
        l->reads++;
        if (n > 0) {
            redisReaderFeed(l->reader, buf, (size_t)n);
            if ((size_t)n < sizeof(buf))
                break;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else {
            loop_fail(l);
            return;
        }
    }
    void *rep;
    while (l->reader && redisReaderGetReply(l->reader, &rep) == REDIS_OK && rep) {
        struct co *co = l->wait_head;
        if (!co) {
            freeReplyObject(rep);
            continue;
        }
        l->wait_head = co->next;
        if (!l->wait_head)
            l->wait_tail = NULL;
        co->reply = rep;
        loop_run(l, co);
    }
}

/* The handler's final call in loop mode: runs (or goes on with) the request's coroutine. */
static enum MHD_Result loop_request(struct MHD_Connection *c, struct req *r)
{
    struct loop *l = t_loop;
    struct co *co = r->co;
    if (!co) {
        co = r->co = co_get(l);
        l->requests++;
        co->r = r;
        co->conn = c;
        co->o = (struct out){0};
        co->done = false;
        co_enter(l, co);
    }
    if (!co->done) {
        MHD_suspend_connection(c);
        return MHD_YES;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(co->o.len, co->o.data, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)co->o.status, resp);
    MHD_destroy_response(resp);
    r->co = NULL;
    co_put(l, co);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls);
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe);

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    t_loop = l;
    l->rfd = -1;
    l->d =
        MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, NULL,
                         MHD_OPTION_LISTEN_SOCKET, l->listen_fd, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)16384, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!l->d || l->ep < 0)
        die("cannot start a loop");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
    if (!info || epoll_ctl(l->ep, EPOLL_CTL_ADD, info->epoll_fd, &ev) != 0)
        die("cannot watch the daemon");
    loop_connect(l);
    for (;;) {
        MHD_UNSIGNED_LONG_LONG to;
        int timeout = MHD_get_timeout(l->d, &to) == MHD_YES && to < 1000 ? (int)to : 1000;
        struct epoll_event evs[4];
        int n = epoll_wait(l->ep, evs, 4, timeout);
        l->iterations++;
        for (int i = 0; i < n; i++)
            if (evs[i].data.u32 == 1 && l->rfd >= 0)
                loop_read(l);
        MHD_run(l->d);
        loop_flush(l);
    }
    return NULL;
}

static int listen_on(int port, bool reuseport)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0)
        die("cannot listen");
    return fd;
}

/* Listens on port with one socket all the loops' daemons share (as a socket systemd passes
 * would be), or with BARE_REUSEPORT=1 one SO_REUSEPORT socket per loop (the kernel spreads the
 * connections over them). */
static void loop_start(int port, unsigned threads)
{
    bool reuseport = atoi(env_or("BARE_REUSEPORT", "0")) != 0;
    int shared = reuseport ? -1 : listen_on(port, false);
    for (unsigned i = 0; i < threads && i < 256; i++) {
        pthread_t t;
        struct loop *l = loops[nloops++] = calloc(1, sizeof(struct loop));
        if (!l)
            die("out of memory");
        l->listen_fd = reuseport ? listen_on(port, true) : shared;
        if (pthread_create(&t, NULL, loop_main, l) != 0)
            die("cannot start a thread");
        pthread_detach(t);
    }
}

/* ---- server -------------------------------------------------------------------------------- */

static void run_steps(const struct req *r, struct out *o)
{
    out_set(o, 200, "{\"hello\":\"world\"}");
    for (int i = 0; i < nsteps && o->status == 200; i++) {
        switch (steps[i].kind) {
        case K_HELLO:
            break;
        case K_MONGO:
            run_mongo(&steps[i], r, o);
            break;
        case K_REDIS:
            run_redis(&steps[i], r, o, i == nsteps - 1);
            break;
        case K_MYSQL:
            run_mysql(i, &steps[i], r, o);
            break;
        case K_HTTP:
            run_http(&steps[i], r, o);
            break;
        case K_AMQP:
            run_amqp(&steps[i], r, o);
            break;
        case K_RLOOP:
            run_redis_loop(&steps[i], r, o, i == nsteps - 1);
            break;
        }
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)method, (void)version;
    struct req *r = *con_cls;
    if (!r) { /* phase one: queueing now would cost keep-alive on 0.9.75 */
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        snprintf(r->path, sizeof(r->path), "%s", url);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t room = sizeof(r->body) - 1 - r->body_len;
        size_t n = *upload_size < room ? *upload_size : room;
        memcpy(r->body + r->body_len, upload, n);
        r->body_len += n;
        *upload_size = 0;
        return MHD_YES;
    }
    if (loop_mode)
        return loop_request(c, r);
    struct out o = {0};
    run_steps(r, &o);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(o.len, o.data, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)o.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static void parse_step(const char *spec)
{
    if (nsteps == MAX_STEPS)
        die("too many steps");
    struct step *st = &steps[nsteps++];
    char *copy = strdup(spec), *save = NULL;
    char *kind = strtok_r(copy, "|", &save);
    static const char *names[] = {"hello", "mongo", "redis", "mysql", "http", "amqp", "redis-loop"};
    static const int min_args[] = {0, 1, 1, 4, 2, 2, 1};
    size_t k = 0;
    while (k < 7 && strcmp(kind ? kind : "", names[k]) != 0)
        k++;
    if (k == 7)
        die("unknown step kind (hello mongo redis mysql http amqp redis-loop)");
    loop_mode = loop_mode || k == K_RLOOP;
    st->kind = (enum kind)k;
    for (char *a; (a = strtok_r(NULL, "|", &save)) != NULL;) {
        if (st->nargs == MAX_ARGS)
            die("too many step arguments");
        st->args[st->nargs++] = a;
    }
    if (st->nargs < min_args[k])
        die("too few step arguments");
    if (st->kind == K_MONGO && !mongo_pool) {
        mongoc_init();
        mongoc_uri_t *uri = mongoc_uri_new(env_or("MONGO_URL", "mongodb://127.0.0.1:27017/"));
        if (!uri)
            die("bad MONGO_URL");
        mongo_pool = mongoc_client_pool_new(uri);
        mongoc_client_pool_set_error_api(mongo_pool, MONGOC_ERROR_API_VERSION_2);
        mongoc_uri_destroy(uri);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        die("usage: bare PORT STEP... (see the comment at the top of bench/bare/bare.c)");
    for (int i = 2; i < argc; i++)
        parse_step(argv[i]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    mysql_library_init(0, NULL, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    unsigned threads = (unsigned)atoi(env_or("BARE_THREADS", "4"));
    if (loop_mode || atoi(env_or("BARE_LOOP", "0"))) {
        loop_start(atoi(argv[1]), threads);
        int sig;
        sigwait(&set, &sig);
        unsigned long long c = 0, w = 0, rd = 0, it = 0;
        for (unsigned i = 0; i < nloops; i++) /* racy reads: figures for a person, not a test */
            c += loops[i]->commands, w += loops[i]->writes, rd += loops[i]->reads,
                it += loops[i]->iterations;
        fprintf(stderr,
                "bare: loop: %llu commands, %llu writes (%.1f per write), %llu reads, "
                "%llu iterations\n",
                c, w, w ? (double)c / (double)w : 0.0, rd, it);
        fprintf(stderr, "bare: requests per loop:");
        for (unsigned i = 0; i < nloops; i++)
            fprintf(stderr, " %llu", loops[i]->requests);
        fprintf(stderr, "\n");
        _exit(0); /* the loops' daemons hold no state worth a clean stop */
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC, (uint16_t)atoi(argv[1]), NULL, NULL,
        on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)16384, MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d)
        die("cannot listen");
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    if (mongo_pool)
        mongoc_client_pool_destroy(mongo_pool);
    return 0;
}
