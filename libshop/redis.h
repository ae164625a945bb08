/* redis.h - the Redis connection: configuration from the course's variables, one connection
 * per worker thread, short timeouts, reconnect with a fail-fast window while Redis is down,
 * a PING health probe, and optimistic WATCH/MULTI/EXEC updates of one key. */
#ifndef SHOP_REDIS_H
#define SHOP_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

/* Results of every call. UNAVAILABLE = Redis could not be reached (answer 503, D16);
 * ERROR = Redis answered with an error (answer 500). */
enum shop_redis_rc {
    SHOP_REDIS_OK = 0,
    SHOP_REDIS_UNAVAILABLE = -1,
    SHOP_REDIS_ERROR = -2,
};

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

/* Runs one command (hiredis format) on the calling thread's connection, reconnecting once
 * when a reused connection turns out to be broken. On SHOP_REDIS_OK *reply is the answer
 * (never an error reply; free it with freeReplyObject). An error reply gives
 * SHOP_REDIS_ERROR (LOADING/BUSY/MASTERDOWN count as UNAVAILABLE). */
int shop_redis_cmd(redisReply **reply, const char *fmt, ...);

/* Why the calling thread's last call failed (for logs; never contains a password). */
const char *shop_redis_last_error(void);

/* true when PING answers PONG. */
bool shop_redis_ping(void);

/* Decides the new value of a key from its current one. cur is NULL when the key does not
 * exist. Return 0 with *out set (a heap string, freed by the caller) to write it, or a
 * positive code to leave the key alone (returned by shop_redis_update as is). */
typedef int (*shop_redis_update_fn)(const char *cur, size_t len, void *ud, char **out);

/* Atomically replaces key by fn's answer with SETEX ttl (optimistic WATCH/MULTI/EXEC,
 * retried when another client changed the key meanwhile; fn may run several times).
 * Returns SHOP_REDIS_OK when written, fn's positive code, or a negative shop_redis_rc. */
int shop_redis_update(const char *key, long ttl, shop_redis_update_fn fn, void *ud);

#endif
