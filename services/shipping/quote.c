/* quote.c - shipping quotes in a signed cookie (see quote.h). The cookie's value is
 * "v1.<expires>.<id>-<id>-...<.mac>" where mac is the first 16 bytes of
 * HMAC-SHA-256(key, "v1.<expires>.<ids>") in hex, compared in constant time. */
#include "services/shipping/quote.h"
#include "libshop/random.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_BYTES 16

static unsigned char quote_key[crypto_auth_hmacsha256_KEYBYTES];

void quote_key_set(const void *key, size_t len)
{
    /* HMAC hashes a key longer than its block; a shorter one is used as given (zero-padded) */
    if (sodium_init() < 0)
        abort();
    crypto_auth_hmacsha256_state st;
    unsigned char full[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, key, len);
    crypto_auth_hmacsha256_final(&st, full); /* a fixed-size key derived from any length */
    memcpy(quote_key, full, sizeof(quote_key));
    sodium_memzero(full, sizeof(full));
}

void quote_key_random(void)
{
    unsigned char key[32];
    shop_random_bytes(key, sizeof(key));
    quote_key_set(key, sizeof(key));
    sodium_memzero(key, sizeof(key));
}

static void mac_of(const char *text, size_t len, unsigned char mac[MAC_BYTES])
{
    unsigned char full[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(full, (const unsigned char *)text, len, quote_key);
    memcpy(mac, full, MAC_BYTES);
}

/* "v1.<expires>.<ids>" into out. Returns its length, or -1 when out is too small. */
static int signed_text(const struct quote_set *q, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "v1.%lld.", q->expires);
    for (size_t i = 0; i < q->n && n >= 0 && (size_t)n < outlen; i++)
        n += snprintf(out + n, outlen - (size_t)n, "%s%lld", i ? "-" : "", q->ids[i]);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

/* Parses "<expires>.<ids>" (after "v1.") into q. Returns 0 or -1. */
static int parse_fields(const char *s, struct quote_set *q)
{
    char *end;
    errno = 0;
    q->expires = strtoll(s, &end, 10);
    if (errno || end == s || *end != '.')
        return -1;
    q->n = 0;
    s = end + 1;
    while (*s) {
        if (q->n == QUOTE_MAX || *s < '0' || *s > '9')
            return -1;
        q->ids[q->n++] = strtoll(s, &end, 10);
        if (errno || (*end && *end != '-'))
            return -1;
        s = *end ? end + 1 : end;
    }
    return q->n ? 0 : -1;
}

/* Checks one cookie value of n bytes; fills q when it is good. */
static bool value_ok(const char *v, size_t n, long long now, struct quote_set *q)
{
    char text[QUOTE_COOKIE_SIZE];
    const char *dot = n < sizeof(text) ? memrchr(v, '.', n) : NULL;
    if (!dot || n - (size_t)(dot + 1 - v) != 2 * MAC_BYTES || strncmp(v, "v1.", 3) != 0)
        return false;
    size_t tlen = (size_t)(dot - v);
    memcpy(text, v, tlen);
    text[tlen] = '\0';
    unsigned char got[MAC_BYTES], want[MAC_BYTES];
    if (sodium_hex2bin(got, sizeof(got), dot + 1, 2 * MAC_BYTES, NULL, NULL, NULL) != 0)
        return false;
    mac_of(text, tlen, want);
    struct quote_set t;
    if (crypto_verify_16(got, want) != 0 || parse_fields(text + 3, &t) == -1 || t.expires <= now)
        return false;
    *q = t;
    return true;
}

size_t quote_parse(const char *header, long long now, struct quote_set *q)
{
    q->n = 0;
    q->expires = 0;
    const size_t name_len = strlen(QUOTE_COOKIE);
    for (const char *p = header; p && *p;) {
        p += strspn(p, " \t;");
        size_t n = strcspn(p, ";");
        if (n > name_len && strncmp(p, QUOTE_COOKIE "=", name_len + 1) == 0 &&
            value_ok(p + name_len + 1, n - name_len - 1, now, q))
            return q->n;
        p += n;
    }
    return 0;
}

void quote_add(struct quote_set *q, long long id)
{
    size_t keep = 0;
    long long older[QUOTE_MAX];
    for (size_t i = 0; i < q->n && keep < QUOTE_MAX - 1; i++)
        if (q->ids[i] != id)
            older[keep++] = q->ids[i];
    q->ids[0] = id;
    memcpy(q->ids + 1, older, keep * sizeof(*older));
    q->n = keep + 1;
}

bool quote_has(const struct quote_set *q, long long id)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->ids[i] == id)
            return true;
    return false;
}

int quote_cookie(const struct quote_set *q, long long now, bool secure, char *out, size_t outlen)
{
    struct quote_set t = *q;
    t.expires = now + QUOTE_TTL_S;
    char text[QUOTE_COOKIE_SIZE];
    int tlen = signed_text(&t, text, sizeof(text));
    if (tlen == -1)
        return -1;
    unsigned char mac[MAC_BYTES];
    char hex[2 * MAC_BYTES + 1];
    mac_of(text, (size_t)tlen, mac);
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    int n = snprintf(out, outlen, "%s=%s.%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax%s",
                     QUOTE_COOKIE, text, hex, QUOTE_TTL_S, secure ? "; Secure" : "");
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
