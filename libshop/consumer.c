/* consumer.c - the RabbitMQ consumer's worker pool (see consumer.h). */
#include "libshop/consumer.h"
#include "libshop/log.h"
#include "libshop/trace.h"
#include "libshop/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job {
    uint64_t gen, tag;
    bool redelivered;
    void *data;
    char traceparent[56]; /* the publisher's trace context: the work is its consumer span */
    struct job *next;
};

struct shop_consumer {
    struct shop_consumer_conf c;
    struct shop_amqp_consumer *amqp;
    pthread_t consumer, *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* a job is queued, or stop */
    pthread_cond_t nap; /* only ever signalled by stop: shop_consumer_sleep waits on it */
    struct job *head, *tail;
    bool stop;
};

/* Consumer thread: a delivery arrives. */
static void on_delivery(void *ud, const struct shop_amqp_delivery *d)
{
    struct shop_consumer *p = ud;
    void *data = p->c.accept(p->c.ud, d);
    if (!data) {
        shop_amqp_consumer_ack(p->amqp, d->generation, d->tag);
        return;
    }
    struct job *j = shop_xcalloc(1, sizeof(*j));
    *j = (struct job){
        .gen = d->generation, .tag = d->tag, .redelivered = d->redelivered, .data = data};
    memcpy(j->traceparent, d->traceparent, sizeof(j->traceparent));
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool shop_consumer_sleep(struct shop_consumer *p, long ms)
{
    struct timespec ts = shop_deadline(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&p->mu);
    while (!p->stop && pthread_cond_timedwait(&p->nap, &p->mu, &ts) == 0)
        ;
    bool ok = !p->stop;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void job_free(struct shop_consumer *p, struct job *j)
{
    p->c.free_job(j->data);
    free(j);
}

/* The next job, or NULL when stopping. */
static struct job *next_job(struct shop_consumer *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->head && !p->stop)
        pthread_cond_wait(&p->cv, &p->mu);
    struct job *j = p->stop ? NULL : p->head;
    if (j) {
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

static void *worker(void *arg)
{
    struct shop_consumer *p = arg;
    struct job *j;
    while ((j = next_job(p))) {
        struct shop_span span;
        shop_span_begin(&span, SHOP_SPAN_CONSUMER, j->traceparent, "process %s", p->c.amqp->queue);
        shop_span_attr_str(&span, "messaging.system", "rabbitmq");
        shop_span_attr_str(&span, "messaging.operation.type", "process");
        shop_span_attr_str(&span, "messaging.destination.name", p->c.amqp->queue);
        if (p->c.work(p, p->c.ud, j->data, j->redelivered))
            shop_amqp_consumer_ack(p->amqp, j->gen, j->tag);
        else
            shop_span_fail(&span, "not processed: left for the broker to redeliver");
        shop_span_end(&span);
        job_free(p, j);
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    struct shop_consumer *p = arg;
    shop_amqp_consumer_run(p->amqp, p->c.drain_ms);
    return NULL;
}

struct shop_consumer *shop_consumer_start(const struct shop_consumer_conf *conf)
{
    struct shop_consumer *p = shop_xcalloc(1, sizeof(*p));
    p->c = *conf;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->nap, &ca);
    pthread_condattr_destroy(&ca);
    p->amqp = shop_amqp_consumer_new(conf->amqp, conf->prefetch, on_delivery, p);
    p->workers = shop_xcalloc((size_t)conf->prefetch, sizeof(*p->workers));
    for (int i = 0; i < conf->prefetch; i++)
        if (pthread_create(&p->workers[i], NULL, worker, p) != 0)
            shop_fatalx("cannot start worker threads");
    if (pthread_create(&p->consumer, NULL, consumer_main, p) != 0)
        shop_fatalx("cannot start the consumer thread");
    return p;
}

bool shop_consumer_connected(struct shop_consumer *p)
{
    return shop_amqp_consumer_connected(p->amqp);
}

void shop_consumer_stop(struct shop_consumer *p)
{
    shop_amqp_consumer_stop(p->amqp);
    pthread_join(p->consumer, NULL);
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_cond_broadcast(&p->nap);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->c.prefetch; i++)
        pthread_join(p->workers[i], NULL);
    for (struct job *j = p->head, *next; j; j = next) {
        next = j->next;
        job_free(p, j);
    }
    free(p->workers);
    shop_amqp_consumer_free(p->amqp);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->nap);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
