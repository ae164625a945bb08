/* idem.h - payment's idempotency (D21), the pure part (no I/O; unit tests and the libFuzzer
 * harness include it): the Idempotency-Key header's syntax, the session cookie's value, the
 * Redis key that names one checkout, and the record kept under it for 24 h. */
#ifndef PAYMENT_IDEM_H
#define PAYMENT_IDEM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define IDEM_KEY_MAX     255 /* an Idempotency-Key holds 1 to 255 visible ASCII characters */
#define IDEM_SESSION_MAX 256 /* a longer session cookie is left out of the natural key */

/* True when an Idempotency-Key header value is well formed: 1 to IDEM_KEY_MAX characters,
 * each visible ASCII (0x21-0x7e). */
bool idem_key_ok(const char *value);

/* The value of the cookie called name in a Cookie header ("a=1; b=2"), copied to out (NUL-
 * terminated). Returns its length, or -1 when the header has no such cookie or the value does
 * not fit in outlen - 1 bytes. Surrounding double quotes are kept (opaque). */
long idem_cookie(const char *header, const char *name, char *out, size_t outlen);

/* The Redis key of one checkout (heap string): with a client's Idempotency-Key,
 * "payment/idem/" + ["key", session, key]; without one, the natural key
 * "payment/idem/" + ["cart", session, cart id, nonce]. session may be "" (none); nonce is
 * NULL for the header form. Returns NULL when neither a key nor a nonce is given. */
char *idem_redis_key(const char *session, const char *header_key, const char *cart_id,
                     const char *nonce);

enum idem_state { IDEM_PENDING, IDEM_DONE };

struct idem_record {
    enum idem_state state;
    char orderid[37];
    char *cart;   /* the cart id paid (heap) */
    char *nonce;  /* its nonce then (heap), or NULL */
    bool cleared; /* the cart was deleted after the order */
};

/* The record as stored: {"state", "orderid", "cart", "nonce", "cleared"} (heap string). */
char *idem_record_dump(const struct idem_record *r);
/* Parses a stored record into r (free with idem_record_free). Returns false for anything
 * that is not a record this code wrote (r is then empty). */
bool idem_record_parse(const char *text, size_t len, struct idem_record *r);
void idem_record_free(struct idem_record *r);

/* Whether a record answers a pay of cart_id whose nonce is now nonce (NULL: unknown): the same
 * cart id, and the same nonce when both are known. False means the key was used for another
 * cart (409). */
bool idem_record_matches(const struct idem_record *r, const char *cart_id, const char *nonce);

#endif
