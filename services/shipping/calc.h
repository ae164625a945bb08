/* calc.h - shipping's pure logic: the reference's distance/cost calculator (bug included) and
 * the input rules of /match and /calc. No I/O. */
#ifndef SHIPPING_CALC_H
#define SHIPPING_CALC_H

#include <stdbool.h>
#include <stddef.h>

/* The warehouse ("home"): Solingen, Germany, as in the reference. */
#define CALC_HOME_LAT 51.164896
#define CALC_HOME_LON 7.068792

/* Distance in km from (lat, lon) to home with the reference's bugged haversine; 0 when the
 * formula yields NaN (Java's (long)NaN). */
long calc_distance(double lat, double lon);
/* Cost of a distance: rint(km * 5) / 100.0 (= km / 20). */
double calc_cost(long km);

/* Java Long.parseLong: optional sign, decimal digits only, in range. Returns 0 or -1. */
int calc_parse_id(const char *s, long long *out);

/* Length of the UTF-8 string s in UTF-16 code units, as Java's String.length() counts it, for
 * the /match minimum of 3 (D23: a character outside the BMP counts 2). */
size_t calc_utf16_len(const char *s);

/* Writes the LIKE pattern "<text>%" into out, with '!', '%' and '_' escaped by '!' (the SQL
 * uses ESCAPE '!', so '\' is literal too). Returns 0, or -1 when out is too small. */
int calc_like_prefix(const char *text, char *out, size_t outlen);

/* Content-Type of /health and /count for an Accept header (NULL: none), as Spring's String
 * converter picks it (D23): "application/json" when the best-ranked acceptable
 * type (highest q, the first on a tie; q=0 excluded) is JSON (application/json or a +json
 * type), else "text/plain;charset=ISO-8859-1" (*\/\*, text/\*, text/plain, or no Accept). */
const char *calc_text_type(const char *accept);

/* The reference's /match truncation: more than 10 rows -> the first 9, else all. */
size_t calc_match_keep(size_t nrows);

#endif
