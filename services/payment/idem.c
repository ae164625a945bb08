/* idem.c - payment's idempotency keys and records (idem.h): syntax, key names, record JSON. */
#include "services/payment/idem.h"
#include "libshop/json.h"
#include "libshop/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool idem_key_ok(const char *value)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++, n++)
        if (*p < 0x21 || *p > 0x7e || n >= IDEM_KEY_MAX)
            return false;
    return n > 0;
}

/* Cookie-header white space (RFC 6265 allows only SP; HTAB is tolerated). */
static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

long idem_cookie(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    if (!header || nlen == 0 || outlen == 0)
        return -1;
    for (const char *p = header; *p;) {
        p = skip_ws(p);
        const char *end = strchr(p, ';');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = plen - nlen - 1;
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (vlen + 1 > outlen)
                return -1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return (long)vlen;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return -1;
}

char *idem_redis_key(const char *session, const char *header_key, const char *cart_id,
                     const char *nonce)
{
    json_t *parts;
    if (header_key)
        parts = json_pack("[s,s,s]", "key", session, header_key);
    else if (nonce)
        parts = json_pack("[s,s,s,s]", "cart", session, cart_id, nonce);
    else
        return NULL;
    if (!parts) /* a session cookie that is not UTF-8 is left out */
        return *session ? idem_redis_key("", header_key, cart_id, nonce) : NULL;
    char *text = shop_json_dumps(parts, SHOP_JSON_COMPACT);
    json_decref(parts);
    size_t n = strlen("payment/idem/") + strlen(text) + 1;
    char *key = shop_xmalloc(n);
    snprintf(key, n, "payment/idem/%s", text);
    free(text);
    return key;
}

char *idem_record_dump(const struct idem_record *r)
{
    json_t *v =
        json_pack("{s:s,s:s,s:s,s:o,s:b}", "state", r->state == IDEM_DONE ? "done" : "pending",
                  "orderid", r->orderid, "cart", r->cart, "nonce",
                  r->nonce ? json_string(r->nonce) : json_null(), "cleared", r->cleared);
    char *text = v ? shop_json_dumps(v, SHOP_JSON_COMPACT) : NULL;
    json_decref(v);
    return text;
}

static bool is_uuid_text(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
            return false;
    }
    return true;
}

bool idem_record_parse(const char *text, size_t len, struct idem_record *r)
{
    memset(r, 0, sizeof(*r));
    json_error_t err;
    json_t *v = json_loadb(text, len, 0, &err);
    const char *state = shop_json_str(v, "state"), *orderid = shop_json_str(v, "orderid");
    const char *cart = shop_json_str(v, "cart"), *nonce = shop_json_str(v, "nonce");
    json_t *cleared = json_object_get(v, "cleared");
    bool ok = state && (strcmp(state, "done") == 0 || strcmp(state, "pending") == 0) &&
              is_uuid_text(orderid) && cart && json_is_boolean(cleared) &&
              (nonce || json_is_null(json_object_get(v, "nonce")));
    if (ok) {
        r->state = strcmp(state, "done") == 0 ? IDEM_DONE : IDEM_PENDING;
        memcpy(r->orderid, orderid, sizeof(r->orderid));
        r->cart = shop_xstrdup(cart);
        r->nonce = nonce ? shop_xstrdup(nonce) : NULL;
        r->cleared = json_is_true(cleared);
    }
    json_decref(v);
    return ok;
}

void idem_record_free(struct idem_record *r)
{
    free(r->cart);
    free(r->nonce);
    r->cart = r->nonce = NULL;
}

bool idem_record_matches(const struct idem_record *r, const char *cart_id, const char *nonce)
{
    if (!r->cart || strcmp(r->cart, cart_id) != 0)
        return false;
    return !r->nonce || !nonce || strcmp(r->nonce, nonce) == 0;
}
