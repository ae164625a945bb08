/* amqp.h - RabbitMQ for payment (publisher with confirms) and dispatch (consumer with manual
 * acks) on rabbitmq-c 0.11: connection set-up from the course's variables, the robot-shop
 * topology, timeouts everywhere, reconnect with back-off, health probes. */
#ifndef SHOP_AMQP_H
#define SHOP_AMQP_H

#include "libshop/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shop_amqp_conf {
    const char *host;        /* AMQP_HOST, default "rabbitmq" */
    int port;                /* AMQP_PORT, default 5672 */
    const char *vhost;       /* AMQP_VHOST, default "/" */
    const char *user;        /* AMQP_USER, default "guest" */
    const char *pass;        /* AMQP_PASS, default "guest" */
    const char *exchange;    /* "robot-shop" (direct, durable) */
    const char *queue;       /* "orders" (durable), bound to the exchange with routing_key */
    const char *routing_key; /* "orders" */
    int heartbeat_s;         /* consumer heartbeat; 0 = off (the publisher never uses one) */
    long timeout_ms;         /* connect, handshake and every RPC */
    long confirm_timeout_ms; /* how long a publish waits for the broker's ack */
    bool passive;            /* AMQP_DECLARE=passive: only check the topology (D22) */
};

/* Fills c from AMQP_HOST, AMQP_PORT, AMQP_VHOST, AMQP_USER, AMQP_PASS, AMQP_DECLARE (fatal on a bad
 * value, D9) and the robot-shop defaults: exchange robot-shop, queue and key orders, heartbeat 30
 * s, timeouts 5 s. AMQP_DECLARE=active (the default) declares the exchange, queue and binding;
 * passive (hosts prepared by the deploy tool, D22) only checks that the exchange and queue
 * exist, binds nothing, and a missing one fails the connection like a broker that is down. */
void shop_amqp_conf_from_env(struct shop_amqp_conf *c);

/* Back-off step used by both sides: the delay after cur_ms (0 = first failure gives min_ms),
 * doubling up to max_ms. */
long shop_amqp_backoff_next(long cur_ms, long min_ms, long max_ms);

/* ---- publisher (payment) --------------------------------------------------------------------
 * One connection per publishing thread (pthread_key; freed when the thread exits), each with
 * its own channel in confirm mode, so concurrent payments wait for their confirms in parallel
 * and a broken connection only ever affects one request. Connection failures are shared:
 * after a failed connect every thread fails fast (no network wait) until the back-off delay
 * (200 ms doubling to 2 s) has passed. */

/* Keeps a copy of the configuration. Call once before the first publish. */
void shop_amqp_publisher_init(const struct shop_amqp_conf *conf);

/* Publishes body persistently (delivery_mode 2, mandatory) to the exchange with the routing
 * key and waits for the broker's confirm. Returns 0 once the broker has acked it (the message
 * is then on disk in a queue), or -1 with err set, always UNAVAILABLE (no connection, nack,
 * returned as unroutable, no confirm within the timeout: the broker does not have it). A connection
 * found broken is replaced and the publish retried once, so a message may in rare cases be stored
 * twice (at-least-once). */
int shop_amqp_publish(const char *body, size_t len, struct shop_err *err);

/* Health probe: true when this thread's connection is (or can now be) open and healthy. */
bool shop_amqp_publisher_ping(struct shop_err *err);

/* Closes the calling thread's connection (threads that exit are cleaned up automatically). */
void shop_amqp_publisher_close_thread(void);

/* ---- consumer (dispatch) --------------------------------------------------------------------
 * One connection owned by the thread that calls shop_amqp_consumer_run: it declares the
 * topology, sets basic.qos to the prefetch, consumes with manual acks and reconnects forever
 * with back-off (1 s doubling to 30 s). Deliveries are handed to a callback on that thread;
 * any thread may then ack them with shop_amqp_consumer_ack, which queues the ack and wakes
 * the consumer thread (rabbitmq-c connections are not thread-safe: only that thread touches
 * the connection). */

struct shop_amqp_delivery {
    uint64_t tag;        /* delivery tag on the current channel */
    uint64_t generation; /* connection generation the tag belongs to */
    bool redelivered;
    const char *body; /* valid only during the callback; NOT NUL-terminated */
    size_t len;
    char traceparent[56]; /* the publisher's trace context (W3C), or "" */
};

typedef void (*shop_amqp_deliver_fn)(void *ud, const struct shop_amqp_delivery *d);

struct shop_amqp_consumer;

/* prefetch bounds the unacked deliveries the broker sends (1..65535). */
struct shop_amqp_consumer *shop_amqp_consumer_new(const struct shop_amqp_conf *conf, int prefetch,
                                                  shop_amqp_deliver_fn fn, void *ud);
/* Runs until shop_amqp_consumer_stop: then no new deliveries are handed out, the ones in
 * flight get up to drain_ms to be acked, the channel is closed (unacked messages go back to
 * the queue) and it returns 0. */
int shop_amqp_consumer_run(struct shop_amqp_consumer *c, long drain_ms);
/* Thread-safe. Acks (gen, tag); acks of an older connection generation are dropped (the broker
 * has already requeued those messages). */
void shop_amqp_consumer_ack(struct shop_amqp_consumer *c, uint64_t generation, uint64_t tag);
/* Thread-safe; async-signal-unsafe. */
void shop_amqp_consumer_stop(struct shop_amqp_consumer *c);
/* Thread-safe: true while consuming on an open connection. */
bool shop_amqp_consumer_connected(struct shop_amqp_consumer *c);
/* Deliveries handed out and not yet acked on the current connection. */
unsigned shop_amqp_consumer_in_flight(struct shop_amqp_consumer *c);
void shop_amqp_consumer_free(struct shop_amqp_consumer *c);

/* ---- tools and tests --------------------------------------------------------------------- */

/* Whether a basic.ack/basic.nack for acked_tag (with its multiple flag) settles tag. */
bool shop_amqp_confirm_covers(uint64_t acked_tag, bool multiple, uint64_t tag);

/* Opens a connection, declares the topology and reports the queue's ready message count and
 * consumer count. Returns 0 or -1 with err set. */
int shop_amqp_queue_info(const struct shop_amqp_conf *conf, unsigned *messages, unsigned *consumers,
                         struct shop_err *err);

/* Opens a connection, declares the topology and takes up to max messages off the queue
 * (basic.get), handing each body to fn and acking it after fn returns (an operator reading the
 * dead-letter queue). Returns how many were taken, or -1 with err set. */
int shop_amqp_queue_take(const struct shop_amqp_conf *conf, unsigned max,
                         void (*fn)(void *ud, const char *body, size_t len), void *ud,
                         struct shop_err *err);

#endif
