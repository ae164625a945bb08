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

/* The products (array of objects) whose name or description matches text, ordered by name.
 * New reference. */
static json_t *search_filter(const json_t *products, const char *text)
{
    struct search_query q;
    search_query_parse(text, &q);
    size_t n = json_array_size(products);
    size_t order[16];
    search_name_order(products, order);
    json_t *out = json_array();
    for (size_t k = 0; k < n && k < 16; k++) {
        json_t *p = json_array_get(products, order[k]);
        struct shop_buf words;
        shop_buf_init(&words, 4096);
        search_index_words(json_string_value(json_object_get(p, "name")), &words);
        search_index_words(json_string_value(json_object_get(p, "description")), &words);
        if (words.len && search_words_match(&q, words.data, words.len))
            json_array_append(out, p);
        shop_buf_cleanup(&words);
    }
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
    json_decref(p);

    /* the index: stemmed words, each NUL-terminated; terms match as prefixes */
    struct shop_buf w;
    shop_buf_init(&w, 4096);
    CHECK(search_index_words("Robotic MINING, droids!", &w) == 0);
    CHECK(w.len == sizeof("robot\0min\0droid") && memcmp(w.data, "robot\0min\0droid", w.len) == 0);
    CHECK(search_index_words(NULL, &w) == 0);
    search_query_parse("rob", &q);
    CHECK(search_words_match(&q, w.data, w.len));
    search_query_parse("obot", &q);
    CHECK(!search_words_match(&q, w.data, w.len));
    search_query_parse("the", &q);
    CHECK(!search_words_match(&q, w.data, w.len));
    shop_buf_cleanup(&w);
    return check_report("catalogue_search");
}
