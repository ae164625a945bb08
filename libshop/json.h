/* json.h - JSON output with shortest round-trip numbers in the style of each reference runtime. */
#ifndef SHOP_JSON_H
#define SHOP_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "libshop/util.h"

enum shop_num_style {
    SHOP_NUM_JS,     /* JavaScript / PHP: 2001, 35.35, 1e+21, 1e-7 */
    SHOP_NUM_JAVA,   /* Java Double.toString: 40.0, 35.35, 1.0E7 */
    SHOP_NUM_PYTHON, /* Python repr: 40.0, 35.35, 1e+16, 1e-05 */
};

/* Prints v the shortest way that reads back to the same double, in the given style.
 * buf must hold at least 32 bytes. NaN and infinities print as "null" (JSON has none).
 * Returns the length. */
size_t shop_fmt_double(double v, enum shop_num_style style, char *buf, size_t buflen);

enum shop_json_flags {
    SHOP_JSON_COMPACT = 0,     /* JSON.stringify: no spaces, UTF-8 kept */
    SHOP_JSON_PYTHON = 1 << 0, /* json.dumps: ", " and ": ", non-ASCII as \uXXXX, Python floats */
    SHOP_JSON_JAVA = 1 << 1,   /* Jackson: compact, Java doubles */
};

/* Appends the serialisation of v to out. Returns 0, or -1 when out's cap is exceeded. */
int shop_json_dump(const json_t *v, int flags, struct shop_buf *out);
/* Same, into a new NUL-terminated heap string (caller frees). Never NULL. */
char *shop_json_dumps(const json_t *v, int flags);

/* Parses a JSON object (or array, as Express's strict parser did) from len bytes.
 * A key given twice keeps its last value, as JSON.parse and Python do (D23).
 * Returns a new reference, or NULL (with err filled) when the text is not JSON. */
json_t *shop_json_parse(const char *text, size_t len, json_error_t *err);

/* jansson's iteration API takes non-const values; this drops const in one place. */
static inline json_t *shop_json_mut(const json_t *v)
{
    return (json_t *)(uintptr_t)v;
}

/* Object member as a string, or NULL when absent, not a string, or holding a NUL. */
const char *shop_json_str(const json_t *obj, const char *key);

#endif
