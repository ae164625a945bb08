/* index.c - shipping's reference data in memory: built from rows, queried by /codes, /match and
 * /calc with the SQL's collation, prefix and order rules (see index.h). */
#include "services/shipping/index.h"
#include "libshop/json.h"
#include "services/shipping/calc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_MAX    512 /* code points of a parameter (D2 caps it at 256 bytes) */
#define MATCH_LIMIT 11  /* the SQL's LIMIT */

/* Decodes one UTF-8 character at *s (advanced past it). Returns the code point, or -1 when the
 * bytes are not UTF-8. */
static long next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    long cp;
    int more;
    if (p[0] < 0x80)
        cp = p[0], more = 0;
    else if ((p[0] & 0xE0) == 0xC0)
        cp = p[0] & 0x1F, more = 1;
    else if ((p[0] & 0xF0) == 0xE0)
        cp = p[0] & 0x0F, more = 2;
    else if ((p[0] & 0xF8) == 0xF0)
        cp = p[0] & 0x07, more = 3;
    else
        return -1;
    for (int i = 1; i <= more; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    *s = p + 1 + more;
    return cp > 0x10FFFF ? -1 : cp;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

uint32_t *ship_index_alphabet(json_t *const *rows, const char *const *columns, size_t *n)
{
    size_t len = 1, cap = 64;
    uint32_t *out = shop_xmalloc(cap * sizeof(*out));
    out[0] = ' ';
    for (size_t t = 0; rows[t]; t++) {
        size_t i;
        json_t *row;
        json_array_foreach(rows[t], i, row)
        {
            const unsigned char *s =
                (const unsigned char *)json_string_value(json_object_get(row, columns[t]));
            while (s && *s) {
                long cp = next_cp(&s);
                if (cp < 0) {
                    free(out);
                    return NULL;
                }
                if (len == cap)
                    out = shop_xrealloc(out, (cap *= 2) * sizeof(*out));
                out[len++] = (uint32_t)cp;
            }
            if (len > 4096) { /* keep it small: sort and drop duplicates as we go */
                qsort(out, len, sizeof(*out), cmp_u32);
                size_t k = 0;
                for (size_t j = 0; j < len; j++)
                    if (k == 0 || out[k - 1] != out[j])
                        out[k++] = out[j];
                len = k;
            }
        }
    }
    qsort(out, len, sizeof(*out), cmp_u32);
    size_t k = 0;
    for (size_t j = 0; j < len; j++)
        if (k == 0 || out[k - 1] != out[j])
            out[k++] = out[j];
    *n = k;
    return out;
}

static uint16_t class_of(const struct ship_index *ix, long cp)
{
    return ix->fold[cp < 0x10000 ? cp : 0xFFFD];
}

/* A class that counts as one weight for '=': an ASCII letter, digit or space. */
static bool simple_class(const struct ship_index *ix, uint16_t c)
{
    uint32_t rep = ix->alphabet[c];
    return rep == ' ' || (rep >= '0' && rep <= '9') || (rep >= 'a' && rep <= 'z') ||
           (rep >= 'A' && rep <= 'Z');
}

/* Classes of a country code as '=' compares it (trailing spaces dropped) into out. Returns the
 * count, or -1 when a character is not of a simple class (or the code is too long). */
static int fold_code(const struct ship_index *ix, const char *code, uint16_t *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)code;
    size_t n = 0;
    while (*s) {
        long cp = next_cp(&s);
        if (cp < 0 || n == cap)
            return -1;
        uint16_t c = class_of(ix, cp);
        if (c == SHIP_INDEX_NONE || !simple_class(ix, c))
            return -1;
        out[n++] = c;
    }
    uint16_t space = class_of(ix, ' ');
    while (n > 0 && out[n - 1] == space)
        n--;
    return (int)n;
}

/* Classes of a text, character by character, into out. Returns the count, or -1 (too long,
 * not UTF-8). A character of no class is kept as SHIP_INDEX_NONE. */
static int fold_text(const struct ship_index *ix, const char *text, uint16_t *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0;
    while (*s) {
        long cp = next_cp(&s);
        if (cp < 0 || n == cap)
            return -1;
        out[n++] = class_of(ix, cp);
    }
    return (int)n;
}

/* ---- building -------------------------------------------------------------------------------- */

struct builder {
    struct ship_index *ix;
    size_t keycap, strcap, strlen_;
    char *err;
    size_t errlen;
};

static size_t add_keys(struct builder *b, const uint16_t *k, size_t n)
{
    struct ship_index *ix = b->ix;
    if (n == 0)
        return ix->nkeys;
    if (ix->nkeys + n > b->keycap) {
        while (ix->nkeys + n > b->keycap)
            b->keycap = b->keycap ? 2 * b->keycap : 1 << 16;
        ix->keys = shop_xrealloc(ix->keys, b->keycap * sizeof(*ix->keys));
    }
    memcpy(ix->keys + ix->nkeys, k, n * sizeof(*k));
    ix->nkeys += n;
    return ix->nkeys - n;
}

/* Copies n bytes and a NUL into the string pool; returns their offset. */
static size_t add_string(struct builder *b, const char *s, size_t n)
{
    struct ship_index *ix = b->ix;
    if (b->strlen_ + n + 1 > b->strcap) {
        while (b->strlen_ + n + 1 > b->strcap)
            b->strcap = b->strcap ? 2 * b->strcap : 1 << 20;
        ix->strings = shop_xrealloc(ix->strings, b->strcap);
    }
    memcpy(ix->strings + b->strlen_, s, n);
    ix->strings[b->strlen_ + n] = '\0';
    b->strlen_ += n + 1;
    return b->strlen_ - n - 1;
}

static int fail(struct builder *b, const char *what, long long uuid)
{
    snprintf(b->err, b->errlen, "%s (uuid %lld)", what, uuid);
    return -1;
}

static int build_fold(struct ship_index *ix, json_t *fold)
{
    for (size_t i = 0; i < 65536; i++)
        ix->fold[i] = SHIP_INDEX_NONE;
    size_t i;
    json_t *row;
    json_array_foreach(fold, i, row)
    {
        json_int_t cp = json_integer_value(json_object_get(row, "cp"));
        json_int_t rep = json_integer_value(json_object_get(row, "rep"));
        if (cp < 0 || cp > 0xFFFF || rep < 0 || (size_t)rep >= ix->nalphabet)
            return -1;
        if ((uint16_t)rep < ix->fold[cp])
            ix->fold[cp] = (uint16_t)rep;
    }
    /* every character of the alphabet equals itself */
    for (size_t a = 0; a < ix->nalphabet; a++)
        if (class_of(ix, ix->alphabet[a]) == SHIP_INDEX_NONE)
            return -1;
    return 0;
}

/* Folds one city row into b->ix->cities[i]. */
static int add_city(struct builder *b, size_t i, json_t *row, int json_flags, struct shop_buf *tmp)
{
    struct ship_index *ix = b->ix;
    struct ship_city *c = &ix->cities[i];
    c->uuid = json_integer_value(json_object_get(row, "uuid"));
    const char *code = json_string_value(json_object_get(row, "code"));
    const char *city = json_string_value(json_object_get(row, "city"));
    const char *name = json_string_value(json_object_get(row, "name"));
    json_t *lat = json_object_get(row, "latitude"), *lon = json_object_get(row, "longitude");
    if (!json_is_integer(json_object_get(row, "uuid")) || !code || !city || !name ||
        !json_is_number(lat) || !json_is_number(lon))
        return fail(b, "a city row of the wrong shape", c->uuid);
    if (i > 0 && c->uuid <= ix->cities[i - 1].uuid)
        return fail(b, "cities not in uuid order", c->uuid);
    c->latitude = json_number_value(lat);
    c->longitude = json_number_value(lon);
    c->km = calc_distance(c->latitude, c->longitude);
    uint16_t k[TEXT_MAX];
    int n = fold_code(ix, code, k, TEXT_MAX);
    if (n < 0)
        ix->codes_exact = false, n = 0;
    c->ckey = (uint32_t)add_keys(b, k, (size_t)n);
    c->ckey_len = (uint16_t)n;
    n = fold_text(ix, city, k, TEXT_MAX);
    if (n < 0)
        return fail(b, "a city name too long", c->uuid);
    c->key = (uint32_t)add_keys(b, k, (size_t)n);
    c->key_len = (uint16_t)n;
    c->name = (const char *)(uintptr_t)add_string(b, name, strlen(name)); /* offsets for now */
    shop_buf_reset(tmp);
    if (shop_json_dump(row, json_flags, tmp) == -1)
        return fail(b, "a city row too large", c->uuid);
    c->json = (const char *)(uintptr_t)add_string(b, tmp->data, tmp->len);
    c->json_len = tmp->len;
    return 0;
}

static const struct ship_index *sort_ix; /* qsort's context (the build holds build_lock) */
static pthread_mutex_t build_lock = PTHREAD_MUTEX_INITIALIZER;

static int cmp_keys(const uint16_t *a, size_t an, const uint16_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return (an > bn) - (an < bn);
}

static int cmp_city(const void *pa, const void *pb)
{
    const struct ship_index *ix = sort_ix;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    const struct ship_city *a = &ix->cities[ia], *b = &ix->cities[ib];
    int c = cmp_keys(ix->keys + a->ckey, a->ckey_len, ix->keys + b->ckey, b->ckey_len);
    if (!c)
        c = cmp_keys(ix->keys + a->key, a->key_len, ix->keys + b->key, b->key_len);
    return c ? c : (ia > ib) - (ia < ib);
}

/* The codes row whose code equals the city's country_code under '=', for /confirm. */
static void link_countries(struct ship_index *ix, json_t *codes)
{
    size_t ncodes = json_array_size(codes);
    uint16_t(*ck)[4] = shop_xcalloc(ncodes ? ncodes : 1, sizeof(*ck));
    int *cn = shop_xcalloc(ncodes ? ncodes : 1, sizeof(*cn));
    for (size_t j = 0; j < ncodes; j++) {
        const char *code = json_string_value(json_object_get(json_array_get(codes, j), "code"));
        cn[j] = code ? fold_code(ix, code, ck[j], 4) : -1;
    }
    for (size_t i = 0; i < ix->ncities; i++) {
        struct ship_city *c = &ix->cities[i];
        c->country_name = NULL;
        for (size_t j = 0; j < ncodes && ix->codes_exact; j++)
            if (cn[j] >= 0 &&
                cmp_keys(ck[j], (size_t)cn[j], ix->keys + c->ckey, c->ckey_len) == 0) {
                c->country_name =
                    json_string_value(json_object_get(json_array_get(codes, j), "name"));
                break;
            }
    }
    free(ck);
    free(cn);
}

/* Copies the country names into the pool (after link_countries) and turns offsets into
 * pointers once the pool has its final address. */
static void fix_strings(struct builder *b)
{
    struct ship_index *ix = b->ix;
    size_t *country = shop_xcalloc(ix->ncities ? ix->ncities : 1, sizeof(*country));
    for (size_t i = 0; i < ix->ncities; i++) {
        const char *cn = ix->cities[i].country_name;
        country[i] = cn ? add_string(b, cn, strlen(cn)) + 1 : 0; /* 0: none */
    }
    for (size_t i = 0; i < ix->ncities; i++) {
        struct ship_city *c = &ix->cities[i];
        c->name = ix->strings + (uintptr_t)c->name;
        c->json = ix->strings + (uintptr_t)c->json;
        c->country_name = country[i] ? ix->strings + country[i] - 1 : NULL;
    }
    free(country);
}

static int build_cities(struct builder *b, json_t *cities, json_t *codes, int json_flags)
{
    struct ship_index *ix = b->ix;
    ix->ncities = json_array_size(cities);
    ix->cities = shop_xcalloc(ix->ncities ? ix->ncities : 1, sizeof(*ix->cities));
    struct shop_buf tmp;
    shop_buf_init(&tmp, 64 * 1024);
    int rc = 0;
    for (size_t i = 0; i < ix->ncities && rc == 0; i++)
        rc = add_city(b, i, json_array_get(cities, i), json_flags, &tmp);
    shop_buf_cleanup(&tmp);
    if (rc == -1)
        return -1;
    link_countries(ix, codes);
    fix_strings(b);
    ix->by_key = shop_xmalloc((ix->ncities ? ix->ncities : 1) * sizeof(*ix->by_key));
    for (size_t i = 0; i < ix->ncities; i++)
        ix->by_key[i] = (uint32_t)i;
    pthread_mutex_lock(&build_lock);
    sort_ix = ix;
    qsort(ix->by_key, ix->ncities, sizeof(*ix->by_key), cmp_city);
    pthread_mutex_unlock(&build_lock);
    return 0;
}

struct ship_index *ship_index_build(json_t *codes, json_t *cities, const uint32_t *alphabet,
                                    size_t nalphabet, json_t *fold, int json_flags, char *err,
                                    size_t errlen)
{
    struct ship_index *ix = shop_xcalloc(1, sizeof(*ix));
    atomic_init(&ix->refs, 1);
    struct builder b = {.ix = ix, .err = err, .errlen = errlen};
    ix->codes_exact = true;
    ix->nalphabet = nalphabet;
    ix->alphabet = shop_xmalloc((nalphabet ? nalphabet : 1) * sizeof(*alphabet));
    memcpy(ix->alphabet, alphabet, nalphabet * sizeof(*alphabet));
    if (nalphabet >= SHIP_INDEX_NONE || build_fold(ix, fold) == -1) {
        snprintf(err, errlen, "the collation's character classes are incomplete");
        ship_index_drop(ix);
        return NULL;
    }
    if (build_cities(&b, cities, codes, json_flags) == -1) {
        ship_index_drop(ix);
        return NULL;
    }
    struct shop_buf out;
    shop_buf_init(&out, 16 * 1024 * 1024);
    if (shop_json_dump(codes, json_flags, &out) == -1) {
        snprintf(err, errlen, "the codes are too large");
        shop_buf_cleanup(&out);
        ship_index_drop(ix);
        return NULL;
    }
    ix->codes = shop_memo_bytes_new(out.data, out.len);
    /* the pools grew by doubling: give back what they did not use (nothing points into keys;
     * strings moves, so its pointers are rebased) */
    ix->keys = shop_xrealloc(ix->keys, (ix->nkeys ? ix->nkeys : 1) * sizeof(*ix->keys));
    char *old = ix->strings;
    ix->strings = shop_xrealloc(ix->strings, b.strlen_ ? b.strlen_ : 1);
    for (size_t i = 0; i < ix->ncities && ix->strings != old; i++) {
        struct ship_city *c = &ix->cities[i];
        c->name = ix->strings + (c->name - old);
        c->json = ix->strings + (c->json - old);
        if (c->country_name)
            c->country_name = ix->strings + (c->country_name - old);
    }
    ix->bytes = sizeof(*ix) + ix->ncities * (sizeof(*ix->cities) + sizeof(*ix->by_key)) +
                ix->nkeys * sizeof(*ix->keys) + b.strlen_ + out.len;
    shop_buf_cleanup(&out);
    return ix;
}

void ship_index_hold(struct ship_index *ix)
{
    atomic_fetch_add(&ix->refs, 1);
}

void ship_index_drop(struct ship_index *ix)
{
    if (!ix || atomic_fetch_sub(&ix->refs, 1) != 1)
        return;
    if (ix->codes)
        shop_memo_bytes_drop(ix->codes);
    free(ix->alphabet);
    free(ix->cities);
    free(ix->by_key);
    free(ix->keys);
    free(ix->strings);
    free(ix);
}

/* ---- queries --------------------------------------------------------------------------------- */

/* Compares city i with the query: its country classes with qc, then its first nt classes with
 * qt (a shorter city name sorts before). */
static int cmp_query(const struct ship_index *ix, uint32_t i, const uint16_t *qc, size_t nc,
                     const uint16_t *qt, size_t nt)
{
    const struct ship_city *c = &ix->cities[i];
    int r = cmp_keys(ix->keys + c->ckey, c->ckey_len, qc, nc);
    if (r)
        return r;
    size_t n = c->key_len < nt ? c->key_len : nt;
    r = cmp_keys(ix->keys + c->key, n, qt, n);
    if (r)
        return r;
    return c->key_len < nt ? -1 : 0;
}

/* First position in by_key whose city compares >= (upper: >) the query. */
static size_t bound(const struct ship_index *ix, const uint16_t *qc, size_t nc, const uint16_t *qt,
                    size_t nt, bool upper)
{
    size_t lo = 0, hi = ix->ncities;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cmp_query(ix, ix->by_key[mid], qc, nc, qt, nt);
        if (upper ? r <= 0 : r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ship_index_match(const struct ship_index *ix, const char *code, const char *text,
                     struct shop_buf *out)
{
    uint16_t qc[TEXT_MAX], qt[TEXT_MAX];
    int nc = ix->codes_exact ? fold_code(ix, code, qc, TEXT_MAX) : -1;
    if (nc < 0)
        return SHIP_INDEX_ASK_SQL;
    int nt = fold_text(ix, text, qt, TEXT_MAX);
    bool none = nt < 0;
    for (int i = 0; i < nt && !none; i++)
        none = qt[i] == SHIP_INDEX_NONE;
    size_t lo = 0, hi = 0;
    if (!none) {
        lo = bound(ix, qc, (size_t)nc, qt, (size_t)nt, false);
        hi = bound(ix, qc, (size_t)nc, qt, (size_t)nt, true);
    }
    /* the first MATCH_LIMIT by uuid (a city's index is its rank by uuid), ascending */
    uint32_t best[MATCH_LIMIT];
    size_t nbest = 0;
    for (size_t p = lo; p < hi; p++) {
        uint32_t c = ix->by_key[p];
        if (nbest == MATCH_LIMIT && c > best[MATCH_LIMIT - 1])
            continue;
        size_t at = nbest < MATCH_LIMIT ? nbest++ : MATCH_LIMIT - 1;
        while (at > 0 && best[at - 1] > c) {
            best[at] = best[at - 1];
            at--;
        }
        best[at] = c;
    }
    size_t keep = calc_match_keep(nbest);
    int rc = shop_buf_putc(out, '[');
    for (size_t i = 0; i < keep && rc == 0; i++) {
        const struct ship_city *c = &ix->cities[best[i]];
        if (i)
            rc = shop_buf_putc(out, ',');
        if (rc == 0)
            rc = shop_buf_append(out, c->json, c->json_len);
    }
    return rc == 0 ? shop_buf_putc(out, ']') : -1;
}

const struct ship_city *ship_index_city(const struct ship_index *ix, long long uuid)
{
    size_t lo = 0, hi = ix->ncities;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->cities[mid].uuid < uuid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ix->ncities && ix->cities[lo].uuid == uuid ? &ix->cities[lo] : NULL;
}
