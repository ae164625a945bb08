/* test_amqp.c - libshop/amqp: back-off and confirm bookkeeping, configuration from the
 * environment and, when AMQP_HOST/AMQP_PORT point at a broker (tests/run exports the local
 * stack's), the real thing: confirmed publishes, a prefetch-bounded consumer acked from
 * another thread, redelivery of unacked messages, and fail-fast when the broker is absent. */
#include "libshop/amqp.h"
#include "libshop/log.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void test_backoff(void)
{
    CHECK(shop_amqp_backoff_next(0, 1000, 30000) == 1000);
    CHECK(shop_amqp_backoff_next(1000, 1000, 30000) == 2000);
    CHECK(shop_amqp_backoff_next(8000, 1000, 30000) == 16000);
    CHECK(shop_amqp_backoff_next(16000, 1000, 30000) == 30000);
    CHECK(shop_amqp_backoff_next(30000, 1000, 30000) == 30000);
    long d = 0;
    for (int i = 0; i < 6; i++)
        d = shop_amqp_backoff_next(d, 200, 2000);
    CHECK(d == 2000);
}

static void test_confirm_covers(void)
{
    CHECK(shop_amqp_confirm_covers(5, false, 5));
    CHECK(!shop_amqp_confirm_covers(4, false, 5));
    CHECK(!shop_amqp_confirm_covers(6, false, 5));
    CHECK(shop_amqp_confirm_covers(6, true, 5));
    CHECK(!shop_amqp_confirm_covers(4, true, 5));
}

static void test_conf(void)
{
    unsetenv("AMQP_HOST");
    unsetenv("AMQP_PORT");
    unsetenv("AMQP_USER");
    unsetenv("AMQP_PASS");
    struct shop_amqp_conf c;
    shop_amqp_conf_from_env(&c);
    CHECK_STR(c.host, "rabbitmq");
    CHECK(c.port == 5672);
    CHECK_STR(c.user, "guest");
    CHECK_STR(c.pass, "guest");
    CHECK_STR(c.vhost, "/");
    CHECK_STR(c.exchange, "robot-shop");
    CHECK_STR(c.queue, "orders");
    CHECK_STR(c.routing_key, "orders");
    CHECK(c.timeout_ms > 0 && c.confirm_timeout_ms > 0 && c.heartbeat_s > 0);
    setenv("AMQP_HOST", "mq.internal", 1);
    setenv("AMQP_PORT", "5673", 1);
    setenv("AMQP_USER", "roboshop", 1);
    setenv("AMQP_PASS", "roboshop123", 1);
    shop_amqp_conf_from_env(&c);
    CHECK_STR(c.host, "mq.internal");
    CHECK(c.port == 5673);
    CHECK_STR(c.user, "roboshop");
    CHECK_STR(c.pass, "roboshop123");
}

/* ---- live broker ----------------------------------------------------------------------- */

#define NMSG 25

static struct {
    pthread_mutex_t mu;
    struct shop_amqp_delivery got[4 * NMSG];
    char ids[4 * NMSG][64];
    size_t n;
    size_t redelivered;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};
static char token[64];

static void on_msg(void *ud, const struct shop_amqp_delivery *d)
{
    (void)ud;
    pthread_mutex_lock(&rx.mu);
    if (rx.n < 4 * NMSG) {
        rx.got[rx.n] = *d;
        rx.got[rx.n].body = NULL;
        snprintf(rx.ids[rx.n], sizeof(rx.ids[0]), "%.*s", (int)(d->len < 63 ? d->len : 63),
                 d->body);
        rx.n++;
        rx.redelivered += d->redelivered;
    }
    pthread_mutex_unlock(&rx.mu);
}

static void *run_consumer(void *c)
{
    shop_amqp_consumer_run(c, 200);
    return NULL;
}

static size_t rx_count(void)
{
    pthread_mutex_lock(&rx.mu);
    size_t n = rx.n;
    pthread_mutex_unlock(&rx.mu);
    return n;
}

static void rx_reset(void)
{
    pthread_mutex_lock(&rx.mu);
    rx.n = 0;
    rx.redelivered = 0;
    pthread_mutex_unlock(&rx.mu);
}

/* Waits up to ms for want deliveries, acking each from this (non-consumer) thread when ack. */
static size_t collect(struct shop_amqp_consumer *c, size_t want, long ms, bool ack)
{
    size_t acked = 0;
    long long end = shop_now_ns() + ms * 1000000LL;
    while (shop_now_ns() < end) {
        pthread_mutex_lock(&rx.mu);
        size_t n = rx.n;
        for (; ack && acked < n; acked++)
            shop_amqp_consumer_ack(c, rx.got[acked].generation, rx.got[acked].tag);
        pthread_mutex_unlock(&rx.mu);
        if (n >= want)
            return n;
        shop_sleep_ms(10);
    }
    return rx_count();
}

/* Waits, at most 30 s, until c has no delivery in flight (the acks were sent). */
static bool settled(struct shop_amqp_consumer *c)
{
    for (long long end = shop_now_ns() + 30000000000LL; shop_now_ns() < end; shop_sleep_ms(10))
        if (shop_amqp_consumer_in_flight(c) == 0)
            return true;
    return false;
}

static size_t count_token(void)
{
    size_t k = 0;
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++)
        k += strstr(rx.ids[i], token) != NULL;
    pthread_mutex_unlock(&rx.mu);
    return k;
}

static void drain_queue(const struct shop_amqp_conf *conf)
{
    /* earlier aborted runs may have left messages: consume and ack them all */
    rx_reset();
    struct shop_amqp_consumer *c = shop_amqp_consumer_new(conf, 50, on_msg, NULL);
    pthread_t t;
    pthread_create(&t, NULL, run_consumer, c);
    collect(c, 1000000, 500, true);
    shop_amqp_consumer_stop(c);
    pthread_join(t, NULL);
    shop_amqp_consumer_free(c);
    rx_reset();
}

static void test_live_roundtrip(const struct shop_amqp_conf *conf)
{
    struct shop_err err;
    char body[128];
    drain_queue(conf);
    shop_amqp_publisher_init(conf);
    int fails = 0;
    for (int i = 0; i < NMSG; i++) {
        snprintf(body, sizeof(body), "{\"orderid\":\"%s-%d\"}", token, i);
        if (shop_amqp_publish(body, strlen(body), &err) != 0) {
            fprintf(stderr, "publish: %s\n", err.msg);
            fails++;
        }
    }
    CHECK(fails == 0);
    CHECK(shop_amqp_publisher_ping(&err));
    unsigned messages = 0, consumers = 9;
    CHECK(shop_amqp_queue_info(conf, &messages, &consumers, &err) == 0);
    CHECK(messages == NMSG); /* persisted and queued before any consumer ran */
    CHECK(consumers == 0);

    /* prefetch 5: without acks from this thread the consumer would stall at 5 */
    struct shop_amqp_consumer *c = shop_amqp_consumer_new(conf, 5, on_msg, NULL);
    pthread_t t;
    pthread_create(&t, NULL, run_consumer, c);
    size_t n = collect(c, NMSG, 10000, true);
    CHECK(n == NMSG);
    CHECK(count_token() == NMSG);
    CHECK(shop_amqp_consumer_connected(c));
    CHECK(settled(c));
    shop_amqp_consumer_stop(c);
    pthread_join(t, NULL);
    CHECK(!shop_amqp_consumer_connected(c));
    shop_amqp_consumer_free(c);
    CHECK(shop_amqp_queue_info(conf, &messages, &consumers, &err) == 0);
    CHECK(messages == 0);
}

/* Unacked deliveries go back to the queue when the consumer stops, flagged redelivered. */
static void test_live_redelivery(const struct shop_amqp_conf *conf)
{
    struct shop_err err;
    char body[128];
    rx_reset();
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), "{\"orderid\":\"%s-r%d\"}", token, i);
        CHECK(shop_amqp_publish(body, strlen(body), &err) == 0);
    }
    struct shop_amqp_consumer *c = shop_amqp_consumer_new(conf, 10, on_msg, NULL);
    pthread_t t;
    pthread_create(&t, NULL, run_consumer, c);
    CHECK(collect(c, 3, 5000, false) == 3);
    CHECK(shop_amqp_consumer_in_flight(c) == 3);
    shop_amqp_consumer_stop(c); /* drain_ms 200: gives up on the 3 unacked, which go back */
    pthread_join(t, NULL);
    shop_amqp_consumer_free(c);
    rx_reset();
    c = shop_amqp_consumer_new(conf, 10, on_msg, NULL);
    pthread_create(&t, NULL, run_consumer, c);
    CHECK(collect(c, 3, 5000, true) == 3);
    pthread_mutex_lock(&rx.mu);
    CHECK(rx.redelivered == 3);
    pthread_mutex_unlock(&rx.mu);
    CHECK(settled(c));
    shop_amqp_consumer_stop(c);
    pthread_join(t, NULL);
    shop_amqp_consumer_free(c);
    shop_amqp_publisher_close_thread();
}

/* No broker: publishing fails, and again (without dialling during the back-off); a consumer
 * keeps retrying, never connected, and still stops. */
static void test_unreachable(void)
{
    struct shop_amqp_conf conf;
    shop_amqp_conf_from_env(&conf);
    conf.host = "127.0.0.1";
    conf.port = 1; /* nothing listens there */
    shop_amqp_publisher_init(&conf);
    struct shop_err err;
    CHECK(shop_amqp_publish("{}", 2, &err) == -1);
    CHECK(strstr(err.msg, "RabbitMQ not available") != NULL && shop_err_unavailable(&err));
    CHECK(shop_amqp_publish("{}", 2, &err) == -1);
    CHECK(strstr(err.msg, "RabbitMQ not available") != NULL);
    CHECK(!shop_amqp_publisher_ping(&err));
    shop_amqp_publisher_close_thread();

    struct shop_amqp_consumer *c = shop_amqp_consumer_new(&conf, 10, on_msg, NULL);
    pthread_t t;
    pthread_create(&t, NULL, run_consumer, c);
    shop_sleep_ms(300);
    CHECK(!shop_amqp_consumer_connected(c));
    shop_amqp_consumer_stop(c);
    pthread_join(t, NULL);
    shop_amqp_consumer_free(c);
}

int main(void)
{
    shop_log_set_level("error");
    const char *host = getenv("AMQP_HOST"), *port = getenv("AMQP_PORT");
    char *h = host ? shop_xstrdup(host) : NULL, *p = port ? shop_xstrdup(port) : NULL;
    char *u = getenv("AMQP_USER") ? shop_xstrdup(getenv("AMQP_USER")) : NULL;
    char *pw = getenv("AMQP_PASS") ? shop_xstrdup(getenv("AMQP_PASS")) : NULL;
    test_backoff();
    test_confirm_covers();
    test_conf();
    if (h && p) {
        setenv("AMQP_HOST", h, 1);
        setenv("AMQP_PORT", p, 1);
        u ? setenv("AMQP_USER", u, 1) : unsetenv("AMQP_USER");
        pw ? setenv("AMQP_PASS", pw, 1) : unsetenv("AMQP_PASS");
        struct shop_amqp_conf conf;
        shop_amqp_conf_from_env(&conf);
        conf.exchange = "shop-unit-test";
        conf.queue = "shop-unit-test";
        conf.routing_key = "unit";
        snprintf(token, sizeof(token), "t%d-%lld", (int)getpid(), shop_now_ns());
        test_live_roundtrip(&conf);
        test_live_redelivery(&conf);
    } else {
        printf("amqp: AMQP_HOST/AMQP_PORT not set: live broker tests not run\n");
    }
    test_unreachable();
    free(h);
    free(p);
    free(u);
    free(pw);
    return check_report("amqp");
}
