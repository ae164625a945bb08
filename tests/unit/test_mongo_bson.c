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

int main(void)
{
    CHECK(convert(json_pack("{s:s,s:{s:[i,f]}}", "name", "user", "order", "items", 1, 2.5)) == 0);
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
