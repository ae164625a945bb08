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
#include "services/user/records.h"
#include "services/user/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOWN        "database not available"
#define HISTORY_MAX 100000 /* orders read for one history */

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
void route_health(struct shop_req *req)
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
    static const struct shop_err_reply redis_error = {.down = "redis not available",
                                                      .down_json = true,
                                                      .failed = "redis error",
                                                      .failed_json = true};
    struct shop_err err;
    long long n;
    if (shop_redis_incr("anonymous-counter", &n, &err) == -1) {
        shop_reply_err(req, &err, &redis_error);
        return;
    }
    char id[64];
    snprintf(id, sizeof(id), "anonymous-%lld", n);
    if (session_add_anonymous(req, id))
        shop_reply_json(req, 200, json_pack("{s:s}", "uuid", id));
}

void route_check(struct shop_req *req)
{
    json_t *doc;
    struct shop_err err;
    int rc = find_user(shop_req_param(req, "id"), &doc, &err);
    if (rc == -1)
        shop_reply_err(req, &err, &db_error);
    else if (rc == 0)
        shop_reply_text(req, 404, "user not found");
    else
        shop_reply_text(req, 200, "OK");
    json_decref(doc);
}

void route_users(struct shop_req *req)
{
    json_t *filter = json_object(), *arr;
    struct shop_err err;
    if (shop_mongo_find("users", filter, NULL, &arr, &err) == -1) {
        shop_reply_err(req, &err, &db_error);
    } else {
        for (size_t i = 0; i < json_array_size(arr); i++)
            user_public(json_array_get(arr, i));
        shop_reply_json(req, 200, arr);
    }
    json_decref(filter);
}

/* ---- routes: login, register -------------------------------------------------------------- */

/* Rewrites a legacy (plaintext, bcrypt, old-cost) password to a fresh hash, only if the
 * stored value is still the one just verified. Failures are logged, never fatal. */
static void upgrade_password(const json_t *doc, const char *old, const char *password)
{
    json_t *sel = user_upgrade_filter(doc, old);
    char *hash = sel ? shop_passwd_hash(password) : NULL;
    if (hash) {
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

/* Verifies a login and answers it (the body's strings are already checked). */
static void login_user(struct shop_req *req, const char *name, const char *password)
{
    json_t *doc;
    struct shop_err err;
    int rc = find_user(name, &doc, &err);
    if (rc == -1) {
        shop_reply_err(req, &err, &db_error);
        return;
    }
    if (rc == 0) {
        shop_reply_text(req, 404, "name not found");
        return;
    }
    const char *stored = user_stored_password(doc);
    if (!shop_passwd_verify(password, stored)) {
        shop_reply_text(req, 404, "incorrect password");
        json_decref(doc);
        return;
    }
    if (shop_passwd_needs_upgrade(stored))
        upgrade_password(doc, stored, password);
    if (session_login(req, name))
        shop_reply_json(req, 200, user_public(doc));
    else
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
    char *hash = shop_passwd_hash(password);
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

static void store_order(struct shop_req *req, const char *name, const json_t *body)
{
    json_t *doc = user_order_doc(name, body);
    struct shop_err err;
    if (!doc || shop_mongo_insert("orders", doc, &err) == -1) {
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
    else
        store_order(req, id, body);
    json_decref(doc);
    json_decref(body);
}

void route_history(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id");
    json_t *filter = json_pack("{s:s}", "name", id), *docs = NULL, *out = NULL;
    json_t *opts = json_pack("{s:{s:i},s:I}", "sort", "_id", 1, "limit", (json_int_t)HISTORY_MAX);
    struct shop_err err;
    if (filter && shop_mongo_find("orders", filter, opts, &docs, &err) == -1) {
        shop_reply_err(req, &err, &db_error);
    } else if (!(out = user_history(docs, id))) {
        shop_reply_text(req, 404, "history not found");
    } else {
        shop_reply_json(req, 200, out);
    }
    json_decref(docs);
    json_decref(opts);
    json_decref(filter);
}
