/* owner.c - the pure logic of sessions (D18), no I/O: the session token in a Cookie header, and
 * the ids an id-bearing gateway call names ("METHOD /api/<svc>/<route>/<id>..."). */
#include "services/user/owner.h"

#include <string.h>

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
