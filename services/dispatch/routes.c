/* routes.c - dispatch's handlers: the consumer pool's accept (a delivery becomes a job) and work
 * (an order processed once, or a message dead-lettered) functions, and /health.
 *
 * Once per order id: a delivery does the simulated work, records "done" in Redis (atomically:
 * of two deliveries of one order, one wins; the other is a duplicate, counted and acked without
 * dispatching again) and only then logs the dispatch and lets the pool ack. Killed anywhere
 * before the ack, the broker redelivers and the record tells the truth. A redelivery also
 * records, before its work, that it starts (it is a duplicate if the order is done already,
 * and the attempts are counted).
 *
 * Redis down: the worker waits for it (the message stays unacked, health answers 503) rather
 * than dispatching without the record: a duplicate dispatch would ship an order twice, a pause
 * only delays orders that the durable queue keeps meanwhile.
 *
 * Dead letters: a message with no readable order id, or an order whose deliveries started work
 * DISPATCH_MAX_ATTEMPTS times without finishing (each one died or was stopped first) and that
 * comes back once more, is published to the durable queue orders.dead with a publisher confirm
 * and only then acked: it is never dropped. Dispatch publishes it itself because the
 * dead-letter arguments cannot be added to the existing `orders` queue (a broker refuses to
 * redeclare a queue with other arguments). */
#include "libshop/amqp.h"
#include "libshop/conf.h"
#include "libshop/consumer.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/random.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "services/dispatch/routes.h"
#include "services/dispatch/work.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dispatch_config dispatch_cfg = {.delay_ms = -1, .max_attempts = 5, .record_ttl_s = 604800};
struct shop_consumer *dispatch_pool;

struct shop_counter orders_dispatched =
    SHOP_COUNTER_INIT("orders_dispatched_total", "Orders dispatched", SHOP_NUM_JS);
struct shop_counter orders_failed = SHOP_COUNTER_INIT(
    "orders_dispatch_failed_total",
    "Dispatched orders marked as failed by DISPATCH_ERROR_PERCENT (simulated, no effect)",
    SHOP_NUM_JS);
struct shop_counter bad_messages = SHOP_COUNTER_INIT(
    "dispatch_bad_messages_total",
    "Messages without a readable order id (moved to the dead-letter queue)", SHOP_NUM_JS);
struct shop_counter duplicates = SHOP_COUNTER_INIT(
    "dispatch_duplicates_total",
    "Deliveries of an order already dispatched or dead-lettered (acked, not dispatched again)",
    SHOP_NUM_JS);
struct shop_counter dead_letters =
    SHOP_COUNTER_INIT("dispatch_dead_letters_total",
                      "Messages moved to the dead-letter queue (unreadable, or past "
                      "DISPATCH_MAX_ATTEMPTS deliveries)",
                      SHOP_NUM_JS);
struct shop_counter record_errors = SHOP_COUNTER_INIT(
    "dispatch_record_errors_total",
    "Failed reads or writes of the order records in Redis (each retried until Redis answers)",
    SHOP_NUM_JS);

struct dispatch_job {
    char *orderid;   /* NULL when the message has none we can use */
    const char *why; /* then: why (a static string) */
    char *body;      /* a copy of the message, for the dead-letter queue */
    size_t len;
};

/* Consumer thread: every delivery becomes a job (the decisions need Redis or the broker, which
 * the workers wait for, never the consumer thread). */
void *dispatch_accept(void *ud, const struct shop_amqp_delivery *d)
{
    (void)ud;
    struct dispatch_job *j = shop_xcalloc(1, sizeof(*j));
    j->orderid = work_order_id(d->body, d->len, &j->why);
    j->body = shop_xmalloc(d->len + 1);
    if (d->len)
        memcpy(j->body, d->body, d->len);
    j->len = d->len;
    return j;
}

void dispatch_free_job(void *job)
{
    struct dispatch_job *j = job;
    free(j->orderid);
    free(j->body);
    free(j);
}

/* Publishes the message to the dead-letter queue, waiting for the broker as long as it takes.
 * Returns true once confirmed (ack it), false when the pool stops first (leave it unacked). */
static bool dead_letter(struct shop_consumer *p, const struct dispatch_job *j, const char *why)
{
    long backoff = 0;
    struct shop_err err;
    while (shop_amqp_publish(j->body, j->len, &err) == -1) {
        if (!backoff)
            shop_log_warnx("cannot dead-letter a message (%s): %s; retrying", why, err.msg);
        backoff = shop_amqp_backoff_next(backoff, 200, 5000);
        if (!shop_consumer_sleep(p, backoff))
            return false;
    }
    char ex[121];
    shop_log_warnx("dead-lettered to %s (%s) len=%zu body=\"%s\"", DISPATCH_DEAD_LETTER_QUEUE, why,
                   j->len, work_excerpt(j->body, j->len, ex, 120));
    shop_counter_add(&dead_letters, 1);
    return true;
}

/* One transition of the order's record (work.h). */
struct record_op {
    int (*step)(const char *cur, size_t len, long long now, char **out);
};

static int begin_step(const char *cur, size_t len, long long now, char **out)
{
    return work_record_begin(cur, len, dispatch_cfg.max_attempts, now, out);
}

static int record_cb(const char *cur, size_t len, void *ud, char **out)
{
    const struct record_op *op = ud;
    return op->step(cur, len, (long long)time(NULL), out);
}

/* Applies one transition to the order's record, waiting for Redis as long as it takes.
 * Returns the outcome (enum work_outcome), or -1 when the pool stops first. */
static int record(struct shop_consumer *p, const char *key, struct record_op op)
{
    long backoff = 0;
    for (;;) {
        struct shop_err err;
        int rc = shop_redis_update(key, dispatch_cfg.record_ttl_s, record_cb, &op, &err);
        if (rc >= 0) {
            if (backoff)
                shop_log_info("order records: Redis answers again");
            return rc;
        }
        shop_counter_add(&record_errors, 1);
        if (!backoff)
            shop_log_warnx("order records: %s; waiting for Redis (the order stays in the queue)",
                           err.msg);
        backoff = shop_amqp_backoff_next(backoff, 100, 5000);
        if (!shop_consumer_sleep(p, backoff))
            return -1;
    }
}

static void duplicate(const struct dispatch_job *j, int outcome, bool redelivered)
{
    char id[121];
    shop_log_info("duplicate orderid=%s skipped (%s before)%s",
                  work_excerpt(j->orderid, strlen(j->orderid), id, 120),
                  outcome == WORK_DEAD_BEFORE ? "dead-lettered" : "dispatched",
                  redelivered ? " redelivered=true" : "");
    shop_counter_add(&duplicates, 1);
}

/* The reference's simulated work: a step, the error decision, "processSale". Returns whether
 * the order is marked as failed in *fails, false when the pool stops first. */
static bool simulated_work(struct shop_consumer *p, bool *fails)
{
    if (!shop_consumer_sleep(p, work_step_delay_ms(dispatch_cfg.delay_ms, shop_random_uniform(42))))
        return false;
    *fails = work_fails(dispatch_cfg.error_percent, shop_random_uniform(100));
    return shop_consumer_sleep(p,
                               work_step_delay_ms(dispatch_cfg.delay_ms, shop_random_uniform(42)));
}

/* The done record: first as one SET NX of what the transition writes over no record (the
 * common case: nothing recorded for the order yet), else the transition on the record there.
 * Returns as record. */
static int record_done(struct shop_consumer *p, const char *key)
{
    char *text = NULL;
    struct shop_err err;
    int nx = work_record_done(NULL, 0, (long long)time(NULL), &text) == WORK_WRITE
                 ? shop_redis_set_nx(key, text, strlen(text), dispatch_cfg.record_ttl_s, &err)
                 : 0;
    free(text);
    if (nx == 1)
        return WORK_WRITE;
    return record(p, key, (struct record_op){work_record_done}); /* also waits out an error */
}

static bool process(struct shop_consumer *p, const struct dispatch_job *j, const char *key,
                    bool redelivered)
{
    /* a redelivery: the order may be done already, or have failed too often */
    int rc = redelivered ? record(p, key, (struct record_op){begin_step}) : WORK_WRITE;
    if (rc == WORK_DONE_BEFORE || rc == WORK_DEAD_BEFORE)
        duplicate(j, rc, redelivered);
    if (rc != WORK_WRITE && rc != WORK_TOO_MANY)
        return rc >= 0;
    if (rc == WORK_TOO_MANY) {
        char why[96];
        snprintf(why, sizeof(why), "orderid=%.40s: %ld deliveries never finished", j->orderid,
                 dispatch_cfg.max_attempts);
        if (!dead_letter(p, j, why))
            return false;
        record(p, key, (struct record_op){work_record_dead});
        return true; /* in the dead-letter queue: acked even if the record could not say so */
    }
    bool fails = false;
    if (!simulated_work(p, &fails))
        return false; /* stopping: left unacked, the broker redelivers it */
    rc = record_done(p, key);
    if (rc != WORK_WRITE) {
        if (rc > 0)
            duplicate(j, rc, redelivered); /* another delivery of it finished first */
        return rc > 0;
    }
    char id[121]; /* printable, so one order is always one log line */
    shop_log_info("dispatched orderid=%s%s%s",
                  work_excerpt(j->orderid, strlen(j->orderid), id, 120),
                  redelivered ? " redelivered=true" : "",
                  fails ? " error=\"Failed to dispatch to SOP\"" : "");
    shop_counter_add(&orders_dispatched, 1);
    if (fails)
        shop_counter_add(&orders_failed, 1);
    if (dispatch_cfg.ack_delay_ms > 0) /* fault injection: a window between the work and the ack */
        shop_consumer_sleep(p, dispatch_cfg.ack_delay_ms);
    return true;
}

/* Worker: an order processed once, or a message dead-lettered; true to ack. */
bool dispatch_work(struct shop_consumer *p, void *ud, void *job, bool redelivered)
{
    (void)ud;
    struct dispatch_job *j = job;
    if (!j->orderid) {
        if (!dead_letter(p, j, j->why))
            return false;
        shop_counter_add(&bad_messages, 1);
        return true;
    }
    char *key = work_record_key(j->orderid);
    bool ack = process(p, j, key, redelivered);
    free(key);
    return ack;
}

void dispatch_health(struct shop_req *req)
{
    bool amqp = shop_consumer_connected(dispatch_pool);
    bool redis = shop_redis_ping();
    shop_reply_json(req, amqp && redis ? 200 : 503,
                    json_pack("{s:s,s:b,s:b}", "app", "OK", "rabbitmq", amqp, "redis", redis));
}
