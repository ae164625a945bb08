/* fuzz_params.c - path parameters as the services read them (after the router's decoding):
 * catalogue's search text, shipping's /calc id (Java Long.parseLong), its /match text (length in
 * characters, LIKE prefix) and ratings' score (PHP integer coercion). A query's terms are short,
 * lower case and found in the same text's index words; an accepted id is a signed digit string;
 * the LIKE prefix fits twice the text plus two bytes and unescapes to the text; a score clamps
 * into 1..5. Input: the parameter's bytes (cut at a NUL, as a C string). */
#include "libshop/util.h"
#include "services/catalogue/search.h"
#include "services/ratings/ratecalc.h"
#include "services/shipping/calc.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <stdbool.h>

static void check_search(const char *text)
{
    struct search_query q;
    search_query_parse(text, &q);
    FUZZ_CHECK(q.nterms <= SEARCH_MAX_TERMS);
    for (size_t i = 0; i < q.nterms; i++) {
        size_t n = strnlen(q.terms[i], SEARCH_TERM_LEN);
        FUZZ_CHECK(n > 0 && n < SEARCH_TERM_LEN);
        for (size_t k = 0; k < n; k++)
            FUZZ_CHECK(q.terms[i][k] < 'A' || q.terms[i][k] > 'Z');
    }
    struct shop_buf words;
    shop_buf_init(&words, 1 << 20);
    FUZZ_CHECK(search_index_words(text, &words) == 0);
    FUZZ_CHECK(q.nterms == 0 || search_words_match(&q, words.data, words.len));
    shop_buf_cleanup(&words);
}

static void check_id(const char *s)
{
    long long v = 42;
    if (calc_parse_id(s, &v) == 0) {
        const char *d = s + (*s == '+' || *s == '-');
        FUZZ_CHECK(*d && strspn(d, "0123456789") == strlen(d));
        FUZZ_CHECK(*s == '-' ? v <= 0 : v >= 0);
    }
}

static void check_like(const char *s)
{
    size_t n = strlen(s), size = 2 * n + 2;
    char *out = malloc(size);
    FUZZ_CHECK(out);
    FUZZ_CHECK(calc_like_prefix(s, out, size) == 0);
    size_t o = 0, i = 0;
    for (; out[i + 1]; i++, o++) { /* unescape all but the closing '%' */
        if (out[i] == '!')
            i++;
        FUZZ_CHECK(o < n && out[i] == s[o]);
    }
    FUZZ_CHECK(o == n && out[i] == '%');
    json_t *valid = json_string(s); /* jansson takes only well-formed UTF-8, as the router does */
    if (valid)                      /* no UTF-8 sequence is shorter than its UTF-16 form */
        FUZZ_CHECK(calc_utf16_len(s) <= n);
    json_decref(valid);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    check_search(s);
    check_id(s);
    check_like(s);
    long long score;
    if (rate_parse_score(s, &score) == 0)
        FUZZ_CHECK(rate_clamp(score) >= 1 && rate_clamp(score) <= 5);
    free(s);
    return 0;
}
