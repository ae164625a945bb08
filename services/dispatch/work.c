/* work.c - dispatch's pure logic: order id extraction, step delays, simulated failures. */
#include "services/dispatch/work.h"

#include "libshop/json.h"
#include "libshop/util.h"

char *work_order_id(const char *body, size_t len, const char **why)
{
    json_error_t err;
    json_t *v = json_loadb(body, len, JSON_DECODE_ANY, &err);
    char *id = NULL;
    if (!v)
        *why = "not JSON";
    else if (!json_is_object(v))
        *why = "not a JSON object";
    else if (!shop_json_str(v, "orderid"))
        *why = "no string orderid";
    else
        id = shop_xstrdup(shop_json_str(v, "orderid"));
    json_decref(v);
    return id;
}

long work_step_delay_ms(long fixed_ms, unsigned r)
{
    return fixed_ms >= 0 ? fixed_ms : 42 + (long)(r % 42);
}

bool work_fails(long percent, unsigned r)
{
    if (percent <= 0)
        return false;
    if (percent >= 100)
        return true;
    return (long)(r % 100) < percent;
}

char *work_excerpt(const char *body, size_t len, char *out, size_t max)
{
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)body[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '.';
    }
    out[n] = '\0';
    return out;
}
