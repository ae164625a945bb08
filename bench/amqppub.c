/* amqppub.c - publishes N order messages (payment's shape, persistent, publisher confirms) to
 * exchange robot-shop, for the dispatch consume-rate benchmark (queue orders, which dispatch
 * consumes) and for RabbitMQ's own ceiling (a queue of the bench's that nobody consumes).
 * Declares the queue, durable and bound with its own name as the key, first (idempotent; for
 * orders that is the topology of decision D5), so nothing is dropped before a consumer binds.
 *
 * usage: amqppub [-q QUEUE] [-w WINDOW] N      publish N; at most WINDOW unconfirmed at a time
 *                                              (1: wait for each confirm, as payment does; 0, the
 *                                              default: every confirm awaited at the end)
 *        amqppub [-q QUEUE] purge | delete     empty the queue (the backlog of the payment rows)
 *                                              or delete it
 * QUEUE defaults to orders. AMQP_HOST, AMQP_PORT, AMQP_USER, AMQP_PASS.
 * prints {"published":N,"publish_s":S,"nacked":K}, {"purged":N} or {"deleted":N}
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static void check(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "amqppub: %s failed\n", what);
        exit(1);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static amqp_connection_state_t connect_broker(void)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, env_or("AMQP_HOST", "127.0.0.1"),
                               atoi(env_or("AMQP_PORT", "5672"))) != AMQP_STATUS_OK) {
        fprintf(stderr, "amqppub: cannot connect\n");
        exit(1);
    }
    check(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, env_or("AMQP_USER", "guest"),
                     env_or("AMQP_PASS", "guest")),
          "login");
    amqp_channel_open(c, 1);
    check(amqp_get_rpc_reply(c), "channel");
    return c;
}

static void declare(amqp_connection_state_t c, amqp_bytes_t ex, amqp_bytes_t queue)
{
    amqp_exchange_declare(c, 1, ex, amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "exchange.declare");
    amqp_queue_declare(c, 1, queue, 0, 1, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "queue.declare");
    amqp_queue_bind(c, 1, queue, ex, queue, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "queue.bind");
}

/* Reads frames until a confirm arrives; moves *acked to its delivery tag (confirms come in order,
 * possibly batched with multiple=true) and counts nacks. */
static void wait_confirm(amqp_connection_state_t c, uint64_t *acked, long *nacked)
{
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {30, 0};
        if (amqp_simple_wait_frame_noblock(c, &f, &tv) != AMQP_STATUS_OK) {
            fprintf(stderr, "amqppub: no confirm\n");
            exit(1);
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            *acked = ((amqp_basic_ack_t *)f.payload.method.decoded)->delivery_tag;
            return;
        }
        if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            *acked = ((amqp_basic_nack_t *)f.payload.method.decoded)->delivery_tag;
            (*nacked)++;
            return;
        }
    }
}

static void publish(amqp_connection_state_t c, amqp_bytes_t ex, amqp_bytes_t key, long n,
                    long window)
{
    amqp_confirm_select(c, 1);
    check(amqp_get_rpc_reply(c), "confirm.select");
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    uint64_t acked = 0;
    long nacked = 0;
    double t0 = now_s();
    /* order ids unique to this run: dispatch dispatches an order id once (D21), so ids seen by an
     * earlier run would be counted as duplicates, not dispatched */
    unsigned long run = (unsigned long)getpid() ^ (unsigned long)(t0 * 1000);
    char body[512];
    for (long i = 0; i < n; i++) {
        int len =
            snprintf(body, sizeof(body),
                     "{\"orderid\": \"bench-%lx-%ld\", \"user\": \"anonymous-bench\", \"cart\": "
                     "{\"total\": 2036.35, \"tax\": 339.39, \"items\": [{\"qty\": 1, "
                     "\"sku\": \"Watson\", \"name\": \"Watson\", \"price\": 2001, "
                     "\"subtotal\": 2001}]}}",
                     run, i);
        amqp_bytes_t b = {(size_t)len, body};
        if (amqp_basic_publish(c, 1, ex, key, 0, 0, &props, b) != AMQP_STATUS_OK) {
            fprintf(stderr, "amqppub: publish failed\n");
            exit(1);
        }
        while (window > 0 && (uint64_t)(i + 1) - acked >= (uint64_t)window &&
               acked < (uint64_t)(i + 1))
            wait_confirm(c, &acked, &nacked);
    }
    while (acked < (uint64_t)n)
        wait_confirm(c, &acked, &nacked);
    printf("{\"published\":%ld,\"publish_s\":%.3f,\"nacked\":%ld}\n", n, now_s() - t0, nacked);
}

int main(int argc, char **argv)
{
    const char *queue = "orders";
    long window = 0;
    int opt;
    while ((opt = getopt(argc, argv, "q:w:")) != -1) {
        if (opt == 'q')
            queue = optarg;
        else if (opt == 'w')
            window = atol(optarg);
        else {
            fprintf(stderr, "usage: amqppub [-q QUEUE] [-w WINDOW] N | purge | delete\n");
            return 2;
        }
    }
    const char *what = optind < argc ? argv[optind] : "1000";
    amqp_connection_state_t c = connect_broker();
    amqp_bytes_t ex = amqp_cstring_bytes("robot-shop"), key = amqp_cstring_bytes(queue);
    declare(c, ex, key);
    if (strcmp(what, "purge") == 0) {
        amqp_queue_purge_ok_t *ok = amqp_queue_purge(c, 1, key);
        check(amqp_get_rpc_reply(c), "queue.purge");
        printf("{\"purged\":%u}\n", ok ? ok->message_count : 0);
    } else if (strcmp(what, "delete") == 0) {
        amqp_queue_delete_ok_t *ok = amqp_queue_delete(c, 1, key, 0, 0);
        check(amqp_get_rpc_reply(c), "queue.delete");
        printf("{\"deleted\":%u}\n", ok ? ok->message_count : 0);
    } else {
        publish(c, ex, key, atol(what), window);
    }
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return 0;
}
