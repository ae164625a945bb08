/* dispatch - consumes the orders that payment queues (contract §8, D5): manual acks after the
 * simulated work, bounded prefetch, reconnect forever, one log line per dispatched order id,
 * and a small HTTP port for /health and /metrics (D8).
 *
 * Threads: libshop's consumer pool (consumer.h) hands each delivery to as many workers as the
 * prefetch; a worker does the two simulated steps and the pool acks the order. The main thread
 * serves HTTP until SIGTERM, then stops the pool (in-flight orders are finished and acked, or
 * left unacked for the broker to redeliver) and exits 0. */
#include "libshop/consumer.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/service.h"
#include "libshop/metrics.h"
#include "libshop/random.h"
#include "libshop/util.h"
#include "services/dispatch/work.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_MS 5000

static struct shop_consumer *pool;
static long delay_ms = -1; /* DISPATCH_DELAY_MS; -1 = the reference's random 42-83 ms */
static long error_percent;

static struct shop_counter dispatched =
    SHOP_COUNTER_INIT("orders_dispatched_total", "Orders dispatched", SHOP_NUM_JS);
static struct shop_counter failed = SHOP_COUNTER_INIT(
    "orders_dispatch_failed_total",
    "Dispatched orders marked as failed by DISPATCH_ERROR_PERCENT (simulated, no effect)",
    SHOP_NUM_JS);
static struct shop_counter bad =
    SHOP_COUNTER_INIT("dispatch_bad_messages_total",
                      "Messages acked and skipped because they carry no order id", SHOP_NUM_JS);

/* Consumer thread: a delivery arrives; its order id becomes the job. A message without an
 * order id is logged and acked: it can never become valid, so requeueing it would redeliver it
 * forever (a poison message holding a prefetch slot), and dead-lettering would need
 * x-dead-letter-exchange on the `orders` queue, an argument the course's and the reference's
 * consumers do not declare (RabbitMQ refuses to redeclare a queue with different arguments,
 * PRECONDITION_FAILED). The log line keeps a printable excerpt for whoever investigates. */
static void *accept_order(void *ud, const struct shop_amqp_delivery *d)
{
    (void)ud;
    const char *why = NULL;
    char *id = work_order_id(d->body, d->len, &why);
    if (!id) {
        char ex[121];
        shop_log_warnx("bad message skipped (%s) len=%zu body=\"%s\"", why, d->len,
                       work_excerpt(d->body, d->len, ex, 120));
        shop_counter_add(&bad, 1);
    }
    return id;
}

/* Worker: the reference's simulated work: a step, the error decision, "processSale"; then the
 * pool acks it. */
static bool process(struct shop_consumer *p, void *ud, void *orderid, bool redelivered)
{
    (void)ud;
    if (!shop_consumer_sleep(p, work_step_delay_ms(delay_ms, shop_random_uniform(42))))
        return false; /* stopping: left unacked, the broker redelivers it */
    bool fails = work_fails(error_percent, shop_random_uniform(100));
    if (!shop_consumer_sleep(p, work_step_delay_ms(delay_ms, shop_random_uniform(42))))
        return false;
    char id[121]; /* printable, so one order is always one log line */
    shop_log_info("dispatched orderid=%s%s%s", work_excerpt(orderid, strlen(orderid), id, 120),
                  redelivered ? " redelivered=true" : "",
                  fails ? " error=\"Failed to dispatch to SOP\"" : "");
    shop_counter_add(&dispatched, 1);
    if (fails)
        shop_counter_add(&failed, 1);
    return true;
}

static void health(struct shop_req *req)
{
    bool up = shop_consumer_connected(pool);
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s,s:b}", "app", "OK", "rabbitmq", up));
}

static const struct shop_route routes[] = {
    {"GET", "/health", health},
};

int main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "dispatch", "DISPATCH_SERVER_PORT", routes);
    struct shop_amqp_conf amqp;
    shop_amqp_conf_from_env(&amqp);
    delay_ms = shop_conf_long("DISPATCH_DELAY_MS", -1, 0, 600000);
    /* the reference clamps any integer to 0..100; one that is not an integer is fatal (D9) */
    error_percent = shop_conf_long("DISPATCH_ERROR_PERCENT", 0, LONG_MIN, LONG_MAX);
    error_percent = error_percent < 0 ? 0 : error_percent > 100 ? 100 : error_percent;
    long prefetch = shop_conf_long("DISPATCH_PREFETCH", 10, 1, 1000);
    shop_counter_register(&dispatched);
    shop_counter_register(&failed);
    shop_counter_register(&bad);

    pool = shop_consumer_start(&(struct shop_consumer_conf){.amqp = &amqp,
                                                            .prefetch = (int)prefetch,
                                                            .drain_ms = DRAIN_MS,
                                                            .accept = accept_order,
                                                            .work = process,
                                                            .free_job = free});
    int rc = shop_server_run(&conf);
    shop_consumer_stop(pool);
    shop_log_info("dispatch stopped");
    return rc;
}
