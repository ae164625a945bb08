/* fuzz_dispatch.c - the AMQP message body as dispatch decodes it: work_order_id must give the
 * body's string `orderid` (non-empty, at most WORK_ORDERID_MAX bytes, without an embedded NUL)
 * or say why not, and work_excerpt a printable log excerpt of the right length. When the body
 * carries a cart that payment would accept (order_check_cart), the message payment builds from
 * it must decode back to its order id. The same bytes, read as the value found under an order's
 * Redis key, must drive the record's transitions (work.h) to a value that reads back as what
 * was written: once "done", an order is never worked on again. Input: the message body. */
#include "libshop/json.h"
#include "services/dispatch/work.h"
#include "services/payment/order.h"
#include "tests/fuzz/fuzz.h"

#include <math.h>
#include <stdbool.h>

static void check_decode(const char *body, size_t len)
{
    const char *why = NULL;
    char *id = work_order_id(body, len, &why);
    json_error_t err;
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &err);
    const char *want = shop_json_str(v, "orderid");
    bool usable = want && *want && strlen(want) <= WORK_ORDERID_MAX;
    FUZZ_CHECK(id ? usable && strcmp(id, want) == 0 && !why : !usable && why);
    if (id) {
        char *key = work_record_key(id);
        FUZZ_CHECK(strncmp(key, "dispatch:order:", 15) == 0 && strcmp(key + 15, id) == 0);
        free(key);
    }
    free(id);

    char ex[121];
    work_excerpt(body, len, ex, 120);
    FUZZ_CHECK(strlen(ex) == (len < 120 ? len : 120));
    for (size_t i = 0; ex[i]; i++)
        FUZZ_CHECK(ex[i] >= 0x20 && ex[i] < 0x7f);

    double total, units;
    json_t *cart = json_object_get(v, "cart");
    if (cart && order_check_cart(cart, &total, &units)) {
        FUZZ_CHECK(isfinite(total) && total != 0 && isfinite(units) && units >= 0);
        json_t *msg = order_message("3c6b2a5e-1f0d-4c1e-9a57-0d6a2c7f8e91", "user", cart);
        char *text = shop_json_dumps(msg, SHOP_JSON_PYTHON);
        char *back = work_order_id(text, strlen(text), &why);
        FUZZ_CHECK(back && strcmp(back, "3c6b2a5e-1f0d-4c1e-9a57-0d6a2c7f8e91") == 0);
        free(back);
        free(text);
        json_decref(msg);
    }
    json_decref(v);
}

/* out must be a record reading back as (state, attempts). */
static void check_written(const char *out, const char *state, long attempts)
{
    const char *got = NULL;
    long n = -1;
    FUZZ_CHECK(out && work_record_read(out, strlen(out), &got, &n));
    FUZZ_CHECK(strcmp(got, state) == 0 && n == attempts);
}

static void check_record(const char *cur, size_t len)
{
    const char *state = NULL;
    long attempts = -1;
    bool known = work_record_read(cur, len, &state, &attempts);
    if (known)
        FUZZ_CHECK(attempts >= 0 &&
                   (!strcmp(state, "working") || !strcmp(state, "done") || !strcmp(state, "dead")));
    char *out = NULL;
    int rc = work_record_begin(cur, len, 3, 1, &out);
    if (known && strcmp(state, "done") == 0)
        FUZZ_CHECK(rc == WORK_DONE_BEFORE && !out);
    else if (known && strcmp(state, "dead") == 0)
        FUZZ_CHECK(rc == WORK_DEAD_BEFORE && !out);
    else if ((known ? attempts : 1) >= 3)
        FUZZ_CHECK(rc == WORK_TOO_MANY && !out);
    else
        check_written(out, "working", (known ? attempts : 1) + 1);
    if (rc != WORK_WRITE)
        return;
    /* the work is done: recorded, and a later delivery of it is a duplicate */
    char *done = NULL;
    FUZZ_CHECK(work_record_done(out, strlen(out), 2, &done) == WORK_WRITE);
    check_written(done, "done", (known ? attempts : 1) + 1);
    char *again = NULL;
    FUZZ_CHECK(work_record_begin(done, strlen(done), 3, 3, &again) == WORK_DONE_BEFORE && !again);
    FUZZ_CHECK(work_record_dead(done, strlen(done), 3, &again) == WORK_DONE_BEFORE && !again);
    free(done);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_bytes(data, size);
    check_decode(body, size);
    check_record(body, size);
    free(body);
    return 0;
}
