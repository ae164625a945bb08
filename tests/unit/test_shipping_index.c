/* test_shipping_index - shipping's quote cookie (signature, tampering, expiry, the newest
 * QUOTE_MAX cities) and the in-memory index's query rules on a small hand-made data set with a
 * hand-made collation (the contract suite compares the real one with MariaDB). */
#include "services/shipping/calc.c"
#include "services/shipping/index.c"
#include "services/shipping/quote.c"
#include "tests/unit/check.h"

#include "libshop/json.h"

/* ---- quotes ---------------------------------------------------------------------------------- */

/* The cookie's value (name=value) from a Set-Cookie line, into out. */
static void cookie_of(const char *set_cookie, char *out, size_t len)
{
    snprintf(out, len, "%.*s", (int)strcspn(set_cookie, ";"), set_cookie);
}

static void test_quote_roundtrip(void)
{
    quote_key_set("0123456789abcdef-unit", 21);
    struct quote_set q = {0};
    quote_add(&q, 16620);
    char set[QUOTE_COOKIE_SIZE], cookie[QUOTE_COOKIE_SIZE], header[2 * QUOTE_COOKIE_SIZE];
    CHECK(quote_cookie(&q, 1000, false, set, sizeof(set)) == 0);
    CHECK(strstr(set, "; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax") != NULL);
    CHECK(strstr(set, "Secure") == NULL);
    cookie_of(set, cookie, sizeof(cookie));
    snprintf(header, sizeof(header), "other=1; %s; last=2", cookie);
    struct quote_set got;
    CHECK(quote_parse(header, 1001, &got) == 1 && got.ids[0] == 16620);
    CHECK(quote_has(&got, 16620) && !quote_has(&got, 16621));
    CHECK(quote_parse(header, 1000 + QUOTE_TTL_S, &got) == 0); /* expired */
    CHECK(quote_parse(NULL, 1001, &got) == 0);
    CHECK(quote_cookie(&q, 1000, true, set, sizeof(set)) == 0 && strstr(set, "; Secure"));
}

static void test_quote_tampering(void)
{
    quote_key_set("0123456789abcdef-unit", 21);
    struct quote_set q = {0}, got;
    quote_add(&q, 7);
    char set[QUOTE_COOKIE_SIZE], cookie[QUOTE_COOKIE_SIZE];
    quote_cookie(&q, 1000, false, set, sizeof(set));
    cookie_of(set, cookie, sizeof(cookie));
    CHECK(quote_parse(cookie, 1001, &got) == 1);
    /* another city id, another expiry, a flipped MAC digit: all refused */
    char *ids = strstr(cookie, ".7.");
    CHECK(ids != NULL);
    ids[1] = '8';
    CHECK(quote_parse(cookie, 1001, &got) == 0);
    ids[1] = '7';
    char *exp = strstr(cookie, "v1.") + 3;
    exp[0] = exp[0] == '9' ? '8' : (char)(exp[0] + 1);
    CHECK(quote_parse(cookie, 1001, &got) == 0);
    cookie_of(set, cookie, sizeof(cookie));
    size_t n = strlen(cookie);
    cookie[n - 1] = cookie[n - 1] == '0' ? '1' : '0';
    CHECK(quote_parse(cookie, 1001, &got) == 0);
    /* another key (another replica without the shared secret) */
    cookie_of(set, cookie, sizeof(cookie));
    quote_key_set("another-key-of-16+bytes", 23);
    CHECK(quote_parse(cookie, 1001, &got) == 0);
    /* garbage */
    CHECK(quote_parse(QUOTE_COOKIE "=v1.99999999999.1.zz", 1001, &got) == 0);
    CHECK(quote_parse(QUOTE_COOKIE "=", 1001, &got) == 0);
    CHECK(quote_parse(QUOTE_COOKIE "=v1..", 1001, &got) == 0);
}

static void test_quote_newest_kept(void)
{
    struct quote_set q = {0};
    for (long long id = 1; id <= QUOTE_MAX + 3; id++)
        quote_add(&q, id);
    CHECK(q.n == QUOTE_MAX && q.ids[0] == QUOTE_MAX + 3 && !quote_has(&q, 3) && quote_has(&q, 4));
    quote_add(&q, 5); /* again: moves to the front, no duplicate */
    CHECK(q.n == QUOTE_MAX && q.ids[0] == 5 && q.ids[1] == QUOTE_MAX + 3);
    size_t fives = 0;
    for (size_t i = 0; i < q.n; i++)
        fives += q.ids[i] == 5;
    CHECK(fives == 1);
}

/* ---- index ----------------------------------------------------------------------------------- */

static json_t *city(long long uuid, const char *code, const char *key, const char *name)
{
    return json_pack("{s:I,s:s,s:s,s:s,s:s,s:f,s:f}", "uuid", (json_int_t)uuid, "code", code,
                     "city", key, "name", name, "region", "R", "latitude", 51.50853, "longitude",
                     -0.12574);
}

/* A toy collation: ASCII case folds, 'é' and 'É' equal 'e', U+FFFD (and so every character
 * above the BMP) equals nothing of the alphabet. */
static json_t *toy_fold(const uint32_t *alpha, size_t n)
{
    json_t *fold = json_array();
    for (size_t i = 0; i < n; i++) {
        uint32_t a = alpha[i];
        json_array_append_new(fold,
                              json_pack("{s:I,s:I}", "cp", (json_int_t)a, "rep", (json_int_t)i));
        if (a >= 'a' && a <= 'z')
            json_array_append_new(
                fold, json_pack("{s:I,s:I}", "cp", (json_int_t)(a - 32), "rep", (json_int_t)i));
        if (a == 'e') {
            json_array_append_new(fold, json_pack("{s:I,s:I}", "cp", 0xE9, "rep", (json_int_t)i));
            json_array_append_new(fold, json_pack("{s:I,s:I}", "cp", 0xC9, "rep", (json_int_t)i));
        }
    }
    return fold;
}

static struct ship_index *toy_index(void)
{
    json_t *codes = json_pack("[{s:i,s:s,s:s},{s:i,s:s,s:s}]", "uuid", 1, "code", "gb", "name",
                              "United Kingdom", "uuid", 2, "code", "fr", "name", "France");
    json_t *cities = json_array();
    json_array_append_new(cities, city(1, "fr", "lens", "Lens"));
    for (int i = 0; i < 12; i++) { /* 12 "lon..." cities in gb: truncated to 9 */
        char key[32], name[32];
        snprintf(key, sizeof(key), "lon%c", 'z' - i); /* key order differs from uuid order */
        snprintf(name, sizeof(name), "Lon%c", 'z' - i);
        json_array_append_new(cities, city(10 + i, "gb", key, name));
    }
    json_array_append_new(cities, city(30, "gb", "leeds", "Leeds"));
    json_array_append_new(cities, city(31, "gb", "le_%!x", "Odd"));
    json_array_append_new(cities, city(32, "gb", "lee", "Lee"));
    size_t n;
    uint32_t *alpha = ship_index_alphabet((json_t *const[]){cities, cities, codes, NULL},
                                          (const char *const[]){"city", "code", "code"}, &n);
    json_t *fold = toy_fold(alpha, n);
    char err[160];
    struct ship_index *ix =
        ship_index_build(codes, cities, alpha, n, fold, SHOP_JSON_JAVA, err, sizeof(err));
    CHECK(ix != NULL);
    free(alpha);
    json_decref(fold);
    json_decref(codes);
    json_decref(cities);
    return ix;
}

/* The uuids of a /match answer, as "a,b,c". */
static void match_ids(struct ship_index *ix, const char *code, const char *text, char *out,
                      size_t len)
{
    struct shop_buf b;
    shop_buf_init(&b, 1 << 20);
    int rc = ship_index_match(ix, code, text, &b);
    if (rc == SHIP_INDEX_ASK_SQL) {
        snprintf(out, len, "SQL");
    } else {
        json_t *rows = json_loads(b.data, 0, NULL);
        size_t i, n = 0;
        json_t *row;
        out[0] = '\0';
        json_array_foreach(rows, i, row) n +=
            (size_t)snprintf(out + n, len - n, "%s%lld", i ? "," : "",
                             (long long)json_integer_value(json_object_get(row, "uuid")));
        json_decref(rows);
    }
    shop_buf_cleanup(&b);
}

static void test_index_match(void)
{
    struct ship_index *ix = toy_index();
    char got[256];
    match_ids(ix, "gb", "lon", got, sizeof(got));
    CHECK_STR(got, "10,11,12,13,14,15,16,17,18"); /* 12 matches: the first 9 by uuid */
    match_ids(ix, "GB", "LONz", got, sizeof(got));
    CHECK_STR(got, "10");
    match_ids(ix, "gb ", "lee", got, sizeof(got)); /* PAD SPACE on the code; a whole key */
    CHECK_STR(got, "30,32");
    match_ids(ix, "gb",
              "l\xc3\xa9"
              "e",
              got, sizeof(got)); /* é folds to e */
    CHECK_STR(got, "30,32");
    match_ids(ix, "gb", "le_", got, sizeof(got)); /* '_' literal */
    CHECK_STR(got, "31");
    match_ids(ix, "gb", "le%", got, sizeof(got)); /* '%' literal */
    CHECK_STR(got, "");
    match_ids(ix, "gb", "leeds-and-more", got, sizeof(got)); /* longer than every key */
    CHECK_STR(got, "");
    match_ids(ix, "gb", "l\xf0\x9f\x98\x80n", got, sizeof(got)); /* no class: nothing */
    CHECK_STR(got, "");
    match_ids(ix, "fr", "len", got, sizeof(got));
    CHECK_STR(got, "1");
    match_ids(ix, "de", "len", got, sizeof(got));
    CHECK_STR(got, "");
    match_ids(ix, "g", "lon", got, sizeof(got));
    CHECK_STR(got, "");
    /* a code '=' might match through characters the index cannot weigh: left to the SQL */
    match_ids(ix, "g_", "lon", got, sizeof(got)); /* '_' is not one of ASCII's letters */
    CHECK_STR(got, "SQL");
    match_ids(ix, "g\xc3\xa9", "lon", got, sizeof(got)); /* é is e here: "ge", no city */
    CHECK_STR(got, "");
    match_ids(ix,
              "g\xe2\x80\x8d"
              "b",
              "lon", got, sizeof(got));
    CHECK_STR(got, "SQL");
    /* rows as the SQL gives them, serialised the same way */
    struct shop_buf b;
    shop_buf_init(&b, 1 << 16);
    CHECK(ship_index_match(ix, "fr", "lens", &b) == 0);
    CHECK_STR(b.data, "[{\"uuid\":1,\"code\":\"fr\",\"city\":\"lens\",\"name\":\"Lens\",\"region\":"
                      "\"R\",\"latitude\":51.50853,\"longitude\":-0.12574}]");
    shop_buf_cleanup(&b);
    ship_index_drop(ix);
}

static void test_index_city_and_codes(void)
{
    struct ship_index *ix = toy_index();
    const struct ship_city *c = ship_index_city(ix, 10);
    CHECK(c && c->km == 707 && strcmp(c->name, "Lonz") == 0);
    CHECK(c && c->country_name && strcmp(c->country_name, "United Kingdom") == 0);
    c = ship_index_city(ix, 1);
    CHECK(c && c->country_name && strcmp(c->country_name, "France") == 0);
    CHECK(ship_index_city(ix, 2) == NULL && ship_index_city(ix, 0) == NULL);
    CHECK(ship_index_city(ix, 33) == NULL);
    CHECK_STR(ix->codes->data, "[{\"uuid\":1,\"code\":\"gb\",\"name\":\"United Kingdom\"},"
                               "{\"uuid\":2,\"code\":\"fr\",\"name\":\"France\"}]");
    ship_index_drop(ix);
}

static void test_index_refuses_bad_rows(void)
{
    json_t *codes = json_array(), *cities = json_array();
    json_array_append_new(cities, city(5, "gb", "b", "B"));
    json_array_append_new(cities, city(4, "gb", "a", "A")); /* not in uuid order */
    size_t n;
    uint32_t *alpha =
        ship_index_alphabet((json_t *const[]){cities, NULL}, (const char *const[]){"city"}, &n);
    json_t *fold = toy_fold(alpha, n);
    char err[160] = "";
    CHECK(ship_index_build(codes, cities, alpha, n, fold, SHOP_JSON_JAVA, err, sizeof(err)) ==
          NULL);
    CHECK(strstr(err, "uuid order") != NULL);
    /* a fold without an alphabet character's own row: incomplete classes */
    json_t *empty = json_array();
    CHECK(ship_index_build(codes, cities, alpha, n, empty, SHOP_JSON_JAVA, err, sizeof(err)) ==
          NULL);
    json_decref(empty);
    json_decref(fold);
    free(alpha);
    json_decref(codes);
    json_decref(cities);
}

int main(void)
{
    test_quote_roundtrip();
    test_quote_tampering();
    test_quote_newest_kept();
    test_index_match();
    test_index_city_and_codes();
    test_index_refuses_bad_rows();
    return check_report("test_shipping_index");
}
