/* test_redis_batch.c - libshop/redis's calls that save round trips (issue 21), against the local
 * stack's Redis (REDIS_HOST/REDIS_PORT, which tests/run exports; without them nothing runs
 * here): an update creating its key with SET NX (no script) and a second key in the same round
 * trip, written only when the key is created; a conflict while creating (someone else creates
 * the key first) loses nothing; several GETs at once; DEL with an EXPIRE of another key. On the
 * blocking connection and from coroutines of event loops sharing their pipelines; a command
 * larger than one write of the pipelined connection gets out whole. */
#include "libshop/log.h"
#include "libshop/loop.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "tests/unit/check.h"
#include "tests/unit/redis_live.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOOPS      3
#define COROUTINES 40
#define CAS_SHA    "7c85614668aec17c421cba4bc20b724341060d6e" /* redis.c's compare-and-set */

static atomic_int jobs_ok;

static long long raw_int(const char *fmt, const char *a)
{
    redisReply *r = raw_cmd(fmt, a, NULL);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -99;
    if (r)
        freeReplyObject(r);
    return n;
}

/* 1 when Redis has the compare-and-set script (SCRIPT EXISTS), 0 when not, -1. */
static int cas_known(void)
{
    redisReply *r = raw_cmd("SCRIPT EXISTS %s", CAS_SHA, NULL);
    int known = r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                        r->element[0]->type == REDIS_REPLY_INTEGER
                    ? (int)r->element[0]->integer
                    : -1;
    if (r)
        freeReplyObject(r);
    return known;
}

/* The value of key as the other client reads it ("-" when absent), in out. */
static const char *raw_get(const char *key, char *out, size_t size)
{
    redisReply *r = raw_cmd("GET %s", key, NULL);
    snprintf(out, size, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "-");
    if (r)
        freeReplyObject(r);
    return out;
}

/* fn that appends "+" and, on its first call, lets the other client create the key between the
 * update's read and its write. */
static int meddle(const char *cur, size_t len, void *ud, char **out)
{
    int *calls = ud;
    (void)len;
    if ((*calls)++ == 0) {
        char key[96];
        key_name(key, sizeof(key), "meddled");
        raw_do("SET %s %s", key, "theirs");
    }
    size_t n = (cur ? strlen(cur) : 0) + 2;
    *out = shop_xmalloc(n);
    snprintf(*out, n, "%s+", cur ? cur : "");
    return 0;
}

/* A new key is written with SET NX and the second key beside it; an existing key is updated
 * (the compare-and-set) and the second key left alone. */
static void test_update_new(void)
{
    char key[96], other[96], v[64];
    struct shop_err err;
    key_name(key, sizeof(key), "new");
    key_name(other, sizeof(other), "new-other");
    struct shop_redis_write w = {.key = other, .val = "n1", .len = 2, .ttl = 90};
    raw_do("SCRIPT FLUSH", NULL, NULL);
    CHECK(shop_redis_update_new(key, 60, add_one, NULL, &w, &err) == 0);
    CHECK(cas_known() == 0); /* created without the script */
    CHECK_STR(raw_get(key, v, sizeof(v)), "1");
    CHECK_STR(raw_get(other, v, sizeof(v)), "n1");
    long long ttl = raw_int("TTL %s", key), ttl2 = raw_int("TTL %s", other);
    CHECK(ttl > 0 && ttl <= 60);
    CHECK(ttl2 > 60 && ttl2 <= 90);
    w.val = "n2";
    CHECK(shop_redis_update_new(key, 60, add_one, NULL, &w, &err) == 0);
    CHECK_STR(raw_get(key, v, sizeof(v)), "2");
    CHECK_STR(raw_get(other, v, sizeof(v)), "n1"); /* the key existed: other untouched */
    /* without a second key: the plain update creates with SET NX too */
    key_name(key, sizeof(key), "new-alone");
    raw_do("SCRIPT FLUSH", NULL, NULL);
    CHECK(shop_redis_update(key, 60, add_one, NULL, &err) == 0);
    CHECK(cas_known() == 0);
    CHECK_STR(raw_get(key, v, sizeof(v)), "1");
}

/* Someone else creates the key first: the update reads it again and builds on it. */
static void test_update_new_conflict(void)
{
    char key[96], other[96], v[64];
    struct shop_err err;
    int calls = 0;
    key_name(key, sizeof(key), "meddled");
    key_name(other, sizeof(other), "meddled-other");
    struct shop_redis_write w = {.key = other, .val = "n", .len = 1, .ttl = 60};
    CHECK(shop_redis_update_new(key, 60, meddle, &calls, &w, &err) == 0);
    CHECK(calls == 2);
    CHECK_STR(raw_get(key, v, sizeof(v)), "theirs+"); /* nothing of theirs lost */
}

static void test_get_n(void)
{
    char a[96], b[96], c[96], list[96];
    key_name(a, sizeof(a), "get-a");
    key_name(b, sizeof(b), "get-b");
    key_name(c, sizeof(c), "get-absent");
    key_name(list, sizeof(list), "get-list");
    raw_do("SET %s %s", a, "alpha");
    raw_do("SET %s %s", b, "");
    raw_do("RPUSH %s %s", list, "x");
    const char *keys[] = {a, c, b};
    char *vals[3];
    size_t lens[3];
    struct shop_err err;
    CHECK(shop_redis_get_n(3, keys, vals, lens, &err) == 0);
    CHECK_STR(vals[0], "alpha");
    CHECK(lens[0] == 5);
    CHECK(vals[1] == NULL && lens[1] == 0);
    CHECK(vals[2] != NULL && lens[2] == 0); /* an empty string is a value */
    for (int i = 0; i < 3; i++)
        free(vals[i]);
    const char *bad[] = {a, list};
    CHECK(shop_redis_get_n(2, bad, vals, lens, &err) == -1);
    CHECK(err.kind == SHOP_ERR_FAILED);
    CHECK(vals[0] == NULL && vals[1] == NULL);
    CHECK(shop_redis_get_n(0, bad, vals, lens, &err) == -1);
}

static void test_del_expire(void)
{
    char key[96], other[96];
    struct shop_err err;
    key_name(key, sizeof(key), "del");
    key_name(other, sizeof(other), "del-other");
    raw_do("SET %s %s", key, "v");
    raw_do("SET %s %s", other, "kept");
    CHECK(shop_redis_del_expire(key, other, 50, &err) == 1);
    CHECK(raw_int("EXISTS %s", key) == 0);
    long long ttl = raw_int("TTL %s", other);
    CHECK(ttl > 0 && ttl <= 50);
    CHECK(shop_redis_del_expire(key, other, 30, &err) == 0);
    ttl = raw_int("TTL %s", other);
    CHECK(ttl > 0 && ttl <= 30);
}

struct job {
    const char *key;
    const char *other;
    bool ok;
};

/* A coroutine: one creating-or-updating add, then the key and the other read at once. */
static void job_fn(void *arg)
{
    struct job *j = arg;
    struct shop_err err;
    struct shop_redis_write w = {.key = j->other, .val = "first", .len = 5, .ttl = 60};
    char *vals[2] = {NULL, NULL};
    size_t lens[2];
    const char *keys[] = {j->key, j->other};
    j->ok = shop_redis_update_new(j->key, 60, add_one, NULL, &w, &err) == 0 &&
            shop_redis_get_n(2, keys, vals, lens, &err) == 0 && vals[0] && atoi(vals[0]) >= 1 &&
            vals[1] && strcmp(vals[1], "first") == 0;
    free(vals[0]);
    free(vals[1]);
}

static void *loop_thread(void *arg)
{
    struct job *proto = arg;
    struct shop_loop *l = shop_loop_new();
    if (!l)
        return NULL;
    struct job jobs[COROUTINES];
    for (int i = 0; i < COROUTINES; i++) {
        jobs[i] = *proto;
        shop_co_start(job_fn, NULL, &jobs[i]);
    }
    for (int i = 0; i < 100000 && shop_loop_busy() > 0; i++) {
        shop_loop_tick(l);
        shop_loop_poll(l, 10);
    }
    for (int i = 0; i < COROUTINES; i++)
        atomic_fetch_add(&jobs_ok, jobs[i].ok);
    shop_loop_free(l);
    shop_redis_cleanup();
    return NULL;
}

/* Loops of coroutines all adding to one absent key at once: one creates it (and writes the
 * other key), none is lost. */
static void test_loops(void)
{
    char key[96], other[96], v[64];
    key_name(key, sizeof(key), "loop");
    key_name(other, sizeof(other), "loop-other");
    struct job proto = {.key = key, .other = other};
    pthread_t t[LOOPS];
    for (int i = 0; i < LOOPS; i++)
        CHECK(pthread_create(&t[i], NULL, loop_thread, &proto) == 0);
    for (int i = 0; i < LOOPS; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&jobs_ok) == LOOPS * COROUTINES);
    CHECK(atoi(raw_get(key, v, sizeof(v))) == LOOPS * COROUTINES);
}

#define BIG_LEN (16 << 20) /* more than a loopback socket takes in one write */

struct big {
    char key[96];
    char *val;
    bool ok;
};

/* A coroutine: SET of a 16 MiB value, then GET of it, compared. */
static void big_fn(void *arg)
{
    struct big *b = arg;
    struct shop_err err;
    char *got = NULL;
    size_t len = 0;
    b->ok = shop_redis_set(b->key, b->val, BIG_LEN, 60, &err) == 0 &&
            shop_redis_get(b->key, &got, &len, &err) == 1 && len == BIG_LEN &&
            memcmp(got, b->val, BIG_LEN) == 0;
    free(got);
}

/* A command larger than the socket takes in one write, alone on the loop's pipelined connection:
 * nothing else is queued behind it and Redis answers nothing before it is whole, so the rest must
 * go out from the connection's own state after the partial write (it fails with the rest left in
 * the buffer: the command times out). The value comes back whole. */
static void test_partial_write(void)
{
    struct shop_loop *l = shop_loop_new();
    struct big b = {.val = malloc(BIG_LEN)};
    key_name(b.key, sizeof(b.key), "big");
    memset(b.val, 'b', BIG_LEN);
    shop_co_start(big_fn, NULL, &b);
    for (int i = 0; i < 100000 && shop_loop_busy() > 0; i++) {
        shop_loop_tick(l);
        shop_loop_poll(l, 60000);
    }
    CHECK(b.ok);
    free(b.val);
    shop_loop_free(l);
    shop_redis_cleanup();
}

int main(void)
{
    shop_log_set_level("error");
    if (!live_open("redis_batch"))
        return check_report("redis_batch");
    test_update_new();
    test_update_new_conflict();
    test_get_n();
    test_del_expire();
    test_loops();
    test_partial_write();
    live_close();
    return check_report("redis_batch");
}
