/* test_trace.c - W3C traceparent parsing and propagation, parent/child links, the samplers, and
 * the OTLP/JSON batch the exporter POSTs (received by a small HTTP listener of the test's own and
 * read back with jansson). The encoding against a real collector is the contract suite's. */
#include "libshop/trace.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

static void test_parse(void)
{
    uint8_t t[16], s[8], f;
    CHECK(shop_traceparent_parse(TP, t, s, &f) == 0);
    CHECK(t[0] == 0x0a && t[15] == 0x9c && s[0] == 0xb7 && s[7] == 0x31 && f == 1);
    CHECK(shop_traceparent_parse(NULL, t, s, &f) == -1);
    CHECK(shop_traceparent_parse("", t, s, &f) == -1);
    CHECK(shop_traceparent_parse("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", t, s,
                                 &f) == -1); /* upper case hex is not allowed */
    CHECK(shop_traceparent_parse("00-00000000000000000000000000000000-b7ad6b7169203331-01", t, s,
                                 &f) == -1);
    CHECK(shop_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", t, s,
                                 &f) == -1);
    CHECK(shop_traceparent_parse("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", t, s,
                                 &f) == -1);
    CHECK(shop_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", t, s,
                                 &f) == -1); /* version 00 has no more fields */
    CHECK(shop_traceparent_parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", t, s,
                                 &f) == 0); /* a later version may have */
    CHECK(shop_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0", t, s,
                                 &f) == -1);
}

static void test_propagation(void)
{
    char tp[SHOP_TRACEPARENT_LEN + 1], tid[33], sid[17];
    CHECK(!shop_trace_header(tp, sizeof(tp)) && tp[0] == '\0');
    struct shop_span server, client;
    shop_span_begin(&server, SHOP_SPAN_SERVER, TP, "GET /x");
    CHECK(shop_span_current() == &server);
    CHECK(shop_trace_header(tp, sizeof(tp)));
    CHECK(strncmp(tp, TP, 36) == 0);           /* same version and trace id */
    CHECK(strncmp(tp + 36, TP + 36, 16) != 0); /* a span id of its own */
    CHECK(strcmp(tp + 52, "-01") == 0);        /* the caller's sampled flag */
    CHECK(memcmp(server.parent_id, "\xb7\xad\x6b\x71\x69\x20\x33\x31", 8) == 0);
    shop_span_begin(&client, SHOP_SPAN_CLIENT, NULL, "GET");
    CHECK(memcmp(client.trace_id, server.trace_id, 16) == 0);
    CHECK(memcmp(client.parent_id, server.span_id, 8) == 0);
    CHECK(shop_trace_ids(tid, sid) && strncmp(tid, TP + 3, 32) == 0 && strlen(sid) == 16);
    shop_span_end(&client);
    CHECK(shop_span_current() == &server);
    shop_span_end(&server);
    CHECK(shop_span_current() == NULL);

    /* a malformed header starts a new trace */
    shop_span_begin(&server, SHOP_SPAN_SERVER, "garbage", "GET /x");
    CHECK(shop_trace_header(tp, sizeof(tp)) && strncmp(tp + 3, TP + 3, 32) != 0);
    CHECK(!server.recording); /* no endpoint: nothing kept */
    shop_span_end(&server);
}

static void test_samplers(void)
{
    struct shop_span s;
    setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0", 1);
    shop_trace_init("unit");
    shop_span_begin(&s, SHOP_SPAN_SERVER, NULL, "root");
    CHECK((s.flags & 1) == 0);
    shop_span_end(&s);
    shop_span_begin(&s, SHOP_SPAN_SERVER, TP, "not parent based: the ratio decides");
    CHECK((s.flags & 1) == 0);
    shop_span_end(&s);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    shop_trace_init("unit");
    shop_span_begin(&s, SHOP_SPAN_SERVER, TP, "the sampled parent decides");
    CHECK((s.flags & 1) == 1);
    shop_span_end(&s);
    setenv("OTEL_TRACES_SAMPLER_ARG", "1", 1);
    shop_trace_init("unit");
    shop_span_begin(&s, SHOP_SPAN_SERVER, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
                    "an unsampled parent");
    CHECK((s.flags & 1) == 0);
    shop_span_end(&s);
    shop_span_begin(&s, SHOP_SPAN_SERVER, NULL, "root, ratio 1");
    CHECK((s.flags & 1) == 1);
    shop_span_end(&s);
    unsetenv("OTEL_TRACES_SAMPLER");
    unsetenv("OTEL_TRACES_SAMPLER_ARG");
    shop_trace_init("unit");
}

/* ---- a one-request HTTP listener that keeps the body it got ---------------------------------- */

static int listen_fd;
static char *received;

static void *serve_one(void *arg)
{
    (void)arg;
    int c = accept(listen_fd, NULL, NULL);
    size_t cap = 1 << 20, len = 0;
    char *buf = calloc(1, cap + 1);
    for (;;) {
        ssize_t n = read(c, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *body = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (body && cl && len - (size_t)(body + 4 - buf) >= strtoul(cl + 16, NULL, 10))
            break;
    }
    const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    (void)!write(c, ok, sizeof(ok) - 1);
    close(c);
    received = buf;
    return NULL;
}

static int start_listener(pthread_t *t)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(listen_fd, (struct sockaddr *)&a, sizeof(a));
    listen(listen_fd, 4);
    getsockname(listen_fd, (struct sockaddr *)&a, &alen);
    pthread_create(t, NULL, serve_one, NULL);
    return ntohs(a.sin_port);
}

static const char *attr(json_t *attrs, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(attrs, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0) {
            json_t *v = json_object_get(a, "value");
            json_t *s = json_object_get(v, "stringValue");
            return s ? json_string_value(s) : json_string_value(json_object_get(v, "intValue"));
        }
    }
    return NULL;
}

static void test_export(void)
{
    pthread_t t;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", start_listener(&t));
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url, 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1); /* only the shutdown's flush sends */
    setenv("OTEL_SERVICE_NAME", "unit-svc", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test%20lab,service.name=ignored", 1);
    shop_trace_init("unit");
    CHECK(shop_trace_exporting());
    struct shop_span server, client;
    shop_span_begin(&server, SHOP_SPAN_SERVER, TP, "GET /product/{sku}");
    CHECK(server.recording);
    shop_span_attr_str(&server, "http.route", "/product/{sku}");
    shop_span_attr_int(&server, "http.response.status_code", 200);
    shop_span_begin(&client, SHOP_SPAN_CLIENT, NULL, "GET");
    shop_span_attr_str(&client, "db.query.text", "quote \" backslash \\ newline \n");
    shop_span_fail(&client, "down");
    shop_span_end(&client);
    shop_span_end(&server);
    shop_trace_shutdown();
    pthread_join(t, NULL);
    close(listen_fd);

    CHECK(received && strstr(received, "POST / v1/traces") == NULL);
    CHECK(received && strncmp(received, "POST /v1/traces HTTP/1.1", 24) == 0);
    json_t *doc = received ? json_loads(strstr(received, "\r\n\r\n") + 4, 0, NULL) : NULL;
    CHECK(doc != NULL);
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *rattrs = json_object_get(json_object_get(rs, "resource"), "attributes");
    CHECK_STR(attr(rattrs, "service.name"), "unit-svc");
    CHECK_STR(attr(rattrs, "deployment.environment"), "test lab");
    json_t *spans = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans");
    CHECK(json_array_size(spans) == 2);
    json_t *c = json_array_get(spans, 0), *s = json_array_get(spans, 1);
    CHECK_STR(json_string_value(json_object_get(s, "traceId")), "0af7651916cd43dd8448eb211c80319c");
    CHECK_STR(json_string_value(json_object_get(s, "parentSpanId")), "b7ad6b7169203331");
    CHECK_STR(json_string_value(json_object_get(c, "parentSpanId")),
              json_string_value(json_object_get(s, "spanId")));
    CHECK_STR(json_string_value(json_object_get(s, "name")), "GET /product/{sku}");
    CHECK(json_integer_value(json_object_get(s, "kind")) == 2);
    CHECK(json_integer_value(json_object_get(c, "kind")) == 3);
    CHECK_STR(attr(json_object_get(s, "attributes"), "http.response.status_code"), "200");
    CHECK_STR(attr(json_object_get(c, "attributes"), "db.query.text"),
              "quote \" backslash \\ newline \n");
    CHECK(json_integer_value(json_object_get(json_object_get(c, "status"), "code")) == 2);
    CHECK(strtoll(json_string_value(json_object_get(s, "endTimeUnixNano")), NULL, 10) >=
          strtoll(json_string_value(json_object_get(s, "startTimeUnixNano")), NULL, 10));
    struct shop_trace_stats st;
    shop_trace_stats(&st);
    CHECK(st.queued == 2 && st.exported == 2 && st.dropped == 0 && st.in_queue == 0);
    json_decref(doc);
    free(received);
}

int main(void)
{
    test_parse();
    test_propagation();
    test_samplers();
    test_export();
    return check_report("test_trace");
}
