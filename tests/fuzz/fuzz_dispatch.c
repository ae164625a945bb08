/* fuzz_dispatch.c - the AMQP message body as dispatch decodes it: work_order_id must give the
 * body's string `orderid` (without an embedded NUL) or say why not, and work_excerpt a printable
 * log excerpt of the right length. When the body carries a cart that payment would accept
 * (order_check_cart), the message payment builds from it must decode back to its order id.
 * Input: the message body. */
#include "libshop/json.h"
#include "services/dispatch/work.h"
#include "services/payment/order.h"
#include "tests/fuzz/fuzz.h"

#include <math.h>

static void check_decode(const char *body, size_t len)
{
    const char *why = NULL;
    char *id = work_order_id(body, len, &why);
    json_error_t err;
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &err);
    const char *want = shop_json_str(v, "orderid");
    FUZZ_CHECK(id ? want && strcmp(id, want) == 0 && !why : !want && why);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_bytes(data, size);
    check_decode(body, size);
    free(body);
    return 0;
}
