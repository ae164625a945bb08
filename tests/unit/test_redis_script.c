/* test_redis_script.c - libshop/redis's server-side scripts against the local stack's Redis
 * (REDIS_HOST/REDIS_PORT, which tests/run exports; without them nothing runs here): the counter
 * stored with its new record in one call, the EVAL fallback after SCRIPT FLUSH, and the
 * optimistic update's compare-and-set - a write made by someone else between its read and its
 * write (present or absent key) is seen as a conflict and the update recomputed from the new
 * value, on the blocking connection and from coroutines of an event loop sharing its pipeline;
 * and the sorted-set calls of the user service's sessions: the counter added to a set in one call
 * (shop_redis_incr_zadd), members looked up with the TTL refreshed, a set moved to a new key with
 * a new top member, and a JSON document of the release before turned into a set.
 */
#include "libshop/log.h"
#include "libshop/loop.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "tests/unit/check.h"
#include "tests/unit/redis_live.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOOPS      4
#define COROUTINES 50
#define UPDATES    20 /* each, one after the other: the key is contended all along */

static atomic_int jobs_ok;

/* An update fn that appends "+" and, on its first call, lets another client write the key
 * between the update's read and its write. */
struct meddle {
    const char *key;
    const char *other; /* what the other client writes */
    int calls;
    char seen[64]; /* the value the last call saw ("-" when absent) */
};

static int meddle_fn(const char *cur, size_t len, void *ud, char **out)
{
    struct meddle *m = ud;
    (void)len;
    snprintf(m->seen, sizeof(m->seen), "%s", cur ? cur : "-");
    if (m->calls++ == 0)
        raw_do("SET %s %s", m->key, m->other);
    size_t n = strlen(m->seen) + 2;
    *out = shop_xmalloc(n);
    snprintf(*out, n, "%s+", m->seen);
    return 0;
}

static void check_meddled(const char *what, const char *start)
{
    char key[96], *val = NULL;
    size_t len;
    struct shop_err err;
    key_name(key, sizeof(key), what);
    if (start)
        raw_do("SET %s %s", key, start);
    struct meddle m = {.key = key, .other = "theirs"};
    CHECK(shop_redis_update(key, 60, meddle_fn, &m, &err) == 0);
    CHECK(m.calls == 2);         /* the conflict made it read again */
    CHECK_STR(m.seen, "theirs"); /* and compute from the other client's value */
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    CHECK_STR(val, "theirs+"); /* nothing the other client wrote is lost */
    free(val);
}

/* fn that declines: the key stays as it is. */
static int decline(const char *cur, size_t len, void *ud, char **out)
{
    (void)cur;
    (void)len;
    (void)ud;
    (void)out;
    return 7;
}

static void test_update_blocking(void)
{
    check_meddled("present", "mine");
    check_meddled("absent", NULL);
    char key[96];
    struct shop_err err;
    key_name(key, sizeof(key), "declined");
    CHECK(shop_redis_update(key, 60, decline, NULL, &err) == 7);
    CHECK(shop_redis_update(key, 60, add_one, NULL, &err) == 0);
    CHECK(shop_redis_update(key, 60, add_one, NULL, &err) == 0);
    char *val = NULL;
    size_t len;
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    CHECK_STR(val, "2");
    free(val);
}

struct job {
    const char *key;
    int rc;
    bool finished;
};

static void job_fn(void *arg)
{
    struct job *j = arg;
    struct shop_err err;
    j->rc = 0;
    for (int i = 0; i < UPDATES && j->rc == 0; i++)
        j->rc = shop_redis_update(j->key, 60, add_one, NULL, &err);
    j->finished = true;
}

static void meddle_job(void *arg)
{
    (void)arg;
    check_meddled("loop-present", "mine");
    check_meddled("loop-absent", NULL);
}

static void run_loop(struct shop_loop *l)
{
    for (int i = 0; i < 20000 && shop_loop_busy() > 0; i++) {
        shop_loop_tick(l);
        shop_loop_poll(l, 10);
    }
    CHECK(shop_loop_busy() == 0);
}

/* Coroutines of one loop, its thread's: their reads and writes share the loop's pipelined
 * connection; updates of one key wait for their turn. ok counts the jobs that succeeded. */
static void *loop_thread(void *arg)
{
    const char *key = arg;
    struct shop_loop *l = shop_loop_new();
    if (!l)
        return NULL;
    struct job jobs[COROUTINES];
    for (int i = 0; i < COROUTINES; i++) {
        jobs[i] = (struct job){.key = key, .rc = -9};
        shop_co_start(job_fn, NULL, &jobs[i]);
    }
    for (int i = 0; i < 100000 && shop_loop_busy() > 0; i++) {
        shop_loop_tick(l);
        shop_loop_poll(l, 10);
    }
    for (int i = 0; i < COROUTINES; i++)
        atomic_fetch_add(&jobs_ok, jobs[i].finished && jobs[i].rc == 0);
    shop_loop_free(l);
    shop_redis_cleanup();
    return NULL;
}

/* Several loops (threads) of coroutines updating one key all along: none is lost, none gives up. */
static void test_update_loops(void)
{
    struct shop_loop *l = shop_loop_new();
    CHECK(l != NULL);
    if (!l)
        return;
    shop_co_start(meddle_job, NULL, NULL);
    run_loop(l);
    shop_loop_free(l);
    char key[96], *val = NULL;
    size_t len;
    struct shop_err err;
    key_name(key, sizeof(key), "loop-count");
    pthread_t t[LOOPS];
    for (int i = 0; i < LOOPS; i++)
        CHECK(pthread_create(&t[i], NULL, loop_thread, key) == 0);
    for (int i = 0; i < LOOPS; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&jobs_ok) == LOOPS * COROUTINES);
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    CHECK(val && atoi(val) == LOOPS * COROUTINES * UPDATES);
    free(val);
}

/* ---- sorted sets ---- */

static void check_value(const char *key, const char *want)
{
    char *val = NULL;
    size_t len;
    struct shop_err err;
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    CHECK_STR(val, want);
    free(val);
}

static long long ttl_of(const char *key)
{
    redisReply *r = redisCommand(raw, "TTL %s", key);
    long long t = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -9;
    if (r)
        freeReplyObject(r);
    return t;
}

/* The sorted set at key, lowest score first, as "member:score member:score ...". */
static void check_set(const char *key, const char *want)
{
    char got[4096] = "";
    size_t used = 0;
    redisReply *r = redisCommand(raw, "ZRANGE %s 0 -1 WITHSCORES", key);
    CHECK(r && r->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        used += (size_t)snprintf(got + used, used < sizeof(got) ? sizeof(got) - used : 0, "%s%s:%s",
                                 i ? " " : "", r->element[i]->str, r->element[i + 1]->str);
    CHECK_STR(got, want);
    if (r)
        freeReplyObject(r);
}

/* The counter's value added with its prefix (a new set made only when asked), the lowest scores
 * dropped past the cap (a member at +inf stays), the TTL set, EVAL when Redis lacks the script. */
static void incr_zadd_writes(void)
{
    char counter[96], key[96];
    long long n = 0;
    struct shop_err err;
    key_name(counter, sizeof(counter), "iz-counter");
    key_name(key, sizeof(key), "iz-set");
    CHECK(shop_redis_incr_zadd(counter, key, "p-", 3, 60, true, &n, &err) == SHOP_REDIS_DONE);
    CHECK(n == 1);
    check_set(key, "p-1:1");
    CHECK(ttl_of(key) > 0 && ttl_of(key) <= 60);
    raw_do("ZADD %s +inf %s", key, "us/er");
    raw_do("EXPIRE %s 1000", key, NULL);
    raw_do("SCRIPT FLUSH", NULL, NULL); /* EVALSHA answers NOSCRIPT: EVAL takes over */
    CHECK(shop_redis_incr_zadd(counter, key, "p-", 3, 60, false, &n, &err) == SHOP_REDIS_DONE);
    CHECK(n == 2 && ttl_of(key) <= 60);
    check_set(key, "p-1:1 p-2:2 us/er:inf");
    for (int i = 0; i < 3; i++)
        CHECK(shop_redis_incr_zadd(counter, key, "p-", 3, 60, false, &n, &err) == SHOP_REDIS_DONE);
    CHECK(n == 5);
    check_set(key, "p-4:4 p-5:5 us/er:inf");
    raw_do("SET %s %s", counter, "123456789012345"); /* past Lua's %.14g: written whole */
    CHECK(shop_redis_incr_zadd(counter, key, "p-", 3, 60, false, &n, &err) == SHOP_REDIS_DONE);
    check_set(key, "p-5:5 p-123456789012346:123456789012346 us/er:inf");
}

/* Without create an absent key stays absent; a key of another type is left alone (TTL aside);
 * the counter counts all the same. A counter Redis cannot increment is an error. */
static void incr_zadd_leaves_alone(void)
{
    char counter[96], key[96], list[96];
    long long n = 0;
    struct shop_err err;
    key_name(counter, sizeof(counter), "izl-counter");
    key_name(key, sizeof(key), "izl-doc");
    key_name(list, sizeof(list), "izl-list");
    CHECK(shop_redis_incr_zadd(counter, key, "p-", 3, 60, false, &n, &err) == SHOP_REDIS_NO_KEY);
    CHECK(n == 1 && ttl_of(key) == -2); /* -2: no such key */
    raw_do("SET %s %s", key, "{\"ids\":[]}");
    CHECK(shop_redis_incr_zadd(counter, key, "p-", 3, 60, false, &n, &err) ==
          SHOP_REDIS_WRONG_TYPE);
    CHECK(n == 2);
    check_value(key, "{\"ids\":[]}");
    raw_do("RPUSH %s %s", list, "x");
    CHECK(shop_redis_incr_zadd(counter, list, "p-", 3, 60, false, &n, &err) ==
          SHOP_REDIS_WRONG_TYPE);
    raw_do("SET %s %s", counter, "not-a-number");
    raw_do("DEL %s", key, NULL);
    err = (struct shop_err){0};
    CHECK(shop_redis_incr_zadd(counter, key, "p-", 3, 60, true, &n, &err) == -1);
    CHECK(err.kind == SHOP_ERR_FAILED);
    CHECK(ttl_of(key) == -2);
    check_value(counter, "not-a-number");
}

/* One call is one round trip: Redis processes one read of this process's connection. */
static long long reads_processed(void)
{
    redisReply *r = redisCommand(raw, "INFO stats");
    const char *at =
        r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "total_reads_processed:") : NULL;
    long long n = at ? atoll(at + strlen("total_reads_processed:")) : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

static void incr_zadd_round_trips(void)
{
    char counter[96], key[96];
    long long n = 0, idle = 1000, trips = 1000;
    struct shop_err err;
    key_name(counter, sizeof(counter), "rt-counter");
    key_name(key, sizeof(key), "rt-set");
    CHECK(shop_redis_incr_zadd(counter, key, "p-", 48, 60, true, &n, &err) == SHOP_REDIS_DONE);
    for (int i = 0; i < 5; i++) { /* the fewest: another client of this Redis only adds reads */
        long long a = reads_processed(), b = reads_processed();
        idle = b - a < idle ? b - a : idle; /* the INFO itself */
        a = reads_processed();
        CHECK(shop_redis_incr_zadd(counter, key, "p-", 48, 60, false, &n, &err) == SHOP_REDIS_DONE);
        b = reads_processed();
        trips = b - a - idle < trips ? b - a - idle : trips;
    }
    CHECK(idle == 1);
    CHECK(trips == 1);
}

static void zadd_job(void *arg)
{
    struct job *j = arg;
    char counter[96];
    struct shop_err err;
    long long n;
    key_name(counter, sizeof(counter), "iz-loop-counter");
    j->rc = 0;
    for (int i = 0; i < UPDATES && j->rc == 0; i++)
        j->rc = shop_redis_incr_zadd(counter, j->key, "", 100000, 60, false, &n, &err) ==
                        SHOP_REDIS_DONE
                    ? 0
                    : -1;
    j->finished = true;
}

/* Coroutines of one loop adding to one set through its pipeline: none lost, none fails; each
 * member is the counter value it is scored by, each value once. */
static void incr_zadd_loop(void)
{
    char key[96];
    key_name(key, sizeof(key), "iz-loop");
    raw_do("ZADD %s +inf %s", key, "top");
    struct shop_loop *l = shop_loop_new();
    CHECK(l != NULL);
    if (!l)
        return;
    struct job jobs[COROUTINES];
    for (int i = 0; i < COROUTINES; i++) {
        jobs[i] = (struct job){.key = key, .rc = -9};
        shop_co_start(zadd_job, NULL, &jobs[i]);
    }
    run_loop(l);
    int ok = 0;
    for (int i = 0; i < COROUTINES; i++)
        ok += jobs[i].finished && jobs[i].rc == 0;
    CHECK(ok == COROUTINES);
    shop_loop_free(l);
    redisReply *r = redisCommand(raw, "ZRANGE %s 0 -1 WITHSCORES", key);
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 * (COROUTINES * UPDATES + 1));
    bool in_order = true;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 2 < r->elements; i += 2)
        in_order = in_order && atoll(r->element[i]->str) == (long long)i / 2 + 1 &&
                   strcmp(r->element[i]->str, r->element[i + 1]->str) == 0;
    CHECK(in_order);
    if (r)
        freeReplyObject(r);
}

static void test_incr_zadd(void)
{
    incr_zadd_writes();
    incr_zadd_leaves_alone();
    incr_zadd_round_trips();
    incr_zadd_loop();
}

/* The SHA-1s written in redis.c are the scripts' own: once Redis has the scripts (EVAL taught
 * it any it lacked), every call is one EVALSHA and none falls back to EVAL. */
static void test_sha_written_right(void)
{
    char counter[96], key[96], set[96], moved[96];
    long long n;
    struct shop_err err;
    key_name(counter, sizeof(counter), "sha-counter");
    key_name(key, sizeof(key), "sha-count");
    key_name(set, sizeof(set), "sha-set");
    key_name(moved, sizeof(moved), "sha-moved");
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            raw_do("CONFIG RESETSTAT", NULL, NULL);
        CHECK(shop_redis_incr_zadd(counter, set, "", 4, 60, true, &n, &err) == SHOP_REDIS_DONE);
        CHECK(shop_redis_incr_zadd(counter, set, "", 4, 60, false, &n, &err) == SHOP_REDIS_DONE);
        CHECK(shop_redis_update(key, 60, add_one, NULL, &err) == 0);
        CHECK(shop_redis_zmove_top(set, moved, "u", 60, &err) == SHOP_REDIS_DONE);
        CHECK(shop_redis_json_to_zset(moved, "ids", "user", 60, &err) == 0);
    }
    redisReply *r = redisCommand(raw, "INFO commandstats");
    CHECK(r && r->type == REDIS_REPLY_STRING);
    const char *stats = r && r->str ? r->str : "";
    CHECK(strstr(stats, "cmdstat_evalsha:calls=5,") != NULL);
    CHECK(strstr(stats, "cmdstat_eval:") == NULL);
    if (r)
        freeReplyObject(r);
}

/* Members looked up and the TTL refreshed in one call; an absent key or another type told apart. */
static void test_zhas_touch(void)
{
    char key[96], str[96];
    const char *m[] = {"a", "us/er", "b", "c"};
    bool found[4];
    struct shop_err err;
    key_name(key, sizeof(key), "zh-set");
    key_name(str, sizeof(str), "zh-str");
    raw_do("ZADD %s 1 %s", key, "a");
    raw_do("ZADD %s +inf %s", key, "us/er");
    CHECK(shop_redis_zhas_touch(key, 60, 4, m, found, &err) == SHOP_REDIS_DONE);
    CHECK(found[0] && found[1] && !found[2] && !found[3]);
    CHECK(ttl_of(key) > 0 && ttl_of(key) <= 60);
    CHECK(shop_redis_zhas_touch(key, 60, 1, &m[2], found, &err) == SHOP_REDIS_DONE && !found[0]);
    raw_do("DEL %s", key, NULL);
    found[0] = true;
    CHECK(shop_redis_zhas_touch(key, 60, 2, m, found, &err) == SHOP_REDIS_NO_KEY);
    CHECK(!found[0] && !found[1] && ttl_of(key) == -2);
    raw_do("SET %s %s", str, "a");
    CHECK(shop_redis_zhas_touch(str, 60, 1, m, found, &err) == SHOP_REDIS_WRONG_TYPE);
    check_value(str, "a");
    err = (struct shop_err){0};
    CHECK(shop_redis_zhas_touch(key, 60, 0, m, found, &err) == -1 && err.kind == SHOP_ERR_FAILED);
    CHECK(shop_redis_zhas_touch(key, 60, SHOP_REDIS_ZHAS_MAX + 1, m, found, &err) == -1);
}

/* A set moved to a new key: its +inf member replaced by the new top, the old key gone. Without a
 * set to move (absent, NULL, another type) the new key holds the top alone. */
static void test_zmove_top(void)
{
    char src[96], dst[96], dst2[96], str[96];
    struct shop_err err;
    key_name(src, sizeof(src), "zm-src");
    key_name(dst, sizeof(dst), "zm-dst");
    key_name(dst2, sizeof(dst2), "zm-dst2");
    key_name(str, sizeof(str), "zm-str");
    raw_do("ZADD %s 7 %s", src, "a-7");
    raw_do("ZADD %s 9 %s", src, "a-9");
    raw_do("ZADD %s +inf %s", src, "old");
    CHECK(shop_redis_zmove_top(src, dst, "new", 60, &err) == SHOP_REDIS_DONE);
    check_set(dst, "a-7:7 a-9:9 new:inf");
    CHECK(ttl_of(dst) > 0 && ttl_of(dst) <= 60 && ttl_of(src) == -2);
    CHECK(shop_redis_zmove_top(src, dst, "new", 60, &err) == SHOP_REDIS_NO_KEY); /* a resend */
    check_set(dst, "a-7:7 a-9:9 new:inf");
    CHECK(shop_redis_zmove_top(NULL, dst2, "u", 60, &err) == SHOP_REDIS_NO_KEY);
    check_set(dst2, "u:inf");
    CHECK(ttl_of(dst2) > 0 && ttl_of(dst2) <= 60);
    raw_do("DEL %s", dst2, NULL);
    raw_do("SET %s %s", str, "x");
    CHECK(shop_redis_zmove_top(str, dst2, "u", 60, &err) == SHOP_REDIS_WRONG_TYPE);
    check_value(str, "x");
    check_set(dst2, "u:inf");
}

/* The document of the release before becomes a set: ids in order, the user at +inf, the rest
 * dropped; anything else is left alone. */
static void test_json_to_zset(void)
{
    static const char *const bad[] = {
        "nope", "[\"ids\"]", "\"ids\"", "{\"ids\":\"x\"}", "{\"other\":[]}", "{\"ids\":[1,2"};
    char key[96], set[96];
    struct shop_err err;
    key_name(key, sizeof(key), "jz-doc");
    key_name(set, sizeof(set), "jz-set");
    raw_do("SET %s %s", key,
           "{\"ids\":[\"anonymous-3\",5,\"anonymous-9\"],\"user\":\"st/an\",\"x\":{\"l\":[1]}}");
    CHECK(shop_redis_json_to_zset(key, "ids", "user", 60, &err) == 1);
    check_set(key, "anonymous-3:1 anonymous-9:3 st/an:inf");
    CHECK(ttl_of(key) > 0 && ttl_of(key) <= 60);
    CHECK(shop_redis_json_to_zset(key, "ids", "user", 60, &err) == 0); /* a set: left alone */
    check_set(key, "anonymous-3:1 anonymous-9:3 st/an:inf");
    raw_do("SET %s %s", key, "{\"ids\":[],\"user\":7}");
    CHECK(shop_redis_json_to_zset(key, "ids", "user", 60, &err) == 1);
    CHECK(ttl_of(key) == -2); /* owned nothing: gone */
    CHECK(shop_redis_json_to_zset(key, "ids", "user", 60, &err) == 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_do("SET %s %s", key, bad[i]);
        CHECK(shop_redis_json_to_zset(key, "ids", "user", 60, &err) == 0);
        check_value(key, bad[i]);
        CHECK(ttl_of(key) == -1);
    }
}

int main(void)
{
    shop_log_set_level("error");
    if (!live_open("redis_script"))
        return check_report("redis_script");
    test_incr_zadd();
    test_update_blocking();
    test_update_loops();
    test_sha_written_right();
    test_zhas_touch();
    test_zmove_top();
    test_json_to_zset();
    live_close();
    return check_report("redis_script");
}
