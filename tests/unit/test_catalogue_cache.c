/* test_catalogue_cache.c - the catalogue's snapshot answers /products/{cat} and /search/{text}
 * by joining pre-serialised product bodies in a name order kept from load time. Checked
 * against the plain way (filter the array, sort it by name, serialise it) on random
 * catalogues with repeated and missing names, odd categories and odd queries. */
#include "services/catalogue/cache.c"
#include "services/catalogue/search.c"
#include "tests/unit/check.h"

static json_t *next_load;

static int test_load(json_t **out, struct shop_err *err)
{
    (void)err;
    *out = json_deep_copy(next_load);
    return 0;
}

static const char *const names[] = {"Robotic Mining Cyborg",
                                    "Cybernated Android",
                                    "Watson",
                                    "Ewooid",
                                    "Responsive Droid",
                                    "Ewooid",
                                    "Élan vital",
                                    "droid",
                                    ""};
static const char *const cats[] = {"Robot", "Artificial Intelligence", "robot", "Robot ", "A/B"};
static const char *const words[] = {"droid",        "robots", "the", "mining",
                                    "intelligence", "élan",   "x"};

static json_t *random_catalogue(unsigned *seed)
{
    json_t *arr = json_array();
    int n = rand_r(seed) % 14;
    for (int i = 0; i < n; i++) {
        char sku[16];
        snprintf(sku, sizeof(sku), "S%d", i);
        json_t *p = json_pack("{s:s,s:f}", "sku", sku, "price", (rand_r(seed) % 10000) / 100.0);
        if (rand_r(seed) % 8)
            json_object_set_new(p, "name", json_string(names[rand_r(seed) % 9]));
        static const char *const descs[] = {"Mines with robots", "An android",
                                            "élan, Intelligent!"};
        int d = rand_r(seed) % 4;
        if (d < 3) /* else none */
            json_object_set_new(p, "description", json_string(descs[d]));
        json_t *c = json_array();
        for (int k = rand_r(seed) % 3; k > 0; k--)
            json_array_append_new(c, json_string(cats[rand_r(seed) % 5]));
        if (rand_r(seed) % 10 == 0)
            json_array_append_new(c, json_integer(7)); /* not a string: never matches */
        json_object_set_new(p, "categories", c);
        json_array_append_new(arr, p);
    }
    return arr;
}

/* The plain way, written separately from the service's: filter the array with a test on the
 * product object, order by name (insertion sort: stable), serialise. */
typedef bool (*plain_keep_fn)(const json_t *product, const void *arg);

static bool plain_has_category(const json_t *product, const void *cat)
{
    json_t *c = json_object_get(product, "categories");
    for (size_t j = 0; j < json_array_size(c); j++)
        if (json_is_string(json_array_get(c, j)) &&
            strcmp(json_string_value(json_array_get(c, j)), cat) == 0)
            return true;
    return false;
}

/* the search rule read straight off the text: a term is a prefix of a stemmed word */
static bool plain_text_matches(const struct search_query *q, const char *text)
{
    char w[SEARCH_TERM_LEN];
    while (text && next_word(&text, w, sizeof(w))) {
        search_stem(w);
        for (size_t i = 0; i < q->nterms; i++)
            if (strncmp(w, q->terms[i], strlen(q->terms[i])) == 0)
                return true;
    }
    return false;
}

static bool plain_matches(const json_t *product, const void *q)
{
    return plain_text_matches(q, json_string_value(json_object_get(product, "name"))) ||
           plain_text_matches(q, json_string_value(json_object_get(product, "description")));
}

static const char *name_or_empty(const json_t *p)
{
    const char *v = json_string_value(json_object_get(p, "name"));
    return v ? v : "";
}

static void expected(const json_t *all, plain_keep_fn keep, const void *arg, struct shop_buf *out)
{
    json_t *v[64];
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(all) && n < 64; i++) {
        json_t *p = json_array_get(all, i);
        if (!keep(p, arg))
            continue;
        size_t k = n++;
        while (k > 0 && strcmp(name_or_empty(v[k - 1]), name_or_empty(p)) > 0) {
            v[k] = v[k - 1];
            k--;
        }
        v[k] = p;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(arr, v[i]);
    shop_buf_reset(out);
    shop_json_dump(arr, 0, out);
    json_decref(arr);
}

static int same(const struct cat_snapshot *s, cat_keep_fn keep, plain_keep_fn plain,
                const void *arg)
{
    struct shop_buf got, want;
    shop_buf_init(&got, 1 << 20);
    shop_buf_init(&want, 1 << 20);
    int rc = cat_snapshot_select(s, keep, arg, &got);
    expected(next_load, plain, arg, &want);
    int ok = rc == 0 && got.len == want.len && memcmp(got.data, want.data, got.len) == 0;
    if (!ok)
        fprintf(stderr, "got  %.*s\nwant %.*s\n", (int)got.len, got.data, (int)want.len, want.data);
    shop_buf_cleanup(&got);
    shop_buf_cleanup(&want);
    return ok;
}

/* The names /search/{text} answers from a snapshot of next_load, joined with '|'. */
static const char *found(const char *text)
{
    static char got[512];
    struct shop_err err;
    struct cat_snapshot *s = cat_cache_get(&err);
    struct shop_buf out;
    shop_buf_init(&out, 1 << 20);
    struct search_query q;
    search_query_parse(text, &q);
    got[0] = '\0';
    json_t *arr = NULL;
    if (s && cat_snapshot_select(s, cat_matches_query, &q, &out) == 0)
        arr = json_loadb(out.data, out.len, 0, NULL);
    size_t at = 0;
    for (size_t i = 0; i < json_array_size(arr); i++)
        at += (size_t)snprintf(got + at, sizeof(got) - at, "%s%s", i ? "|" : "",
                               json_string_value(json_object_get(json_array_get(arr, i), "name")));
    json_decref(arr);
    shop_buf_cleanup(&out);
    cat_cache_release(s);
    return arr || s ? got : "(no snapshot)";
}

int main(void)
{
    cat_cache_init(60000, test_load);
    unsigned seed = 42;
    int bad = 0, rounds = 2000;
    for (int r = 0; r < rounds; r++) {
        next_load = random_catalogue(&seed);
        cat_cache_forget();
        struct shop_err err;
        struct cat_snapshot *s = cat_cache_get(&err);
        if (!s) {
            bad++;
            json_decref(next_load);
            continue;
        }
        for (size_t c = 0; c < 5; c++)
            bad += !same(s, cat_has_category, plain_has_category, cats[c]);
        bad += !same(s, cat_has_category, plain_has_category, "Nothing");
        char text[64];
        snprintf(text, sizeof(text), "%s %s", words[rand_r(&seed) % 7], words[rand_r(&seed) % 7]);
        struct search_query q;
        search_query_parse(text, &q);
        bad += !same(s, cat_matches_query, plain_matches, &q);
        cat_cache_release(s);
        json_decref(next_load);
    }
    CHECK(bad == 0);

    /* search examples through a real snapshot, as GET /search/{text} answers them */
    next_load = json_pack(
        "[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "name", "Responsive Enforcer Droid",
        "description", "Patrols the warehouse", "name", "Cybernated Android", "description",
        "An android specialist", "name", "Robotic Mining Cyborg", "description", "Digs tunnels",
        "name", "Exceptional Medical Machine", "description", "A steady-handed medical droid");
    cat_cache_forget();
    CHECK_STR(found("droid"),
              "Exceptional Medical Machine|Responsive Enforcer Droid"); /* not Android */
    CHECK_STR(found("robot"), "Robotic Mining Cyborg");
    CHECK_STR(found("Robotic"), "Robotic Mining Cyborg");
    CHECK_STR(found("the"), ""); /* stop words only: nothing */
    CHECK_STR(found(""), "");
    CHECK_STR(found("tunnel android"), "Cybernated Android|Robotic Mining Cyborg");
    json_decref(next_load);

    /* the fixed case the shop serves: Robot, in name order, bodies byte for byte */
    next_load = json_pack("[{s:s,s:s,s:[s]},{s:s,s:s,s:[s,s]},{s:s,s:s,s:[s]}]", "sku", "CNA",
                          "name", "Cybernated Android", "categories", "Robot", "sku", "RMC", "name",
                          "Robotic Mining Cyborg", "categories", "Artificial Intelligence", "Robot",
                          "sku", "WAT", "name", "Watson", "categories", "Artificial Intelligence");
    cat_cache_forget();
    struct shop_err err;
    struct cat_snapshot *s = cat_cache_get(&err);
    struct shop_buf out;
    shop_buf_init(&out, 4096);
    CHECK(s && cat_snapshot_select(s, cat_has_category, "Robot", &out) == 0);
    CHECK(out.len > 0 && strncmp(out.data, "[{\"sku\":\"CNA\"", 13) == 0 &&
          strstr(out.data, "{\"sku\":\"RMC\"") && !strstr(out.data, "WAT"));
    shop_buf_reset(&out);
    CHECK(s && cat_snapshot_select(s, cat_has_category, "None", &out) == 0 && out.len == 2 &&
          memcmp(out.data, "[]", 2) == 0);
    shop_buf_cleanup(&out);

    /* D23: the ETag is made once per snapshot from its products: a re-read of the same products
     * keeps it (a client's If-None-Match still matches), another catalogue changes it */
    char tag[SHOP_ETAG_SIZE] = "";
    CHECK(s && strlen(s->etag) == 18 && s->etag[0] == '"' && s->etag[17] == '"');
    if (s)
        memcpy(tag, s->etag, SHOP_ETAG_SIZE);
    cat_cache_release(s);
    cat_cache_forget();
    s = cat_cache_get(&err);
    CHECK(s && strcmp(s->etag, tag) == 0);
    cat_cache_release(s);
    json_object_set_new(json_array_get(next_load, 2), "price", json_integer(1));
    cat_cache_forget();
    s = cat_cache_get(&err);
    CHECK(s && strcmp(s->etag, tag) != 0);
    cat_cache_release(s);
    cat_cache_cleanup();
    json_decref(next_load);
    return check_report("catalogue_cache");
}
