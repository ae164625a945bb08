/* amqppub.c - publishes N order messages (payment's shape, persistent, publisher confirms) to
 * exchange robot-shop with key orders, for the dispatch consume-rate benchmark. Declares the
 * topology of decision D5 first (idempotent), so nothing is dropped before dispatch binds.
 *
 * usage: amqppub N | amqppub purge     (AMQP_HOST, AMQP_PORT, AMQP_USER, AMQP_PASS)
 * prints {"published":N,"publish_s":S}, or {"purged":N} (the backlog left by the payment rows)
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
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

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, env_or("AMQP_HOST", "127.0.0.1"),
                               atoi(env_or("AMQP_PORT", "5672"))) != AMQP_STATUS_OK) {
        fprintf(stderr, "amqppub: cannot connect\n");
        return 1;
    }
    check(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, env_or("AMQP_USER", "guest"),
                     env_or("AMQP_PASS", "guest")),
          "login");
    amqp_channel_open(c, 1);
    check(amqp_get_rpc_reply(c), "channel");
    amqp_bytes_t ex = amqp_cstring_bytes("robot-shop"), key = amqp_cstring_bytes("orders");
    amqp_exchange_declare(c, 1, ex, amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "exchange.declare");
    amqp_queue_declare(c, 1, key, 0, 1, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "queue.declare");
    amqp_queue_bind(c, 1, key, ex, key, amqp_empty_table);
    check(amqp_get_rpc_reply(c), "queue.bind");
    if (argc > 1 && strcmp(argv[1], "purge") == 0) {
        amqp_queue_purge_ok_t *ok = amqp_queue_purge(c, 1, key);
        check(amqp_get_rpc_reply(c), "queue.purge");
        printf("{\"purged\":%u}\n", ok ? ok->message_count : 0);
        amqp_destroy_connection(c);
        return 0;
    }
    amqp_confirm_select(c, 1);
    check(amqp_get_rpc_reply(c), "confirm.select");
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
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
            return 1;
        }
    }
    /* confirms arrive in order (possibly batched with multiple=true): wait for the last one */
    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {30, 0};
        if (amqp_simple_wait_frame_noblock(c, &f, &tv) != AMQP_STATUS_OK) {
            fprintf(stderr, "amqppub: no confirm\n");
            return 1;
        }
        if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = f.payload.method.decoded;
            if (ack->delivery_tag >= (uint64_t)n)
                break;
        }
    }
    printf("{\"published\":%ld,\"publish_s\":%.3f}\n", n, now_s() - t0);
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return 0;
}
