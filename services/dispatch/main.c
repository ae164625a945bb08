/* dispatch - consumes the orders that payment queues (docs/api/dispatch.yaml, D5, D21): manual
 * acks after the simulated work, bounded prefetch, reconnect forever, each order id dispatched
 * once (a record per order in Redis), unreadable messages to a dead-letter queue, one log line
 * per dispatched order id, and a small HTTP port for /health and /metrics (D8).
 *
 * Threads: libshop's consumer pool (consumer.h) hands each delivery to as many workers as the
 * prefetch; a worker does the work (routes.c) and the pool acks the order. The main thread
 * serves HTTP until SIGTERM, then stops the pool (in-flight orders are finished and acked, or
 * left unacked for the broker to redeliver) and exits 0. */
#include "libshop/conf.h"
#include "libshop/consumer.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/redis.h"
#include "libshop/service.h"
#include "services/roboshop.h"
#include "services/dispatch/routes.h"

#include <limits.h>
#include <stdlib.h>

static const struct shop_route routes[] = {
    {"GET", "/health", dispatch_health},
};

int dispatch_main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "dispatch", "DISPATCH_SERVER_PORT", routes);
    conf.per_core = true; /* HTTP is /health and /metrics; orders run on the consumer's threads */
    struct shop_amqp_conf amqp;
    shop_amqp_conf_from_env(&amqp);
    /* SHOP_DRAIN_MS: how long in-flight orders may finish at a stop */
    long drain_ms = shop_conf_long("SHOP_DRAIN_MS", 5000, 0, 600000);
    dispatch_cfg.delay_ms = shop_conf_long("DISPATCH_DELAY_MS", -1, 0, 600000);
    /* the reference clamps any integer to 0..100; one that is not an integer is fatal (D9) */
    long percent = shop_conf_long("DISPATCH_ERROR_PERCENT", 0, LONG_MIN, LONG_MAX);
    dispatch_cfg.error_percent = percent < 0 ? 0 : percent > 100 ? 100 : percent;
    long prefetch = shop_conf_long("DISPATCH_PREFETCH", 10, 1, 1000);
    dispatch_cfg.max_attempts = shop_conf_long("DISPATCH_MAX_ATTEMPTS", 5, 1, 1000);
    dispatch_cfg.record_ttl_s = shop_conf_long("DISPATCH_RECORD_TTL_S", 604800, 60, 31622400);
    dispatch_cfg.ack_delay_ms = shop_conf_long("DISPATCH_ACK_DELAY_MS", 0, 0, 600000);
    shop_redis_init();
    /* dead letters go through the confirming publisher, to their own queue; on hosts prepared by
     * the deploy tool through their own exchange (D22: dispatch may not publish to robot-shop) */
    struct shop_amqp_conf dead = amqp;
    dead.queue = dead.routing_key = DISPATCH_DEAD_LETTER_QUEUE;
    dead.exchange = shop_conf_str("DISPATCH_DEAD_LETTER_EXCHANGE", amqp.exchange);
    shop_amqp_publisher_init(&dead);
    shop_counter_register(&orders_dispatched);
    shop_counter_register(&orders_failed);
    shop_counter_register(&bad_messages);
    shop_counter_register(&duplicates);
    shop_counter_register(&dead_letters);
    shop_counter_register(&record_errors);

    dispatch_pool =
        shop_consumer_start(&(struct shop_consumer_conf){.amqp = &amqp,
                                                         .prefetch = (int)prefetch,
                                                         .drain_ms = drain_ms,
                                                         .accept = dispatch_accept,
                                                         .work = dispatch_work,
                                                         .free_job = dispatch_free_job});
    int rc = shop_server_run(&conf);
    shop_consumer_stop(dispatch_pool);
    shop_redis_cleanup();
    shop_log_info("dispatch stopped");
    return rc;
}
