/* test_dispatch.c - dispatch's pure logic: order ids from messages (bad ones never crash,
 * Q-DI1), the simulated work's delays and DISPATCH_ERROR_PERCENT. */
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
    CHECK_STR(id_of("{\"user\":\"u\",\"orderid\":\"\"}", &why), "");
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
    test_delays();
    test_error_percent();
    test_excerpt();
    return check_report("dispatch");
}
