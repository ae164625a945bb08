/* routes.c - dispatch's handlers: the consumer pool's accept (a delivery's order id, or a
 * bad message skipped) and work (the reference's simulated steps) functions, and /health. */
#include "libshop/consumer.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/random.h"
#include "libshop/util.h"
#include "services/dispatch/routes.h"
#include "services/dispatch/work.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct dispatch_config dispatch_cfg = {.delay_ms = -1};
struct shop_consumer *dispatch_pool;

struct shop_counter orders_dispatched =
    SHOP_COUNTER_INIT("orders_dispatched_total", "Orders dispatched", SHOP_NUM_JS);
struct shop_counter orders_failed = SHOP_COUNTER_INIT(
    "orders_dispatch_failed_total",
    "Dispatched orders marked as failed by DISPATCH_ERROR_PERCENT (simulated, no effect)",
    SHOP_NUM_JS);
struct shop_counter bad_messages =
    SHOP_COUNTER_INIT("dispatch_bad_messages_total",
                      "Messages acked and skipped because they carry no order id", SHOP_NUM_JS);

/* Consumer thread: a delivery arrives; its order id becomes the job. A message without an
 * order id is logged and acked: it can never become valid, so requeueing it would redeliver it
 * forever (a poison message holding a prefetch slot), and dead-lettering would need
 * x-dead-letter-exchange on the `orders` queue, an argument the course's and the reference's
 * consumers do not declare (RabbitMQ refuses to redeclare a queue with different arguments,
 * PRECONDITION_FAILED). The log line keeps a printable excerpt for whoever investigates. */
void *dispatch_accept(void *ud, const struct shop_amqp_delivery *d)
{
    (void)ud;
    const char *why = NULL;
    char *id = work_order_id(d->body, d->len, &why);
    if (!id) {
        char ex[121];
        shop_log_warnx("bad message skipped (%s) len=%zu body=\"%s\"", why, d->len,
                       work_excerpt(d->body, d->len, ex, 120));
        shop_counter_add(&bad_messages, 1);
    }
    return id;
}

/* Worker: the reference's simulated work: a step, the error decision, "processSale"; then the
 * pool acks it. */
bool dispatch_work(struct shop_consumer *p, void *ud, void *orderid, bool redelivered)
{
    (void)ud;
    if (!shop_consumer_sleep(p, work_step_delay_ms(dispatch_cfg.delay_ms, shop_random_uniform(42))))
        return false; /* stopping: left unacked, the broker redelivers it */
    bool fails = work_fails(dispatch_cfg.error_percent, shop_random_uniform(100));
    if (!shop_consumer_sleep(p, work_step_delay_ms(dispatch_cfg.delay_ms, shop_random_uniform(42))))
        return false;
    char id[121]; /* printable, so one order is always one log line */
    shop_log_info("dispatched orderid=%s%s%s", work_excerpt(orderid, strlen(orderid), id, 120),
                  redelivered ? " redelivered=true" : "",
                  fails ? " error=\"Failed to dispatch to SOP\"" : "");
    shop_counter_add(&orders_dispatched, 1);
    if (fails)
        shop_counter_add(&orders_failed, 1);
    return true;
}

void route_health(struct shop_req *req)
{
    bool up = shop_consumer_connected(dispatch_pool);
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s,s:b}", "app", "OK", "rabbitmq", up));
}
