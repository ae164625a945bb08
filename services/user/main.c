/* user - the user service (docs/api/user.yaml): registration and login against MongoDB `users`
 * with hashed passwords (D4), order history in `orders` as one document {name, order} per
 * order (D10), and anonymous ids from the Redis counter `anonymous-counter`. */
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/mongo.h"
#include "libshop/passwd.h"
#include "libshop/redis.h"
#include "libshop/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOWN        "database not available"
#define DUP_KEY     11000
#define HISTORY_MAX 100000 /* orders read for one history */

/* ---- replies ------------------------------------------------------------------------------ */

/* 503 with the reference's text when MongoDB is unreachable (D16), else 500 JSON. */
static void reply_db_error(struct shop_req *req, const bson_error_t *err)
{
    if (shop_mongo_unavailable(err)) {
        shop_reply_text(req, 503, DOWN);
        return;
    }
    shop_log_warnx("rid=%s mongo: %s", shop_req_id(req), err->message);
    shop_reply_json(req, 500, json_pack("{s:s}", "error", err->message));
}

/* The request body as an object. Replies 400 and returns NULL when it is malformed. */
static json_t *body_object(struct shop_req *req)
{
    json_t *body = shop_req_body_object(req);
    if (!body)
        shop_reply_text(req, 400, "malformed JSON");
    return body;
}

/* ---- MongoDB helpers ---------------------------------------------------------------------- */

/* Finds the first document of coll matching filter. Returns 1 with *doc (a copy, caller
 * destroys), 0 when there is none, -1 with err set. */
static int find_one(const char *coll_name, const bson_t *filter, bson_t **doc, bson_error_t *err)
{
    mongoc_client_t *client = shop_mongo_pop();
    mongoc_collection_t *coll = shop_mongo_collection(client, coll_name);
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *d;
    int rc = 0;
    *doc = NULL;
    if (mongoc_cursor_next(cur, &d)) {
        *doc = bson_copy(d);
        rc = 1;
    } else if (mongoc_cursor_error(cur, err)) {
        rc = -1;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    shop_mongo_push(client);
    return rc;
}

/* Looks a user up by exact name. Same results as find_one. */
static int find_user(const char *name, bson_t **doc, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "name", name);
    int rc = find_one("users", &filter, doc, err);
    bson_destroy(&filter);
    return rc;
}

static int insert(const char *coll_name, const bson_t *doc, bson_error_t *err)
{
    mongoc_client_t *client = shop_mongo_pop();
    mongoc_collection_t *coll = shop_mongo_collection(client, coll_name);
    bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, err);
    mongoc_collection_destroy(coll);
    shop_mongo_push(client);
    return ok ? 0 : -1;
}

/* A user document as JSON without its password (D4). New reference. */
static json_t *public_user(const bson_t *doc)
{
    json_t *u = shop_bson_to_json(doc);
    json_object_del(u, "password");
    return u;
}

/* ---- routes: health, ids ------------------------------------------------------------------ */

/* The reference's body {"app":"OK","mongo":…} (D8: the shape is kept); Redis, which user needs
 * too, shows in the status only, and in the log. */
static void health(struct shop_req *req)
{
    bool mongo = shop_mongo_ping();
    bool redis = shop_redis_ping();
    if (!redis)
        shop_log_warnx("rid=%s health: redis not available", shop_req_id(req));
    shop_reply_json(req, mongo && redis ? 200 : 503,
                    json_pack("{s:s,s:b}", "app", "OK", "mongo", mongo));
}

static void uniqueid(struct shop_req *req)
{
    redisReply *r;
    int rc = shop_redis_cmd(&r, "INCR anonymous-counter");
    if (rc == SHOP_REDIS_UNAVAILABLE) {
        shop_reply_json(req, 503, json_pack("{s:s}", "error", "redis not available"));
        return;
    }
    if (rc != SHOP_REDIS_OK || r->type != REDIS_REPLY_INTEGER) {
        shop_log_warnx("rid=%s redis INCR: %s", shop_req_id(req), shop_redis_last_error());
        shop_reply_json(req, 500, json_pack("{s:s}", "error", "redis error"));
    } else {
        char id[64];
        snprintf(id, sizeof(id), "anonymous-%lld", r->integer);
        shop_reply_json(req, 200, json_pack("{s:s}", "uuid", id));
    }
    if (r)
        freeReplyObject(r);
}

static void check(struct shop_req *req)
{
    bson_t *doc;
    bson_error_t err;
    int rc = find_user(shop_req_param(req, "id"), &doc, &err);
    if (rc == -1)
        reply_db_error(req, &err);
    else if (rc == 0)
        shop_reply_text(req, 404, "user not found");
    else
        shop_reply_text(req, 200, "OK");
    if (doc)
        bson_destroy(doc);
}

static void users(struct shop_req *req)
{
    mongoc_client_t *client = shop_mongo_pop();
    mongoc_collection_t *coll = shop_mongo_collection(client, "users");
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    const bson_t *d;
    json_t *arr = json_array();
    while (mongoc_cursor_next(cur, &d))
        json_array_append_new(arr, public_user(d));
    bson_error_t err;
    if (mongoc_cursor_error(cur, &err)) {
        json_decref(arr);
        reply_db_error(req, &err);
    } else {
        shop_reply_json(req, 200, arr);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    shop_mongo_push(client);
}

/* ---- routes: login, register -------------------------------------------------------------- */

/* Rewrites a legacy (plaintext, bcrypt, old-cost) password to a fresh hash, only if the
 * stored value is still the one just verified. Failures are logged, never fatal. */
static void upgrade_password(const bson_t *doc, const char *old, const char *password)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id"))
        return;
    char *hash = shop_passwd_hash(password);
    if (!hash)
        return;
    bson_t sel = BSON_INITIALIZER;
    bson_append_iter(&sel, "_id", -1, &it);
    BSON_APPEND_UTF8(&sel, "password", old);
    bson_t *upd = BCON_NEW("$set", "{", "password", BCON_UTF8(hash), "}");
    mongoc_client_t *client = shop_mongo_pop();
    mongoc_collection_t *coll = shop_mongo_collection(client, "users");
    bson_error_t err;
    if (!mongoc_collection_update_one(coll, &sel, upd, NULL, NULL, &err))
        shop_log_warnx("password upgrade failed: %s", err.message);
    else
        shop_log_info("password record upgraded to the current hash");
    mongoc_collection_destroy(coll);
    shop_mongo_push(client);
    bson_destroy(upd);
    bson_destroy(&sel);
    explicit_bzero(hash, strlen(hash));
    free(hash);
}

/* The stored password of a user document, or NULL when it has none (or not a string). */
static const char *stored_password(const bson_t *doc)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "password") || !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    return bson_iter_utf8(&it, NULL);
}

/* Verifies a login and answers it (the body's strings are already checked). */
static void login_user(struct shop_req *req, const char *name, const char *password)
{
    bson_t *doc;
    bson_error_t err;
    int rc = find_user(name, &doc, &err);
    if (rc == -1) {
        reply_db_error(req, &err);
        return;
    }
    if (rc == 0) {
        shop_reply_text(req, 404, "name not found");
        return;
    }
    const char *stored = stored_password(doc);
    if (!shop_passwd_verify(password, stored)) {
        shop_reply_text(req, 404, "incorrect password");
    } else {
        if (shop_passwd_needs_upgrade(stored))
            upgrade_password(doc, stored, password);
        shop_reply_json(req, 200, public_user(doc));
    }
    bson_destroy(doc);
}

static void login(struct shop_req *req)
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
    char *hash = shop_passwd_hash(password);
    if (!hash) {
        shop_reply_json(req, 500, json_pack("{s:s}", "error", "password hashing failed"));
        return;
    }
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "name", name);
    BSON_APPEND_UTF8(&doc, "password", hash);
    BSON_APPEND_UTF8(&doc, "email", email);
    bson_error_t err;
    if (insert("users", &doc, &err) == 0)
        shop_reply_text(req, 200, "OK");
    else if (err.code == DUP_KEY)
        shop_reply_text(req, 400, "name already exists");
    else
        reply_db_error(req, &err);
    bson_destroy(&doc);
    free(hash);
}

static void register_user(struct shop_req *req)
{
    json_t *body = body_object(req);
    if (!body)
        return;
    const char *name = shop_json_str(body, "name"), *password = shop_json_str(body, "password");
    const char *email = shop_json_str(body, "email");
    bson_t *doc = NULL;
    bson_error_t err;
    int rc = -2;
    if (name && password && email)
        rc = find_user(name, &doc, &err);
    if (rc == -2)
        shop_reply_text(req, 400, "insufficient data");
    else if (rc == -1)
        reply_db_error(req, &err);
    else if (rc == 1)
        shop_reply_text(req, 400, "name already exists");
    else
        create_user(req, name, password, email);
    if (doc)
        bson_destroy(doc);
    json_decref(body);
}

/* ---- routes: orders ------------------------------------------------------------------------ */

/* One order document: {name, order: <the body as received>}. */
static int order_doc(const char *name, const json_t *body, bson_t *out)
{
    json_t *doc = json_pack("{s:s,s:O}", "name", name, "order", shop_json_mut(body));
    if (!doc) /* name is not UTF-8: store nothing rather than an empty document */
        return -1;
    int rc = shop_json_to_bson(doc, out);
    json_decref(doc);
    return rc;
}

/* true when every key at every depth can be stored as a MongoDB field name: no leading
 * '$' (an operator) and no '.' (a path), so a body can never act as a query or update. */
static bool storable_keys(const json_t *v, int depth)
{
    const char *k;
    json_t *m;
    if (depth > 32)
        return false;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!storable_keys(json_array_get(v, i), depth + 1))
                return false;
        return true;
    }
    if (!json_is_object(v))
        return true;
    json_object_foreach(shop_json_mut(v), k, m)
    {
        if (k[0] == '$' || strchr(k, '.') || !storable_keys(m, depth + 1))
            return false;
    }
    return true;
}

static void store_order(struct shop_req *req, const char *name, const json_t *body)
{
    bson_t doc = BSON_INITIALIZER;
    bson_error_t err;
    if (!storable_keys(body, 0) || order_doc(name, body, &doc) == -1)
        shop_reply_text(req, 400, "order cannot be stored");
    else if (insert("orders", &doc, &err) == 0)
        shop_reply_text(req, 200, "OK");
    else
        reply_db_error(req, &err);
    bson_destroy(&doc);
}

static void order(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    json_t *body = body_object(req);
    if (!body)
        return;
    bson_t *doc = NULL;
    bson_error_t err;
    int rc = find_user(id, &doc, &err);
    if (rc == -1)
        reply_db_error(req, &err);
    else if (rc == 0)
        shop_reply_text(req, 404, "name not found");
    else
        store_order(req, id, body);
    if (doc)
        bson_destroy(doc);
    json_decref(body);
}

/* Adds one stored document to the history being assembled. A legacy {name, history:[...]}
 * document (written before orders were stored one per document, so always older) goes to
 * legacy; an {_id, name, order} document adds its order to recent. */
static void collect(json_t *legacy, json_t *recent, json_t *doc)
{
    json_t *old = json_object_get(doc, "history"), *one = json_object_get(doc, "order");
    if (json_is_array(old))
        json_array_extend(legacy, old);
    else if (one)
        json_array_append(recent, one);
}

/* The reference's {_id, name, history} from the user's documents in _id order (the order
 * one process created them in), legacy histories first. NULL when there are none. */
static json_t *assemble(mongoc_cursor_t *cur, const char *name)
{
    json_t *out = NULL, *legacy = json_array(), *recent = json_array();
    json_t *first_legacy = NULL, *first = NULL;
    const bson_t *d;
    while (mongoc_cursor_next(cur, &d)) {
        json_t *doc = shop_bson_to_json(d);
        json_t *id = json_object_get(doc, "_id");
        if (!first)
            first = json_incref(id);
        if (!first_legacy && json_is_array(json_object_get(doc, "history")))
            first_legacy = json_incref(id);
        collect(legacy, recent, doc);
        json_decref(doc);
    }
    if (first) {
        json_array_extend(legacy, recent);
        out = json_pack("{s:O?,s:s,s:O}", "_id", first_legacy ? first_legacy : first, "name", name,
                        "history", legacy);
    }
    json_decref(first);
    json_decref(first_legacy);
    json_decref(legacy);
    json_decref(recent);
    return out;
}

static void history(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "name", id);
    bson_t *opts =
        BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(HISTORY_MAX));
    mongoc_client_t *client = shop_mongo_pop();
    mongoc_collection_t *coll = shop_mongo_collection(client, "orders");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    json_t *out = assemble(cur, id);
    bson_error_t err;
    if (mongoc_cursor_error(cur, &err)) {
        json_decref(out);
        reply_db_error(req, &err);
    } else if (!out) {
        shop_reply_text(req, 404, "history not found");
    } else {
        shop_reply_json(req, 200, out);
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    shop_mongo_push(client);
    bson_destroy(opts);
    bson_destroy(&filter);
}

static const struct shop_route routes[] = {
    {"GET", "/health", health},    {"GET", "/uniqueid", uniqueid},
    {"GET", "/check/:id", check},  {"GET", "/users", users},
    {"POST", "/login", login},     {"POST", "/register", register_user},
    {"POST", "/order/:id", order}, {"GET", "/history/:id", history},
};

int main(int argc, char **argv)
{
    shop_service_init(argc, argv, "user");
    struct shop_server_conf conf = {
        .service = "user",
        .port = shop_conf_listen_port("USER_SERVER_PORT", 8080),
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .cors = true,
    };
    (void)shop_conf_str("MONGO", "true"); /* the course's gate; accepted, not needed */
    shop_mongo_init(shop_conf_str("MONGO_URL", "mongodb://mongodb:27017/users"), "users");
    shop_redis_init();
    int rc = shop_server_run(&conf);
    shop_redis_cleanup();
    shop_mongo_cleanup();
    return rc;
}
