/* dispatch - consumes the orders that payment queues (docs/api/dispatch.yaml, D5): manual acks
 * after the simulated work, bounded prefetch, reconnect forever, one log line per dispatched order
 * id, and a small HTTP port for /health and /metrics (D8).
 *
 * Threads: the consumer thread owns the RabbitMQ connection (rabbitmq-c connections are not
 * thread-safe) and hands each delivery to a pool of workers through a queue; a worker does
 * the two simulated steps and queues the ack, which the consumer thread sends. The pool has
 * as many workers as the prefetch, so every delivery the broker lets us hold is worked on at
 * once. The main thread serves HTTP until SIGTERM, then stops the consumer (in-flight orders
 * are finished and acked, or left unacked for the broker to redeliver) and exits 0. */
#include "libshop/amqp.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/util.h"
#include "services/dispatch/work.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job {
    uint64_t gen, tag;
    bool redelivered;
    char *orderid;
    struct job *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a job is queued, or stop */
    pthread_cond_t nap; /* only ever signalled by stop: work_sleep waits on it */
    struct job *head, *tail;
    bool stop;
} jobs = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct shop_amqp_consumer *consumer;
static long drain_ms;      /* SHOP_DRAIN_MS: how long in-flight orders may finish at a stop */
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

/* Consumer thread: a delivery arrives. A message without an order id is logged and acked:
 * it can never become valid, so requeueing it would redeliver it forever (a poison message
 * holding a prefetch slot), and dead-lettering would need x-dead-letter-exchange on the
 * `orders` queue, an argument the course's and the reference's consumers do not declare
 * (RabbitMQ refuses to redeclare a queue with different arguments, PRECONDITION_FAILED). The
 * log line keeps a printable excerpt for whoever investigates. */
static void on_delivery(void *ud, const struct shop_amqp_delivery *d)
{
    (void)ud;
    const char *why = NULL;
    char *id = work_order_id(d->body, d->len, &why);
    if (!id) {
        char ex[121];
        shop_log_warnx("bad message skipped (%s) len=%zu body=\"%s\"", why, d->len,
                       work_excerpt(d->body, d->len, ex, 120));
        shop_counter_add(&bad, 1);
        shop_amqp_consumer_ack(consumer, d->generation, d->tag);
        return;
    }
    struct job *j = shop_xcalloc(1, sizeof(*j));
    *j = (struct job){
        .gen = d->generation, .tag = d->tag, .redelivered = d->redelivered, .orderid = id};
    pthread_mutex_lock(&jobs.mu);
    if (jobs.tail)
        jobs.tail->next = j;
    else
        jobs.head = j;
    jobs.tail = j;
    pthread_cond_signal(&jobs.cv);
    pthread_mutex_unlock(&jobs.mu);
}

/* Sleeps ms unless the pool is told to stop first. Returns false when interrupted. */
static bool work_sleep(long ms)
{
    struct timespec ts = shop_deadline(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&jobs.mu);
    while (!jobs.stop && pthread_cond_timedwait(&jobs.nap, &jobs.mu, &ts) == 0)
        ;
    bool ok = !jobs.stop;
    pthread_mutex_unlock(&jobs.mu);
    return ok;
}

/* The reference's simulated work: a step, the error decision, "processSale", then the ack. */
static void process(struct job *j)
{
    if (!work_sleep(work_step_delay_ms(delay_ms, randombytes_uniform(42))))
        return; /* stopping: left unacked, the broker redelivers it */
    bool fails = work_fails(error_percent, randombytes_uniform(100));
    if (!work_sleep(work_step_delay_ms(delay_ms, randombytes_uniform(42))))
        return;
    char id[121]; /* printable, so one order is always one log line */
    shop_log_info("dispatched orderid=%s%s%s",
                  work_excerpt(j->orderid, strlen(j->orderid), id, 120),
                  j->redelivered ? " redelivered=true" : "",
                  fails ? " error=\"Failed to dispatch to SOP\"" : "");
    shop_counter_add(&dispatched, 1);
    if (fails)
        shop_counter_add(&failed, 1);
    shop_amqp_consumer_ack(consumer, j->gen, j->tag);
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&jobs.mu);
        while (!jobs.head && !jobs.stop)
            pthread_cond_wait(&jobs.cv, &jobs.mu);
        struct job *j = jobs.head;
        if (jobs.stop)
            j = NULL;
        if (j) {
            jobs.head = j->next;
            if (!jobs.head)
                jobs.tail = NULL;
        }
        pthread_mutex_unlock(&jobs.mu);
        if (!j)
            return NULL;
        process(j);
        free(j->orderid);
        free(j);
    }
}

static void *consumer_main(void *arg)
{
    (void)arg;
    shop_amqp_consumer_run(consumer, drain_ms);
    return NULL;
}

static void health(struct shop_req *req)
{
    bool up = shop_amqp_consumer_connected(consumer);
    shop_reply_json(req, up ? 200 : 503, json_pack("{s:s,s:b}", "app", "OK", "rabbitmq", up));
}

static const struct shop_route routes[] = {
    {"GET", "/health", health},
};

static void jobs_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&jobs.nap, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&jobs.cv, NULL);
}

/* Stops the pool and frees the jobs nobody started (their messages were requeued). */
static void jobs_stop(pthread_t *workers, long n)
{
    pthread_mutex_lock(&jobs.mu);
    jobs.stop = true;
    pthread_cond_broadcast(&jobs.cv);
    pthread_cond_broadcast(&jobs.nap);
    pthread_mutex_unlock(&jobs.mu);
    for (long i = 0; i < n; i++)
        pthread_join(workers[i], NULL);
    for (struct job *j = jobs.head, *next; j; j = next) {
        next = j->next;
        free(j->orderid);
        free(j);
    }
    jobs.head = jobs.tail = NULL;
    pthread_cond_destroy(&jobs.cv);
    pthread_cond_destroy(&jobs.nap);
}

int main(int argc, char **argv)
{
    shop_service_init(argc, argv, "dispatch");
    if (sodium_init() < 0)
        shop_fatalx("libsodium initialisation failed");
    struct shop_server_conf conf = {
        .service = "dispatch",
        .port = shop_conf_listen_port("DISPATCH_SERVER_PORT", 8080),
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
    };
    struct shop_amqp_conf amqp;
    shop_amqp_conf_from_env(&amqp);
    drain_ms = shop_conf_long("SHOP_DRAIN_MS", 5000, 0, 600000);
    delay_ms = shop_conf_long("DISPATCH_DELAY_MS", -1, 0, 600000);
    /* the reference clamps any integer to 0..100; one that is not an integer is fatal (D9) */
    error_percent = shop_conf_long("DISPATCH_ERROR_PERCENT", 0, LONG_MIN, LONG_MAX);
    error_percent = error_percent < 0 ? 0 : error_percent > 100 ? 100 : error_percent;
    long prefetch = shop_conf_long("DISPATCH_PREFETCH", 10, 1, 1000);
    shop_counter_register(&dispatched);
    shop_counter_register(&failed);
    shop_counter_register(&bad);

    /* SIGTERM/SIGINT stay blocked in every thread; shop_server_run waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    jobs_init();
    consumer = shop_amqp_consumer_new(&amqp, (int)prefetch, on_delivery, NULL);
    pthread_t *workers = shop_xcalloc((size_t)prefetch, sizeof(*workers));
    for (long i = 0; i < prefetch; i++)
        if (pthread_create(&workers[i], NULL, worker, NULL) != 0)
            shop_fatalx("cannot start worker threads");
    pthread_t cons;
    if (pthread_create(&cons, NULL, consumer_main, NULL) != 0)
        shop_fatalx("cannot start the consumer thread");

    int rc = shop_server_run(&conf);

    shop_amqp_consumer_stop(consumer);
    pthread_join(cons, NULL);
    jobs_stop(workers, prefetch);
    free(workers);
    shop_amqp_consumer_free(consumer);
    shop_log_info("dispatch stopped");
    return rc;
}
