/* test_curlrun.c - client.c's calls and where they run (curlrun.h), against a small HTTP server
 * of the test's own: outside a loop a call blocks on the thread's handle; in coroutines the calls
 * of one loop thread are in flight at once (the server answers only when all four have come)
 * while the loop is free, and each gets its own answer; the loop's connections are reused by
 * its next calls; a peer that never answers ends in the call's timeout; a loop freed with a
 * call in flight ends it at once. */
#include "libshop/client.h"
#include "libshop/loop.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GATE 4

static int g_listen, g_port;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_accepted, g_at_gate;

/* Waits (at most 5 s) until GATE requests are at the gate. */
static void gate_wait(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g_lock);
    g_at_gate++;
    pthread_cond_broadcast(&g_cond);
    while (g_at_gate % GATE != 0 && pthread_cond_timedwait(&g_cond, &g_lock, &until) == 0) {
    }
    pthread_mutex_unlock(&g_lock);
}

/* One connection: GET /echo/X answers X, /gate/X answers X once GATE requests are at the gate,
 * /hang reads on and never answers. */
static void *conn_main(void *arg)
{
    int fd = (int)(long)arg;
    char req[2048];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, req + len, sizeof(req) - 1 - len)) > 0) {
        len += (size_t)n;
        req[len] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (!end)
            continue;
        char path[256] = "";
        sscanf(req, "GET %255s", path);
        if (strncmp(path, "/gate/", 6) == 0)
            gate_wait();
        const char *body = strncmp(path, "/hang", 5) == 0 ? NULL : strrchr(path, '/') + 1;
        if (body) {
            char out[512];
            int m = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
                             strlen(body), body);
            if (write(fd, out, (size_t)m) != m)
                break;
        }
        len -= (size_t)(end + 4 - req);
        memmove(req, end + 4, len);
    }
    close(fd);
    return NULL;
}

static void *server_main(void *arg)
{
    (void)arg;
    int fd;
    while ((fd = accept(g_listen, NULL, NULL)) >= 0) {
        pthread_mutex_lock(&g_lock);
        g_accepted++;
        pthread_mutex_unlock(&g_lock);
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, (void *)(long)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
    return NULL;
}

static void server_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    g_listen = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(g_listen, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(g_listen, 64) == 0);
    getsockname(g_listen, (struct sockaddr *)&a, &alen);
    g_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, server_main, NULL);
    pthread_detach(t);
}

static int accepted(void)
{
    pthread_mutex_lock(&g_lock);
    int n = g_accepted;
    pthread_mutex_unlock(&g_lock);
    return n;
}

struct call {
    char path[64];
    long timeout_ms;
    int rc;
    long status;
    char body[64];
    struct shop_err err;
    int done; /* done() calls of its coroutine */
};

static void call_fn(void *arg)
{
    struct call *c = arg;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", g_port, c->path);
    struct shop_http_result res;
    shop_http_result_init(&res, 4096);
    struct shop_http_call call = {.method = "GET", .url = url, .timeout_ms = c->timeout_ms};
    c->rc = shop_http_call(&call, &res);
    c->status = res.status;
    c->err = res.err;
    snprintf(c->body, sizeof(c->body), "%s", res.body.data ? res.body.data : "");
    shop_http_result_cleanup(&res);
}

static void call_done(void *arg)
{
    ((struct call *)arg)->done++;
}

/* Runs the loop as a worker does (poll, tick) until no coroutine is busy, at most 10 s. */
static void run_until_idle(struct shop_loop *l)
{
    long long until = shop_now_ns() + 10000000000LL;
    while (shop_loop_busy() > 0 && shop_now_ns() < until) {
        shop_loop_poll(l, 100);
        shop_loop_tick(l);
    }
}

static void test_thread_call(void)
{
    struct call c = {.path = "/echo/plain", .timeout_ms = 5000};
    call_fn(&c);
    CHECK(c.rc == 0 && c.status == 200);
    CHECK_STR(c.body, "plain");
}

static void test_loop_calls(void)
{
    struct shop_loop *l = shop_loop_new();
    struct call c[GATE];
    for (int round = 0; round < 2; round++) {
        int before = accepted();
        for (int i = 0; i < GATE; i++) {
            c[i] = (struct call){.timeout_ms = 5000};
            snprintf(c[i].path, sizeof(c[i].path), "/gate/r%dc%d", round, i);
            CHECK(shop_co_start(call_fn, call_done, &c[i]) != NULL); /* waiting: the loop is back */
        }
        run_until_idle(l);
        for (int i = 0; i < GATE; i++) {
            char want[32];
            snprintf(want, sizeof(want), "r%dc%d", round, i);
            CHECK(c[i].rc == 0 && c[i].status == 200 && c[i].done == 1);
            CHECK_STR(c[i].body, want);
        }
        if (round == 1)
            CHECK(accepted() == before); /* the loop's connections of round 0, reused */
    }
    shop_loop_free(l);
}

static void test_loop_timeout(void)
{
    struct shop_loop *l = shop_loop_new();
    struct call c = {.path = "/hang", .timeout_ms = 300};
    CHECK(shop_co_start(call_fn, call_done, &c) != NULL);
    run_until_idle(l);
    CHECK(c.done == 1 && c.rc == -1 && c.status == 0 && c.err.kind == SHOP_ERR_UNAVAILABLE);
    shop_loop_free(l);
}

static void test_free_in_flight(void)
{
    struct shop_loop *l = shop_loop_new();
    struct call c = {.path = "/hang", .timeout_ms = 10000};
    CHECK(shop_co_start(call_fn, call_done, &c) != NULL);
    for (int i = 0; i < 20; i++) { /* the request goes out */
        shop_loop_poll(l, 10);
        shop_loop_tick(l);
    }
    long long t0 = shop_now_ns();
    shop_loop_free(l);
    CHECK(c.done == 1 && c.rc == -1 && c.status == 0);
    CHECK(c.err.kind == SHOP_ERR_UNAVAILABLE); /* a 503, as for a peer that is down */
    CHECK(shop_now_ns() - t0 < 5000000000LL);  /* ended, not waited for its 10 s */
}

int main(void)
{
    server_start();
    test_thread_call();
    test_loop_calls();
    test_loop_timeout();
    test_free_in_flight();
    return check_report("curlrun");
}
