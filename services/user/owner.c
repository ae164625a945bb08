/* owner.c - the pure logic of sessions (D18), no I/O: the session document {"ids": [...],
 * "user": name} and what it owns, the session token in a Cookie header, and the ids an
 * id-bearing gateway call names ("METHOD /api/<svc>/<route>/<id>..."). */
#include "services/user/owner.h"

#include <string.h>

/* ---- the session document ------------------------------------------------------------------ */

json_t *owner_doc_parse(const char *text)
{
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    if (!doc || !json_is_object(doc) || !json_is_array(json_object_get(doc, "ids"))) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

json_t *owner_doc_new(void)
{
    return json_pack("{s:[]}", "ids");
}

bool owner_owns(const json_t *doc, const char *id)
{
    const char *user = json_string_value(json_object_get(doc, "user"));
    if (user && strcmp(user, id) == 0)
        return true;
    const json_t *ids = json_object_get(doc, "ids");
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *s = json_string_value(json_array_get(ids, i));
        if (s && strcmp(s, id) == 0)
            return true;
    }
    return false;
}

int owner_add_id(json_t *doc, const char *id)
{
    json_t *ids = json_object_get(doc, "ids");
    if (!json_is_array(ids))
        return -1;
    if (owner_owns(doc, id))
        return 0;
    if (json_array_append_new(ids, json_string(id)) == -1)
        return -1;
    while (json_array_size(ids) > OWNER_IDS_MAX)
        json_array_remove(ids, 0); /* the oldest goes first */
    return 0;
}

int owner_set_user(json_t *doc, const char *user)
{
    return json_object_set_new(doc, "user", json_string(user));
}

/* ---- the cookie ---------------------------------------------------------------------------- */

static bool token_ok(const char *s, size_t n)
{
    if (n != OWNER_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool owner_cookie_token(const char *cookie, char tok[OWNER_TOKEN_LEN + 1])
{
    static const char name[] = OWNER_COOKIE "=";
    const size_t nlen = sizeof(name) - 1;
    for (const char *p = cookie; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        size_t n = strcspn(p, ";");
        if (n > nlen && strncmp(p, name, nlen) == 0) {
            const char *v = p + nlen;
            size_t vlen = n - nlen;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (token_ok(v, vlen)) { /* the first well-formed one; a malformed one is skipped */
                memcpy(tok, v, vlen);
                tok[vlen] = '\0';
                return true;
            }
        }
        p += n;
    }
    return false;
}

/* ---- the ids of a gateway call ------------------------------------------------------------- */

/* An id-bearing route: the path after "/api/", the segments that are ids, the segment count. */
struct id_route {
    const char *prefix; /* "cart/add/": the segments before the first id */
    int first, second;  /* 0-based segment index of each id (second: -1 when one id) */
    int nsegs;          /* segments after "/api/" */
};

static const struct id_route id_routes[] = {
    {"cart/cart/", 2, -1, 3},        {"cart/add/", 2, -1, 5},     {"cart/update/", 2, -1, 5},
    {"cart/rename/", 2, 3, 4},       {"user/history/", 2, -1, 3}, {"user/order/", 2, -1, 3},
    {"shipping/confirm/", 2, -1, 3}, {"payment/pay/", 2, -1, 3},
};

/* Splits path (no leading '/') at '/' into at most max segments. Returns the count, or -1 when
 * there are more, or an empty one. */
static int split(char *path, char **segs, int max)
{
    int n = 0;
    for (char *p = path;; n++) {
        char *slash = strchr(p, '/');
        if (n == max || (slash ? slash == p : *p == '\0'))
            return -1;
        segs[n] = p;
        if (!slash)
            return n + 1;
        *slash = '\0';
        p = slash + 1;
    }
}

int owner_call_ids(const char *call, char *buf, size_t buflen, const char **ids)
{
    const char *path = call ? strchr(call, ' ') : NULL;
    if (!path || strncmp(path, " /api/", 6) != 0)
        return -1;
    path += 6;
    size_t n = strlen(path);
    if (n >= buflen)
        return -1;
    for (size_t i = 0; i < sizeof(id_routes) / sizeof(id_routes[0]); i++) {
        const struct id_route *r = &id_routes[i];
        if (strncmp(path, r->prefix, strlen(r->prefix)) != 0)
            continue;
        char *segs[8];
        memcpy(buf, path, n + 1);
        if (split(buf, segs, 8) != r->nsegs)
            return -1;
        ids[0] = segs[r->first];
        ids[1] = r->second >= 0 ? segs[r->second] : NULL;
        return r->second >= 0 ? 2 : 1;
    }
    return -1;
}
