/* routes.c - the user service's handlers: registration, login, the users list, order history in
 * MongoDB and anonymous ids from the Redis counter. */
#include "services/user/routes.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/mongo.h"
#include "libshop/passwd.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "services/user/backoff.h"
#include "services/user/records.h"
#include "services/user/reserved.h"
#include "services/user/session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOWN         "database not available"
#define LEGACY_FETCH 2    /* legacy documents (each up to 16 MB) read at once for a history page */
#define USERS_PAGE   1000 /* users in a /users page, at most and by default */

/* Orders kept per user (USER_ORDERS_MAX): one more is refused with 409 (set by user_routes_setup).
 */
static long long orders_max = 1000;

/* 503 with the reference's text when MongoDB is unreachable (D16), else 500 JSON. */
static const struct shop_err_reply db_error = {.down = DOWN, .failed_json = true};

/* The request body as an object. Replies 400 and returns NULL when it is malformed. */
static json_t *body_object(struct shop_req *req)
{
    json_t *body = shop_req_body_object(req);
    if (!body)
        shop_reply_text(req, 400, "malformed JSON");
    return body;
}

/* Looks a user up by exact name. Returns 1 with *doc, 0 when there is none, -1 with err set. */
static int find_user(const char *name, json_t **doc, struct shop_err *err)
{
    json_t *filter = json_pack("{s:s}", "name", name);
    int rc = filter ? shop_mongo_find_one("users", filter, doc, err) : 0;
    if (!filter)
        *doc = NULL; /* a name that is not UTF-8 names nobody */
    json_decref(filter);
    return rc;
}

/* ---- routes: health, ids ------------------------------------------------------------------ */

/* The reference's body {"app":"OK","mongo":…} (D8: the shape is kept); Redis, which user needs
 * too, shows in the status only, and in the log. */
void user_health(struct shop_req *req)
{
    bool mongo = shop_mongo_ping();
    bool redis = shop_redis_ping();
    if (!redis)
        shop_log_warnx("rid=%s health: redis not available", shop_req_id(req));
    shop_reply_json(req, mongo && redis ? 200 : 503,
                    json_pack("{s:s,s:b}", "app", "OK", "mongo", mongo));
}

void route_uniqueid(struct shop_req *req)
{
    char id[SESSION_ID_SIZE];
    if (session_uniqueid(req, id))
        shop_reply_json(req, 200, json_pack("{s:s}", "uuid", id));
}

/* GET /check/{id}: 200 when a user is named id. An anonymous id is answered without a query
 * while no stored user has such a name (reserved.h, D26): every anonymous pay asks. */
void route_check(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    json_t *doc = NULL;
    struct shop_err err;
    int rc = reserved_name_unused(id) ? 0 : find_user(id, &doc, &err);
    if (rc == -1)
        shop_reply_err(req, &err, &db_error);
    else if (rc == 0)
        shop_reply_text(req, 404, "user not found");
    else
        shop_reply_text(req, 200, "OK");
    json_decref(doc);
}

/* ?limit=N within 1..max (default max) in *n; false (and 400 answered) when malformed. */
static bool page_limit(struct shop_req *req, long max, long *n)
{
    const char *v = shop_req_query(req, "limit");
    *n = max;
    if (!v)
        return true;
    char *end;
    long x = strtol(v, &end, 10);
    if (*v && !*end && x >= 1 && x <= max) {
        *n = x;
        return true;
    }
    shop_reply_text(req, 400, "bad limit");
    return false;
}

/* Adds the link to the next page: the same path with ?cursor=next (and the limit asked for). */
static void link_next(struct shop_req *req, const char *next)
{
    const char *limit = shop_req_query(req, "limit");
    char link[160];
    snprintf(link, sizeof(link), "<?cursor=%s%s%s>; rel=\"next\"", next, limit ? "&limit=" : "",
             limit ? limit : "");
    shop_reply_add_header(req, "Link", link);
}

/* The users list, without passwords, in pages of at most USERS_PAGE in _id order; ?cursor=<the
 * last _id of the previous page>. */
void route_users(struct shop_req *req)
{
    const char *cursor = shop_req_query(req, "cursor");
    long limit;
    if (!page_limit(req, USERS_PAGE, &limit))
        return;
    json_t *filter = json_object(), *arr = NULL;
    if (cursor && strspn(cursor, "0123456789abcdef") == 24 && strlen(cursor) == 24) {
        json_object_set_new(filter, "_id", json_pack("{s:{s:s}}", "$gt", "$oid", cursor));
    } else if (cursor) {
        shop_reply_text(req, 400, "bad cursor");
        json_decref(filter);
        return;
    }
    json_t *opts = json_pack("{s:{s:i},s:{s:i},s:I}", "sort", "_id", 1, "projection", "password", 0,
                             "limit", (json_int_t)limit + 1);
    struct shop_err err;
    if (shop_mongo_find("users", filter, opts, &arr, &err) == -1) {
        shop_reply_err(req, &err, &db_error);
    } else {
        if (json_array_size(arr) > (size_t)limit) {
            json_array_remove(arr, (size_t)limit);
            const char *last =
                json_string_value(json_object_get(json_array_get(arr, (size_t)limit - 1), "_id"));
            if (last)
                link_next(req, last);
        }
        for (size_t i = 0; i < json_array_size(arr); i++)
            user_public(json_array_get(arr, i));
        shop_reply_json(req, 200, arr);
        arr = NULL;
    }
    json_decref(arr);
    json_decref(opts);
    json_decref(filter);
}

/* ---- routes: login, register -------------------------------------------------------------- */

/* 503 with Retry-After: every hashing slot is taken (a login flood); nothing was computed. */
static void reply_busy(struct shop_req *req)
{
    shop_reply_add_header(req, "Retry-After", "1");
    shop_reply_text(req, 503, "busy, try again in a second");
}

/* The client's address: X-Real-IP as the gateway sets it (it replaces whatever the client sent),
 * else the connection's peer (a call on the service's own, private, port). */
static void client_address(struct shop_req *req, char *buf, size_t len)
{
    const char *h = shop_req_header(req, "X-Real-IP");
    if (h && *h && strlen(h) < len)
        snprintf(buf, len, "%s", h);
    else
        shop_req_peer(req, buf, len);
}

static long long now_ms(void)
{
    return shop_now_ns() / 1000000;
}

/* Rewrites a legacy (plaintext, bcrypt, old-cost) password to a fresh hash, only if the
 * stored value is still the one just verified. Failures (and a busy moment: it is done on a
 * later login) are logged, never fatal. */
static void upgrade_password(const json_t *doc, const char *old, const char *password)
{
    json_t *sel = user_upgrade_filter(doc, old);
    char *hash = NULL;
    if (sel && shop_passwd_make(password, &hash) == 0) {
        json_t *upd = json_pack("{s:{s:s}}", "$set", "password", hash);
        struct shop_err err;
        if (shop_mongo_update_one("users", sel, upd, &err) == -1)
            shop_log_warnx("password upgrade failed: %s", err.msg);
        else
            shop_log_info("password record upgraded to the current hash");
        json_decref(upd);
        explicit_bzero(hash, strlen(hash));
        free(hash);
    }
    json_decref(sel);
}

/* Answers a failed login and counts it for the pair's back-off. */
static void login_failed(struct shop_req *req, const char *name, const char *client, bool known)
{
    backoff_failed(name, client, now_ms());
    shop_reply_text(req, 404, known ? "incorrect password" : "name not found");
}

/* Verifies a login and answers it (the body's strings are already checked). Exactly one hash
 * is computed whether the name is known or not (a dummy record for an unknown name), so both
 * failures cost the same; a pair (name, client address) that failed too often in a row is
 * refused with 429 before any work. */
static void login_user(struct shop_req *req, const char *name, const char *password)
{
    char client[64], secs[24];
    client_address(req, client, sizeof(client));
    long wait = backoff_wait(name, client, now_ms());
    if (wait > 0) {
        snprintf(secs, sizeof(secs), "%ld", (wait + 999) / 1000);
        shop_reply_add_header(req, "Retry-After", secs);
        shop_reply_text(req, 429, "too many failed logins, try again later");
        return;
    }
    json_t *doc;
    struct shop_err err;
    int rc = find_user(name, &doc, &err);
    if (rc == -1) {
        shop_reply_err(req, &err, &db_error);
        return;
    }
    const char *stored = rc == 1 ? user_stored_password(doc) : NULL;
    enum shop_passwd_rc ok = shop_passwd_check(password, stored);
    if (ok == SHOP_PASSWD_BUSY) {
        reply_busy(req);
    } else if (ok == SHOP_PASSWD_FAILED) {
        shop_reply_json(req, 500, json_pack("{s:s}", "error", "password hashing failed"));
    } else if (ok == SHOP_PASSWD_MISMATCH) {
        login_failed(req, name, client, rc == 1);
    } else {
        backoff_succeeded(name, client);
        if (shop_passwd_needs_upgrade(stored))
            upgrade_password(doc, stored, password);
        if (session_login(req, name)) { /* the session now owns the name (D18) */
            shop_reply_json(req, 200, user_public(doc));
            doc = NULL;
        }
    }
    json_decref(doc);
}

void route_login(struct shop_req *req)
{
    json_t *body = body_object(req);
    if (!body)
        return;
    const char *name = shop_json_str(body, "name"), *password = shop_json_str(body, "password");
    if (!name || !password)
        shop_reply_text(req, 400, "name or passowrd not supplied");
    else
        login_user(req, name, password);
    json_decref(body);
}

/* Inserts a new user with a hashed password. Replies. */
static void create_user(struct shop_req *req, const char *name, const char *password,
                        const char *email)
{
    char *hash;
    enum shop_passwd_rc rc = shop_passwd_make(password, &hash);
    if (rc == SHOP_PASSWD_BUSY) {
        reply_busy(req);
        return;
    }
    if (!hash) {
        shop_reply_json(req, 500, json_pack("{s:s}", "error", "password hashing failed"));
        return;
    }
    json_t *doc = json_pack("{s:s,s:s,s:s}", "name", name, "password", hash, "email", email);
    struct shop_err err;
    if (shop_mongo_insert("users", doc, &err) == 0) {
        if (session_login(req, name)) /* register logs the session in (D18) */
            shop_reply_text(req, 200, "OK");
    } else if (err.kind == SHOP_ERR_REJECTED)
        shop_reply_text(req, 400, "name already exists");
    else
        shop_reply_err(req, &err, &db_error);
    json_decref(doc);
    explicit_bzero(hash, strlen(hash));
    free(hash);
}

void route_register_user(struct shop_req *req)
{
    json_t *body = body_object(req);
    if (!body)
        return;
    const char *name = shop_json_str(body, "name"), *password = shop_json_str(body, "password");
    const char *email = shop_json_str(body, "email");
    json_t *doc = NULL;
    struct shop_err err;
    int rc = -2;
    if (name && password && email) /* an anonymous id's name is taken already (D18) */
        rc = session_name_reserved(name) ? 1 : find_user(name, &doc, &err);
    if (rc == -2)
        shop_reply_text(req, 400, "insufficient data");
    else if (rc == -1)
        shop_reply_err(req, &err, &db_error);
    else if (rc == 1)
        shop_reply_text(req, 400, "name already exists");
    else
        create_user(req, name, password, email);
    json_decref(doc);
    json_decref(body);
}

/* ---- routes: orders ------------------------------------------------------------------------ */

/* The order count's updates, one at a time in this process: a conditional $inc is atomic on
 * MongoDB, but FerretDB reads and writes the document in two steps, and concurrent orders lost
 * increments (300 orders at once counted 175), letting a user past the bound. */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

static int update_order_count(json_t *filter, json_t *upd, struct shop_err *err)
{
    pthread_mutex_lock(&slot_lock);
    int rc = shop_mongo_update_one("users", filter, upd, err);
    pthread_mutex_unlock(&slot_lock);
    return rc;
}

/* Takes one of the user's order slots: the user document's order count goes up by one unless
 * it has reached orders_max, atomically (so the bound is exact under concurrency, and costs
 * one small update rather than a count of the orders). 1 when taken, 0 when the user is at the
 * bound (answered 409), -1 on a database error (answered). */
static int take_order_slot(struct shop_req *req, const char *name)
{
    json_t *filter = json_pack("{s:s,s:[{s:{s:I}},{s:{s:b}}]}", "name", name, "$or", "orders",
                               "$lt", (json_int_t)orders_max, "orders", "$exists", 0);
    json_t *upd = json_pack("{s:{s:i}}", "$inc", "orders", 1);
    struct shop_err err;
    int rc = filter && upd ? update_order_count(filter, upd, &err) : 0;
    json_decref(filter);
    json_decref(upd);
    if (rc == -1)
        shop_reply_err(req, &err, &db_error);
    else if (rc == 0)
        shop_reply_text(req, 409, "order limit reached");
    return rc;
}

/* Gives back the slot of an order that could not be stored. */
static void give_back_slot(const char *name)
{
    json_t *filter = json_pack("{s:s,s:{s:i}}", "name", name, "orders", "$gt", 0);
    json_t *upd = json_pack("{s:{s:i}}", "$inc", "orders", -1);
    struct shop_err err;
    if (filter && upd && update_order_count(filter, upd, &err) == -1)
        shop_log_warnx("order count of a refused order not given back: %s", err.msg);
    json_decref(filter);
    json_decref(upd);
}

static void store_order(struct shop_req *req, const char *name, const json_t *body)
{
    json_t *doc = user_order_doc(name, body);
    struct shop_err err;
    if (!doc || shop_mongo_insert("orders", doc, &err) == -1) {
        give_back_slot(name);
        if (!doc || (err.kind == SHOP_ERR_REJECTED && err.code == 0)) /* not storable as BSON */
            shop_reply_text(req, 400, "order cannot be stored");
        else
            shop_reply_err(req, &err, &db_error);
    } else {
        shop_reply_text(req, 200, "OK");
    }
    json_decref(doc);
}

void route_order(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    json_t *body = body_object(req);
    if (!body)
        return;
    json_t *doc = NULL;
    struct shop_err err;
    int rc = find_user(id, &doc, &err);
    if (rc == -1)
        shop_reply_err(req, &err, &db_error);
    else if (rc == 0)
        shop_reply_text(req, 404, "name not found");
    else if (!user_storable_keys(body))
        shop_reply_text(req, 400, "order cannot be stored");
    else if (take_order_slot(req, id) == 1)
        store_order(req, id, body);
    json_decref(doc);
    json_decref(body);
}

/* Fills page from pos on (legacy documents a few at a time, then one-order documents) until it
 * holds limit orders. Returns 1 with *next when there may be more, 0 when not, -1 with err. */
static int history_fill(const char *name, struct history_pos *pos, size_t limit, json_t *page,
                        json_t **first, struct shop_err *err)
{
    while (json_array_size(page) < limit) {
        size_t fetch = pos->kind == 'h' ? LEGACY_FETCH : limit - json_array_size(page) + 1;
        json_t *filter = history_filter(name, pos), *opts = history_options(fetch), *docs = NULL;
        struct history_pos next;
        int rc = filter ? shop_mongo_find("orders", filter, opts, &docs, err) : 0;
        bool more = rc == 0 && docs && history_take(page, docs, pos, limit, fetch, &next, first);
        json_decref(docs);
        json_decref(opts);
        json_decref(filter);
        if (rc == -1)
            return -1;
        if (more) {
            *pos = next;
        } else if (pos->kind == 'h') {
            *pos = (struct history_pos){.kind = 'o'};
        } else {
            return 0;
        }
    }
    return 1; /* full: pos is where the next page starts */
}

/* A page of the user's history: the reference's {_id, name, history} with at most ?limit=
 * (default and most HISTORY_PAGE) orders, oldest first, from ?cursor= on; a Link header names
 * the next page when there may be one. */
void route_history(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id"), *cursor = shop_req_query(req, "cursor");
    struct history_pos pos;
    long limit;
    if (!history_cursor_parse(cursor, &pos)) {
        shop_reply_text(req, 400, "bad cursor");
        return;
    }
    if (!page_limit(req, HISTORY_PAGE, &limit))
        return;
    json_t *page = json_array(), *first = NULL;
    struct shop_err err;
    int more = history_fill(id, &pos, (size_t)limit, page, &first, &err);
    if (more == -1) {
        shop_reply_err(req, &err, &db_error);
    } else if (!cursor && json_array_size(page) == 0) {
        shop_reply_text(req, 404, "history not found");
    } else {
        char next[48];
        history_cursor_format(&pos, next, sizeof(next));
        if (more)
            link_next(req, next);
        shop_reply_json(req, 200,
                        first
                            ? json_pack("{s:O,s:s,s:O}", "_id", first, "name", id, "history", page)
                            : json_pack("{s:s,s:O}", "name", id, "history", page));
    }
    json_decref(first);
    json_decref(page);
}

void user_routes_setup(void)
{
    orders_max = shop_conf_long("USER_ORDERS_MAX", orders_max, 1, 1000000000);
    struct backoff_conf b = {
        .free_failures = (int)shop_conf_long("USER_LOGIN_FREE_FAILURES", 5, 1, 1000),
        .first_wait_ms = shop_conf_long("USER_LOGIN_BACKOFF_SECONDS", 30, 1, 86400) * 1000,
        .max_wait_ms = 900000,
        .forget_ms = 3600000,
    };
    if (b.max_wait_ms < b.first_wait_ms)
        b.max_wait_ms = b.first_wait_ms;
    backoff_setup(&b);
    /* hashes hold their worker thread: leave at least one thread to every other route */
    long threads = shop_conf_long("SHOP_THREADS", 4, 1, 256);
    shop_passwd_set_limit(threads > 1 ? (unsigned)(threads - 1) : 1);
}
