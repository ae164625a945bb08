/* passwd.h - password hashing for the user service (D4): new hashes are yescrypt (libxcrypt,
 * the Debian system default); verification also accepts legacy bcrypt ($2a$/$2b$/$2y$) and
 * legacy plaintext records, so they can be upgraded on the next successful login. */
#ifndef SHOP_PASSWD_H
#define SHOP_PASSWD_H

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

/* true when stored has the shape of a hash this module understands. */
bool shop_passwd_is_hash(const char *stored);

#endif
