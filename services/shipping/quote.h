/* quote.h - shipping quotes (D19): /calc hands the client a signed cookie naming the cities it
 * quoted, and /confirm takes a shipping line only for one of them, so a cost reaches a cart only
 * when this service computed it. The cookie's text is signed with HMAC-SHA-256; the key comes
 * from SHIPPING_QUOTE_SECRET (the same on every replica) or is random per process. No I/O. */
#ifndef SHIPPING_QUOTE_H
#define SHIPPING_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

#define QUOTE_COOKIE  "shop_ship_quote"
#define QUOTE_MAX     8 /* cities kept per client: the newest ones (several tabs, a change of mind) */
#define QUOTE_TTL_S   3600 /* a quote lives as long as an idle cart (CART_TTL_SECONDS' default) */
#define QUOTE_KEY_MIN 16   /* bytes of SHIPPING_QUOTE_SECRET at least */
/* Room for a Set-Cookie value: name, "v1", expiry, QUOTE_MAX ids, MAC, attributes. */
#define QUOTE_COOKIE_SIZE 512

/* The cities quoted to one client, newest first, and when the set expires (Unix seconds). */
struct quote_set {
    size_t n;
    long long ids[QUOTE_MAX];
    long long expires;
};

/* Sets the signing key (copied; len >= 1). Call once before serving. */
void quote_key_set(const void *key, size_t len);
/* Sets a random key. */
void quote_key_random(void);

/* Reads the quote cookie from a Cookie request header (NULL: none). Fills q with the first
 * cookie of that name whose signature is good and which has not expired at now; otherwise q is
 * empty. Returns q->n. */
size_t quote_parse(const char *cookie_header, long long now, struct quote_set *q);
/* Puts id first in q (dropping an older copy of it, and the oldest id when q is full). */
void quote_add(struct quote_set *q, long long id);
/* true when q holds id. */
bool quote_has(const struct quote_set *q, long long id);
/* Writes the Set-Cookie value for q, expiring QUOTE_TTL_S after now (Path=/, HttpOnly,
 * SameSite=Lax, Secure when secure). Returns 0, or -1 when out is too small. */
int quote_cookie(const struct quote_set *q, long long now, bool secure, char *out, size_t outlen);

#endif
