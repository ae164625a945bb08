/* test_json.c - shortest round-trip number printing in the JS, Java and Python styles, and the
 * serialiser's string escaping. */
#include "libshop/json.h"
#include "tests/unit/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *fmt(double v, enum shop_num_style st)
{
    static char buf[64];
    shop_fmt_double(v, st, buf, sizeof(buf));
    return buf;
}

static void test_js(void)
{
    CHECK_STR(fmt(2001, SHOP_NUM_JS), "2001");
    CHECK_STR(fmt(35.35, SHOP_NUM_JS), "35.35");
    CHECK_STR(fmt(333.5, SHOP_NUM_JS), "333.5");
    CHECK_STR(fmt(67 - 67 / 1.2, SHOP_NUM_JS), "11.166666666666664");
    CHECK_STR(fmt(2170.35 - 2170.35 / 1.2, SHOP_NUM_JS), "361.7249999999999");
    CHECK_STR(fmt(0.1, SHOP_NUM_JS), "0.1");
    CHECK_STR(fmt(0.1 + 0.2, SHOP_NUM_JS), "0.30000000000000004");
    CHECK_STR(fmt(1e21, SHOP_NUM_JS), "1e+21");
    CHECK_STR(fmt(1e20, SHOP_NUM_JS), "100000000000000000000");
    CHECK_STR(fmt(1e-7, SHOP_NUM_JS), "1e-7");
    CHECK_STR(fmt(1e-6, SHOP_NUM_JS), "0.000001");
    CHECK_STR(fmt(-2.5, SHOP_NUM_JS), "-2.5");
    CHECK_STR(fmt(0, SHOP_NUM_JS), "0");
    CHECK_STR(fmt(-0.0, SHOP_NUM_JS), "0");
    CHECK_STR(fmt(1.5e300, SHOP_NUM_JS), "1.5e+300");
    CHECK_STR(fmt(NAN, SHOP_NUM_JS), "null");
    CHECK_STR(fmt(5e-324, SHOP_NUM_JS), "5e-324"); /* subnormal: one significant digit */
    CHECK_STR(fmt(2.2250738585072014e-308, SHOP_NUM_JS), "2.2250738585072014e-308");
}

static void test_java(void)
{
    CHECK_STR(fmt(35.35, SHOP_NUM_JAVA), "35.35");
    CHECK_STR(fmt(40, SHOP_NUM_JAVA), "40.0");
    CHECK_STR(fmt(0, SHOP_NUM_JAVA), "0.0");
    CHECK_STR(fmt(48.833333, SHOP_NUM_JAVA), "48.833333");
    CHECK_STR(fmt(-0.12574, SHOP_NUM_JAVA), "-0.12574");
    CHECK_STR(fmt(1e7, SHOP_NUM_JAVA), "1.0E7");
    CHECK_STR(fmt(0.001, SHOP_NUM_JAVA), "0.001");
    CHECK_STR(fmt(0.0001, SHOP_NUM_JAVA), "1.0E-4");
}

static void test_python(void)
{
    CHECK_STR(fmt(3, SHOP_NUM_PYTHON), "3.0");
    CHECK_STR(fmt(2041.55, SHOP_NUM_PYTHON), "2041.55");
    CHECK_STR(fmt(1e16, SHOP_NUM_PYTHON), "1e+16");
    CHECK_STR(fmt(1e15, SHOP_NUM_PYTHON), "1000000000000000.0");
    CHECK_STR(fmt(1e-5, SHOP_NUM_PYTHON), "1e-05");
    CHECK_STR(fmt(0.0001, SHOP_NUM_PYTHON), "0.0001");
    CHECK_STR(fmt(-0.0, SHOP_NUM_PYTHON), "-0.0");
    CHECK_STR(fmt(-0.0, SHOP_NUM_JAVA), "-0.0");
}

/* The significant digits themselves (leading and trailing zeros aside), as a string. */
static const char *sig_string(const char *s, char *d)
{
    int n = 0;
    for (; *s && *s != 'e' && *s != 'E' && n < 63; s++)
        if (*s >= '0' && *s <= '9' && (n > 0 || *s != '0'))
            d[n++] = *s;
    while (n > 1 && d[n - 1] == '0')
        n--;
    d[n] = '\0';
    return d;
}

/* The fewest significant digits that read back to v (the nearest such decimal), by trying
 * every precision; an oracle independent of json.c's fast and slow paths. */
static const char *fewest_digits(double v, char *d)
{
    char tmp[40];
    for (int p = 1; p < 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v)
            return sig_string(tmp, d);
    }
    snprintf(tmp, sizeof(tmp), "%.16e", v);
    return sig_string(tmp, d);
}

/* A random test value: short decimals (prices, coordinates, integers), long ones, subnormals. */
static double random_value(int i)
{
    switch (i % 5) {
    case 0:
        return ldexp((double)rand(), -1074 + rand() % 64);
    case 1: /* up to 9 digits with up to 12 decimal places */
        return (double)(rand() % 1000000000) / pow(10, rand() % 13) * (rand() % 2 ? 1 : -1);
    case 2: /* integers and near-2^50 / 2^53 magnitudes */
        return ldexp((double)rand(), rand() % 40);
    default:
        return (double)rand() / RAND_MAX * pow(10, rand() % 40 - 20);
    }
}

static void test_roundtrip(void)
{
    /* every printed value reads back to the same double */
    srand(42);
    int ok = 1;
    for (int i = 0; i < 100000 && ok; i++) {
        double v = random_value(i);
        char want[64], got[64];
        /* reads back in every style, and the digits are the fewest (and the nearest of those) */
        ok = v == 0 ||
             (strtod(fmt(v, SHOP_NUM_JS), NULL) == v && strtod(fmt(v, SHOP_NUM_JAVA), NULL) == v &&
              strtod(fmt(v, SHOP_NUM_PYTHON), NULL) == v &&
              strcmp(sig_string(fmt(v, SHOP_NUM_JS), got), fewest_digits(v, want)) == 0);
        if (!ok)
            fprintf(stderr, "value %.17g printed as %s\n", v, fmt(v, SHOP_NUM_JS));
    }
    CHECK(ok);
}

static void test_dump(void)
{
    json_t *v = json_pack("{s:f,s:i,s:s,s:[b,n]}", "total", 2170.35, "qty", 2, "name",
                          "caf\xc3\xa9 \"x\"\n", "l", 1);
    char *s = shop_json_dumps(v, SHOP_JSON_COMPACT);
    CHECK_STR(
        s, "{\"total\":2170.35,\"qty\":2,\"name\":\"caf\xc3\xa9 \\\"x\\\"\\n\",\"l\":[true,null]}");
    free(s);
    s = shop_json_dumps(v, SHOP_JSON_PYTHON);
    CHECK_STR(s, "{\"total\": 2170.35, \"qty\": 2, \"name\": \"caf\\u00e9 \\\"x\\\"\\n\", \"l\": "
                 "[true, null]}");
    free(s);
    json_decref(v);
    v = json_pack("{s:s}", "d", "a\x7f");
    s = shop_json_dumps(v, SHOP_JSON_PYTHON);
    CHECK_STR(s, "{\"d\": \"a\\u007f\"}"); /* json.dumps escapes DEL */
    free(s);
    json_decref(v);
    v = json_pack("{s:s}", "e", "\xf0\x9f\xa4\x96");
    s = shop_json_dumps(v, SHOP_JSON_PYTHON);
    CHECK_STR(s, "{\"e\": \"\\ud83e\\udd16\"}");
    free(s);
    json_decref(v);
}

static void test_parse_duplicates(void)
{
    /* D23: a repeated key is valid JSON and its last value wins, as JSON.parse and Python */
    json_error_t err;
    const char *t = "{\"a\":1,\"b\":{\"c\":1,\"c\":\"x\"},\"a\":[2]}";
    json_t *v = shop_json_parse(t, strlen(t), &err);
    CHECK(v != NULL);
    CHECK(json_object_size(v) == 2);
    CHECK(json_integer_value(json_array_get(json_object_get(v, "a"), 0)) == 2);
    CHECK_STR(json_string_value(json_object_get(json_object_get(v, "b"), "c")), "x");
    json_decref(v);
}

int main(void)
{
    test_js();
    test_java();
    test_python();
    test_roundtrip();
    test_dump();
    test_parse_duplicates();
    return check_report("json");
}
