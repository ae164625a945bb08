/* calc.c - shipping's pure logic: the reference calculator (docs/DECISIONS.md Q-SH1, bug kept,
 * D12) and the small input rules of /calc and /match. */
#include "services/shipping/calc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Java 8 Math.toRadians: angdeg / 180.0 * PI. */
static double to_radians(double deg)
{
    return deg / 180.0 * M_PI;
}

long calc_distance(double lat, double lon)
{
    const double earth_radius = 6371e3;
    double lat1 = to_radians(lat);
    double lat2 = to_radians(CALC_HOME_LAT);
    double dlat = to_radians(CALC_HOME_LAT - lat);
    double dlon = to_radians(CALC_HOME_LON - lon);
    /* the reference multiplies sin(dlon / 2) by sin(dlon), not by itself (Q-SH1) */
    double a = sin(dlat / 2) * sin(dlat / 2) + cos(lat1) * cos(lat2) * sin(dlon / 2) * sin(dlon);
    double c = 2 * atan2(sqrt(a), sqrt(1 - a));
    double km = rint(earth_radius * c / 1000);
    if (isnan(km))
        return 0; /* Java: (long) NaN == 0 */
    return (long)km;
}

double calc_cost(long km)
{
    return rint((double)km * 5) / 100.0;
}

int calc_parse_id(const char *s, long long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '\0')
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

size_t calc_utf16_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) != 0x80)
            n++;
        if (*p >= 0xF0)
            n++; /* a four-byte sequence is outside the BMP: a surrogate pair in Java */
    }
    return n;
}

int calc_like_prefix(const char *text, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = text; *p; p++) {
        if (o + 3 > outlen)
            return -1;
        if (*p == '!' || *p == '%' || *p == '_')
            out[o++] = '!';
        out[o++] = *p;
    }
    if (o + 2 > outlen)
        return -1;
    out[o++] = '%';
    out[o] = '\0';
    return 0;
}

#define TEXT_LATIN1 "text/plain;charset=ISO-8859-1"

/* true when the media range r (n bytes) is a JSON type. */
static bool range_is_json(const char *r, size_t n)
{
    return (n == 16 && strncasecmp(r, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(r + n - 5, "+json", 5) == 0);
}

/* The q parameter among the parameters p (n bytes, from the first ';'), 1 when absent. */
static double range_q(const char *p, size_t n)
{
    for (size_t i = 0; i + 2 <= n; i++)
        if (p[i] == ';') {
            size_t j = i + 1 + strspn(p + i + 1, " \t");
            if (j + 2 <= n && (p[j] == 'q' || p[j] == 'Q') && p[j + 1] == '=')
                return strtod(p + j + 2, NULL);
        }
    return 1;
}

const char *calc_text_type(const char *accept)
{
    double best_q = 0;
    bool best_json = false;
    for (const char *a = accept ? accept : ""; *a;) {
        a += strspn(a, " \t,");
        size_t item = strcspn(a, ",");
        size_t range = strcspn(a, ",;");
        size_t rn = range;
        while (rn > 0 && (a[rn - 1] == ' ' || a[rn - 1] == '\t'))
            rn--;
        double q = range_q(a + range, item - range);
        bool wild_app = rn == 13 && strncasecmp(a, "application/*", 13) == 0;
        if (rn > 0 && q > best_q && !wild_app) {
            best_q = q;
            best_json = range_is_json(a, rn);
        }
        a += item;
    }
    return best_json ? "application/json" : TEXT_LATIN1;
}

size_t calc_match_keep(size_t nrows)
{
    return nrows > 10 ? 9 : nrows;
}
