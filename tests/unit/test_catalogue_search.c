/* test_catalogue_search.c - the catalogue's search without a text index (decision D7). */
#include "services/catalogue/search.c"
#include "tests/unit/check.h"

static const char *stem(const char *w)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "%s", w);
    search_stem(buf);
    return buf;
}

static json_t *products(void)
{
    return json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "name",
                     "Responsive Enforcer Droid", "description", "Patrols the warehouse", "name",
                     "Cybernated Android", "description", "An android specialist", "name",
                     "Robotic Mining Cyborg", "description", "Digs tunnels", "name",
                     "Exceptional Medical Machine", "description", "A steady-handed medical droid");
}

/* The products (array of objects) that match text, ordered by name. New reference. */
static json_t *search_filter(const json_t *products, const char *text)
{
    struct search_query q;
    search_query_parse(text, &q);
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(products); i++)
        if (search_product_matches(json_array_get(products, i), &q))
            json_array_append(out, json_array_get(products, i));
    search_sort_by_name(out);
    return out;
}

static char *names(json_t *arr)
{
    static char buf[512];
    buf[0] = '\0';
    size_t at = 0;
    for (size_t i = 0; i < json_array_size(arr); i++)
        at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s", i ? "|" : "",
                               json_string_value(json_object_get(json_array_get(arr, i), "name")));
    return buf;
}

int main(void)
{
    CHECK_STR(stem("droids"), "droid");
    CHECK_STR(stem("robotic"), "robot");
    CHECK_STR(stem("mining"), "min");
    CHECK_STR(stem("patrols"), "patrol");
    CHECK_STR(stem("class"), "class");
    CHECK_STR(stem("batteries"), "battery");
    CHECK(search_is_stop_word("the"));
    CHECK(!search_is_stop_word("droid"));

    struct search_query q;
    search_query_parse("The High-Powered DROIDS!", &q);
    CHECK(q.nterms == 3);
    CHECK_STR(q.terms[0], "high");
    CHECK_STR(q.terms[1], "power");
    CHECK_STR(q.terms[2], "droid");

    json_t *p = products();
    json_t *r = search_filter(p, "droid");
    CHECK_STR(names(r), "Exceptional Medical Machine|Responsive Enforcer Droid"); /* not Android */
    json_decref(r);
    r = search_filter(p, "robot");
    CHECK_STR(names(r), "Robotic Mining Cyborg");
    json_decref(r);
    r = search_filter(p, "the");
    CHECK(json_array_size(r) == 0);
    json_decref(r);
    r = search_filter(p, "");
    CHECK(json_array_size(r) == 0);
    json_decref(r);
    r = search_filter(p, "tunnel android");
    CHECK_STR(names(r), "Cybernated Android|Robotic Mining Cyborg");
    json_decref(r);
    json_decref(p);

    /* equal names keep their array order; a missing name sorts as "" */
    p = json_pack("[{s:s,s:i},{s:s,s:i},{s:i},{s:s,s:i},{s:s,s:i}]", "name", "b", "n", 0, "name",
                  "a", "n", 1, "n", 2, "name", "b", "n", 3, "name", "a", "n", 4);
    size_t order[5];
    search_name_order(p, order);
    CHECK(order[0] == 2 && order[1] == 1 && order[2] == 4 && order[3] == 0 && order[4] == 3);
    search_sort_by_name(p);
    CHECK(json_integer_value(json_object_get(json_array_get(p, 1), "n")) == 1);
    CHECK(json_integer_value(json_object_get(json_array_get(p, 4), "n")) == 3);
    json_decref(p);
    return check_report("catalogue_search");
}
