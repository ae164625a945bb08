/* consumer.h - a RabbitMQ consumer with a pool of workers (dispatch): the consumer thread owns
 * the connection (amqp.h) and turns each delivery into a job on a queue; as many workers as
 * the prefetch take the jobs, so every delivery the broker lets us hold is worked on at once,
 * and ack them when done. Stopping finishes or abandons the jobs in flight (an abandoned job
 * stays unacked: the broker redelivers it) and joins every thread. */
#ifndef SHOP_CONSUMER_H
#define SHOP_CONSUMER_H

#include "libshop/amqp.h"

#include <stdbool.h>

struct shop_consumer;

struct shop_consumer_conf {
    const struct shop_amqp_conf *amqp;
    int prefetch;  /* unacked deliveries held, and worker threads (1..1000) */
    long drain_ms; /* how long stopping waits for the jobs in flight to be acked */
    /* Consumer thread: a delivery becomes a job (any heap value), or NULL to ack and skip it. */
    void *(*accept)(void *ud, const struct shop_amqp_delivery *d);
    /* Worker thread: does the job. Returns true to ack it, false to leave it unacked (the pool
     * is stopping: see shop_consumer_sleep). The pool frees the job with free_job after. */
    bool (*work)(struct shop_consumer *pool, void *ud, void *job, bool redelivered);
    void (*free_job)(void *job);
    void *ud;
};

/* Starts the consumer thread and the workers. Call after shop_service_init (which blocks
 * the stop signals, so none of these threads ever takes one). */
struct shop_consumer *shop_consumer_start(const struct shop_consumer_conf *conf);
/* true while consuming on an open connection (thread-safe). */
bool shop_consumer_connected(struct shop_consumer *pool);
/* For work functions: sleeps ms unless the pool is stopping first. false when interrupted. */
bool shop_consumer_sleep(struct shop_consumer *pool, long ms);
/* Stops consuming, waits for the consumer thread, stops and joins the workers, frees the jobs
 * nobody started (their messages were requeued) and the pool. */
void shop_consumer_stop(struct shop_consumer *pool);

#endif
