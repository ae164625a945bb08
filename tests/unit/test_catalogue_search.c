/* test_catalogue_search.c - the catalogue's search without a text index (decision D7): stems,
 * stop words, queries, the word index and the name order. test_catalogue_cache.c runs searches
 * through a snapshot. */
#include "services/catalogue/search.c"
#include "tests/unit/check.h"

static const char *stem(const char *w)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "%s", w);
    search_stem(buf);
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

    /* equal names keep their array order; a missing name sorts as "" */
    json_t *p = json_pack("[{s:s,s:i},{s:s,s:i},{s:i},{s:s,s:i},{s:s,s:i}]", "name", "b", "n", 0,
                          "name", "a", "n", 1, "n", 2, "name", "b", "n", 3, "name", "a", "n", 4);
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
