/* shop-amqp-publish - publishes raw messages to RabbitMQ with a publisher confirm, or reports
 * a queue's depth; for tests and for operators re-injecting an order by hand.
 * Usage: shop-amqp-publish [-e EXCHANGE] [-k ROUTING_KEY] [-q QUEUE] BODY...   ("-" = stdin)
 *        shop-amqp-publish [-q QUEUE] --count      prints "messages=N consumers=M"
 *        shop-amqp-publish -q QUEUE --take N       takes up to N messages off the queue and
 *                                                  prints each body on a line, bytes outside
 *                                                  printable ASCII and \ as \xHH
 * Connection settings come from AMQP_HOST, AMQP_PORT, AMQP_USER, AMQP_PASS (as the services).
 * The exchange, queue and binding are declared as payment and dispatch declare them. */
#include "libshop/amqp.h"
#include "libshop/log.h"
#include "libshop/util.h"

#include "shop_version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_stdin(size_t *len)
{
    struct shop_buf b;
    shop_buf_init(&b, 16 * 1024 * 1024);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (shop_buf_append(&b, chunk, n) == -1)
            break;
    if (!b.data)
        shop_buf_append(&b, "", 0);
    *len = b.len;
    return b.data;
}

static void print_body(void *ud, const char *body, size_t len)
{
    (void)ud;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    putchar('\n');
}

static int usage(void)
{
    fprintf(stderr, "usage: shop-amqp-publish [-e EXCHANGE] [-k KEY] [-q QUEUE] BODY... | "
                    "[-q QUEUE] --count | -q QUEUE --take N\n");
    return 2;
}

int main(int argc, char **argv)
{
    /* deploy/dist and tests/static check that every shipped binary answers this */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("shop-amqp-publish %s\n", SHOP_VERSION);
        return 0;
    }
    shop_log_init("amqp-publish");
    shop_log_set_level(getenv("LOG_LEVEL") && *getenv("LOG_LEVEL") ? getenv("LOG_LEVEL") : "warn");
    struct shop_amqp_conf conf;
    shop_amqp_conf_from_env(&conf);
    bool count = false;
    long take = -1;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0)
            count = true;
        else if (i + 1 < argc && strcmp(argv[i], "--take") == 0)
            take = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "-e") == 0)
            conf.exchange = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-k") == 0)
            conf.routing_key = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "-q") == 0)
            conf.queue = argv[++i];
        else if (strcmp(argv[i], "--") == 0 || argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
            break;
        else
            return usage();
    }
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    struct shop_err err;
    if (count) {
        unsigned messages = 0, consumers = 0;
        if (shop_amqp_queue_info(&conf, &messages, &consumers, &err) == -1) {
            fprintf(stderr, "shop-amqp-publish: %s\n", err.msg);
            return 1;
        }
        printf("messages=%u consumers=%u\n", messages, consumers);
        return 0;
    }
    if (take >= 0) {
        int n = shop_amqp_queue_take(&conf, (unsigned)take, print_body, NULL, &err);
        if (n == -1)
            fprintf(stderr, "shop-amqp-publish: %s\n", err.msg);
        return n == -1;
    }
    if (i >= argc)
        return usage();
    shop_amqp_publisher_init(&conf);
    int rc = 0;
    for (; i < argc && rc == 0; i++) {
        size_t len = strlen(argv[i]);
        char *in = strcmp(argv[i], "-") == 0 ? read_stdin(&len) : NULL;
        if (shop_amqp_publish(in ? in : argv[i], len, &err) == -1) {
            fprintf(stderr, "shop-amqp-publish: %s\n", err.msg);
            rc = 1;
        }
        free(in);
    }
    shop_amqp_publisher_close_thread();
    return rc;
}
