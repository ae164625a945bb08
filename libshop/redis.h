/* redis.h - the Redis connection: configuration from the course's variables, one connection
 * per worker thread (in loop mode one pipelined connection per event loop, shared by the
 * requests waiting on it), short timeouts, reconnect with a fail-fast window while Redis is down,
 * a PING health probe, and calls on one key that take and return bytes: get, set with a TTL,
 * del, incr, an increment stored with a new record in one round trip and an atomic
 * read-modify-write (the last two are server-side scripts). Failures are a struct shop_err (err.h):
 * UNAVAILABLE when Redis cannot be reached or is not serving (LOADING, BUSY, MASTERDOWN, OOM;
 * answer 503, D16), FAILED when it answered with an error (answer 500). */
#ifndef SHOP_REDIS_H
#define SHOP_REDIS_H

#include "libshop/err.h"

#include <stdbool.h>
#include <stddef.h>

struct shop_redis_conf {
    char host[256];
    int port;
    char user[128];
    char pass[128];
    int db;
    long connect_timeout_ms; /* default 500 */
    long command_timeout_ms; /* default 2000 */
    long retry_after_ms;     /* fail fast this long after a failed connect; default 250 */
};

/* Parses a REDIS_URL ("redis://[[user]:pass@]host[:port][/db]") or a REDIS_HOST ("host" or
 * "host:port"; a value with "://" is read as a URL) into conf, port defaulting to def_port.
 * Returns 0, or -1 when the value has another shape. Timeouts are set to their defaults. */
int shop_redis_conf_parse(const char *value, int def_port, struct shop_redis_conf *conf);

/* Reads REDIS_URL|REDIS_HOST (default host "redis") and REDIS_PORT (default 6379, used when
 * the value names no port); a bad value is fatal (D9). Does not connect. */
void shop_redis_init(void);
/* Same with an explicit configuration (tests, tools). */
void shop_redis_init_conf(const struct shop_redis_conf *conf);
/* Frees the calling thread's connection (other threads' go with their thread). */
void shop_redis_cleanup(void);

/* GET key. Returns 1 with *val (a heap copy, NUL-terminated, freed by the caller) and *len,
 * 0 when the key does not exist, -1 with err set (also for a key holding a non-string). */
int shop_redis_get(const char *key, char **val, size_t *len, struct shop_err *err);
/* SETEX key ttl val. Returns 0 or -1 with err set. */
int shop_redis_set(const char *key, const char *val, size_t len, long ttl, struct shop_err *err);
/* DEL key. Returns 1 when it existed, 0 when not, -1 with err set. */
int shop_redis_del(const char *key, struct shop_err *err);
/* INCR key into *value. Returns 0 or -1 with err set. */
int shop_redis_incr(const char *key, long long *value, struct shop_err *err);

/* ---- sorted sets: the user service's sessions (D18) ---------------------------------------- */

/* What a call on a sorted set found at its key. */
enum { SHOP_REDIS_NO_KEY = 0, SHOP_REDIS_DONE = 1, SHOP_REDIS_WRONG_TYPE = 2 };

/* INCR counter into *value and, in the same round trip (a server-side script), ZADD key <value>
 * "<prefix><value>", keep the cap members of key with the highest scores and EXPIRE key ttl; an
 * absent key stays absent. With create, key is a new name (a fresh random one): the set is made
 * with that member and TTL ttl. Returns SHOP_REDIS_DONE, SHOP_REDIS_NO_KEY (nothing written),
 * SHOP_REDIS_WRONG_TYPE (key holds no sorted set: left alone, its TTL aside), or -1 with err set.
 * The counter is incremented whenever the call does not fail. */
int shop_redis_incr_zadd(const char *counter, const char *key, const char *prefix, long cap,
                         long ttl, bool create, long long *value, struct shop_err *err);

#define SHOP_REDIS_ZHAS_MAX 4

/* Whether each of the n members (1 to SHOP_REDIS_ZHAS_MAX) is in the sorted set at key
 * (found[i]), and EXPIRE key ttl, in one round trip (ZSCOREs and EXPIRE, pipelined). Returns
 * SHOP_REDIS_DONE when the key exists (its TTL refreshed), SHOP_REDIS_NO_KEY when not (found all
 * false), SHOP_REDIS_WRONG_TYPE when it holds no sorted set, or -1 with err set. */
int shop_redis_zhas_touch(const char *key, long ttl, int n, const char *const *members, bool *found,
                          struct shop_err *err);

/* In one server-side script: dst becomes the sorted set at src without its members scored +inf,
 * plus top scored +inf, with TTL ttl, and src is deleted. When src is NULL, absent or holds
 * another type, top is added to dst (src left as it is). Returns SHOP_REDIS_DONE (src was a
 * sorted set), SHOP_REDIS_NO_KEY, SHOP_REDIS_WRONG_TYPE, or -1 with err set. */
int shop_redis_zmove_top(const char *src, const char *dst, const char *top, long ttl,
                         struct shop_err *err);

/* Replaces a JSON object stored at key as a string, {"<field>": [strings...], "<top>": string,
 * ...}, by a sorted set in one server-side script: the array's strings scored 1, 2, ... in
 * order, the string top (when present) scored +inf, other fields dropped; TTL ttl. Returns 1
 * when it was replaced, 0 when key holds no such document (absent, another type, not that JSON:
 * left alone), or -1 with err set. */
int shop_redis_json_to_zset(const char *key, const char *field, const char *top, long ttl,
                            struct shop_err *err);

/* SET key val NX EX ttl: writes only when the key does not exist. Returns 1 when written,
 * 0 when the key existed (nothing changed), -1 with err set. */
int shop_redis_set_nx(const char *key, const char *val, size_t len, long ttl, struct shop_err *err);

/* Lists (a queue of byte strings): RPUSH appends val; LINDEX reads the element at index
 * (1 with *val as shop_redis_get gives it, 0 past the end); LREM removes the first element
 * equal to val (returns how many: 0 or 1); LLEN counts. Each returns -1 with err set. */
int shop_redis_rpush(const char *key, const char *val, size_t len, struct shop_err *err);
int shop_redis_lindex(const char *key, long index, char **val, size_t *len, struct shop_err *err);
long shop_redis_lrem(const char *key, const char *val, size_t len, struct shop_err *err);
long shop_redis_llen(const char *key, struct shop_err *err);

/* true when PING answers PONG. */
bool shop_redis_ping(void);

/* Decides the new value of a key from its current one. cur is NULL when the key does not
 * exist. Return 0 with *out set (a heap string, freed by the caller) to write it, or a
 * positive code to leave the key alone (returned by shop_redis_update as is). */
typedef int (*shop_redis_update_fn)(const char *cur, size_t len, void *ud, char **out);

/* Replaces key by fn's answer (with TTL ttl) atomically: no other client's write to the key
 * between fn's read and this write is ever lost (fn may run several times when the key is
 * changed meanwhile: GET, fn, then a compare-and-set script that writes only while the key
 * still holds what fn saw, or SET NX EX when fn saw no key). Returns 0 when written, fn's
 * positive code, or -1 with err set. */
int shop_redis_update(const char *key, long ttl, shop_redis_update_fn fn, void *ud,
                      struct shop_err *err);

/* ---- fewer round trips (issue 21) ------------------------------------------------------- */

/* A second key written with another call, in its round trip: SETEX key ttl val. */
struct shop_redis_write {
    const char *key;
    const char *val;
    size_t len;
    long ttl;
};

/* shop_redis_update that, when it creates key (fn saw no key and its answer was written),
 * writes on_create too (NULL: nothing), in the same round trip: SETEX on_create->key, then SET
 * key NX EX, pipelined. On a conflict (key created meanwhile by someone else) on_create was
 * written all the same and fn runs again on the other's value (no second write of on_create
 * follows, since key exists then). A failed write of on_create alone is logged: key was written
 * and 0 is returned. */
int shop_redis_update_new(const char *key, long ttl, shop_redis_update_fn fn, void *ud,
                          const struct shop_redis_write *on_create, struct shop_err *err);

#define SHOP_REDIS_GET_MAX 8

/* GET of n keys (1 to SHOP_REDIS_GET_MAX) in one round trip (pipelined GETs): vals[i] a heap
 * copy (freed by the caller) with lens[i], or NULL (and 0) when keys[i] does not exist. Returns
 * 0, or -1 with err set (nothing returned; also for a key holding a non-string). */
int shop_redis_get_n(int n, const char *const *keys, char **vals, size_t *lens,
                     struct shop_err *err);

/* DEL key and, in the same round trip, EXPIRE other ttl (whether key existed or not). Returns
 * as shop_redis_del (1 when key existed); a failed EXPIRE alone is logged. */
int shop_redis_del_expire(const char *key, const char *other, long ttl, struct shop_err *err);

#endif
