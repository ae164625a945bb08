/* nonce.c - the carts' nonces (nonce.h): one Redis key per cart id, "cart/nonce/<id>". A cart id
 * never holds '/' (path parameters cannot), so no cart can be stored under such a key. */
#include "services/cart/nonce.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/random.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "services/cart/cartcalc.h"
#include "services/cart/cartcheck.h"
#include "services/cart/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_HEX CART_NONCE_HEX

#define NONCE_PREFIX "cart/nonce/"

static char *nonce_key(const char *id)
{
    size_t n = strlen(NONCE_PREFIX) + strlen(id) + 1;
    char *key = shop_xmalloc(n);
    snprintf(key, n, "%s%s", NONCE_PREFIX, id);
    return key;
}

/* A nonce lives as long as its cart may, and a day after. */
static long nonce_ttl(void)
{
    return cart_cfg.ttl + CART_NONCE_KEEP_S;
}

void cart_nonce_new(const char *id, struct cart_nonce *n)
{
    shop_random_hex(n->val, NONCE_HEX / 2);
    n->key = nonce_key(id);
    n->write = (struct shop_redis_write){
        .key = n->key, .val = n->val, .len = NONCE_HEX, .ttl = nonce_ttl()};
}

void cart_nonce_free(struct cart_nonce *n)
{
    free(n->key);
    n->key = NULL;
}

int cart_nonce_copy(const char *from, const char *to, struct shop_err *err)
{
    char *fkey = nonce_key(from), *tkey = nonce_key(to), *val = NULL;
    size_t len = 0;
    int rc = shop_redis_get(fkey, &val, &len, err);
    if (rc == 0) {
        val = shop_xmalloc(NONCE_HEX + 1);
        shop_random_hex(val, NONCE_HEX / 2);
        len = NONCE_HEX;
    }
    if (rc != -1)
        rc = shop_redis_set(tkey, val, len, nonce_ttl(), err);
    free(val);
    free(fkey);
    free(tkey);
    return rc;
}

int cart_delete(const char *id, struct shop_err *err)
{
    char *key = nonce_key(id);
    /* a retried pay of this cart still finds its nonce (D21); a delete of a cart already gone
     * keeps its nonce as long as a repeat of the delete would: CART_NONCE_KEEP_S from now */
    int rc = shop_redis_del_expire(id, key, CART_NONCE_KEEP_S, err);
    free(key);
    return rc;
}

/* Reads the nonce and, in the same round trip, the cart (*cart, NULL when there is none); a
 * cart that has no nonce gets one (SET NX: concurrent callers agree). Returns 1 with *val, 0
 * when there is no nonce and no cart, -1 with err set (nothing returned). */
static int nonce_read(const char *id, char **val, size_t *len, char **cart, size_t *clen,
                      struct shop_err *err)
{
    char *key = nonce_key(id);
    const char *keys[2] = {key, id};
    char *vals[2];
    size_t lens[2];
    int rc = shop_redis_get_n(2, keys, vals, lens, err) == 0 ? 1 : -1;
    *val = vals[0];
    *len = lens[0];
    *cart = vals[1];
    *clen = lens[1];
    if (rc == 1 && !*val && !*cart)
        rc = 0;
    if (rc == 1 && !*val) { /* a cart stored before nonces */
        char n[NONCE_HEX + 1];
        shop_random_hex(n, NONCE_HEX / 2);
        rc = shop_redis_set_nx(key, n, strlen(n), nonce_ttl(), err);
        if (rc != -1)
            rc = shop_redis_get(key, val, len, err);
    }
    free(key);
    return rc;
}

/* Weighs the stored cart text for ?cart=1 (payment's one call, D21): 1 when it is a cart GET
 * /cart would hand on, 0 when there is none, 2 when the stored value is not a cart (GET /cart
 * answers that one; *text is then freed). */
static int cart_weigh(char **text, size_t *len)
{
    if (!*text)
        return 0;
    bool ok = cart_check_quick(*text, *len);
    if (!ok) { /* as GET /cart decides */
        json_t *cart = cart_parse(*text, *len);
        ok = cart != NULL;
        json_decref(cart);
    }
    if (ok)
        return 1;
    free(*text);
    *text = NULL;
    *len = 0;
    return 2;
}

/* {"nonce": …, "cart": the stored cart's text as it is, or null}; no "cart" when it is not a
 * cart. */
static void reply_with_cart(struct shop_req *req, const char *nonce, size_t nlen, int crc,
                            const char *cart, size_t clen)
{
    json_t *head = json_pack("{s:s%}", "nonce", nonce, nlen);
    char *text = head ? json_dumps(head, JSON_COMPACT) : NULL; /* {"nonce":"…"} */
    json_decref(head);
    if (!text) {
        shop_reply_text(req, 500, "out of memory");
        return;
    }
    struct shop_buf out;
    shop_buf_init(&out, strlen(text) + clen + 16);
    size_t hlen = strlen(text) - 1; /* without its closing brace */
    int rc = shop_buf_append(&out, text, hlen);
    if (rc == 0 && crc != 2)
        rc = shop_buf_printf(&out, ",\"cart\":%.*s", crc == 1 ? (int)clen : 4,
                             crc == 1 ? cart : "null");
    if (rc == 0)
        rc = shop_buf_append(&out, "}", 1);
    if (rc == 0)
        shop_reply_json_text(req, 200, out.data, out.len);
    else
        shop_reply_text(req, 500, "out of memory");
    shop_buf_cleanup(&out);
    free(text);
}

void route_nonce(struct shop_req *req)
{
    const char *id = shop_req_param(req, "id"), *q = shop_req_query(req, "cart");
    if (!cart_id_allowed(req, id))
        return;
    bool with_cart = q && strcmp(q, "1") == 0;
    char *val = NULL, *cart = NULL;
    size_t len, clen = 0;
    struct shop_err err;
    int rc = nonce_read(id, &val, &len, &cart, &clen, &err), crc = 0;
    if (rc == 1 && with_cart)
        crc = cart_weigh(&cart, &clen);
    static const struct shop_err_reply redis_error = {
        .down = "redis not available", .down_json = true, .failed_json = true};
    if (rc == -1)
        shop_reply_err(req, &err, &redis_error);
    else if (rc == 0)
        shop_reply_text(req, 404, "cart not found");
    else if (with_cart)
        reply_with_cart(req, val, len, crc, cart, clen);
    else
        shop_reply_json(req, 200, json_pack("{s:s%}", "nonce", val, len));
    free(cart);
    free(val);
}
