/* passwd.h - password hashing for the user service (D4): new hashes are yescrypt (libxcrypt,
 * the Debian system default); verification also accepts legacy bcrypt ($2a$/$2b$/$2y$) and
 * legacy plaintext records, so they can be upgraded on the next successful login. */
#ifndef SHOP_PASSWD_H
#define SHOP_PASSWD_H

#include "libshop/metrics.h"

#include <stdbool.h>

/* Hashes password with a fresh random salt at the default yescrypt cost. Returns a heap
 * string "$y$..." (caller frees), or NULL when the system cannot hash (logged). */
char *shop_passwd_hash(const char *password);

/* true when password matches stored: a yescrypt or bcrypt hash is checked with crypt(3);
 * anything else is a legacy plaintext record compared in constant time. */
bool shop_passwd_verify(const char *password, const char *stored);

/* true when stored is not a yescrypt hash of the current cost (plaintext, bcrypt, or an
 * older cost): rewrite it with shop_passwd_hash after a successful verify. */
bool shop_passwd_needs_upgrade(const char *stored);

/* ---- bounded hashing (the user service) ------------------------------------------------------
 * A hash holds its worker thread for its whole run (yescrypt: about 20 ms and 16 MiB). At most
 * 2 run at once (one per core; more only slow every one down); callers beyond wait for a turn.
 * With a limit set, at most that many callers are inside at once (running or waiting): one more
 * is refused at once (SHOP_PASSWD_BUSY, answer 503 with Retry-After), so a login flood can hold
 * at most that many worker threads and the others keep serving every other route. */

enum shop_passwd_rc {
    SHOP_PASSWD_MISMATCH = 0,
    SHOP_PASSWD_MATCH = 1,
    SHOP_PASSWD_BUSY = -1,   /* every admitted slot taken: nothing was computed */
    SHOP_PASSWD_FAILED = -2, /* the system could not hash (logged) */
};

/* At most n callers inside a hash at once; 0 (the default) = no limit, callers wait. Call
 * before serving (the user service: its worker threads - 1). */
void shop_passwd_set_limit(unsigned n);

/* Checks password against stored and always computes exactly one hash, whatever stored is:
 * a yescrypt or bcrypt record is checked with crypt(3); a legacy plaintext record is compared in
 * constant time after a hash with a fresh setting; NULL (no such user) hashes with a fresh setting
 * and answers MISMATCH. So every failed login costs the same. MATCH, MISMATCH, BUSY or FAILED. */
enum shop_passwd_rc shop_passwd_check(const char *password, const char *stored);

/* Hashes password like shop_passwd_hash under the limit: 0 with *out (caller frees), BUSY or
 * FAILED with *out NULL. */
enum shop_passwd_rc shop_passwd_make(const char *password, char **out);

/* Hashes computed, begun and refused as busy, for the user service's /metrics (it registers
 * them). begun - computed = hashes running (or waiting for a core) now. */
extern struct shop_counter shop_passwd_hashes, shop_passwd_hashes_begun, shop_passwd_hashes_busy;

/* true when stored has the shape of a hash this module understands. */
bool shop_passwd_is_hash(const char *stored);

#endif
