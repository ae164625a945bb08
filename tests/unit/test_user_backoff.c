/* test_user_backoff.c - the login back-off of the user service: free failures, the first wait,
 * doubling to the cap, pairs kept apart, success and time forgetting, a full table. */
#include "services/user/backoff.c"
#include "tests/unit/check.h"

#include <stdio.h>

static const struct backoff_conf conf = {3, 1000, 8000, 60000};

static void fail_n(const char *name, const char *client, int n, long long at)
{
    for (int i = 0; i < n; i++)
        backoff_failed(name, client, at);
}

static void test_waits(void)
{
    backoff_setup(&conf);
    fail_n("stan", "10.0.0.1", 2, 0);
    CHECK(backoff_wait("stan", "10.0.0.1", 0) == 0); /* still free */
    backoff_failed("stan", "10.0.0.1", 0);
    CHECK(backoff_wait("stan", "10.0.0.1", 0) == 1000);
    CHECK(backoff_wait("stan", "10.0.0.1", 400) == 600);
    CHECK(backoff_wait("stan", "10.0.0.1", 1000) == 0);
    backoff_failed("stan", "10.0.0.1", 1000);
    CHECK(backoff_wait("stan", "10.0.0.1", 1000) == 2000); /* doubled */
    fail_n("stan", "10.0.0.1", 10, 5000);
    CHECK(backoff_wait("stan", "10.0.0.1", 5000) == 8000); /* capped */
    /* other pairs are untouched: same name elsewhere, same address for another name */
    CHECK(backoff_wait("stan", "10.0.0.2", 5000) == 0);
    CHECK(backoff_wait("user", "10.0.0.1", 5000) == 0);
    CHECK(backoff_wait("stan10.0.0.1", "", 5000) == 0);
    /* a success forgets the pair */
    backoff_succeeded("stan", "10.0.0.1");
    CHECK(backoff_wait("stan", "10.0.0.1", 5000) == 0);
    backoff_failed("stan", "10.0.0.1", 5000);
    CHECK(backoff_wait("stan", "10.0.0.1", 5000) == 0);
}

static void test_forgotten_after_a_quiet_hour(void)
{
    backoff_setup(&conf);
    fail_n("user", "::1", 3, 0);
    CHECK(backoff_wait("user", "::1", 0) == 1000);
    backoff_failed("user", "::1", 70000); /* a minute after: starts afresh */
    CHECK(backoff_wait("user", "::1", 70000) == 0);
}

static void test_full_table(void)
{
    backoff_setup(&conf);
    fail_n("victim", "1.2.3.4", 3, 10); /* locked */
    char name[32];
    for (int i = 0; i < SLOTS + 10; i++) { /* more pairs than the table holds */
        snprintf(name, sizeof(name), "n%d", i);
        backoff_failed(name, "5.6.7.8", 20 + i);
    }
    /* the oldest records gave way; the newest are kept */
    CHECK(backoff_wait("victim", "1.2.3.4", 30) == 0);
    fail_n(name, "5.6.7.8", 2, 20 + SLOTS + 10);
    CHECK(backoff_wait(name, "5.6.7.8", 20 + SLOTS + 10) == 1000);
}

int main(void)
{
    test_waits();
    test_forgotten_after_a_quiet_hour();
    test_full_table();
    return check_report("user_backoff");
}
