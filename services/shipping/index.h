/* index.h - shipping's reference data in memory (issue 21): the codes and cities tables as read
 * from MariaDB, answering /codes, /match and /calc with exactly what the SQL gives. Built from
 * rows (no I/O here; reload.c reads them). How it keeps the SQL's meaning:
 * - the columns' collation decides which characters compare equal. The database itself tells
 *   us: for every character used in the data (the "alphabet", plus space), the fold rows list
 *   every BMP code point that `LIKE`s it as one character under that collation. A character
 *   above the BMP compares as U+FFFD does (MariaDB's UCA tables stop at U+FFFF). Each character
 *   thus maps to a class (the smallest alphabet index it equals) or to none: a text with a
 *   character of no class matches no city.
 * - `city LIKE 'text%' ESCAPE '!'` (text escaped: literal) compares character by character, so a
 *   city matches when the classes of text are a prefix of the city's classes.
 * - `country_code = ?` compares whole weight strings with trailing spaces ignored (PAD SPACE):
 *   equal to comparing classes when every character is of the class of an ASCII letter, digit
 *   or space (one weight each), trailing spaces dropped. Any other code parameter is left to
 *   the SQL (SHIP_INDEX_ASK_SQL).
 * - order by uuid, LIMIT 11, then the reference's "more than 10 -> the first 9". */
#ifndef SHIPPING_INDEX_H
#define SHIPPING_INDEX_H

#include "libshop/memo.h"
#include "libshop/util.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHIP_INDEX_NONE    0xFFFF /* the class of a character equal to none of the alphabet */
#define SHIP_INDEX_ASK_SQL (-2)   /* ship_index_match: this parameter needs the database */

/* One city, in uuid order. */
struct ship_city {
    long long uuid;
    double latitude, longitude;
    long km;                  /* calc_distance of the coordinates */
    const char *name;         /* display name */
    const char *country_name; /* the codes row of its country_code, or NULL */
    const char *json;         /* the /cities and /match object, serialised */
    size_t json_len;
    uint32_t ckey, key; /* offsets of the country code's and the city's classes in keys */
    uint16_t ckey_len, key_len;
};

struct ship_index {
    atomic_int refs;
    char signature[256];           /* the checksum row it was built from (reload.c) */
    struct shop_memo_bytes *codes; /* the /codes body and its ETag */
    uint16_t fold[65536];          /* class of each BMP code point */
    uint32_t *alphabet;            /* representative of each class, ascending */
    size_t nalphabet;
    bool codes_exact; /* every stored country_code folds as '=' does (see above) */
    struct ship_city *cities;
    size_t ncities;
    uint32_t *by_key; /* city indexes ordered by (country classes, city classes, uuid) */
    uint16_t *keys;
    size_t nkeys;
    char *strings; /* names and JSON of every city */
    size_t bytes;  /* memory held, for the log line */
};

/* The alphabet of some rows: the distinct code points of the given string columns of every
 * row of each array (NULL-terminated list of (rows, column)), plus U+0020, ascending. Returns
 * a new array (free()) of *n code points, or NULL when a value is not valid UTF-8. */
uint32_t *ship_index_alphabet(json_t *const *rows, const char *const *columns, size_t *n);

/* Builds an index. codes: rows {uuid, code, name} in /codes order; cities: rows {uuid, code,
 * city, name, region, latitude, longitude} in uuid order; alphabet: from ship_index_alphabet;
 * fold: rows {cp, rep}: code point cp equals alphabet[rep] (every pair the database found).
 * json_flags: how to serialise the rows (SHIPPING_JSON_FLAGS). Returns an index holding one
 * reference, or NULL with a reason in err (a row of the wrong shape, too much data). */
struct ship_index *ship_index_build(json_t *codes, json_t *cities, const uint32_t *alphabet,
                                    size_t nalphabet, json_t *fold, int json_flags, char *err,
                                    size_t errlen);
void ship_index_hold(struct ship_index *ix);
void ship_index_drop(struct ship_index *ix);

/* Appends the /match body for a code and a text (already checked: at least 3 UTF-16 units) to
 * out. Returns 0, SHIP_INDEX_ASK_SQL (see above), or -1 when out is full. */
int ship_index_match(const struct ship_index *ix, const char *code, const char *text,
                     struct shop_buf *out);
/* The city with that uuid, or NULL. */
const struct ship_city *ship_index_city(const struct ship_index *ix, long long uuid);

#endif
