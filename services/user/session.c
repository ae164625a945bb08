/* session.c - sessions that own ids (D18): the session cookie that /uniqueid, /login and
 * /register give, its state in Redis ("session:<token>" -> the owner document of owner.h), the
 * gateway's one ownership check (GET /auth, called by nginx's auth_request for every id-bearing
 * route) and /logout. A token a client makes up is never stored: sessions are only created here,
 * with a fresh random token. SHOP_AUTH=off is lab mode: no cookie, every check passes. */
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

static int anonymous_template(void);

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
    if (g_auth && anonymous_template() == -1)
        shop_fatalx("sessions: out of memory");
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

/* Stores doc as a new session with a fresh token, ttl seconds, and sets its cookie. 0 or -1. */
static int store_new(struct shop_req *req, json_t *doc, long ttl, struct shop_err *err)
{
    char tok[OWNER_TOKEN_LEN + 1], key[KEY_SIZE];
    shop_random_hex(tok, OWNER_TOKEN_LEN / 2);
    session_key(key, tok);
    char *text = json_dumps(doc, JSON_COMPACT);
    int rc = text ? shop_redis_set(key, text, strlen(text), ttl, err) : -1;
    if (!text)
        shop_err_set(err, SHOP_ERR_FAILED, 0, "session: out of memory");
    free(text);
    if (rc == 0)
        set_cookie(req, tok, g_ttl);
    return rc;
}

/* The next anonymous id: ANON_PREFIX and the counter's new value n. */
static void anon_id(char id[SESSION_ID_SIZE], long long n)
{
    snprintf(id, SESSION_ID_SIZE, ANON_PREFIX "%lld", n);
}

/* /uniqueid with a session token: the counter's next value appended to that session's ids (its
 * newest OWNER_IDS_MAX kept, TTL refreshed) by one server-side script, in one round trip; the
 * document it edits is owner.c's {"ids": [...], "user"?: name}. A new session owning the id when
 * the token's is gone, or holds no such document (left alone, as owner_doc_parse's NULL). */
static int add_anonymous(struct shop_req *req, const char *tok, long long *n, struct shop_err *err)
{
    char key[KEY_SIZE], id[SESSION_ID_SIZE];
    session_key(key, tok);
    int rc =
        shop_redis_incr_append(ANON_COUNTER, key, "ids", ANON_PREFIX, OWNER_IDS_MAX, g_ttl, n, err);
    if (rc == -1 || rc == SHOP_REDIS_APPENDED)
        return rc == -1 ? -1 : 0;
    json_t *doc = owner_doc_new(); /* expired or unknown: a new one, short-lived until it is used */
    anon_id(id, *n);
    rc = owner_add_id(doc, id) == 0 ? store_new(req, doc, g_new_ttl, err) : -1;
    if (rc == -1 && err->kind == SHOP_ERR_NONE)
        shop_err_set(err, SHOP_ERR_FAILED, 0, "session: out of memory");
    json_decref(doc);
    return rc;
}

/* The text of a new session owning the id ANON_PREFIX<n>, split where <n> goes: made once by
 * session_init. */
static char *g_anon_before, *g_anon_after;

static int anonymous_template(void)
{
    json_t *doc = owner_doc_new();
    char *text = owner_add_id(doc, ANON_PREFIX) == 0 ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_t *id = json_string(ANON_PREFIX);
    char *quoted = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL; /* the id as it is stored */
    json_decref(id);
    json_decref(doc);
    char *at = text && quoted ? strstr(text, quoted) : NULL;
    if (at) {
        size_t cut = (size_t)(at - text) + strlen(quoted) - 1; /* before the closing quote */
        g_anon_after = shop_xstrdup(text + cut);
        text[cut] = '\0';
        g_anon_before = text;
        text = NULL;
    }
    free(text);
    free(quoted);
    return at ? 0 : -1;
}

/* /uniqueid without a session token: the counter's next value and a new session owning it, in
 * one round trip; its cookie set. */
static int new_anonymous(struct shop_req *req, long long *n, struct shop_err *err)
{
    char tok[OWNER_TOKEN_LEN + 1], key[KEY_SIZE];
    shop_random_hex(tok, OWNER_TOKEN_LEN / 2);
    session_key(key, tok);
    int rc =
        shop_redis_incr_store(ANON_COUNTER, key, g_new_ttl, g_anon_before, g_anon_after, n, err);
    if (rc == 0)
        set_cookie(req, tok, g_ttl);
    return rc;
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

bool session_login(struct shop_req *req, const char *user)
{
    if (!g_auth)
        return true;
    char tok[OWNER_TOKEN_LEN + 1], key[KEY_SIZE];
    struct shop_err err = {0};
    json_t *doc = NULL;
    int rc = 0;
    bool had = req_token(req, tok);
    if (had) { /* carry the ids over to a new token; the old one stops working */
        char *val;
        size_t len;
        session_key(key, tok);
        rc = shop_redis_get(key, &val, &len, &err);
        if (rc == 1)
            doc = owner_doc_parse(val);
        free(val);
    }
    if (rc != -1) {
        if (!doc)
            doc = owner_doc_new();
        rc = owner_set_user(doc, user) == 0 ? store_new(req, doc, g_ttl, &err) : -1;
        if (rc == -1 && err.kind == SHOP_ERR_NONE)
            shop_err_set(&err, SHOP_ERR_FAILED, 0, "session: out of memory");
    }
    json_decref(doc);
    if (rc == 0 && had && shop_redis_del(key, &err) == -1) /* the new session stands */
        shop_log_warnx("rid=%s session: old session not deleted: %s", shop_req_id(req), err.msg);
    if (rc == -1)
        shop_reply_err(req, &err, &login_error);
    return rc == 0;
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
    char key[KEY_SIZE], *val;
    size_t len;
    struct shop_err err;
    session_key(key, tok);
    int rc = shop_redis_get_touch(key, g_ttl, &val, &len, &err);
    if (rc == -1) {
        shop_reply_err(req, &err, &redis_error);
        return;
    }
    json_t *doc = owner_doc_parse(val);
    free(val);
    bool owns = doc != NULL;
    for (int i = 0; owns && i < nids; i++)
        owns = owner_owns(doc, ids[i]);
    if (!doc)
        refuse(req, 401);
    else if (!owns)
        refuse(req, 403);
    else
        shop_reply(req, 204, NULL, "", 0);
    json_decref(doc);
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
