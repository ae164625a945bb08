/* test_cart_redisconf - the Redis address forms the cart and user services accept
 * (REDIS_URL / REDIS_HOST, contract D9), and the fail-fast answer of a dead Redis. */
#include "libshop/log.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

static void test_forms(void)
{
    struct shop_redis_conf c;
    CHECK(shop_redis_conf_parse("redis", 6379, &c) == 0);
    CHECK_STR(c.host, "redis");
    CHECK(c.port == 6379 && c.db == 0 && !c.pass[0] && !c.user[0]);
    CHECK(c.connect_timeout_ms == 500 && c.command_timeout_ms == 2000 && c.retry_after_ms == 250);
    CHECK(shop_redis_conf_parse("127.0.0.1:7000", 6379, &c) == 0);
    CHECK_STR(c.host, "127.0.0.1");
    CHECK(c.port == 7000);
    CHECK(shop_redis_conf_parse("10.0.0.5", 31021, &c) == 0 && c.port == 31021);
    CHECK(shop_redis_conf_parse("[::1]:6380", 6379, &c) == 0);
    CHECK_STR(c.host, "::1");
    CHECK(c.port == 6380);
    CHECK(shop_redis_conf_parse("redis://cache.internal", 6379, &c) == 0);
    CHECK_STR(c.host, "cache.internal");
    CHECK(c.port == 6379);
    CHECK(shop_redis_conf_parse("redis://:s3cret@h:7001/3", 6379, &c) == 0);
    CHECK_STR(c.host, "h");
    CHECK_STR(c.pass, "s3cret");
    CHECK(c.port == 7001 && c.db == 3 && !c.user[0]);
    CHECK(shop_redis_conf_parse("redis://app:p%40ss@h", 6379, &c) == 0);
    CHECK_STR(c.user, "app");
    CHECK_STR(c.pass, "p@ss");
    CHECK(shop_redis_conf_parse("redis://h:6379/", 6379, &c) == 0 && c.db == 0);
    CHECK(shop_redis_conf_parse("redis://h/x", 6379, &c) == -1);
    CHECK(shop_redis_conf_parse("redis://h/-1", 6379, &c) == -1);
    CHECK(shop_redis_conf_parse("rediss://h", 6379, &c) == -1);
    CHECK(shop_redis_conf_parse("http://h", 6379, &c) == -1);
    CHECK(shop_redis_conf_parse("", 6379, &c) == -1);
    CHECK(shop_redis_conf_parse("h:0", 6379, &c) == -1);
    CHECK(shop_redis_conf_parse("h:99999", 6379, &c) == -1);
    CHECK(shop_redis_conf_parse("redis://", 6379, &c) == -1);
}

/* Nothing listens on 127.0.0.1:1: the first call fails at connect, the next ones inside the
 * fail-fast window do not even try (their error says so), and once the window is over a call
 * dials again. */
static void test_dead_redis(void)
{
    struct shop_redis_conf c;
    shop_redis_conf_parse("127.0.0.1:1", 6379, &c);
    shop_redis_init_conf(&c);
    struct shop_err err;
    long long n = 7;
    char *v = (char *)&c; /* must be reset to NULL */
    size_t len;
    CHECK(shop_redis_incr("anonymous-counter", &n, &err) == -1 && n == 7);
    CHECK(shop_err_unavailable(&err) && strstr(err.msg, "connect") != NULL);
    CHECK(shop_redis_get("x", &v, &len, &err) == -1 && v == NULL);
    CHECK(shop_err_unavailable(&err) && strstr(err.msg, "fail-fast") != NULL);
    CHECK(!shop_redis_ping());
    /* polls until the window is over (a real connect attempt again), for at most 30 s */
    bool dialled = false;
    for (long long end = shop_now_ns() + 30000000000LL; !dialled && shop_now_ns() < end;) {
        CHECK(shop_redis_del("x", &err) == -1 && shop_err_unavailable(&err));
        dialled = strstr(err.msg, "connect") != NULL;
        if (!dialled)
            shop_sleep_ms(10);
    }
    CHECK(dialled);
    shop_redis_cleanup();
}

int main(void)
{
    shop_log_set_level("error");
    test_forms();
    test_dead_redis();
    return check_report("cart_redisconf");
}
