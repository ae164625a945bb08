/* test_shipping_calc - the shipping calculator against every value the reference computes (Q-SH1),
 * and the /calc and /match input rules. */
#include "services/shipping/calc.c"
#include "tests/unit/check.h"

#include "libshop/json.h"

struct oracle {
    const char *city;
    double lat, lon;
    long distance;
    const char *cost; /* as Java prints it */
};

static const struct oracle oracles[] = {
    {"home", 51.164896, 7.068792, 0, "0.0"},
    {"London", 51.50853, -0.12574, 707, "35.35"},
    {"Paris", 48.85341, 2.3488, 541, "27.05"},
    {"Aalfang", 48.833333, 15.066667, 848, "42.4"},
    {"Abtenau", 47.55, 13.35, 758, "37.9"},
    {"New York", 40.71427, -74.00597, 7572, "378.6"},
    {"Tokyo", 35.6895, 139.69171, 8217, "410.85"},
    {"Sydney", -33.86785, 151.20732, 13298, "664.9"},
    {"Wellington", -41.28664, 174.77557, 11567, "578.35"},
    {"Suva", -18.14161, 178.44149, 8886, "444.3"},
    {"Fairbanks", 64.83778, -147.71639, 4605, "230.25"},
    {"Adak", 51.88, -176.65, 0, "0.0"},
};

static void test_oracles(void)
{
    for (size_t i = 0; i < sizeof(oracles) / sizeof(oracles[0]); i++) {
        const struct oracle *o = &oracles[i];
        long km = calc_distance(o->lat, o->lon);
        char buf[40];
        shop_fmt_double(calc_cost(km), SHOP_NUM_JAVA, buf, sizeof(buf));
        if (km != o->distance)
            fprintf(stderr, "%s: distance %ld, want %ld\n", o->city, km, o->distance);
        CHECK(km == o->distance);
        CHECK_STR(buf, o->cost);
    }
    /* cost is km / 20 printed the Java way */
    char buf[40];
    shop_fmt_double(calc_cost(700), SHOP_NUM_JAVA, buf, sizeof(buf));
    CHECK_STR(buf, "35.0");
    /* just west of the antimeridian the bugged term goes negative: NaN -> 0 */
    CHECK(calc_distance(51.0, -179.0) == 0);
}

static void test_parse_id(void)
{
    long long v = 0;
    CHECK(calc_parse_id("42", &v) == 0 && v == 42);
    CHECK(calc_parse_id("+7", &v) == 0 && v == 7);
    CHECK(calc_parse_id("-3", &v) == 0 && v == -3);
    CHECK(calc_parse_id("9223372036854775807", &v) == 0 && v == 9223372036854775807LL);
    CHECK(calc_parse_id("9223372036854775808", &v) == -1);
    CHECK(calc_parse_id("abc", &v) == -1);
    CHECK(calc_parse_id("12a", &v) == -1);
    CHECK(calc_parse_id("1.5", &v) == -1);
    CHECK(calc_parse_id(" 1", &v) == -1);
    CHECK(calc_parse_id("-", &v) == -1);
    CHECK(calc_parse_id("", &v) == -1);
}

static void test_match_rules(void)
{
    char out[64];
    CHECK(calc_like_prefix("lon", out, sizeof(out)) == 0);
    CHECK_STR(out, "lon%");
    CHECK(calc_like_prefix("a%b_c!d\\e", out, sizeof(out)) == 0);
    CHECK_STR(out, "a!%b!_c!!d\\e%");
    CHECK(calc_like_prefix("%%%", out, 8) == 0);
    CHECK_STR(out, "!%!%!%%");
    CHECK(calc_like_prefix("%%%", out, 7) == -1);
    CHECK(calc_utf16_len("ab") == 2);
    CHECK(calc_utf16_len("abc") == 3);
    CHECK(calc_utf16_len("z\xc3\xbc") == 2);        /* "zü": two units, three bytes */
    CHECK(calc_utf16_len("\xe2\x82\xac") == 1);     /* "€": one unit, three bytes */
    CHECK(calc_utf16_len("\xf0\x9f\x98\x80") == 2); /* U+1F600: a surrogate pair (D23) */
    CHECK(calc_utf16_len("\xf0\x9f\x98\x80"
                         "a") == 3);
    CHECK(calc_match_keep(0) == 0);
    CHECK(calc_match_keep(10) == 10);
    CHECK(calc_match_keep(11) == 9);
    CHECK(calc_match_keep(500) == 9);
}

static void test_text_type(void)
{
    const char *text = "text/plain;charset=ISO-8859-1", *json = "application/json";
    CHECK_STR(calc_text_type(NULL), text);
    CHECK_STR(calc_text_type(""), text);
    CHECK_STR(calc_text_type("*/*"), text);
    CHECK_STR(calc_text_type("text/plain"), text);
    CHECK_STR(calc_text_type("application/json"), json);
    CHECK_STR(calc_text_type("APPLICATION/JSON"), json);
    CHECK_STR(calc_text_type("application/json, text/plain, */*"), json); /* first on a tie */
    CHECK_STR(calc_text_type("text/plain, application/json"), text);
    CHECK_STR(calc_text_type("text/plain;q=0.5, application/json"), json);
    CHECK_STR(calc_text_type("application/json;q=0.2, text/plain"), text);
    CHECK_STR(calc_text_type("application/json ; q=0.9 , */*;q=0.8"), json);
    CHECK_STR(calc_text_type("*/*;q=0.9, application/json;q=0.5"), text);
    CHECK_STR(calc_text_type("application/json;q=0"), text); /* not acceptable */
    CHECK_STR(calc_text_type("application/problem+json"), json);
    CHECK_STR(calc_text_type("application/*"), text);
    CHECK_STR(calc_text_type(",,, ;q=1,"), text);
}

int main(void)
{
    test_oracles();
    test_parse_id();
    test_match_rules();
    test_text_type();
    return check_report("test_shipping_calc");
}
