/* work.c - dispatch's pure logic: order id extraction, the per-order record, step delays,
 * simulated failures. */
#include "services/dispatch/work.h"

#include "libshop/json.h"
#include "libshop/util.h"

#include <stdio.h>
#include <string.h>

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
    else if (!*shop_json_str(v, "orderid"))
        *why = "empty orderid";
    else if (strlen(shop_json_str(v, "orderid")) > WORK_ORDERID_MAX)
        *why = "orderid too long";
    else
        id = shop_xstrdup(shop_json_str(v, "orderid"));
    json_decref(v);
    return id;
}

char *work_record_key(const char *orderid)
{
    static const char prefix[] = "dispatch:order:";
    size_t n = sizeof(prefix) + strlen(orderid);
    char *key = shop_xmalloc(n);
    snprintf(key, n, "%s%s", prefix, orderid);
    return key;
}

static const char *const states[] = {"working", "done", "dead"};

bool work_record_read(const char *cur, size_t len, const char **state, long *attempts)
{
    if (!cur)
        return false;
    json_error_t err;
    json_t *v = json_loadb(cur, len, 0, &err);
    const char *s = shop_json_str(v, "state");
    json_t *n = json_object_get(v, "attempts");
    bool ok = false;
    for (size_t i = 0; s && i < sizeof(states) / sizeof(*states); i++)
        if (strcmp(s, states[i]) == 0) {
            *state = states[i];
            ok = json_is_integer(n) && json_integer_value(n) >= 0 &&
                 json_integer_value(n) <= 1000000000;
        }
    if (ok)
        *attempts = (long)json_integer_value(n);
    json_decref(v);
    return ok;
}

static char *record_text(const char *state, long attempts, long long now)
{
    json_t *v = json_pack("{s:s,s:I,s:I}", "state", state, "attempts", (json_int_t)attempts, "at",
                          (json_int_t)now);
    char *text = shop_json_dumps(v, SHOP_JSON_COMPACT);
    json_decref(v);
    return text;
}

/* The outcome that a record in a final state gives, or WORK_WRITE. */
static int final_state(const char *state)
{
    if (strcmp(state, "done") == 0)
        return WORK_DONE_BEFORE;
    if (strcmp(state, "dead") == 0)
        return WORK_DEAD_BEFORE;
    return WORK_WRITE;
}

int work_record_begin(const char *cur, size_t len, long max_attempts, long long now, char **out)
{
    const char *state = "working";
    long attempts = 1; /* no record: the first delivery, which records nothing */
    if (work_record_read(cur, len, &state, &attempts) && final_state(state) != WORK_WRITE)
        return final_state(state);
    if (attempts >= max_attempts)
        return WORK_TOO_MANY;
    *out = record_text("working", attempts + 1, now);
    return WORK_WRITE;
}

int work_record_done(const char *cur, size_t len, long long now, char **out)
{
    const char *state = "working";
    long attempts = 1;
    if (work_record_read(cur, len, &state, &attempts) && final_state(state) != WORK_WRITE)
        return final_state(state);
    *out = record_text("done", attempts, now);
    return WORK_WRITE;
}

int work_record_dead(const char *cur, size_t len, long long now, char **out)
{
    const char *state = "working";
    long attempts = 0;
    if (work_record_read(cur, len, &state, &attempts) && strcmp(state, "done") == 0)
        return WORK_DONE_BEFORE;
    *out = record_text("dead", attempts, now);
    return WORK_WRITE;
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
