/* outbox.c - the order-history outbox (outbox.h): a Redis list of JSON entries
 * {"user", "orderid", "cart", "check", "cookie"} walked by one thread. An entry leaves the list
 * when the user service has written it (200), or when it can never be written (the user is not
 * registered, or the user service refuses it with a 4xx: logged); a transport error or a 5xx
 * keeps it for the next round, without holding up the entries behind it. */
#include "services/payment/outbox.h"
#include "libshop/client.h"
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/redis.h"
#include "libshop/util.h"
#include "services/payment/order.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUND_MAX    200 /* entries looked at per round */
#define LOCK_TTL_S   60  /* a drainer that died frees the list this long after */
#define CALL_TIMEOUT 5000
#define ENTRY_MAX    (1024 * 1024)

struct shop_counter history_deferred = SHOP_COUNTER_INIT(
    "payment_history_deferred_total", "Order-history entries kept in the outbox for a later write",
    SHOP_NUM_PYTHON);
struct shop_counter history_recovered =
    SHOP_COUNTER_INIT("payment_history_recovered_total",
                      "Order-history entries written later from the outbox", SHOP_NUM_PYTHON);

static struct {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool running, stop, kick;
    char user_base[300];
    long retry_ms;
} ob = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

int outbox_add(const char *user, const char *orderid, json_t *cart, bool check, const char *cookie,
               struct shop_err *err)
{
    json_t *e = json_pack("{s:s,s:s,s:O,s:b,s:s}", "user", user, "orderid", orderid, "cart", cart,
                          "check", check, "cookie", cookie ? cookie : "");
    if (!e) { /* a cookie that is not UTF-8 is not kept */
        e = json_pack("{s:s,s:s,s:O,s:b,s:s}", "user", user, "orderid", orderid, "cart", cart,
                      "check", check, "cookie", "");
    }
    char *text = shop_json_dumps(e, SHOP_JSON_COMPACT);
    json_decref(e);
    int rc = shop_redis_rpush(OUTBOX_KEY, text, strlen(text), err);
    free(text);
    if (rc == 0) {
        shop_counter_add(&history_deferred, 1);
        pthread_mutex_lock(&ob.mu);
        ob.kick = true;
        pthread_cond_signal(&ob.cond);
        pthread_mutex_unlock(&ob.mu);
    }
    return rc;
}

enum verdict { V_WRITTEN, V_DROP, V_RETRY };

/* One call to the user service; 200 -> WRITTEN, transport error or 5xx -> RETRY, else DROP. */
static enum verdict user_call(const char *method, const char *verb, const char *user,
                              const char *body, const char *cookie, long *status)
{
    struct shop_http_result res;
    shop_http_result_init(&res, 64 * 1024);
    struct shop_peer_call call = {.method = method,
                                  .base = ob.user_base,
                                  .verb = verb,
                                  .id = user,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0,
                                  .timeout_ms = CALL_TIMEOUT,
                                  .request_id = "payment-outbox",
                                  .cookie = cookie};
    int rc = shop_http_call_peer(&call, &res);
    *status = res.status;
    shop_http_result_cleanup(&res);
    if (rc == -1 || res.status >= 500)
        return V_RETRY;
    return res.status == 200 ? V_WRITTEN : V_DROP;
}

/* Writes one entry (the check first when asked). */
static enum verdict deliver(const char *text, size_t len)
{
    json_error_t jerr;
    json_t *e = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &jerr);
    const char *user = shop_json_str(e, "user"), *orderid = shop_json_str(e, "orderid");
    const char *cookie = shop_json_str(e, "cookie");
    json_t *cart = json_object_get(e, "cart");
    if (!user || !orderid || !json_is_object(cart)) {
        shop_log_warnx("outbox: dropping an entry that is not one: %.200s", text);
        json_decref(e);
        return V_DROP;
    }
    long status = 0;
    enum verdict v = V_WRITTEN;
    if (json_is_true(json_object_get(e, "check"))) {
        v = user_call("GET", "check", user, NULL, cookie, &status);
        if (v == V_DROP) /* not a registered user: an anonymous order has no history */
            shop_log_info("outbox: order %s of %s: no registered user (%ld), no history", orderid,
                          user, status);
    }
    if (v == V_WRITTEN) {
        json_t *h = order_history(orderid, cart);
        char *body = shop_json_dumps(h, SHOP_JSON_PYTHON);
        json_decref(h);
        v = user_call("POST", "order", user, body, cookie, &status);
        free(body);
        if (v == V_WRITTEN)
            shop_log_info("outbox: order %s written to the history of %s", orderid, user);
        else if (v == V_DROP)
            shop_log_warnx("outbox: the user service refuses order %s of %s (%ld): dropped",
                           orderid, user, status);
    }
    json_decref(e);
    return v;
}

/* Walks the list once under the lock. */
static void drain_round(void)
{
    struct shop_err err;
    char owner[32];
    snprintf(owner, sizeof(owner), "%ld", (long)getpid());
    if (shop_redis_set_nx(OUTBOX_LOCK, owner, strlen(owner), LOCK_TTL_S, &err) != 1)
        return;
    long i = 0;
    for (int n = 0; n < ROUND_MAX; n++) {
        char *text;
        size_t len;
        if (shop_redis_lindex(OUTBOX_KEY, i, &text, &len, &err) != 1)
            break;
        enum verdict v = len > ENTRY_MAX ? V_DROP : deliver(text, len);
        if (v == V_RETRY)
            i++;
        else if (shop_redis_lrem(OUTBOX_KEY, text, len, &err) == -1)
            i++; /* written, but still listed: the next round writes it again */
        else if (v == V_WRITTEN)
            shop_counter_add(&history_recovered, 1);
        free(text);
        pthread_mutex_lock(&ob.mu);
        bool stop = ob.stop;
        pthread_mutex_unlock(&ob.mu);
        if (stop)
            break;
    }
    shop_redis_del(OUTBOX_LOCK, &err);
}

static void *drain_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&ob.mu);
    while (!ob.stop) {
        pthread_mutex_unlock(&ob.mu);
        drain_round();
        pthread_mutex_lock(&ob.mu);
        struct timespec until = shop_deadline(CLOCK_MONOTONIC, ob.retry_ms);
        while (!ob.stop && !ob.kick)
            if (pthread_cond_timedwait(&ob.cond, &ob.mu, &until) != 0)
                break;
        ob.kick = false;
    }
    pthread_mutex_unlock(&ob.mu);
    shop_redis_cleanup();
    return NULL;
}

void outbox_start(const char *user_base, long retry_ms)
{
    snprintf(ob.user_base, sizeof(ob.user_base), "%s", user_base);
    ob.retry_ms = retry_ms;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ob.cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&ob.thread, NULL, drain_main, NULL) != 0)
        shop_fatalx("outbox: cannot start its thread");
    ob.running = true;
}

void outbox_stop(void)
{
    if (!ob.running)
        return;
    pthread_mutex_lock(&ob.mu);
    ob.stop = true;
    pthread_cond_signal(&ob.cond);
    pthread_mutex_unlock(&ob.mu);
    pthread_join(ob.thread, NULL);
    ob.running = false;
}
