/* mysql.c - libmariadb connections kept per worker thread with their prepared statements,
 * statements run into JSON rows, and the fail-fast policy that turns a dead database into
 * quick 503s. */
#include "libshop/mysql.h"
#include "libshop/conf.h"
#include "libshop/log.h"
#include "libshop/trace.h"
#include "libshop/util.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_S 1
#define IO_TIMEOUT_S      5
#define FAIL_FAST_MS      250
#define COL_BUF_MIN       64
#define COL_BUF_START     4096
#define COL_BUF_MAX       (16 * 1024 * 1024)

static struct shop_mysql_conf g_conf;
static atomic_llong down_until_ns; /* no connect attempt before this (fail fast) */
static atomic_bool down_logged;    /* the outage was logged once; cleared on reconnect */

/* Prepared statements kept per connection, keyed by their SQL text: a repeated statement is
 * one round trip (execute) instead of prepare + execute + close. */
#define STMT_CACHE 16

struct cached_stmt {
    char *sql; /* a copy of the statement's text */
    MYSQL_STMT *st;
};

/* The calling thread's connection; m is NULL until the first successful connect. The cached
 * statements belong to m and go with it. */
struct tconn {
    MYSQL *m;
    struct cached_stmt stmts[STMT_CACHE];
    size_t nstmts;
};

static void stmts_close(struct tconn *tc)
{
    for (size_t i = 0; i < tc->nstmts; i++) {
        mysql_stmt_close(tc->stmts[i].st);
        free(tc->stmts[i].sql);
    }
    tc->nstmts = 0;
}

static void tconn_free(void *p)
{
    struct tconn *tc = p;
    stmts_close(tc);
    if (tc->m)
        mysql_close(tc->m);
    free(tc);
    mysql_thread_end();
}

static void *tconn_new(void)
{
    mysql_thread_init();
    return shop_xcalloc(1, sizeof(struct tconn));
}

static struct shop_tls conns = SHOP_TLS(tconn_new, tconn_free);

static struct tconn *thread_conn(void)
{
    return shop_tls_get(&conns);
}

static void conn_drop(struct tconn *tc)
{
    stmts_close(tc);
    if (tc->m)
        mysql_close(tc->m);
    tc->m = NULL;
}

/* ---- configuration ------------------------------------------------------------------------ */

static void copy_conf(char *dst, size_t len, const char *src, const char *name)
{
    if (strlen(src) >= len)
        shop_fatalx("config: %s is too long (at most %zu bytes)", name, len - 1);
    memmove(dst, src, strlen(src) + 1);
}

void shop_mysql_conf_env(struct shop_mysql_conf *c)
{
    const char *h = shop_conf_str("DB_HOST", c->host);
    char host[sizeof(c->host)];
    int port = c->port;
    if (shop_hostport_parse(h, host, sizeof(host), &port) == -1)
        shop_fatalx("config: DB_HOST=\"%s\" is not a host name or host:port", h);
    copy_conf(c->host, sizeof(c->host), host, "DB_HOST");
    c->port = shop_conf_port("DB_PORT", port);
    copy_conf(c->user, sizeof(c->user), shop_conf_str("DB_USER", c->user), "DB_USER");
    copy_conf(c->password, sizeof(c->password), shop_conf_str("DB_PASSWORD|DB_PASS", c->password),
              "DB_PASSWORD");
}

static int dsn_value(char *dst, size_t len, const char *v, size_t n)
{
    if (n == 0 || n >= len)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

int shop_mysql_parse_dsn(const char *dsn, struct shop_mysql_conf *c)
{
    if (strncmp(dsn, "mysql:", 6) != 0)
        return -1;
    struct shop_mysql_conf t = *c;
    const char *p = dsn + 6;
    while (*p) {
        size_t n = strcspn(p, ";");
        const char *eq = memchr(p, '=', n);
        if (!eq && n > 0)
            return -1;
        if (eq) {
            size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
            const char *v = eq + 1;
            char num[8];
            if (klen == 4 && strncmp(p, "host", 4) == 0) {
                if (dsn_value(t.host, sizeof(t.host), v, vlen) == -1)
                    return -1;
            } else if (klen == 6 && strncmp(p, "dbname", 6) == 0) {
                if (dsn_value(t.db, sizeof(t.db), v, vlen) == -1)
                    return -1;
            } else if (klen == 4 && strncmp(p, "port", 4) == 0) {
                char *end;
                if (dsn_value(num, sizeof(num), v, vlen) == -1)
                    return -1;
                long port = strtol(num, &end, 10);
                if (*end || port < 1 || port > 65535)
                    return -1;
                t.port = (int)port;
            }
        }
        p += n;
        if (*p == ';')
            p++;
    }
    *c = t;
    return 0;
}

void shop_mysql_init(const struct shop_mysql_conf *c)
{
    g_conf = *c;
    if (mysql_library_init(0, NULL, NULL))
        shop_fatalx("mysql: cannot initialise the client library");
    shop_log_info("mysql host=%s port=%d user=%s database=%s", g_conf.host, g_conf.port,
                  g_conf.user, g_conf.db);
}

void shop_mysql_cleanup(void)
{
    shop_tls_drop(&conns);
    mysql_library_end();
}

/* ---- errors ------------------------------------------------------------------------------- */

bool shop_mysql_code_unavailable(unsigned code)
{
    switch (code) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_UNKNOWN_HOST:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_HANDSHAKE_ERR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
        return true;
    default:
        return false;
    }
}

static void set_err(struct shop_err *err, bool unavailable, unsigned code, const char *msg)
{
    enum shop_err_kind kind = SHOP_ERR_FAILED;
    if (unavailable)
        kind = SHOP_ERR_UNAVAILABLE;
    else if (code == ER_LOCK_DEADLOCK || code == ER_LOCK_WAIT_TIMEOUT)
        kind = SHOP_ERR_REJECTED;
    shop_err_set(err, kind, (long)code, "%s", msg);
}

static void stmt_err(struct shop_err *err, MYSQL_STMT *st)
{
    unsigned code = mysql_stmt_errno(st);
    set_err(err, shop_mysql_code_unavailable(code), code, mysql_stmt_error(st));
}

/* ---- connecting ----------------------------------------------------------------------------- */

/* Opens a connection with short timeouts. While a recent attempt failed (FAIL_FAST_MS) it
 * fails at once without trying. Any connect failure counts as "unavailable". */
static MYSQL *conn_open(struct shop_err *err)
{
    long long now = shop_now_ns();
    if (now < atomic_load(&down_until_ns)) {
        set_err(err, true, CR_CONN_HOST_ERROR, "database unavailable (recent connect failed)");
        return NULL;
    }
    MYSQL *m = mysql_init(NULL);
    if (!m) {
        set_err(err, true, 0, "mysql_init failed");
        return NULL;
    }
    unsigned ct = CONNECT_TIMEOUT_S, io = IO_TIMEOUT_S, proto = MYSQL_PROTOCOL_TCP;
    my_bool off = 0;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io);
    mysql_options(m, MYSQL_OPT_PROTOCOL, &proto);
    mysql_options(m, MYSQL_OPT_RECONNECT, &off);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(m, g_conf.host, g_conf.user, g_conf.password, g_conf.db,
                            (unsigned)g_conf.port, NULL, 0)) {
        set_err(err, true, mysql_errno(m), mysql_error(m));
        atomic_store(&down_until_ns, shop_now_ns() + FAIL_FAST_MS * 1000000LL);
        if (!atomic_exchange(&down_logged, true))
            shop_log_warnx("mysql: cannot connect to %s:%d: %s", g_conf.host, g_conf.port,
                           err->msg);
        mysql_close(m);
        return NULL;
    }
    if (atomic_exchange(&down_logged, false))
        shop_log_info("mysql: connected to %s:%d again", g_conf.host, g_conf.port);
    return m;
}

/* ---- running statements ---------------------------------------------------------------------- */

enum col_kind { COL_INT, COL_DOUBLE, COL_DECIMAL, COL_STRING };

struct col {
    enum col_kind kind;
    char *buf;
    unsigned long buflen;
    unsigned long len;
    my_bool is_null;
    my_bool error;
    long long i;
    double d;
};

static enum col_kind kind_of(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
        return COL_INT;
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
        return COL_DOUBLE;
    case MYSQL_TYPE_DECIMAL:
    case MYSQL_TYPE_NEWDECIMAL:
        return COL_DECIMAL;
    default:
        return COL_STRING;
    }
}

static void bind_params(MYSQL_BIND *b, const struct shop_mysql_param *params, size_t n,
                        unsigned long *lens)
{
    for (size_t i = 0; i < n; i++) {
        const struct shop_mysql_param *p = &params[i];
        switch (p->type) {
        case SHOP_MYSQL_STR:
            lens[i] = (unsigned long)strlen(p->s);
            b[i].buffer_type = MYSQL_TYPE_STRING;
            b[i].buffer = (void *)(uintptr_t)p->s;
            b[i].buffer_length = lens[i];
            b[i].length = &lens[i];
            break;
        case SHOP_MYSQL_INT:
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = (void *)(uintptr_t)&p->i;
            break;
        case SHOP_MYSQL_DOUBLE:
            b[i].buffer_type = MYSQL_TYPE_DOUBLE;
            b[i].buffer = (void *)(uintptr_t)&p->d;
            break;
        case SHOP_MYSQL_NULL:
            b[i].buffer_type = MYSQL_TYPE_NULL;
            break;
        }
    }
}

static void bind_col(MYSQL_BIND *b, struct col *c)
{
    memset(b, 0, sizeof(*b));
    b->is_null = &c->is_null;
    b->error = &c->error;
    b->length = &c->len;
    switch (c->kind) {
    case COL_INT:
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &c->i;
        break;
    case COL_DOUBLE:
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = &c->d;
        break;
    default:
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = c->buf;
        b->buffer_length = c->buflen;
        break;
    }
}

static json_t *col_json(const struct col *c)
{
    if (c->is_null)
        return json_null();
    switch (c->kind) {
    case COL_INT:
        return json_integer(c->i);
    case COL_DOUBLE:
        return json_real(c->d);
    case COL_DECIMAL:
        return json_real(strtod(c->buf, NULL));
    default: {
        size_t n = c->len < c->buflen ? c->len : c->buflen;
        json_t *s = json_stringn(c->buf, n);
        return s ? s : json_stringn_nocheck(c->buf, n);
    }
    }
}

/* Refetches string columns that did not fit their buffer, growing the buffer (bounded).
 * Returns 0, or -1 with err set. */
static int refetch_truncated(MYSQL_STMT *st, MYSQL_BIND *binds, struct col *cols, unsigned nf,
                             struct shop_err *err)
{
    bool rebind = false;
    for (unsigned i = 0; i < nf; i++) {
        struct col *c = &cols[i];
        if (c->is_null || (c->kind != COL_STRING && c->kind != COL_DECIMAL) || c->len < c->buflen)
            continue;
        if (c->len >= COL_BUF_MAX) {
            set_err(err, false, 0, "column value too large");
            return -1;
        }
        c->buflen = c->len + 1;
        c->buf = shop_xrealloc(c->buf, c->buflen);
        bind_col(&binds[i], c);
        if (mysql_stmt_fetch_column(st, &binds[i], i, 0)) {
            stmt_err(err, st);
            return -1;
        }
        c->buf[c->len] = '\0';
        rebind = true;
    }
    if (rebind && mysql_stmt_bind_result(st, binds)) {
        stmt_err(err, st);
        return -1;
    }
    return 0;
}

/* Fetches every row of an executed statement into a new JSON array. Returns 0 or -1. */
static int fetch_rows(MYSQL_STMT *st, json_t **rows, struct shop_err *err)
{
    int rc = -1;
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (!meta) {
        set_err(err, false, 0, "statement returns no rows");
        return -1;
    }
    unsigned nf = mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    struct col *cols = shop_xcalloc(nf, sizeof(*cols));
    MYSQL_BIND *binds = shop_xcalloc(nf, sizeof(*binds));
    json_t *arr = json_array();
    for (unsigned i = 0; i < nf; i++) {
        cols[i].kind = kind_of(&fields[i]);
        unsigned long want = fields[i].length + 1;
        cols[i].buflen = want < COL_BUF_MIN     ? COL_BUF_MIN
                         : want > COL_BUF_START ? COL_BUF_START
                                                : want;
        cols[i].buf = shop_xmalloc(cols[i].buflen);
        bind_col(&binds[i], &cols[i]);
        binds[i].is_unsigned = (fields[i].flags & UNSIGNED_FLAG) ? 1 : 0;
    }
    if (mysql_stmt_bind_result(st, binds)) {
        stmt_err(err, st);
        goto out;
    }
    for (;;) {
        int f = mysql_stmt_fetch(st);
        if (f == MYSQL_NO_DATA)
            break;
        if (f == 1) {
            stmt_err(err, st);
            goto out;
        }
        if (f == MYSQL_DATA_TRUNCATED && refetch_truncated(st, binds, cols, nf, err) == -1)
            goto out;
        if (json_array_size(arr) >= SHOP_MYSQL_MAX_ROWS) {
            set_err(err, false, 0, "result set too large");
            goto out;
        }
        json_t *obj = json_object();
        for (unsigned i = 0; i < nf; i++)
            json_object_set_new(obj, fields[i].name, col_json(&cols[i]));
        json_array_append_new(arr, obj);
    }
    *rows = arr;
    arr = NULL;
    rc = 0;
out:
    json_decref(arr);
    for (unsigned i = 0; i < nf; i++)
        free(cols[i].buf);
    free(cols);
    free(binds);
    mysql_free_result(meta);
    return rc;
}

/* The thread's prepared statement for sql: from the cache, or prepared now (and cached when
 * there is room: *cached tells). NULL with err set when it cannot be prepared. */
static MYSQL_STMT *stmt_get(struct tconn *tc, const char *sql, bool *cached, struct shop_err *err)
{
    for (size_t i = 0; i < tc->nstmts; i++) {
        if (strcmp(tc->stmts[i].sql, sql) == 0) {
            *cached = true;
            return tc->stmts[i].st;
        }
    }
    MYSQL_STMT *st = mysql_stmt_init(tc->m);
    if (!st) {
        set_err(err, shop_mysql_code_unavailable(mysql_errno(tc->m)), mysql_errno(tc->m),
                mysql_error(tc->m));
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql))) {
        stmt_err(err, st);
        mysql_stmt_close(st);
        return NULL;
    }
    *cached = tc->nstmts < STMT_CACHE;
    if (*cached)
        tc->stmts[tc->nstmts++] = (struct cached_stmt){shop_xstrdup(sql), st};
    return st;
}

/* Closes st and removes it from the cache if it is there. */
static void stmt_forget(struct tconn *tc, MYSQL_STMT *st)
{
    for (size_t i = 0; i < tc->nstmts; i++) {
        if (tc->stmts[i].st == st) {
            free(tc->stmts[i].sql);
            tc->stmts[i] = tc->stmts[--tc->nstmts];
            break;
        }
    }
    mysql_stmt_close(st);
}

enum stage { STAGE_PREPARE, STAGE_EXECUTE };

/* Binds and executes sql's prepared statement on tc's connection; with rows != NULL collects
 * its rows, else reports the affected-row count. *stage tells how far it got. A statement
 * that failed (its state is unknown) or that the cache had no room for is closed; a cached
 * one is kept for the next call. Returns 0 or -1. */
static int run_stmt(struct tconn *tc, const char *sql, const struct shop_mysql_param *params,
                    size_t nparams, json_t **rows, unsigned long long *affected,
                    struct shop_err *err, enum stage *stage)
{
    int rc = -1;
    MYSQL_BIND *pb = NULL;
    unsigned long *lens = NULL;
    bool cached = false;
    *stage = STAGE_PREPARE;
    MYSQL_STMT *st = stmt_get(tc, sql, &cached, err);
    if (!st)
        return -1;
    if (mysql_stmt_param_count(st) != nparams) {
        set_err(err, false, 0, "wrong number of statement parameters");
        goto out;
    }
    if (nparams) {
        pb = shop_xcalloc(nparams, sizeof(*pb));
        lens = shop_xcalloc(nparams, sizeof(*lens));
        bind_params(pb, params, nparams, lens);
        if (mysql_stmt_bind_param(st, pb)) {
            stmt_err(err, st);
            goto out;
        }
    }
    *stage = STAGE_EXECUTE;
    if (mysql_stmt_execute(st)) {
        stmt_err(err, st);
        goto out;
    }
    if (rows) {
        rc = fetch_rows(st, rows, err);
    } else {
        if (affected)
            *affected = (unsigned long long)mysql_stmt_affected_rows(st);
        rc = 0;
    }
out:
    free(pb);
    free(lens);
    if (rc != 0 || !cached)
        stmt_forget(tc, st);
    else
        mysql_stmt_free_result(st);
    return rc;
}

/* true when the server has closed the connection (or sent something unasked, such as the
 * error packet of a killed connection). Checked without a round trip before each statement:
 * a cached statement's first packet is its execute, and a write sent on a stale connection
 * could not be retried. */
static bool conn_stale(MYSQL *m)
{
    struct pollfd p = {.fd = (int)mysql_get_socket(m), .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

/* Runs a statement on this thread's connection, connecting first if needed. A reused
 * connection that turns out dead is replaced and the statement retried once when that is
 * safe (read-only, or failed before execution). */
static int run_retried(const char *sql, const struct shop_mysql_param *params, size_t nparams,
                       json_t **rows, unsigned long long *affected, struct shop_err *err);

/* One statement as a client span: its text is the shape (values travel as parameters). */
static int run(const char *sql, const struct shop_mysql_param *params, size_t nparams,
               json_t **rows, unsigned long long *affected, struct shop_err *err)
{
    struct shop_span span;
    size_t verb = strcspn(sql, " \t\n");
    shop_span_begin(&span, SHOP_SPAN_CLIENT, NULL, "%.*s", (int)(verb < 16 ? verb : 16), sql);
    shop_span_attr_str(&span, "db.system.name", "mysql");
    shop_span_attr_str(&span, "db.operation.name", span.name);
    shop_span_attr_str(&span, "db.query.text", sql);
    int rc = run_retried(sql, params, nparams, rows, affected, err);
    if (rc != 0)
        shop_span_fail(&span, err->msg);
    shop_span_end(&span);
    return rc;
}

static int run_retried(const char *sql, const struct shop_mysql_param *params, size_t nparams,
                       json_t **rows, unsigned long long *affected, struct shop_err *err)
{
    struct tconn *tc = thread_conn();
    for (int attempt = 0; attempt < 2; attempt++) {
        if (tc->m && conn_stale(tc->m)) {
            shop_log_info("mysql: connection closed by the server; reconnecting");
            conn_drop(tc);
        }
        bool fresh = tc->m == NULL;
        if (fresh) {
            tc->m = conn_open(err);
            if (!tc->m)
                return -1;
        }
        enum stage stage;
        if (run_stmt(tc, sql, params, nparams, rows, affected, err, &stage) == 0)
            return 0;
        if (shop_err_unavailable(err) || (err->code >= 2000 && err->code < 3000))
            conn_drop(tc); /* client-side errors leave the connection in an unknown state */
        if (!shop_err_unavailable(err))
            return -1;
        if (fresh || (!rows && stage != STAGE_PREPARE))
            return -1;
        shop_log_info("mysql: connection lost (%s); reconnecting", err->msg);
    }
    return -1;
}

int shop_mysql_query(const char *sql, const struct shop_mysql_param *params, size_t nparams,
                     json_t **rows, struct shop_err *err)
{
    *rows = NULL;
    return run(sql, params, nparams, rows, NULL, err);
}

int shop_mysql_exec(const char *sql, const struct shop_mysql_param *params, size_t nparams,
                    unsigned long long *affected, struct shop_err *err)
{
    return run(sql, params, nparams, NULL, affected, err);
}

bool shop_mysql_ping(struct shop_err *err)
{
    struct shop_err local;
    if (!err)
        err = &local;
    struct tconn *tc = thread_conn();
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = tc->m == NULL;
        if (fresh) {
            tc->m = conn_open(err);
            if (!tc->m)
                return false;
        }
        if (mysql_ping(tc->m) == 0)
            return true;
        unsigned code = mysql_errno(tc->m);
        set_err(err, true, code, mysql_error(tc->m));
        conn_drop(tc);
        if (fresh)
            break;
    }
    return false;
}
