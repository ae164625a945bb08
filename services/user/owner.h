/* owner.h - the pure logic of sessions that own ids (D18; owner.c): the session document, the
 * session cookie's token, and the ids a gateway call names. No I/O. */
#ifndef USER_OWNER_H
#define USER_OWNER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define OWNER_COOKIE    "shop_session"
#define OWNER_TOKEN_LEN 64 /* 32 random bytes in lower-case hex */
#define OWNER_IDS_MAX   48 /* anonymous ids kept per session: the newest */

/* The stored document {"ids": [...], "user"?: name} from its JSON text, or NULL when the text is
 * not one (a session that is treated as absent). New reference. */
json_t *owner_doc_parse(const char *text);
/* {"ids": []}. New reference. */
json_t *owner_doc_new(void);
/* true when doc owns id: its user, or one of its anonymous ids. */
bool owner_owns(const json_t *doc, const char *id);
/* Adds an anonymous id (kept once; past OWNER_IDS_MAX the oldest are dropped). 0 or -1. */
int owner_add_id(json_t *doc, const char *id);
/* Sets the user the session is logged in as. 0 or -1. */
int owner_set_user(json_t *doc, const char *user);

/* The session token in a Cookie header value (may be NULL): the first OWNER_COOKIE value that is
 * OWNER_TOKEN_LEN lower-case hex digits. Returns false when there is none. */
bool owner_cookie_token(const char *cookie, char tok[OWNER_TOKEN_LEN + 1]);

/* The ids a gateway call "METHOD /api/<svc>/<route>/..." names (the path as the gateway routes it:
 * decoded, slashes merged): one for cart, add, update, history, order, confirm and pay, two for
 * rename (from, to). ids[] point into buf. Returns the count, or -1 when the call is not an
 * id-bearing route of that shape (refused: the check fails closed). */
int owner_call_ids(const char *call, char *buf, size_t buflen, const char **ids);

#endif
