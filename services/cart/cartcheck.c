/* cartcheck.c - a quick, allocation-free check that a stored cart is well-formed, so that
 * GET /cart can hand Redis's bytes back without building a jansson tree for them (which costs
 * more than the rest of the request). It is deliberately narrower than JSON: whatever it
 * accepts, jansson (cart_parse) accepts too and finds the shape cart_parse requires; anything
 * unusual (exponents, surrogate escapes, escaped top-level keys, deep nesting) is refused and
 * the caller asks cart_parse, whose answer is final. */
#include "services/cart/cartcheck.h"

#include <stdbool.h>
#include <string.h>

enum { MAX_DEPTH = 32, MAX_NUMBER_DIGITS = 300 };

struct scan {
    const unsigned char *p, *end;
    int depth;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex4(const unsigned char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (unsigned)(p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    return v;
}

/* One UTF-8 sequence of 2-4 bytes at s->p: no overlongs, no surrogates, at most U+10FFFF. */
static bool utf8_seq(struct scan *s)
{
    unsigned c = *s->p, n, v;
    if (c >= 0xC2 && c <= 0xDF)
        n = 1, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 2, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 3, v = c & 0x07;
    else
        return false;
    if ((size_t)(s->end - s->p) <= n)
        return false;
    for (unsigned i = 1; i <= n; i++) {
        if ((s->p[i] & 0xC0) != 0x80)
            return false;
        v = (v << 6) | (s->p[i] & 0x3F);
    }
    if ((n == 2 && v < 0x800) || (n == 3 && v < 0x10000) || (v >= 0xD800 && v <= 0xDFFF) ||
        v > 0x10FFFF)
        return false;
    s->p += n + 1;
    return true;
}

/* A string at s->p (the opening quote). *plain tells whether it had no escapes. */
static bool string(struct scan *s, bool *plain)
{
    *plain = true;
    s->p++;
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            if (!utf8_seq(s))
                return false;
            continue;
        }
        if (c == '\\') {
            *plain = false;
            if (s->end - s->p < 2)
                return false;
            unsigned char e = s->p[1];
            if (e == 'u') {
                if (s->end - s->p < 6 || !is_hex(s->p[2]) || !is_hex(s->p[3]) || !is_hex(s->p[4]) ||
                    !is_hex(s->p[5]))
                    return false;
                unsigned v = hex4(s->p + 2);
                if (v == 0 || (v >= 0xD800 && v <= 0xDFFF)) /* NUL, surrogates: jansson decides */
                    return false;
                s->p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return false;
            s->p += 2;
            continue;
        }
        s->p++;
    }
    return false;
}

/* A number without an exponent and with few enough digits that it cannot overflow. */
static bool number(struct scan *s)
{
    const unsigned char *start = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return false;
    if (*s->p == '0') {
        s->p++;
    } else {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return false;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
        return false;
    return s->p - start <= MAX_NUMBER_DIGITS;
}

static bool literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool value(struct scan *s, char *kind);

/* An object or an array at s->p; with items_ok, reports whether the value of the last
 * plain "items" key was an array of objects (objects only). */
static bool container(struct scan *s, bool is_object, bool *items_ok, bool *all_objects)
{
    if (++s->depth > MAX_DEPTH)
        return false;
    char close = is_object ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return true;
    }
    for (;;) {
        bool is_items = false;
        if (is_object) {
            bool plain;
            const unsigned char *key = s->p + 1;
            if (s->p >= s->end || *s->p != '"' || !string(s, &plain))
                return false;
            if (!plain && items_ok) /* an escaped top-level key might spell "items" */
                return false;
            is_items = items_ok && plain && s->p - key == 6 && memcmp(key, "items", 5) == 0;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return false;
            s->p++;
            skip_ws(s);
        }
        char kind = 0;
        if (is_items && s->p < s->end && *s->p == '[') {
            bool objects = true;
            if (!container(s, false, NULL, &objects))
                return false;
            *items_ok = objects;
        } else {
            if (!value(s, &kind))
                return false;
            if (is_items)
                *items_ok = false;
            if (all_objects && kind != 'o')
                *all_objects = false;
        }
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            s->depth--;
            return true;
        }
        return false;
    }
}

static bool value(struct scan *s, char *kind)
{
    bool plain;
    if (s->p >= s->end)
        return false;
    *kind = (char)*s->p;
    switch (*s->p) {
    case '{':
        *kind = 'o';
        return container(s, true, NULL, NULL);
    case '[':
        *kind = 'a';
        return container(s, false, NULL, NULL);
    case '"':
        return string(s, &plain);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    default:
        *kind = 'n';
        return number(s);
    }
}

bool cart_check_quick(const char *text, size_t len)
{
    struct scan s = {(const unsigned char *)text, (const unsigned char *)text + len, 0};
    bool items_ok = false;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || !container(&s, true, &items_ok, NULL))
        return false;
    skip_ws(&s);
    return s.p == s.end && items_ok;
}
