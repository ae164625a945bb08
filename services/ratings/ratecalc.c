/* ratecalc.c - ratings' pure logic: PHP score coercion, clamping and the 2-decimal running
 * average whose drift the reference has (Q-RA3). */
#include "services/ratings/ratecalc.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_php_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int rate_parse_score(const char *s, long long *out)
{
    const char *p = s;
    while (is_php_space(*p))
        p++;
    const char *start = p;
    if (*p == '+' || *p == '-')
        p++;
    size_t nint = 0, nfrac = 0;
    while (is_digit(p[nint]))
        nint++;
    p += nint;
    bool is_float = false;
    if (*p == '.') {
        while (is_digit(p[1 + nfrac]))
            nfrac++;
        if (nint + nfrac > 0) {
            p += 1 + nfrac;
            is_float = true;
        }
    }
    if (nint + nfrac == 0)
        return -1;
    if (*p == 'e' || *p == 'E') {
        const char *e = p + 1;
        if (*e == '+' || *e == '-')
            e++;
        if (is_digit(*e)) {
            while (is_digit(*e))
                e++;
            p = e;
            is_float = true;
        }
    }
    char num[300];
    size_t n = (size_t)(p - start);
    if (n >= sizeof(num))
        return -1;
    memcpy(num, start, n);
    num[n] = '\0';
    if (!is_float) {
        errno = 0;
        long long v = strtoll(num, NULL, 10);
        if (errno != ERANGE) {
            *out = v;
            return 0;
        }
    }
    double d = strtod(num, NULL);
    /* PHP's ZEND_DOUBLE_FITS_LONG: outside the range (or NaN) is a TypeError */
    if (!(d < 9223372036854775808.0 && d >= -9223372036854775808.0))
        return -1;
    *out = (long long)d;
    return 0;
}

int rate_clamp(long long score)
{
    return score < 1 ? 1 : score > 5 ? 5 : (int)score;
}

long rate_next_avg_cents(long avg_cents, long count, int score)
{
    long long m = (long long)avg_cents * count + 100LL * score;
    long long n = (long long)count + 1;
    return (long)((2 * m + n) / (2 * n));
}
