/* oracles.h - reference implementations the randomised unit tests (tests/unit/test_fuzz_parsers.c)
 * and the libFuzzer harnesses (tests/fuzz/) compare libshop against: written independently of the
 * code under test, kept in one place so both kinds of test judge by the same rule. */
#ifndef SHOP_TESTS_ORACLES_H
#define SHOP_TESTS_ORACLES_H

#include "libshop/json.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

static inline int oracle_hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* RFC 3986 percent-decoding of n bytes of s into out: the decoded length, or -1 on a truncated or
 * non-hex escape. out must hold n bytes. */
static inline long oracle_pct_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = n - i < 3 ? -1 : oracle_hexv((unsigned char)s[i + 1]);
        int lo = n - i < 3 ? -1 : oracle_hexv((unsigned char)s[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    return (long)o;
}

/* JSON equality where numbers compare by value (the JavaScript style prints the real 2001.0 as
 * 2001, which parses back as an integer). */
static inline bool oracle_json_same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!oracle_json_same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_foreach(shop_json_mut(a), k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !oracle_json_same(v, w))
                return false;
        }
        return true;
    }
    return json_equal(a, b);
}

#endif
