/* redis_live.h - what the unit tests of libshop/redis against the local stack's Redis share
 * (REDIS_HOST/REDIS_PORT, which tests/run exports): a second, raw hiredis client that checks what
 * is stored and meddles, keys under a prefix of the run's own, and an update fn that counts.
 * Included by one test file each (its state is that file's own). */
#ifndef TESTS_UNIT_REDIS_LIVE_H
#define TESTS_UNIT_REDIS_LIVE_H

#include "libshop/redis.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static redisContext *raw; /* the second client: "someone else" of the tests */
static char prefix[64];

/* Connects the raw client and libshop's: 1 when the tests can run, 0 when REDIS_HOST/REDIS_PORT
 * are not set (said on stdout) or the connection failed (a failed check). */
static inline int live_open(const char *name)
{
    const char *host = getenv("REDIS_HOST"), *port = getenv("REDIS_PORT");
    if (!host || !port) {
        printf("%s: REDIS_HOST/REDIS_PORT not set: live tests not run\n", name);
        return 0;
    }
    shop_redis_init();
    raw = redisConnect(host, atoi(port));
    CHECK(raw && !raw->err);
    if (!raw || raw->err)
        return 0;
    snprintf(prefix, sizeof(prefix), "unit-%s-%d-%lld-", name, (int)getpid(), shop_now_ns());
    return 1;
}

static inline void live_close(void)
{
    if (raw)
        redisFree(raw);
    shop_redis_cleanup();
}

static inline void key_name(char *out, size_t size, const char *what)
{
    snprintf(out, size, "%s%s", prefix, what);
}

/* A command of the raw client that must not fail: its reply (the caller frees it), or NULL. */
static inline redisReply *raw_cmd(const char *fmt, const char *a, const char *b)
{
    redisReply *r = redisCommand(raw, fmt, a, b);
    CHECK(r != NULL && r->type != REDIS_REPLY_ERROR);
    return r;
}

static inline void raw_do(const char *fmt, const char *a, const char *b)
{
    redisReply *r = raw_cmd(fmt, a, b);
    if (r)
        freeReplyObject(r);
}

/* An update fn that adds one to a decimal counter (absent: 0). */
static inline int add_one(const char *cur, size_t len, void *ud, char **out)
{
    (void)len;
    (void)ud;
    long long n = cur ? atoll(cur) : 0;
    *out = shop_xmalloc(24);
    snprintf(*out, 24, "%lld", n + 1);
    return 0;
}

#endif
