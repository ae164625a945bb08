/* session.h - sessions that own ids (D18; session.c): the cookie given by /uniqueid, /login and
 * /register, the gateway's ownership check and /logout. */
#ifndef USER_SESSION_H
#define USER_SESSION_H

#include "libshop/service.h"

#include <stdbool.h>

/* Reads SHOP_AUTH (default on; off = lab mode, warned), SHOP_SESSION_TTL (default and minimum:
 * CART_TTL_SECONDS, 3600), SHOP_SESSION_NEW_TTL (default 1800: a session no call used since
 * /uniqueid made it). Call once at start. */
void session_init(void);

#define SESSION_ID_SIZE 32 /* "anonymous-" and a counter value, with its NUL */

/* /uniqueid: the next value n of the Redis counter "anonymous-counter" and its id
 * "anonymous-<n>" in id, owned by the caller's session: added to it atomically (its newest
 * OWNER_IDS_MAX ids kept, a logged-in session's user one of them), or a new session (its cookie
 * set) when the caller sent no session token or its session is gone. Sessions off: the id only.
 * Returns true when done; false when it replied with an error (Redis). */
bool session_uniqueid(struct shop_req *req, char id[SESSION_ID_SIZE]);
/* /login, /register: a new session (a new cookie) owning the caller's anonymous ids and user;
 * the caller's old session is deleted (its cookie stops working: no session fixation).
 * Returns true when done; false when it replied with an error. */
bool session_login(struct shop_req *req, const char *user);

/* true for a name /uniqueid may give out ("anonymous-..."): never a user's, or the user would
 * own a future visitor's cart (register answers "name already exists"). */
bool session_name_reserved(const char *name);

/* GET /auth (internal; nginx auth_request): 204 when the session cookie owns every id of the
 * call in X-Shop-Call ("METHOD /api/..."), 401 without a session, 403 otherwise. */
shop_handler route_auth;
/* POST /logout: forgets the caller's session and clears its cookie; 200 "OK". */
shop_handler route_logout;

#endif
