/* json.c - a small JSON serialiser over jansson values, because jansson prints doubles with
 * 17 significant digits (0.1 -> 0.10000000000000001) and the clients expect shortest output. */
#include "libshop/json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fast path for the common short decimals (prices, coordinates): the fewest decimal places k
 * for which m = rint(|v| * 10^k) reads back to |v|. m and 10^k (k <= 22) are exact doubles, so
 * m / 10^k is the correctly rounded value of the decimal m e-k, the same double strtod gives.
 * Below 2^50 the product is close enough to the integer that rint finds any k-place decimal
 * that rounds to v, so the first k that works is the shortest. Returns 0 to use the slow path. */
static int short_decimal(double v, char *digits, int *exp10)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    double a = fabs(v), m = -1;
    int k = 0;
    for (; k < (int)(sizeof(p10) / sizeof(p10[0])); k++) {
        double p = a * p10[k];
        if (p >= 0x1p50)
            return 0;
        m = rint(p);
        if (m > 0 && m / p10[k] == a)
            break;
    }
    if (k == (int)(sizeof(p10) / sizeof(p10[0])))
        return 0;
    char rev[24];
    int n = 0;
    for (unsigned long long u = (unsigned long long)m; u; u /= 10)
        rev[n++] = (char)('0' + u % 10);
    *exp10 = n - 1 - k;
    int lead = n;
    while (n > 1 && rev[lead - n] == '0') /* trailing zeros of m (only when k == 0) */
        n--;
    for (int i = 0; i < n; i++)
        digits[i] = rev[lead - 1 - i];
    digits[n] = '\0';
    return n;
}

/* Shortest digits: fills digits (no dot, no sign) and the decimal exponent of the first digit.
 * A normal double has 15 to 17 significant digits: when 15 digits read back to v, the shortest
 * form is that one without its trailing zeros (any shorter one would round to it), else 16,
 * else 17. Subnormals are searched from one digit up. */
static int shortest_digits(double v, char *digits, int *exp10)
{
    int fast = fabs(v) >= DBL_MIN ? short_decimal(v, digits, exp10) : 0;
    if (fast)
        return fast;
    char tmp[40];
    /* a subnormal has fewer significant bits, so its shortest form can be far shorter */
    for (int p = fabs(v) < DBL_MIN ? 1 : 15; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp is like "-1.2345e+02" */
    const char *s = tmp;
    if (*s == '-')
        s++;
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[n++] = *s;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *exp10 = atoi(s + 1);
    return n;
}

static size_t put(char *buf, size_t buflen, size_t at, const char *s, size_t n)
{
    if (at + n < buflen)
        memcpy(buf + at, s, n);
    return at + n;
}

static size_t put_zeros(char *buf, size_t buflen, size_t at, int count)
{
    for (int i = 0; i < count; i++)
        at = put(buf, buflen, at, "0", 1);
    return at;
}

/* Plain decimal notation: digits with the point after `point` digits (point may be <= 0 or > n). */
static size_t fixed(char *buf, size_t buflen, size_t at, const char *d, int n, int point,
                    int min_frac)
{
    if (point <= 0) {
        at = put(buf, buflen, at, "0.", 2);
        at = put_zeros(buf, buflen, at, -point);
        return put(buf, buflen, at, d, (size_t)n);
    }
    if (point >= n) {
        at = put(buf, buflen, at, d, (size_t)n);
        at = put_zeros(buf, buflen, at, point - n);
        if (min_frac) {
            at = put(buf, buflen, at, ".", 1);
            at = put_zeros(buf, buflen, at, min_frac);
        }
        return at;
    }
    at = put(buf, buflen, at, d, (size_t)point);
    at = put(buf, buflen, at, ".", 1);
    return put(buf, buflen, at, d + point, (size_t)(n - point));
}

static size_t scientific(char *buf, size_t buflen, size_t at, const char *d, int n, int e,
                         enum shop_num_style style)
{
    char ebuf[16];
    at = put(buf, buflen, at, d, 1);
    if (n > 1) {
        at = put(buf, buflen, at, ".", 1);
        at = put(buf, buflen, at, d + 1, (size_t)(n - 1));
    } else if (style == SHOP_NUM_JAVA) {
        at = put(buf, buflen, at, ".0", 2);
    }
    int k;
    if (style == SHOP_NUM_JAVA)
        k = snprintf(ebuf, sizeof(ebuf), "E%d", e);
    else if (style == SHOP_NUM_PYTHON)
        k = snprintf(ebuf, sizeof(ebuf), "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    else
        k = snprintf(ebuf, sizeof(ebuf), "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    return put(buf, buflen, at, ebuf, (size_t)k);
}

/* Where each language switches from plain decimals to exponent notation (decimal exponent e of the
 * first digit: plain when fixed_from <= e < fixed_below), and whether a whole number keeps ".0". */
static const struct num_style {
    int fixed_from, fixed_below, min_frac;
} num_styles[] = {
    [SHOP_NUM_JS] = {-6, 21, 0},
    [SHOP_NUM_JAVA] = {-3, 7, 1},
    [SHOP_NUM_PYTHON] = {-4, 16, 1},
};

size_t shop_fmt_double(double v, enum shop_num_style style, char *buf, size_t buflen)
{
    size_t at = 0;
    if (!isfinite(v)) {
        at = put(buf, buflen, 0, "null", 4);
    } else if (v == 0) { /* JSON.stringify(-0) is "0"; Python and Java keep the sign */
        at = style == SHOP_NUM_JS ? put(buf, buflen, 0, "0", 1)
             : signbit(v)         ? put(buf, buflen, 0, "-0.0", 4)
                                  : put(buf, buflen, 0, "0.0", 3);
    } else {
        char d[24];
        int e;
        int n = shortest_digits(v, d, &e);
        if (v < 0)
            at = put(buf, buflen, at, "-", 1);
        const struct num_style *ns = &num_styles[style];
        if (e >= ns->fixed_from && e < ns->fixed_below)
            at = fixed(buf, buflen, at, d, n, e + 1, ns->min_frac);
        else
            at = scientific(buf, buflen, at, d, n, e, style);
    }
    if (buflen)
        buf[at < buflen ? at : buflen - 1] = '\0';
    return at;
}

/* Decodes one UTF-8 sequence; returns its length, or 1 with *cp = U+FFFD when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    unsigned v = len == 1 ? c : c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static int dump_string(const char *s, size_t n, int flags, struct shop_buf *out)
{
    int rc = shop_buf_putc(out, '"');
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && rc == 0) {
        unsigned char c = p[i];
        char esc[16];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc = shop_buf_append(out, esc, 2);
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n'   ? "\\n"
                                : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t"
                                : c == '\b' ? "\\b"
                                : c == '\f' ? "\\f"
                                            : NULL;
            if (named)
                rc = shop_buf_puts(out, named);
            else
                rc = shop_buf_printf(out, "\\u%04x", c);
            i++;
        } else if (c >= 0x7f && (flags & SHOP_JSON_PYTHON)) {
            unsigned cp;
            i += utf8_decode(p + i, n - i, &cp);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                rc = shop_buf_printf(out, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                                     0xDC00 + (cp & 0x3FF));
            } else {
                rc = shop_buf_printf(out, "\\u%04x", cp);
            }
        } else {
            size_t j = i;
            while (j < n && p[j] >= 0x20 && p[j] != '"' && p[j] != '\\' &&
                   !(p[j] >= 0x7f && (flags & SHOP_JSON_PYTHON)))
                j++;
            rc = shop_buf_append(out, s + i, j - i);
            i = j;
        }
    }
    return rc ? rc : shop_buf_putc(out, '"');
}

int shop_json_dump(const json_t *v, int flags, struct shop_buf *out)
{
    const char *comma = (flags & SHOP_JSON_PYTHON) ? ", " : ",";
    const char *colon = (flags & SHOP_JSON_PYTHON) ? ": " : ":";
    char num[40];
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        rc = shop_buf_putc(out, '{');
        json_t *obj = shop_json_mut(v);
        json_object_foreach(obj, key, val)
        {
            if (rc == 0 && !first)
                rc = shop_buf_puts(out, comma);
            first = 0;
            if (rc == 0)
                rc = dump_string(key, strlen(key), flags, out);
            if (rc == 0)
                rc = shop_buf_puts(out, colon);
            if (rc == 0)
                rc = shop_json_dump(val, flags, out);
        }
        return rc ? rc : shop_buf_putc(out, '}');
    }
    case JSON_ARRAY:
        rc = shop_buf_putc(out, '[');
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            if (i)
                rc = shop_buf_puts(out, comma);
            if (rc == 0)
                rc = shop_json_dump(json_array_get(v, i), flags, out);
        }
        return rc ? rc : shop_buf_putc(out, ']');
    case JSON_STRING:
        return dump_string(json_string_value(v), json_string_length(v), flags, out);
    case JSON_INTEGER:
        return shop_buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL: {
        enum shop_num_style st = (flags & SHOP_JSON_PYTHON) ? SHOP_NUM_PYTHON
                                 : (flags & SHOP_JSON_JAVA) ? SHOP_NUM_JAVA
                                                            : SHOP_NUM_JS;
        size_t n = shop_fmt_double(json_real_value(v), st, num, sizeof(num));
        return shop_buf_append(out, num, n);
    }
    case JSON_TRUE:
        return shop_buf_puts(out, "true");
    case JSON_FALSE:
        return shop_buf_puts(out, "false");
    case JSON_NULL:
        return shop_buf_puts(out, "null");
    }
    return -1;
}

char *shop_json_dumps(const json_t *v, int flags)
{
    struct shop_buf b;
    shop_buf_init(&b, (size_t)-1 / 2);
    shop_json_dump(v, flags, &b);
    if (!b.data)
        return shop_xstrdup("");
    return b.data;
}

json_t *shop_json_parse(const char *text, size_t len, json_error_t *err)
{
    /* no JSON_REJECT_DUPLICATES: a repeated key is valid JSON and its last value wins (D23) */
    return json_loadb(text, len, 0, err);
}

const char *shop_json_str(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL; /* an embedded NUL (form %00, JSON \u0000) would cut the C string short */
    return json_string_value(v);
}
