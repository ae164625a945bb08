/* test_mongo_bson - JSON to BSON for stored documents: objects convert, anything else (NULL, an
 * array, a string) and nesting deeper than BSON may hold is refused, so nothing empty or partial
 * is ever inserted. */
#include "check.h"
#include "libshop/mongo_driver.h"

#include <jansson.h>

static int convert(json_t *v)
{
    bson_t out = BSON_INITIALIZER;
    int rc = shop_json_to_bson(v, &out);
    bson_destroy(&out);
    json_decref(v);
    return rc;
}

/* Converts v to BSON and back: the same JSON value, each number of its own type. */
static void check_round_trip(json_t *v)
{
    bson_t out = BSON_INITIALIZER;
    CHECK(shop_json_to_bson(v, &out) == 0);
    json_t *back = shop_bson_to_json(&out);
    CHECK(back && json_equal(v, back));
    if (back && !json_equal(v, back)) {
        char *a = json_dumps(v, JSON_SORT_KEYS), *b = json_dumps(back, JSON_SORT_KEYS);
        fprintf(stderr, "sent %s\nread %s\n", a, b);
        free(a);
        free(b);
    }
    json_decref(back);
    bson_destroy(&out);
    json_decref(v);
}

static void check_types(void)
{
    bson_t out = BSON_INITIALIZER;
    json_t *v = json_pack("{s:s,s:{s:[I,f]},s:b,s:n}", "name", "user", "order", "items",
                          (json_int_t)5000000000LL, 2.5, "ok", 1, "none");
    CHECK(shop_json_to_bson(v, &out) == 0);
    bson_iter_t it, sub;
    CHECK(bson_iter_init_find(&it, &out, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
          strcmp(bson_iter_utf8(&it, NULL), "user") == 0);
    CHECK(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "order.items.0", &sub) &&
          BSON_ITER_HOLDS_INT64(&sub) && bson_iter_int64(&sub) == 5000000000LL);
    CHECK(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "order.items.1", &sub) &&
          BSON_ITER_HOLDS_DOUBLE(&sub) && bson_iter_double(&sub) == 2.5);
    CHECK(bson_iter_init_find(&it, &out, "ok") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it));
    CHECK(bson_iter_init_find(&it, &out, "none") && BSON_ITER_HOLDS_NULL(&it));
    CHECK(bson_count_keys(&out) == 4);
    bson_destroy(&out);
    json_decref(v);
}

int main(void)
{
    CHECK(convert(json_pack("{s:s,s:{s:[i,f]}}", "name", "user", "order", "items", 1, 2.5)) == 0);
    check_round_trip(
        json_pack("{s:s,s:{s:[i,f,s]}}", "name", "user", "order", "items", 1, 2.5, "x"));
    check_round_trip(json_pack("{s:s,s:b,s:n,s:[],s:{}}", "n\u00e4me", "Z\u00fcrich \u6771\u4eac",
                               "t", 1, "z", "empty", "obj"));
    check_types();
    CHECK(convert(NULL) == -1);
    CHECK(convert(json_pack("[i]", 1)) == -1);
    CHECK(convert(json_string("x")) == -1);
    json_t *deep = json_object(), *at = deep;
    for (int i = 0; i < 40; i++) {
        json_t *next = json_object();
        json_object_set_new(at, "d", next);
        at = next;
    }
    CHECK(convert(deep) == -1);

    bson_t out = BSON_INITIALIZER;
    json_t *v = json_pack("{s:s,s:i}", "name", "stan", "n", 3);
    CHECK(shop_json_to_bson(v, &out) == 0);
    CHECK(bson_count_keys(&out) == 2);
    bson_destroy(&out);
    json_decref(v);

    /* {"$oid": hex} is an ObjectId and reads back as its hex; anything else like it stays an
     * object */
    bson_t o = BSON_INITIALIZER;
    bson_iter_t it;
    v = json_pack("{s:{s:s},s:{s:s},s:{s:s,s:i}}", "_id", "$oid", "5f1e2d3c4b5a697887766554", "a",
                  "$oid", "not-hex", "b", "$oid", "5f1e2d3c4b5a697887766554", "x", 1);
    CHECK(shop_json_to_bson(v, &o) == 0);
    CHECK(bson_iter_init_find(&it, &o, "_id") && BSON_ITER_HOLDS_OID(&it));
    CHECK(bson_iter_init_find(&it, &o, "a") && BSON_ITER_HOLDS_DOCUMENT(&it));
    CHECK(bson_iter_init_find(&it, &o, "b") && BSON_ITER_HOLDS_DOCUMENT(&it));
    json_t *back = shop_bson_to_json(&o);
    CHECK_STR(json_string_value(json_object_get(back, "_id")), "5f1e2d3c4b5a697887766554");
    json_decref(back);
    bson_destroy(&o);
    json_decref(v);
    return check_report("mongo_bson");
}
