/* owner.h - the pure logic of sessions that own ids (D18; owner.c): the session cookie's token,
 * and the ids a gateway call names. No I/O. */
#ifndef USER_OWNER_H
#define USER_OWNER_H

#include <stdbool.h>
#include <stddef.h>

#define OWNER_COOKIE    "shop_session"
#define OWNER_TOKEN_LEN 64 /* 32 random bytes in lower-case hex */
#define OWNER_IDS_MAX   48 /* ids kept per session (the newest; a user's name one of them) */

/* The session token in a Cookie header value (may be NULL): the first OWNER_COOKIE value that is
 * OWNER_TOKEN_LEN lower-case hex digits. Returns false when there is none. */
bool owner_cookie_token(const char *cookie, char tok[OWNER_TOKEN_LEN + 1]);

/* The ids a gateway call "METHOD /api/<svc>/<route>/..." names (the path as the gateway routes it:
 * decoded, slashes merged): one for cart, add, update, history, order, confirm and pay, two for
 * rename (from, to). ids[] point into buf. Returns the count, or -1 when the call is not an
 * id-bearing route of that shape (refused: the check fails closed). */
int owner_call_ids(const char *call, char *buf, size_t buflen, const char **ids);

#endif
