/* fuzz_idem.c - payment's idempotency parsing (D21): the Idempotency-Key header's syntax, the
 * session cookie read from a Cookie header, the Redis key built from them, and the record read
 * back from Redis. Input: a header value, a NUL, a stored record. Properties: idem_key_ok agrees
 * with the rule written out here; a cookie value found is a "name=value" pair of the header; a
 * key names what it was built from; a record that parses survives a dump and a parse again. */
#include "libshop/json.h"
#include "services/payment/idem.h"
#include "tests/fuzz/fuzz.h"

static bool key_rule(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return n >= 1 && n <= IDEM_KEY_MAX;
}

static void check_key(const char *value)
{
    bool ok = idem_key_ok(value);
    FUZZ_CHECK(ok == key_rule(value));
    if (!ok)
        return;
    char *key = idem_redis_key("", value, "cart", NULL);
    FUZZ_CHECK(key && strncmp(key, "payment/idem/", 13) == 0);
    json_error_t err;
    json_t *parts = json_loads(key + 13, 0, &err);
    FUZZ_CHECK(json_is_array(parts) && json_array_size(parts) == 3);
    FUZZ_CHECK(strcmp(json_string_value(json_array_get(parts, 2)), value) == 0);
    json_decref(parts);
    free(key);
}

static void check_cookie(const char *header)
{
    char out[64];
    long n = idem_cookie(header, "shop_session", out, sizeof(out));
    FUZZ_CHECK(n >= -1 && n < (long)sizeof(out));
    if (n < 0)
        return;
    FUZZ_CHECK(strlen(out) == (size_t)n);
    char pair[80];
    snprintf(pair, sizeof(pair), "shop_session=%s", out);
    FUZZ_CHECK(strstr(header, pair) != NULL);
    char *key = idem_redis_key(out, NULL, "cart", "nonce"); /* any session bytes give a key */
    FUZZ_CHECK(key != NULL);
    free(key);
}

static void check_record(const char *text, size_t len)
{
    struct idem_record r;
    if (!idem_record_parse(text, len, &r)) {
        FUZZ_CHECK(r.cart == NULL && r.nonce == NULL);
        return;
    }
    char *again = idem_record_dump(&r);
    FUZZ_CHECK(again != NULL);
    struct idem_record back;
    FUZZ_CHECK(idem_record_parse(again, strlen(again), &back));
    FUZZ_CHECK(back.state == r.state && back.cleared == r.cleared);
    FUZZ_CHECK(strcmp(back.orderid, r.orderid) == 0 && strcmp(back.cart, r.cart) == 0);
    FUZZ_CHECK((back.nonce == NULL) == (r.nonce == NULL));
    FUZZ_CHECK(idem_record_matches(&back, r.cart, r.nonce));
    idem_record_free(&back);
    idem_record_free(&r);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rest;
    size_t rest_len;
    char *head = fuzz_split(data, size, &rest, &rest_len);
    check_key(head);
    check_cookie(head);
    char *record = fuzz_bytes(rest, rest_len);
    check_record(record, rest_len);
    free(record);
    free(head);
    return 0;
}
