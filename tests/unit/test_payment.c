/* test_payment.c - payment's pure order logic: cart validation (docs/api/payment.yaml, D19), the
 * sale metric inputs, UUIDv4 text, the Python-style AMQP message, and the idempotency keys and
 * records (D21). */
#include "services/payment/idem.c"
#include "services/payment/order.c"
#include "tests/unit/check.h"

#include "libshop/json.h"

#include <ctype.h>
#include <stdlib.h>

static json_t *J(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v)
        fprintf(stderr, "bad test JSON: %s\n", text);
    return v;
}

/* Runs order_check_cart on text; returns its verdict and leaves total/units. */
static bool check(const char *text, double *total, double *units)
{
    json_t *c = J(text);
    *total = -1;
    *units = -1;
    bool ok = order_check_cart(c, total, units);
    json_decref(c);
    return ok;
}

static void test_cart_validation(void)
{
    double t, u;
    CHECK(check("{\"total\":2170.35,\"tax\":361.7249999999999,\"items\":[{\"qty\":2,\"sku\":"
                "\"Watson\",\"price\":1000},{\"qty\":1,\"sku\":\"SHIP\",\"price\":170.35}]}",
                &t, &u));
    CHECK(t == 2170.35);
    CHECK(u == 2);
    /* units add up over every non-SHIP item, SHIP wherever it is */
    CHECK(check("{\"total\":5,\"items\":[{\"qty\":1,\"sku\":\"SHIP\"},{\"qty\":3,\"sku\":\"A\"},"
                "{\"qty\":4,\"sku\":\"B\"}]}",
                &t, &u));
    CHECK(u == 7);
    /* D19: a SHIP line alone (no product: an empty cart) is refused (the reference paid it) */
    CHECK(!check("{\"total\":10,\"items\":[{\"qty\":1,\"sku\":\"SHIP\"}]}", &t, &u));
    /* D19: a total <= 0, a quantity <= 0, a negative line are refused */
    CHECK(
        !check("{\"total\":-5,\"items\":[{\"qty\":1,\"sku\":\"A\"},{\"sku\":\"SHIP\"}]}", &t, &u));
    CHECK(!check("{\"total\":5,\"items\":[{\"qty\":0,\"sku\":\"A\"},{\"sku\":\"SHIP\"}]}", &t, &u));
    CHECK(!check("{\"total\":5,\"items\":[{\"qty\":-1,\"sku\":\"A\"},{\"qty\":2,\"sku\":"
                 "\"B\"},{\"sku\":\"SHIP\"}]}",
                 &t, &u));
    CHECK(!check("{\"total\":0.01,\"items\":[{\"qty\":1,\"sku\":\"A\",\"subtotal\":2001},"
                 "{\"sku\":\"SHIP\",\"subtotal\":-2000.99}]}",
                 &t, &u));
    /* the reference's "cart not valid" cases */
    CHECK(!check("{\"total\":0,\"items\":[{\"qty\":1,\"sku\":\"SHIP\"}]}", &t, &u));
    CHECK(!check("{\"total\":0.0,\"items\":[{\"qty\":1,\"sku\":\"SHIP\"}]}", &t, &u));
    CHECK(!check("{\"items\":[{\"qty\":1,\"sku\":\"SHIP\"}]}", &t, &u));
    CHECK(!check("{\"total\":12,\"items\":[{\"qty\":1,\"sku\":\"A\"}]}", &t, &u));
    CHECK(!check("{\"total\":12,\"items\":[]}", &t, &u));
    /* the reference's 500s become "not valid" (D3) */
    CHECK(!check("{\"total\":0,\"tax\":0}", &t, &u)); /* load-gen's error task */
    CHECK(!check("{\"total\":12,\"items\":null}", &t, &u));
    CHECK(!check("{\"total\":12,\"items\":{\"sku\":\"SHIP\"}}", &t, &u));
    CHECK(!check("{\"total\":12,\"items\":[\"SHIP\"]}", &t, &u));
    CHECK(!check("{\"total\":12,\"items\":[{\"sku\":\"SHIP\"},{\"sku\":\"A\"}]}", &t, &u));
    CHECK(!check("{\"total\":12,\"items\":[{\"sku\":\"SHIP\"},{\"sku\":\"A\",\"qty\":\"2\"}]}", &t,
                 &u));
    CHECK(!check("{\"total\":\"12\",\"items\":[{\"sku\":\"SHIP\"}]}", &t, &u));
    CHECK(!check("{\"total\":null,\"items\":[{\"sku\":\"SHIP\"}]}", &t, &u));
    CHECK(!check("[{\"total\":12}]", &t, &u));
    /* sku must be the string SHIP exactly */
    CHECK(!check("{\"total\":12,\"items\":[{\"sku\":\"ship\"}]}", &t, &u));
    CHECK(!check("{\"total\":12,\"items\":[{\"sku\":[\"SHIP\"]}]}", &t, &u));
}

static bool uuid_shape(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-'))
            return false;
        if (!dash && !(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_uuid(void)
{
    unsigned char zero[16] = {0}, ones[16];
    memset(ones, 0xff, sizeof(ones));
    char out[37];
    order_uuid4(zero, out);
    CHECK_STR(out, "00000000-0000-4000-8000-000000000000");
    order_uuid4(ones, out);
    CHECK_STR(out, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    unsigned char seq[16];
    for (int i = 0; i < 16; i++)
        seq[i] = (unsigned char)(i * 17);
    order_uuid4(seq, out);
    CHECK_STR(out, "00112233-4455-4677-8899-aabbccddeeff");
    CHECK(uuid_shape(out));
    bool all = true;
    for (int n = 0; n < 200; n++) {
        for (int i = 0; i < 16; i++)
            seq[i] = (unsigned char)rand();
        order_uuid4(seq, out);
        all = all && uuid_shape(out);
    }
    CHECK(all);
}

static void test_documents(void)
{
    json_t *cart =
        J("{\"total\":2170.35,\"tax\":361.7249999999999,\"items\":[{\"qty\":1,"
          "\"sku\":\"Watson\",\"name\":\"Watson\",\"price\":2001,\"subtotal\":2001.0}]}");
    json_t *m = order_message("0f8fad5b-d9cb-469f-a165-70867728950e", "anonymous-3", cart);
    char *s = shop_json_dumps(m, SHOP_JSON_PYTHON);
    CHECK_STR(s, "{\"orderid\": \"0f8fad5b-d9cb-469f-a165-70867728950e\", \"user\": "
                 "\"anonymous-3\", \"cart\": {\"total\": 2170.35, \"tax\": 361.7249999999999, "
                 "\"items\": [{\"qty\": 1, \"sku\": \"Watson\", \"name\": \"Watson\", \"price\": "
                 "2001, \"subtotal\": 2001.0}]}}");
    free(s);
    json_decref(m);
    json_t *h = order_history("abc", cart);
    s = shop_json_dumps(h, SHOP_JSON_PYTHON);
    CHECK(strncmp(s, "{\"orderid\": \"abc\", \"cart\": {\"total\": 2170.35", 43) == 0);
    free(s);
    json_decref(h);
    CHECK(cart->refcount == 1); /* borrowed, not stolen */
    json_decref(cart);
    /* non-ASCII user names are escaped as json.dumps does */
    json_t *c2 = J("{}");
    m = order_message("x", "zo\xc3\xab", c2);
    s = shop_json_dumps(m, SHOP_JSON_PYTHON);
    CHECK_STR(s, "{\"orderid\": \"x\", \"user\": \"zo\\u00eb\", \"cart\": {}}");
    free(s);
    json_decref(m);
    json_decref(c2);
}

static void test_idem_key_syntax(void)
{
    CHECK(idem_key_ok("a"));
    CHECK(idem_key_ok("0f8fad5b-d9cb-469f-a165-70867728950e"));
    CHECK(idem_key_ok("!~"));
    CHECK(!idem_key_ok(""));
    CHECK(!idem_key_ok("two words"));
    CHECK(!idem_key_ok("tab\there"));
    CHECK(!idem_key_ok("caf\xc3\xa9"));
    char k[IDEM_KEY_MAX + 2];
    memset(k, 'k', sizeof(k));
    k[IDEM_KEY_MAX] = '\0';
    CHECK(idem_key_ok(k));
    k[IDEM_KEY_MAX] = 'k';
    k[IDEM_KEY_MAX + 1] = '\0';
    CHECK(!idem_key_ok(k));
}

static void test_idem_cookie(void)
{
    char v[16];
    CHECK(idem_cookie("shop_session=abc", "shop_session", v, sizeof(v)) == 3);
    CHECK_STR(v, "abc");
    CHECK(idem_cookie("a=1; shop_session=xyz ; b=2", "shop_session", v, sizeof(v)) == 3);
    CHECK_STR(v, "xyz");
    CHECK(idem_cookie("my_shop_session=1; shop_session=2", "shop_session", v, sizeof(v)) == 1);
    CHECK_STR(v, "2");
    CHECK(idem_cookie("shop_session_x=1", "shop_session", v, sizeof(v)) == -1);
    CHECK(idem_cookie("a=1", "shop_session", v, sizeof(v)) == -1);
    CHECK(idem_cookie(NULL, "shop_session", v, sizeof(v)) == -1);
    CHECK(idem_cookie("s=0123456789abcdef", "s", v, sizeof(v)) == -1); /* does not fit */
    CHECK(idem_cookie("s=", "s", v, sizeof(v)) == 0);
}

static void test_idem_keys_and_records(void)
{
    char *a = idem_redis_key("", NULL, "anonymous-1", "n1");
    char *b = idem_redis_key("", NULL, "anonymous-1", "n2");
    char *c = idem_redis_key("", "n1", "anonymous-1", NULL);
    char *d = idem_redis_key("s", NULL, "anonymous-1", "n1");
    CHECK_STR(a, "payment/idem/[\"cart\",\"\",\"anonymous-1\",\"n1\"]");
    CHECK(strcmp(a, b) != 0 && strcmp(a, c) != 0 && strcmp(a, d) != 0);
    CHECK(idem_redis_key("", NULL, "anonymous-1", NULL) == NULL);
    char *e = idem_redis_key("\xff", "k", "x", NULL); /* a session that is not UTF-8: left out */
    char *f = idem_redis_key("", "k", "x", NULL);
    CHECK_STR(e, f);
    free(a), free(b), free(c), free(d), free(e), free(f);

    struct idem_record r = {.state = IDEM_DONE, .cart = "stan", .nonce = "n1", .cleared = true};
    memcpy(r.orderid, "0f8fad5b-d9cb-469f-a165-70867728950e", 37);
    char *text = idem_record_dump(&r);
    struct idem_record back;
    CHECK(idem_record_parse(text, strlen(text), &back));
    CHECK(back.state == IDEM_DONE && back.cleared);
    CHECK_STR(back.orderid, r.orderid);
    CHECK_STR(back.cart, "stan");
    CHECK(idem_record_matches(&back, "stan", "n1"));
    CHECK(idem_record_matches(&back, "stan", NULL));
    CHECK(!idem_record_matches(&back, "stan", "n2")); /* a new cart under the same id */
    CHECK(!idem_record_matches(&back, "partner-1", "n1"));
    idem_record_free(&back);
    free(text);
    r.nonce = NULL;
    r.state = IDEM_PENDING;
    text = idem_record_dump(&r);
    CHECK(idem_record_parse(text, strlen(text), &back));
    CHECK(back.state == IDEM_PENDING && back.nonce == NULL);
    idem_record_free(&back);
    free(text);
    const char *bad[] = {"",
                         "{}",
                         "[]",
                         "{\"state\":\"done\"}",
                         "{\"state\":\"gone\",\"orderid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\","
                         "\"cart\":\"x\",\"nonce\":null,\"cleared\":false}",
                         "{\"state\":\"done\",\"orderid\":\"nope\",\"cart\":\"x\",\"nonce\":null,"
                         "\"cleared\":false}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(!idem_record_parse(bad[i], strlen(bad[i]), &back));
        idem_record_free(&back);
    }
}

int main(void)
{
    test_cart_validation();
    test_uuid();
    test_documents();
    test_idem_key_syntax();
    test_idem_cookie();
    test_idem_keys_and_records();
    return check_report("payment");
}
