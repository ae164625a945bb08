/* fuzz_json.c - JSON text from outside (request bodies, stored documents) through
 * shop_json_parse and back out through shop_json_dump in each runtime's style: whatever parses
 * must dump in every style, and each dump must parse back to the same value (numbers compared
 * by value). jansson refuses integers past 2^63, which the JavaScript style prints for large
 * integral doubles, so such a dump is read back with integers as reals. */
#include "libshop/json.h"
#include "libshop/util.h"
#include "tests/oracles.h"
#include "tests/fuzz/fuzz.h"

#include <stdbool.h>

static void round_trip(const json_t *v, int flags)
{
    struct shop_buf out;
    shop_buf_init(&out, 1 << 26);
    FUZZ_CHECK(shop_json_dump(v, flags, &out) == 0);
    char *text = fuzz_bytes(out.data, out.len);
    json_error_t err;
    json_t *back = shop_json_parse(text, out.len, &err);
    if (!back)
        back = json_loadb(text, out.len, JSON_DECODE_INT_AS_REAL, &err);
    if (!back)
        fprintf(stderr, "dump (flags %d) does not parse: %s: %.*s\n", flags, err.text,
                (int)(out.len < 300 ? out.len : 300), text);
    FUZZ_CHECK(back && oracle_json_same(v, back));
    json_decref(back);
    free(text);
    shop_buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_bytes(data, size);
    json_error_t err;
    json_t *v = shop_json_parse(text, size, &err);
    if (v) {
        FUZZ_CHECK(json_is_object(v) || json_is_array(v));
        round_trip(v, SHOP_JSON_COMPACT);
        round_trip(v, SHOP_JSON_PYTHON);
        round_trip(v, SHOP_JSON_JAVA);
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            const char *s = shop_json_str(v, k);
            FUZZ_CHECK(!s || (json_is_string(m) && strlen(s) == json_string_length(m)));
        }
        char *dumped = shop_json_dumps(v, SHOP_JSON_COMPACT);
        FUZZ_CHECK(dumped != NULL);
        free(dumped);
        json_decref(v);
    }
    free(text);
    return 0;
}
