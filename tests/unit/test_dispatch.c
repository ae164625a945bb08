/* test_dispatch.c - dispatch's pure logic: order ids from messages (bad ones never crash,
 * Q-DI1), the per-order record's transitions (once per order, bounded attempts), the simulated
 * work's delays and DISPATCH_ERROR_PERCENT. */
#include "services/dispatch/work.c"
#include "tests/unit/check.h"

#include <stdlib.h>

static const char *id_of(const char *body, const char **why)
{
    static char keep[128];
    *why = NULL;
    char *id = work_order_id(body, strlen(body), why);
    if (!id)
        return NULL;
    snprintf(keep, sizeof(keep), "%s", id);
    free(id);
    return keep;
}

static void test_order_id(void)
{
    const char *why;
    CHECK_STR(id_of("{\"orderid\": \"abc-1\", \"user\": \"u\", \"cart\": {}}", &why), "abc-1");
    CHECK(why == NULL);
    /* an empty or overlong id cannot name one order (it is a Redis key): a dead letter */
    CHECK(id_of("{\"user\":\"u\",\"orderid\":\"\"}", &why) == NULL);
    CHECK_STR(why, "empty orderid");
    char big[WORK_ORDERID_MAX + 32];
    snprintf(big, sizeof(big), "{\"orderid\":\"%0*d\"}", WORK_ORDERID_MAX, 7);
    CHECK(id_of(big, &why) != NULL);
    snprintf(big, sizeof(big), "{\"orderid\":\"%0*d\"}", WORK_ORDERID_MAX + 1, 7);
    CHECK(id_of(big, &why) == NULL);
    CHECK_STR(why, "orderid too long");
    CHECK(id_of("garbage", &why) == NULL);
    CHECK_STR(why, "not JSON");
    CHECK(id_of("", &why) == NULL);
    CHECK_STR(why, "not JSON");
    CHECK(id_of("{\"orderid\":", &why) == NULL);
    CHECK_STR(why, "not JSON");
    CHECK(id_of("[\"orderid\"]", &why) == NULL);
    CHECK_STR(why, "not a JSON object");
    CHECK(id_of("42", &why) == NULL);
    CHECK_STR(why, "not a JSON object");
    CHECK(id_of("\"orderid\"", &why) == NULL);
    CHECK_STR(why, "not a JSON object");
    CHECK(id_of("{\"orderid\":42}", &why) == NULL);
    CHECK_STR(why, "no string orderid");
    CHECK(id_of("{\"orderid\":null}", &why) == NULL);
    CHECK_STR(why, "no string orderid");
    CHECK(id_of("{\"id\":\"x\"}", &why) == NULL);
    CHECK_STR(why, "no string orderid");
    /* a body is not NUL-terminated: only len bytes count */
    const char *b = "{\"orderid\":\"z\"}trailing";
    why = NULL;
    char *id = work_order_id(b, 15, &why);
    CHECK(id && strcmp(id, "z") == 0);
    free(id);
    /* embedded NUL bytes are not JSON */
    id = work_order_id("{\"orderid\":\"a\0b\"}", 17, &why);
    CHECK(id == NULL);
}

/* Applies a transition to *rec (a heap string or NULL) like shop_redis_update would. */
static int apply(char **rec, int (*step)(const char *, size_t, long long, char **))
{
    char *out = NULL;
    int rc = step(*rec, *rec ? strlen(*rec) : 0, 1700000000, &out);
    CHECK((rc == WORK_WRITE) == (out != NULL));
    if (out) {
        free(*rec);
        *rec = out;
    }
    return rc;
}

static long max_attempts = 3;

static int begin(const char *cur, size_t len, long long now, char **out)
{
    return work_record_begin(cur, len, max_attempts, now, out);
}

static void check_record(const char *rec, const char *want_state, long want_attempts)
{
    const char *state = NULL;
    long attempts = -1;
    CHECK(work_record_read(rec, strlen(rec), &state, &attempts));
    CHECK_STR(state, want_state);
    CHECK(attempts == want_attempts);
}

static void test_record(void)
{
    char *key = work_record_key("abc-1");
    CHECK_STR(key, "dispatch:order:abc-1");
    free(key);

    /* a first delivery (no record, no begin), killed after the work: its redelivery finds
     * "done" */
    char *rec = NULL;
    CHECK(apply(&rec, work_record_done) == WORK_WRITE);
    check_record(rec, "done", 1);
    CHECK(apply(&rec, begin) == WORK_DONE_BEFORE);
    CHECK(apply(&rec, work_record_done) == WORK_DONE_BEFORE); /* a concurrent twin lost */
    CHECK(apply(&rec, work_record_dead) == WORK_DONE_BEFORE);
    check_record(rec, "done", 1);
    free(rec);
    /* a redelivery that finishes: begin, then done, with its attempts */
    rec = NULL;
    CHECK(apply(&rec, begin) == WORK_WRITE);
    check_record(rec, "working", 2);
    CHECK(apply(&rec, work_record_done) == WORK_WRITE);
    check_record(rec, "done", 2);
    free(rec);

    /* deliveries that never finish: the first records nothing, each redelivery begins; the
     * fourth delivery is one too many, then the order is dead */
    rec = NULL;
    for (int i = 2; i <= 3; i++) {
        CHECK(apply(&rec, begin) == WORK_WRITE);
        check_record(rec, "working", i);
    }
    CHECK(apply(&rec, begin) == WORK_TOO_MANY);
    check_record(rec, "working", 3);
    CHECK(apply(&rec, work_record_dead) == WORK_WRITE);
    check_record(rec, "dead", 3);
    CHECK(apply(&rec, begin) == WORK_DEAD_BEFORE);
    CHECK(apply(&rec, work_record_done) == WORK_DEAD_BEFORE);
    free(rec);

    /* a foreign or damaged value reads as no record and is replaced */
    const char *junk[] = {"",
                          "garbage",
                          "[]",
                          "{\"state\":\"done\"}",
                          "{\"state\":\"gone\",\"attempts\":1}",
                          "{\"state\":\"done\",\"attempts\":-1}",
                          "{\"state\":\"done\",\"attempts\":1.5}"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(*junk); i++) {
        const char *state;
        long attempts;
        CHECK(!work_record_read(junk[i], strlen(junk[i]), &state, &attempts));
        rec = shop_xstrdup(junk[i]);
        CHECK(apply(&rec, begin) == WORK_WRITE);
        check_record(rec, "working", 2);
        free(rec);
    }
    /* the record names its time */
    rec = NULL;
    apply(&rec, begin);
    CHECK(strstr(rec, "\"at\":1700000000") != NULL);
    free(rec);
}

static void test_delays(void)
{
    long lo = 1000, hi = 0;
    for (unsigned r = 0; r < 1000; r++) {
        long d = work_step_delay_ms(-1, r);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CHECK(lo == 42);
    CHECK(hi == 83);
    CHECK(work_step_delay_ms(0, 17) == 0);
    CHECK(work_step_delay_ms(500, 17) == 500);
}

static int fail_count(long percent)
{
    int n = 0;
    for (unsigned r = 0; r < 100; r++)
        n += work_fails(percent, r);
    return n;
}

static void test_error_percent(void)
{
    CHECK(fail_count(0) == 0);
    CHECK(fail_count(1) == 1);
    CHECK(fail_count(37) == 37);
    CHECK(fail_count(100) == 100);
    CHECK(fail_count(-5) == 0);
    CHECK(fail_count(250) == 100);
}

static void test_excerpt(void)
{
    char out[8];
    CHECK_STR(work_excerpt("ab\ncd\x01\xff", 7, out, 7), "ab.cd..");
    CHECK_STR(work_excerpt("abcdefghij", 10, out, 7), "abcdefg");
    CHECK_STR(work_excerpt("", 0, out, 7), "");
}

int main(void)
{
    test_order_id();
    test_record();
    test_delays();
    test_error_percent();
    test_excerpt();
    return check_report("dispatch");
}
