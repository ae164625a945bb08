/* test_redis_script.c - libshop/redis's server-side scripts against the local stack's Redis
 * (REDIS_HOST/REDIS_PORT, which tests/run exports; without them nothing runs here): the counter
 * stored with its new record in one call, the EVAL fallback after SCRIPT FLUSH, and the
 * optimistic update's compare-and-set - a write made by someone else between its read and its
 * write (present or absent key) is seen as a conflict and the update recomputed from the new
 * value, on the blocking connection and from coroutines of an event loop sharing its pipeline;
 * and the counter with an append to a JSON document's array in one call (shop_redis_incr_append).
 */
#include "libshop/log.h"
#include "libshop/loop.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "tests/unit/check.h"
#include "tests/unit/redis_live.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
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

static void test_incr_store(void)
{
    char counter[96], key[96], *val;
    size_t len;
    long long a = 0, b = 0;
    struct shop_err err;
    key_name(counter, sizeof(counter), "counter");
    key_name(key, sizeof(key), "rec");
    CHECK(shop_redis_incr_store(counter, key, 60, "{\"id\":\"x-", "\"}", &a, &err) == 0);
    CHECK(a == 1);
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    CHECK_STR(val, "{\"id\":\"x-1\"}");
    free(val);
    raw_do("SCRIPT FLUSH", NULL, NULL); /* EVALSHA answers NOSCRIPT: EVAL takes over */
    CHECK(shop_redis_incr_store(counter, key, 60, "n=", "", &b, &err) == 0);
    CHECK(b == 2);
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    CHECK_STR(val, "n=2");
    free(val);
    redisReply *r = redisCommand(raw, "TTL %s", key);
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 60);
    if (r)
        freeReplyObject(r);
}

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

/* The SHA-1s written in redis.c are the scripts' own: once Redis has the scripts (EVAL taught
 * it any it lacked), every call is one EVALSHA and none falls back to EVAL. */
static void test_sha_written_right(void)
{
    char counter[96], key[96];
    long long n;
    struct shop_err err;
    key_name(counter, sizeof(counter), "sha-counter");
    key_name(key, sizeof(key), "sha-count");
    CHECK(shop_redis_incr_store(counter, key, 60, "", "", &n, &err) == 0);
    CHECK(shop_redis_update(key, 60, add_one, NULL, &err) == 0);
    CHECK(shop_redis_incr_append(counter, key, "ids", "", 4, 60, &n, &err) == SHOP_REDIS_NOT_DOC);
    raw_do("CONFIG RESETSTAT", NULL, NULL);
    CHECK(shop_redis_incr_store(counter, key, 60, "", "", &n, &err) == 0);
    CHECK(shop_redis_update(key, 60, add_one, NULL, &err) == 0);
    CHECK(shop_redis_incr_append(counter, key, "ids", "", 4, 60, &n, &err) == SHOP_REDIS_NOT_DOC);
    redisReply *r = redisCommand(raw, "INFO commandstats");
    CHECK(r && r->type == REDIS_REPLY_STRING);
    const char *stats = r && r->str ? r->str : "";
    CHECK(strstr(stats, "cmdstat_evalsha:calls=3,") != NULL);
    CHECK(strstr(stats, "cmdstat_eval:") == NULL);
    if (r)
        freeReplyObject(r);
}

/* ---- shop_redis_incr_append ---- */

static void check_value(const char *key, const char *want)
{
    char *val = NULL;
    size_t len;
    struct shop_err err;
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    CHECK_STR(val, want);
    free(val);
}

/* key holds a JSON document equal to want's (key order and escapes aside). */
static void check_doc(const char *key, const char *want)
{
    char *val = NULL;
    size_t len;
    struct shop_err err;
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    json_t *got = val ? json_loads(val, 0, NULL) : NULL, *exp = json_loads(want, 0, NULL);
    CHECK(got != NULL && exp != NULL && json_equal(got, exp));
    if (!(got && exp && json_equal(got, exp)))
        printf("  got %s\n  want %s\n", val ? val : "(none)", want);
    json_decref(got);
    json_decref(exp);
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

/* The counter's value appended with its prefix, the oldest dropped past the cap, the TTL
 * refreshed, and every other field (a user, a "/", nested values, non-ASCII text) kept. */
static void incr_append_writes(void)
{
    char counter[96], key[96];
    long long n = 0;
    struct shop_err err;
    key_name(counter, sizeof(counter), "ia-counter");
    key_name(key, sizeof(key), "ia-doc");
    raw_do(
        "SET %s %s EX 1000", key,
        "{\"ids\":[\"a\"],\"user\":\"us/er\",\"x\":{\"l\":[1,2.5,\"\\u00e9\",null]},\"t\":true}");
    CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 3, 60, &n, &err) ==
          SHOP_REDIS_APPENDED);
    CHECK(n == 1);
    check_doc(key,
              "{\"ids\":[\"a\",\"p-1\"],\"user\":\"us/er\",\"x\":{\"l\":[1,2.5,\"\\u00e9\",null]},"
              "\"t\":true}");
    CHECK(ttl_of(key) > 0 && ttl_of(key) <= 60);
    for (int i = 0; i < 3; i++)
        CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 3, 60, &n, &err) ==
              SHOP_REDIS_APPENDED);
    CHECK(n == 4);
    check_doc(key, "{\"ids\":[\"p-2\",\"p-3\",\"p-4\"],\"user\":\"us/er\",\"x\":{\"l\":[1,2.5,"
                   "\"\\u00e9\",null]},\"t\":true}");
    raw_do("SET %s %s", key, "{\"ids\":[]}"); /* an empty array is one */
    CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 3, 60, &n, &err) ==
          SHOP_REDIS_APPENDED);
    check_value(key, "{\"ids\":[\"p-5\"]}");
}

/* An absent key is not created, a value that is no JSON object with that array field is left
 * alone; the counter counts all the same. A key or counter Redis cannot use is an error. */
static void incr_append_leaves_alone(void)
{
    static const char *const bad[] = {"nope",
                                      "[\"ids\"]",
                                      "\"ids\"",
                                      "{\"ids\":\"x\"}",
                                      "{\"ids\":{\"a\":1}}",
                                      "{\"other\":[]}",
                                      "{\"ids\":[1e400]}",
                                      "{\"ids\":[1,2"};
    char counter[96], key[96], list[96];
    long long n = 0;
    struct shop_err err;
    key_name(counter, sizeof(counter), "ial-counter");
    key_name(key, sizeof(key), "ial-doc");
    key_name(list, sizeof(list), "ial-list");
    CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 3, 60, &n, &err) == SHOP_REDIS_NO_KEY);
    CHECK(n == 1 && ttl_of(key) == -2); /* -2: no such key */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_do("SET %s %s", key, bad[i]);
        CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 3, 60, &n, &err) ==
              SHOP_REDIS_NOT_DOC);
        CHECK(n == (long long)i + 2);
        check_value(key, bad[i]);
        CHECK(ttl_of(key) == -1); /* no TTL set either */
    }
    raw_do("RPUSH %s %s", list, "x");
    err = (struct shop_err){0};
    CHECK(shop_redis_incr_append(counter, list, "ids", "p-", 3, 60, &n, &err) == -1);
    CHECK(err.kind == SHOP_ERR_FAILED);
    raw_do("SET %s %s", counter, "not-a-number");
    raw_do("SET %s %s", key, "{\"ids\":[]}");
    err = (struct shop_err){0};
    CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 3, 60, &n, &err) == -1);
    CHECK(err.kind == SHOP_ERR_FAILED);
    check_value(key, "{\"ids\":[]}");
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

static void incr_append_round_trips(void)
{
    char counter[96], key[96];
    long long n = 0, idle = 1000, trips = 1000;
    struct shop_err err;
    key_name(counter, sizeof(counter), "rt-counter");
    key_name(key, sizeof(key), "rt-doc");
    raw_do("SET %s %s", key, "{\"ids\":[]}");
    CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 48, 60, &n, &err) == 1);
    for (int i = 0; i < 5; i++) { /* the fewest: another client of this Redis only adds reads */
        long long a = reads_processed(), b = reads_processed();
        idle = b - a < idle ? b - a : idle; /* the INFO itself */
        a = reads_processed();
        CHECK(shop_redis_incr_append(counter, key, "ids", "p-", 48, 60, &n, &err) == 1);
        b = reads_processed();
        trips = b - a - idle < trips ? b - a - idle : trips;
    }
    CHECK(idle == 1);
    CHECK(trips == 1);
}

static void append_job(void *arg)
{
    struct job *j = arg;
    char counter[96];
    struct shop_err err;
    long long n;
    key_name(counter, sizeof(counter), "ia-loop-counter");
    j->rc = 0;
    for (int i = 0; i < UPDATES && j->rc == 0; i++)
        j->rc = shop_redis_incr_append(counter, j->key, "ids", "", 100000, 60, &n, &err) ==
                        SHOP_REDIS_APPENDED
                    ? 0
                    : -1;
    j->finished = true;
}

/* Coroutines of one loop appending to one document through its pipeline: none lost, none fails. */
static void incr_append_loop(void)
{
    char key[96];
    key_name(key, sizeof(key), "ia-loop");
    raw_do("SET %s %s", key, "{\"ids\":[]}");
    struct shop_loop *l = shop_loop_new();
    CHECK(l != NULL);
    if (!l)
        return;
    struct job jobs[COROUTINES];
    for (int i = 0; i < COROUTINES; i++) {
        jobs[i] = (struct job){.key = key, .rc = -9};
        shop_co_start(append_job, NULL, &jobs[i]);
    }
    run_loop(l);
    int ok = 0;
    for (int i = 0; i < COROUTINES; i++)
        ok += jobs[i].finished && jobs[i].rc == 0;
    CHECK(ok == COROUTINES);
    shop_loop_free(l);
    char *val = NULL;
    size_t len;
    struct shop_err err;
    CHECK(shop_redis_get(key, &val, &len, &err) == 1);
    json_t *doc = val ? json_loads(val, 0, NULL) : NULL;
    json_t *ids = json_object_get(doc, "ids");
    CHECK(json_array_size(ids) == COROUTINES * UPDATES);
    bool in_order = true; /* the counter's values, each once, in the order they were given */
    for (size_t i = 0; i < json_array_size(ids); i++)
        in_order = in_order && json_string_value(json_array_get(ids, i)) &&
                   atoll(json_string_value(json_array_get(ids, i))) == (long long)i + 1;
    CHECK(in_order);
    json_decref(doc);
    free(val);
}

static void test_incr_append(void)
{
    incr_append_writes();
    incr_append_leaves_alone();
    incr_append_round_trips();
    incr_append_loop();
}

int main(void)
{
    shop_log_set_level("error");
    if (!live_open("redis_script"))
        return check_report("redis_script");
    test_incr_store();
    test_update_blocking();
    test_update_loops();
    test_sha_written_right();
    test_incr_append();
    live_close();
    return check_report("redis_script");
}
