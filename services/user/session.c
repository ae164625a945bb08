/* session.c - sessions that own ids (D18): the session cookie that /uniqueid, /login and
 * /register give, its state in Redis ("session:<token>": a sorted set of the ids it owns, each
 * anonymous id scored by its counter value, the user's name by +inf), the gateway's one
 * ownership check (GET /auth, called by nginx's auth_request for every id-bearing route) and
 * /logout. A token a client makes up is never stored: sessions are only created here, with a
 * fresh random token. SHOP_AUTH=off is lab mode: no cookie, every check passes. */
#include "services/user/session.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/random.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "services/user/owner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX   "session:"
#define ANON_COUNTER "anonymous-counter" /* the reference's counter, never expiring */
#define ANON_PREFIX  "anonymous-"
#define KEY_SIZE     (sizeof(KEY_PREFIX) + OWNER_TOKEN_LEN)

static bool g_auth = true;
static long g_ttl = 3600;     /* a session in use: at least the cart TTL */
static long g_new_ttl = 1800; /* a session nothing used since /uniqueid made it */

/* Redis failures: as /uniqueid answers them (JSON), and as /login and /register answer a backend
 * failure (the reference's text for 503). */
static const struct shop_err_reply redis_error = {
    .down = "redis not available", .down_json = true, .failed = "redis error", .failed_json = true};
static const struct shop_err_reply login_error = {
    .down = "database not available", .failed = "redis error", .failed_json = true};

void session_init(void)
{
    g_auth = shop_conf_bool("SHOP_AUTH", true);
    long cart_ttl = shop_conf_long("CART_TTL_SECONDS", 3600, 1, 100L * 365 * 24 * 3600);
    g_ttl = shop_conf_long("SHOP_SESSION_TTL", cart_ttl, 60, 100L * 365 * 24 * 3600);
    if (g_ttl < cart_ttl) {
        shop_log_warnx("SHOP_SESSION_TTL=%ld is below CART_TTL_SECONDS: sessions live %ld s", g_ttl,
                       cart_ttl);
        g_ttl = cart_ttl;
    }
    g_new_ttl = shop_conf_long("SHOP_SESSION_NEW_TTL", 1800, 10, 100L * 365 * 24 * 3600);
    if (g_new_ttl > g_ttl)
        g_new_ttl = g_ttl;
    if (!g_auth)
        shop_log_warnx("SHOP_AUTH=off: LAB MODE, carts, histories and payments are open to anyone "
                       "who knows an id (no session cookie, no ownership check)");
    else
        shop_log_info("sessions: cookie %s, ttl %ld s (new, unused: %ld s)", OWNER_COOKIE, g_ttl,
                      g_new_ttl);
}

static void session_key(char key[KEY_SIZE], const char *tok)
{
    snprintf(key, KEY_SIZE, KEY_PREFIX "%s", tok);
}

/* The request's session token, when it sent a well-formed one. */
static bool req_token(struct shop_req *req, char tok[OWNER_TOKEN_LEN + 1])
{
    return owner_cookie_token(shop_req_header(req, "Cookie"), tok);
}

/* Set-Cookie for tok on the coming reply (max_age 0 clears it). Secure when the gateway says the
 * client came over HTTPS. */
static void set_cookie(struct shop_req *req, const char *tok, long max_age)
{
    const char *proto = shop_req_header(req, "X-Forwarded-Proto");
    bool https = proto && strcmp(proto, "https") == 0;
    char v[256];
    snprintf(v, sizeof(v), OWNER_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s", tok,
             max_age, https ? "; Secure" : "");
    shop_reply_add_header(req, "Set-Cookie", v);
}

/* A new token in tok and its key. */
static void new_token(char tok[OWNER_TOKEN_LEN + 1], char key[KEY_SIZE])
{
    shop_random_hex(tok, OWNER_TOKEN_LEN / 2);
    session_key(key, tok);
}

/* The next anonymous id: ANON_PREFIX and the counter's new value n. */
static void anon_id(char id[SESSION_ID_SIZE], long long n)
{
    snprintf(id, SESSION_ID_SIZE, ANON_PREFIX "%lld", n);
}

/* A session a release before this one stored (a JSON document {"ids": [...], "user": name}) made
 * the sorted set it is now, the first time a call finds it; the call is then made again. */
static void upgrade(const char *key)
{
    struct shop_err err = {0};
    if (shop_redis_json_to_zset(key, "ids", "user", g_ttl, &err) == -1)
        shop_log_warnx("session: an old session not converted: %s", err.msg);
}

/* /uniqueid without a session token: the counter's next value and a new session owning it, in
 * one round trip; its cookie set. */
static int new_anonymous(struct shop_req *req, long long *n, struct shop_err *err)
{
    char tok[OWNER_TOKEN_LEN + 1], key[KEY_SIZE];
    new_token(tok, key);
    int rc = shop_redis_incr_zadd(ANON_COUNTER, key, ANON_PREFIX, OWNER_IDS_MAX, g_new_ttl, true, n,
                                  err);
    if (rc == SHOP_REDIS_DONE)
        set_cookie(req, tok, g_ttl);
    else if (rc != -1) /* a fresh random key that exists: never seen */
        shop_err_set(err, SHOP_ERR_FAILED, 0, "session: new session not made (%d)", rc);
    return rc == SHOP_REDIS_DONE ? 0 : -1;
}

/* /uniqueid with a session token: the counter's next value added to that session (its newest
 * OWNER_IDS_MAX ids kept, TTL refreshed) by one server-side script, in one round trip. A new
 * session owning a new id when the token's is gone or unreadable (left alone). */
static int add_anonymous(struct shop_req *req, const char *tok, long long *n, struct shop_err *err)
{
    char key[KEY_SIZE];
    session_key(key, tok);
    int rc =
        shop_redis_incr_zadd(ANON_COUNTER, key, ANON_PREFIX, OWNER_IDS_MAX, g_ttl, false, n, err);
    if (rc == SHOP_REDIS_WRONG_TYPE) {
        upgrade(key);
        rc = shop_redis_incr_zadd(ANON_COUNTER, key, ANON_PREFIX, OWNER_IDS_MAX, g_ttl, false, n,
                                  err);
    }
    if (rc == -1 || rc == SHOP_REDIS_DONE)
        return rc == -1 ? -1 : 0;
    return new_anonymous(req, n, err); /* the counter's value n is skipped: nobody was given it */
}

bool session_uniqueid(struct shop_req *req, char id[SESSION_ID_SIZE])
{
    char tok[OWNER_TOKEN_LEN + 1];
    struct shop_err err = {0};
    long long n;
    int rc;
    if (!g_auth)
        rc = shop_redis_incr(ANON_COUNTER, &n, &err);
    else if (req_token(req, tok))
        rc = add_anonymous(req, tok, &n, &err);
    else
        rc = new_anonymous(req, &n, &err);
    if (rc == -1) {
        shop_reply_err(req, &err, &redis_error);
        return false;
    }
    anon_id(id, n);
    return true;
}

/* The session of a login: a new token owning the old session's ids (old_key, NULL when there is
 * none) and the user; the old one is deleted. 0 or -1. */
static int move_to_new(struct shop_req *req, const char *old_key, const char *user,
                       struct shop_err *err)
{
    char tok[OWNER_TOKEN_LEN + 1], key[KEY_SIZE];
    new_token(tok, key);
    int rc = shop_redis_zmove_top(old_key, key, user, g_ttl, err);
    if (rc == SHOP_REDIS_WRONG_TYPE && old_key) {
        upgrade(old_key);
        rc = shop_redis_zmove_top(old_key, key, user, g_ttl, err);
    }
    if (rc == SHOP_REDIS_WRONG_TYPE && old_key &&
        shop_redis_del(old_key, err) == -1) /* unreadable */
        shop_log_warnx("rid=%s session: old session not deleted: %s", shop_req_id(req), err->msg);
    if (rc != -1)
        set_cookie(req, tok, g_ttl);
    return rc == -1 ? -1 : 0;
}

bool session_login(struct shop_req *req, const char *user)
{
    if (!g_auth)
        return true;
    char tok[OWNER_TOKEN_LEN + 1], old_key[KEY_SIZE];
    struct shop_err err = {0};
    bool had = req_token(req, tok); /* its ids carried over; the old token stops working */
    if (had)
        session_key(old_key, tok);
    if (move_to_new(req, had ? old_key : NULL, user, &err) == -1) {
        shop_reply_err(req, &err, &login_error);
        return false;
    }
    return true;
}

bool session_name_reserved(const char *name)
{
    return g_auth && strncmp(name, ANON_PREFIX, strlen(ANON_PREFIX)) == 0;
}

/* 401 or 403 with a short text (nginx shows its own page; a direct caller reads this). */
static void refuse(struct shop_req *req, int status)
{
    shop_reply_text(req, status, status == 401 ? "session required" : "not your id");
}

/* Answers the check of ids against the session stored under tok: 204, 401 or 403. */
static void check_owner(struct shop_req *req, const char *tok, const char **ids, int nids)
{
    char key[KEY_SIZE];
    bool found[2];
    struct shop_err err = {0};
    session_key(key, tok);
    int rc = shop_redis_zhas_touch(key, g_ttl, nids, ids, found, &err);
    if (rc == SHOP_REDIS_WRONG_TYPE) {
        upgrade(key);
        rc = shop_redis_zhas_touch(key, g_ttl, nids, ids, found, &err);
    }
    if (rc == -1) {
        shop_reply_err(req, &err, &redis_error);
        return;
    }
    bool owns = true;
    for (int i = 0; i < nids; i++)
        owns = owns && found[i];
    if (rc != SHOP_REDIS_DONE)
        refuse(req, 401); /* gone, or unreadable */
    else if (!owns)
        refuse(req, 403);
    else
        shop_reply(req, 204, NULL, "", 0);
}

void route_auth(struct shop_req *req)
{
    if (!g_auth) {
        shop_reply(req, 204, NULL, "", 0);
        return;
    }
    char tok[OWNER_TOKEN_LEN + 1], buf[2048];
    const char *ids[2];
    int nids = owner_call_ids(shop_req_header(req, "X-Shop-Call"), buf, sizeof(buf), ids);
    if (!req_token(req, tok))
        refuse(req, 401);
    else if (nids < 1)
        refuse(req, 403); /* not an id-bearing call this check knows: fail closed */
    else
        check_owner(req, tok, ids, nids);
}

void route_logout(struct shop_req *req)
{
    char tok[OWNER_TOKEN_LEN + 1], key[KEY_SIZE];
    struct shop_err err;
    if (g_auth && req_token(req, tok)) {
        session_key(key, tok);
        if (shop_redis_del(key, &err) == -1) {
            shop_reply_err(req, &err, &redis_error);
            return;
        }
    }
    if (g_auth)
        set_cookie(req, "", 0);
    shop_reply_text(req, 200, "OK");
}
