/* test_fuzz_parsers.c - a seeded random fuzz of libshop's pure parsers (D3: no input may crash a
 * process): route matching, percent-decoding, URL and host:port parsing, number printing and the
 * JSON dump/parse round trip. Every input and output buffer is allocated at its exact size, so
 * under `make SAN=1` any overrun is an AddressSanitizer report. Each property is checked against
 * an oracle built from the input's known parts. SHOP_FUZZ_SEED and SHOP_FUZZ_ITERS override the
 * fixed seed and the iteration count; the seed is printed so any failure can be replayed. */
#include "libshop/client.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/util.h"
#include "tests/oracles.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_SEED  20261127u
#define DEFAULT_ITERS 20000L
#define PARAM_MAX     256 /* D2 */
#define REPORT_MAX    3   /* failing inputs printed per property */

/* ---- seeded generator ------------------------------------------------------------------------ */

static uint64_t rng;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static bool chance(unsigned pct)
{
    return below(100) < pct;
}

static char pick(const char *alphabet)
{
    return alphabet[below(strlen(alphabet))];
}

/* A length that is usually small and sometimes at the edges the parsers care about. */
static size_t some_len(size_t small)
{
    static const size_t edges[] = {0, 1, 2, 3, 15, 16, 127, 128, 255, 256, 257, 299, 300, 301};
    if (chance(15))
        return edges[below(sizeof(edges) / sizeof(edges[0]))];
    return below(small + 1);
}

/* ---- failure bookkeeping: one CHECK per property, the first inputs printed ------------------- */

struct prop {
    const char *name;
    long runs;
    long failed;
};

static void hexdump(const char *what, const void *p, size_t n)
{
    const unsigned char *s = p;
    fprintf(stderr, "    %s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < n && i < 400; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
            fputc(s[i], stderr);
        else
            fprintf(stderr, "\\x%02x", s[i]);
    }
    fprintf(stderr, "%s\"\n", n > 400 ? "..." : "");
}

/* Records one run of a property; prints the input of the first few failures. */
static void verdict(struct prop *p, bool ok, const char *why, const void *input, size_t n)
{
    p->runs++;
    if (ok)
        return;
    if (++p->failed <= REPORT_MAX) {
        fprintf(stderr, "FAIL %s: %s\n", p->name, why);
        hexdump("input", input, n);
    }
}

static void finish(const struct prop *p)
{
    printf("  %-28s %ld runs, %ld failed\n", p->name, p->runs, p->failed);
    CHECK(p->runs > 0 && p->failed == 0);
}

/* Exact-size NUL-terminated copy (ASan sees a read one byte past the terminator). */
static char *exact(const char *s, size_t n)
{
    return shop_xstrndup(s, n);
}

/* ---- shop_pct_decode ------------------------------------------------------------------------- */

static void fuzz_pct_decode(long iters)
{
    struct prop p = {"shop_pct_decode", 0, 0};
    struct prop rt = {"escape/decode round trip", 0, 0};
    for (long it = 0; it < iters; it++) {
        size_t n = some_len(40);
        char *s = shop_xmalloc(n ? n : 1); /* no terminator: the decoder takes a length */
        for (size_t i = 0; i < n; i++)
            s[i] = chance(30) ? '%' : chance(50) ? pick("0123456789abcdefABCDEFgz%") : (char)rnd();
        char *out = shop_xmalloc(n + 1), *want = shop_xmalloc(n + 1);
        long got = shop_pct_decode(s, n, out), exp = oracle_pct_decode(s, n, want);
        bool ok = got == exp && (got < 0 || (memcmp(out, want, (size_t)got) == 0 && !out[got]));
        verdict(&p, ok, "result differs from RFC 3986 decoding", s, n);

        /* escape any bytes (no NUL: the escaper takes a C string), decode, compare */
        for (size_t i = 0; i < n; i++)
            if (!s[i])
                s[i] = 'x';
        char *cs = exact(s, n);
        struct shop_buf esc;
        shop_buf_init(&esc, 3 * n + 1);
        shop_url_escape_segment(&esc, cs);
        char *back = shop_xmalloc(esc.len + 1);
        long m = shop_pct_decode(esc.data ? esc.data : "", esc.len, back);
        verdict(&rt, m == (long)n && memcmp(back, cs, n) == 0, "decode(escape(x)) != x", cs, n);
        free(back);
        shop_buf_cleanup(&esc);
        free(cs);
        free(out);
        free(want);
        free(s);
    }
    finish(&p);
    finish(&rt);
}

/* ---- shop_route_match ------------------------------------------------------------------------ */

static const char *const patterns[] = {
    "/health",
    "/metrics",
    "/products",
    "/product/:sku",
    "/products/:cat",
    "/categories",
    "/search/:text",
    "/uniqueid",
    "/check/:id",
    "/users",
    "/login",
    "/register",
    "/order/:id",
    "/history/:id",
    "/cart/:id",
    "/rename/:from/:to",
    "/add/:id/:sku/:qty",
    "/update/:id/:sku/:qty",
    "/shipping/:id",
    "/count",
    "/codes",
    "/cities/:code",
    "/match/:code/:text",
    "/calc/:id",
    "/confirm/:id",
    "/memory",
    "/free",
    "/actuator",
    "/actuator/health",
    "/actuator/info",
    "/pay/:id",
    "/_health",
    "/api/fetch/:sku",
    "/api/rate/:sku/:score",
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

/* A random pattern of 1..8 segments, literals and :params, in buf. */
static void random_pattern(char *buf, size_t size)
{
    size_t o = 0, nseg = 1 + below(8);
    for (size_t s = 0; s < nseg && o + 12 < size; s++) {
        buf[o++] = '/';
        if (chance(40))
            buf[o++] = ':';
        size_t len = 1 + below(6);
        for (size_t i = 0; i < len && o + 2 < size; i++)
            buf[o++] = pick("abcxyz_-.0123456789");
    }
    buf[o] = '\0';
}

/* A parameter value: usually plain, sometimes around D2's length limit (254..258 bytes), with
 * whole UTF-8 characters or stray bytes above 0x7F, and in one case out of four with a byte D2
 * rejects. */
static char *random_value(size_t *len)
{
    static const char *const utf8[] = {"\xc3\xa9",     "\xe2\x82\xac",     "\xf0\x9f\x98\x80",
                                       "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"};
    size_t n = chance(15) ? 254 + below(5) : 1 + below(12);
    bool dirty = chance(25);
    char *v = shop_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        const char *c = utf8[below(sizeof(utf8) / sizeof(utf8[0]))];
        if (chance(10) && i + strlen(c) <= n) {
            memcpy(v + i, c, strlen(c));
            i += strlen(c) - 1;
        } else if (chance(5)) {
            v[i] = (char)(0x80 + below(0x80));
        } else {
            v[i] = pick("abcXYZ0123456789-_.~ %+:@!$&'()*,;=?#[]");
        }
    }
    if (dirty)
        v[below(n)] = pick("/\x01\x1f\x7f\n");
    v[n] = '\0';
    *len = n;
    return v;
}

/* The code point of the UTF-8 sequence at s (n bytes left) and its length in *len, or -1 when
 * the bytes do not form one (decoded, then checked for the shortest form and the range). */
static long utf8_decode(const unsigned char *s, size_t n, size_t *len)
{
    static const unsigned char lead_bits[] = {0, 0, 0x1F, 0x0F, 0x07};
    static const long min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t k = s[0] < 0x80             ? 1
               : (s[0] & 0xE0) == 0xC0 ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (k == 0 || k > n)
        return -1;
    if (k == 1)
        return (*len = 1, s[0]);
    long cp = s[0] & lead_bits[k];
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = k;
    return cp;
}

/* D2 and D23: 1..256 bytes of UTF-8, no '/' and no control characters. */
static bool value_ok(const char *v, size_t n)
{
    if (n == 0 || n > PARAM_MAX)
        return false;
    for (size_t i = 0, k = 0; i < n; i += k) {
        long cp = utf8_decode((const unsigned char *)v + i, n - i, &k);
        if (cp < 0x20 || cp == 0x7f || cp == '/')
            return false;
    }
    return true;
}

/* Builds a path that matches pattern with fresh values (escaped), literals sometimes escaped and
 * sometimes in another case (then *cased is set: routes are case-sensitive, D23), and an
 * optional trailing slash. Returns the path; vals/lens receive the values. */
static char *matching_path(const char *pattern, char **vals, size_t *lens, size_t *nvals,
                           bool *cased)
{
    *cased = false;
    struct shop_buf b;
    shop_buf_init(&b, 1 << 20);
    *nvals = 0;
    for (const char *p = pattern; *p;) {
        size_t seg = strcspn(p + 1, "/");
        shop_buf_putc(&b, '/');
        if (p[1] == ':') {
            char *v = random_value(&lens[*nvals]);
            shop_url_escape_segment(&b, v);
            vals[(*nvals)++] = v;
        } else {
            for (size_t i = 0; i < seg; i++) {
                char c = p[1 + i];
                if (chance(3) && c >= 'a' && c <= 'z') {
                    c = (char)(c - 'a' + 'A');
                    *cased = true;
                }
                if (chance(5))
                    shop_buf_printf(&b, "%%%02X", (unsigned char)c);
                else
                    shop_buf_putc(&b, c);
            }
        }
        p += 1 + seg;
    }
    if (chance(20))
        shop_buf_putc(&b, '/');
    return b.data;
}

/* A mutated or random path: slashes, dots, escapes, control and UTF-8 garbage, long runs. */
static char *garbage_path(void)
{
    static const char *const atoms[] = {
        "/",    "//",   "..",  ".",      "%",        "%2",   "%2F",
        "%2f",  "%00",  "%zz", "%C3%28", "\xc3\x28", "\xff", "\xed\xa0\x80",
        "\x01", "\x7f", ":",   "?",      "#",        "+",    "health",
        "cart", "id",   "API", "%41",    ";",        "%%",   "é"};
    struct shop_buf b;
    shop_buf_init(&b, 1 << 20);
    if (chance(80))
        shop_buf_putc(&b, '/');
    size_t n = below(30);
    for (size_t i = 0; i < n; i++)
        shop_buf_puts(&b, atoms[below(sizeof(atoms) / sizeof(atoms[0]))]);
    if (chance(5)) /* one overlong segment, around the router's 8 KiB literal buffer */
        for (size_t i = 0, m = 8180 + below(30); i < m; i++)
            shop_buf_putc(&b, 'a');
    if (!b.data)
        shop_buf_puts(&b, "");
    return b.data;
}

static size_t count_params(const char *pattern)
{
    size_t n = 0;
    for (const char *p = pattern; (p = strstr(p, "/:")) != NULL; p += 2)
        n++;
    return n;
}

/* Invariants of any answer: values inside buf, terminated, and valid per D2. */
static bool sane_match(int m, const char *pattern, const char *buf, size_t buflen,
                       const char **names, const char **values, size_t np, size_t maxparams)
{
    if (m != -1 && m != 0 && m != 1)
        return false;
    if (m != 1)
        return true;
    if (np != count_params(pattern) || np > maxparams)
        return false;
    for (size_t i = 0; i < np; i++) {
        if (values[i] < buf || values[i] >= buf + buflen)
            return false;
        size_t room = (size_t)(buf + buflen - values[i]);
        size_t len = strnlen(values[i], room);
        if (len == room || !value_ok(values[i], len))
            return false;
        if (names[i] < pattern || names[i] > pattern + strlen(pattern) || names[i][-1] != ':')
            return false;
    }
    return true;
}

static void fuzz_route_match(long iters)
{
    struct prop inv = {"shop_route_match invariants", 0, 0};
    struct prop ora = {"shop_route_match oracle", 0, 0};
    for (long it = 0; it < iters; it++) {
        char rp[128];
        const char *pattern = patterns[below(NPATTERNS)];
        if (chance(30)) {
            random_pattern(rp, sizeof(rp));
            pattern = rp;
        }
        char *vals[16];
        size_t lens[16], nvals = 0;
        bool built = chance(50), cased = false;
        char *raw = built ? matching_path(pattern, vals, lens, &nvals, &cased) : garbage_path();
        char *path = exact(raw, strlen(raw));
        free(raw);

        size_t buflen = chance(70) ? 8192 : below(600);
        size_t maxparams = chance(80) ? 8 : below(4);
        char *buf = shop_xmalloc(buflen ? buflen : 1);
        const char **names = shop_xmalloc((maxparams ? maxparams : 1) * sizeof(*names));
        const char **values = shop_xmalloc((maxparams ? maxparams : 1) * sizeof(*values));
        size_t np = 0;
        int m = shop_route_match(pattern, path, buf, buflen, names, values, &np, maxparams);
        verdict(&inv, sane_match(m, pattern, buf, buflen, names, values, np, maxparams),
                "answer breaks an invariant", path, strlen(path));

        if (built && buflen == 8192 && maxparams == 8) {
            bool all_ok = true;
            for (size_t i = 0; i < nvals; i++)
                all_ok = all_ok && value_ok(vals[i], lens[i]);
            bool ok = m == (cased ? 0 : all_ok ? 1 : -1);
            for (size_t i = 0; ok && all_ok && !cased && i < nvals; i++)
                ok = strcmp(values[i], vals[i]) == 0;
            verdict(&ora, ok, "a path built to match did not give back its values", path,
                    strlen(path));
        }
        for (size_t i = 0; i < nvals; i++)
            free(vals[i]);
        free(names);
        free(values);
        free(buf);
        free(path);
    }
    finish(&inv);
    finish(&ora);
}

/* ---- shop_hostport_parse and shop_url_parse -------------------------------------------------- */

struct port_case {
    const char *text;
    int port; /* 0 = invalid */
};

static const struct port_case ports[] = {
    {"80", 80},
    {"1", 1},
    {"65535", 65535},
    {"8080", 8080},
    {"+80", 80},
    {" 80", 80},
    {"0", 0},
    {"65536", 0},
    {"-1", 0},
    {"", 0},
    {"8a", 0},
    {"80 ", 0},
    {"99999999999999999999", 0},
    {"0x50", 0},
    {"\xff", 0},
    {":", 0},
};
#define NPORTS (sizeof(ports) / sizeof(ports[0]))

static void random_chars(struct shop_buf *b, size_t n, const char *alphabet)
{
    for (size_t i = 0; i < n; i++)
        shop_buf_putc(b, pick(alphabet));
}

/* A host[:port] with its expected parse. Returns the text; *host_len is the host's length
 * (without brackets) and *host_off its offset, *port the expected port or 0 when invalid, *bad
 * whether -1 is due. */
static char *random_hostport(size_t *host_len, size_t *host_off, int *port, bool *bad)
{
    struct shop_buf b;
    shop_buf_init(&b, 1 << 16);
    bool v6 = chance(20);
    size_t hl = some_len(40);
    if (v6)
        shop_buf_putc(&b, '[');
    random_chars(&b, hl, v6 ? "0123456789abcdef:" : "abcdefghijklmnopqrstuvwxyz0123456789.-");
    if (v6)
        shop_buf_putc(&b, ']');
    *bad = hl == 0;
    *port = -1; /* absent */
    if (chance(70)) {
        const struct port_case *pc = &ports[below(NPORTS)];
        shop_buf_putc(&b, ':');
        shop_buf_puts(&b, pc->text);
        *port = pc->port;
        if (!pc->port)
            *bad = true;
        if (!v6 && strchr(pc->text, ':')) { /* host:: */
            const char *h = b.data + b.len - hl - 2;
            if (strspn(h, "0123456789abcdef.") >= hl) { /* a bare IPv6 address, "::" too */
                *bad = false;
                *port = -1;
                hl += 2;
            } else { /* the last colon splits: an empty port */
                *bad = true;
            }
        }
    }
    if (!b.data)
        shop_buf_puts(&b, "");
    *host_len = hl;
    *host_off = v6 ? 1 : 0;
    return b.data;
}

static void fuzz_hostport(long iters)
{
    struct prop p = {"shop_hostport_parse", 0, 0};
    for (long it = 0; it < iters; it++) {
        size_t hl;
        size_t ho;
        int want_port;
        bool bad;
        char *text;
        bool structured = chance(70);
        if (structured) {
            text = random_hostport(&hl, &ho, &want_port, &bad);
        } else {
            struct shop_buf b;
            shop_buf_init(&b, 1 << 16);
            random_chars(&b, some_len(30), "ab:[]0123456789 +-.\xff");
            text = b.data ? b.data : shop_xstrdup("");
            hl = 0, ho = 0, want_port = -1, bad = false;
        }
        char *s = exact(text, strlen(text));
        size_t hostlen = chance(60) ? 256 : 1 + below(64);
        char *host = shop_xmalloc(hostlen);
        int port = -7;
        int rc = shop_hostport_parse(s, host, hostlen, &port);
        bool ok = rc == 0 || rc == -1;
        if (ok && rc == 0)
            ok = strnlen(host, hostlen) < hostlen && host[0] && (port == -7 || port > 0);
        if (ok && structured) {
            bool want_bad = bad || hl >= hostlen;
            ok = want_bad ? rc == -1
                          : rc == 0 && strlen(host) == hl && memcmp(host, text + ho, hl) == 0 &&
                                port == (want_port < 0 ? -7 : want_port);
        }
        verdict(&p, ok, "host/port parse differs from its parts", s, strlen(s));
        free(host);
        free(s);
        free(text);
    }
    finish(&p);
}

static void fuzz_url(long iters)
{
    struct prop p = {"shop_url_parse", 0, 0};
    for (long it = 0; it < iters; it++) {
        struct shop_buf b;
        shop_buf_init(&b, 1 << 16);
        size_t sl = some_len(20), ul = 0, pl = 0, pathl = 0, hl = 0;
        bool with_user = chance(40), with_pass = with_user && chance(60), with_path = chance(60);
        bool bad = false;
        int want_port = -1;
        random_chars(&b, sl, "abcdefghijklmnopqrstuvwxyz+.-");
        shop_buf_puts(&b, "://");
        size_t ustart = b.len, pstart = 0, hstart = 0, pathstart = 0;
        if (with_user) {
            ul = some_len(20);
            random_chars(&b, ul, "abcxyz0123456789-._~!$&'()*+,;=%");
            if (with_pass) {
                shop_buf_putc(&b, ':');
                pstart = b.len;
                pl = some_len(20);
                random_chars(&b, pl, "abcxyz0123456789-._~!$&'()*+,;=%:");
            }
            shop_buf_putc(&b, '@');
        }
        size_t ho;
        char *hp = random_hostport(&hl, &ho, &want_port, &bad);
        hstart = b.len + ho;
        shop_buf_puts(&b, hp);
        size_t hplen = strlen(hp);
        free(hp);
        if (with_path) {
            shop_buf_putc(&b, '/');
            pathstart = b.len;
            pathl = some_len(20);
            random_chars(&b, pathl, "abcxyz0123456789-._~/%");
            if (chance(30))
                shop_buf_puts(&b, chance(50) ? "?q=1/x" : "#frag");
        } else if (chance(20)) {
            shop_buf_puts(&b, "?a=b");
        }
        bad =
            bad || sl >= 16 || ul >= 128 || pl >= 128 || hplen >= 300 || hl >= 256 || pathl >= 256;
        char *s = exact(b.data, b.len);
        if (chance(10)) /* unstructured: flip a byte, the answer is only checked for sanity */
            s[below(b.len)] = (char)rnd();
        bool structured = strcmp(s, b.data) == 0;
        struct shop_url u;
        memset(&u, 0x5a, sizeof(u));
        int rc = shop_url_parse(s, &u);
        bool ok = rc == 0 || rc == -1;
        if (ok && rc == 0)
            ok = strnlen(u.scheme, sizeof(u.scheme)) < sizeof(u.scheme) &&
                 strnlen(u.user, sizeof(u.user)) < sizeof(u.user) &&
                 strnlen(u.pass, sizeof(u.pass)) < sizeof(u.pass) &&
                 strnlen(u.host, sizeof(u.host)) < sizeof(u.host) && u.host[0] &&
                 strnlen(u.path, sizeof(u.path)) < sizeof(u.path) && u.port >= 0 && u.port <= 65535;
        if (ok && structured) {
            ok = bad ? rc == -1
                     : rc == 0 && strlen(u.scheme) == sl && memcmp(u.scheme, b.data, sl) == 0 &&
                           strlen(u.user) == ul && memcmp(u.user, b.data + ustart, ul) == 0 &&
                           strlen(u.pass) == pl && (!pl || !memcmp(u.pass, b.data + pstart, pl)) &&
                           strlen(u.host) == hl && memcmp(u.host, b.data + hstart, hl) == 0 &&
                           u.port == (want_port < 0 ? 0 : want_port) && strlen(u.path) == pathl &&
                           (!pathl || !memcmp(u.path, b.data + pathstart, pathl));
        }
        verdict(&p, ok, "URL parse differs from its parts", s, strlen(s));
        free(s);
        shop_buf_cleanup(&b);
    }
    finish(&p);
}

/* ---- shop_fmt_double, shop_json_dump and shop_json_parse ------------------------------------- */

static double random_double(void)
{
    static const double special[] = {0.0,
                                     -0.0,
                                     0.1,
                                     1e21,
                                     1e-7,
                                     5e-324,
                                     -5e-324,
                                     1.7976931348623157e308,
                                     2.2250738585072014e-308,
                                     35.35,
                                     2001,
                                     -2.5,
                                     1e16,
                                     1e-5,
                                     1e7,
                                     0.001,
                                     123456789.125};
    if (chance(30))
        return special[below(sizeof(special) / sizeof(special[0]))];
    if (chance(30))
        return (double)(int64_t)rnd() / (double)(1 + below(1000));
    uint64_t bits = rnd();
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static void fuzz_fmt_double(long iters)
{
    struct prop p = {"shop_fmt_double round trip", 0, 0};
    static const enum shop_num_style styles[] = {SHOP_NUM_JS, SHOP_NUM_JAVA, SHOP_NUM_PYTHON};
    for (long it = 0; it < iters; it++) {
        double v = random_double();
        char *buf = shop_xmalloc(32); /* the documented minimum, exactly */
        size_t n = shop_fmt_double(v, styles[below(3)], buf, 32);
        bool ok = n < 32 && strlen(buf) == n;
        if (ok && isfinite(v)) /* by value: like JSON.stringify, every style prints -0 as 0 */
            ok = strtod(buf, NULL) == v;
        else if (ok)
            ok = strcmp(buf, "null") == 0;
        verdict(&p, ok, "printed number does not read back", &v, sizeof(v));
        free(buf);
    }
    finish(&p);
}

/* Valid UTF-8 with the characters a serialiser must escape. No NUL: shop_json_parse follows
 * Express in refusing \u0000, so a NUL could not come back. */
static json_t *random_string(void)
{
    static const char *const atoms[] = {
        "a",    "Z", "0", " ", "\"",           "\\", "/", "\n",  "\t", "\x01",         "\x1f",
        "\x7f", "é", "€", "𝄞", "\xe2\x80\xa8", "<",  "'", "$ne", ".",  "\xef\xbb\xbf", "\u00a0"};
    struct shop_buf b;
    shop_buf_init(&b, 1 << 20);
    size_t n = chance(5) ? 2000 : below(12);
    for (size_t i = 0; i < n; i++)
        shop_buf_puts(&b, atoms[below(sizeof(atoms) / sizeof(atoms[0]))]);
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    shop_buf_cleanup(&b);
    return s;
}

/* A real that reads back as itself in every style. JS prints integral doubles in [2^63, 1e21)
 * as plain digits, which jansson (and so shop_json_parse) refuses as an integer overflow; those
 * are left out here and noted in the suite's report. */
static double roundtrip_double(void)
{
    for (;;) {
        double d = random_double();
        if (!isfinite(d))
            continue;
        if (d == floor(d) && fabs(d) >= 9223372036854775808.0 && fabs(d) < 1e21)
            continue;
        return d;
    }
}

static json_t *random_value_at(int depth)
{
    size_t kind = depth > 6 ? 2 + below(6) : below(8);
    switch (kind) {
    case 0: {
        json_t *o = json_object();
        for (size_t i = 0, n = below(6); i < n; i++) {
            json_t *k = random_string();
            json_object_set_new(o, json_string_value(k), random_value_at(depth + 1));
            json_decref(k);
        }
        return o;
    }
    case 1: {
        json_t *a = json_array();
        for (size_t i = 0, n = below(6); i < n; i++)
            json_array_append_new(a, random_value_at(depth + 1));
        return a;
    }
    case 2:
        return random_string();
    case 3: {
        static const json_int_t edge[] = {0, 1, -1, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
        return json_integer(chance(50) ? edge[below(7)] : (json_int_t)rnd());
    }
    case 4:
    case 5:
        return json_real(roundtrip_double());
    case 6:
        return json_boolean(chance(50));
    default:
        return json_null();
    }
}

/* Dumps v with flags and parses the text back from an exact-size buffer. New reference or NULL. */
static json_t *dump_parse(const json_t *v, int flags, char **text, size_t *len)
{
    struct shop_buf out;
    shop_buf_init(&out, 64 * 1024 * 1024);
    if (shop_json_dump(v, flags, &out) == -1 || !out.data) {
        shop_buf_cleanup(&out);
        *text = NULL;
        *len = 0;
        return NULL;
    }
    char *t = shop_xmalloc(out.len ? out.len : 1); /* no terminator: the parser takes a length */
    memcpy(t, out.data, out.len);
    *len = out.len;
    shop_buf_cleanup(&out);
    json_error_t err;
    json_t *back = shop_json_parse(t, *len, &err);
    *text = t;
    return back;
}

static void fuzz_json_roundtrip(long iters)
{
    struct prop p = {"json dump/parse round trip", 0, 0};
    struct prop m = {"json parse of mutated text", 0, 0};
    static const int flags[] = {SHOP_JSON_COMPACT, SHOP_JSON_PYTHON, SHOP_JSON_JAVA};
    for (long it = 0; it < iters; it++) {
        json_t *v = chance(50) ? json_object() : json_array();
        for (size_t i = 0, n = below(5); i < n; i++) {
            if (json_is_object(v)) {
                json_t *k = random_string();
                json_object_set_new(v, json_string_value(k), random_value_at(1));
                json_decref(k);
            } else {
                json_array_append_new(v, random_value_at(1));
            }
        }
        int f = flags[below(3)];
        char *text;
        size_t len;
        json_t *back = dump_parse(v, f, &text, &len);
        verdict(&p, back && oracle_json_same(v, back),
                "dumped text does not parse back to the value", text ? text : "", len);
        json_decref(back);

        /* mutate the text: the parser must answer without reading outside it */
        if (text && len) {
            for (size_t k = 0, n = 1 + below(4); k < n; k++) {
                size_t at = below(len);
                if (chance(50))
                    text[at] = (char)rnd();
                else if (chance(50))
                    text[at] = pick("[]{}\",:\\0123456789eE+-.tfnu");
                else
                    len = at; /* truncate */
            }
            json_error_t err;
            json_t *x = shop_json_parse(text, len, &err);
            bool ok = true;
            if (x) { /* whatever parses must survive its own round trip */
                char *t2;
                size_t l2;
                json_t *y = dump_parse(x, f, &t2, &l2);
                ok = y && oracle_json_same(x, y);
                json_decref(y);
                free(t2);
            }
            verdict(&m, ok, "a parsed mutation does not round-trip", text, len);
            json_decref(x);
        }
        free(text);
        json_decref(v);
    }
    finish(&p);
    finish(&m);
}

/* Deep nesting: jansson's depth limit must turn it into an error, never a stack overflow; what
 * does parse must dump. */
static void deep_nesting(void)
{
    struct prop p = {"deeply nested JSON", 0, 0};
    static const size_t depths[] = {100, 2047, 2048, 2049, 10000, 200000};
    for (size_t d = 0; d < sizeof(depths) / sizeof(depths[0]); d++) {
        for (int obj = 0; obj < 2; obj++) {
            size_t n = depths[d];
            const char *open = obj ? "{\"a\":" : "[", *close = obj ? "}" : "]";
            size_t lo = strlen(open), len = n * (lo + 1);
            char *t = shop_xmalloc(len);
            for (size_t i = 0; i < n; i++)
                memcpy(t + i * lo, open, lo);
            memset(t + n * lo, close[0], n);
            json_error_t err;
            json_t *v = shop_json_parse(t, len, &err);
            bool ok = true;
            if (v) {
                struct shop_buf out;
                shop_buf_init(&out, 64 * 1024 * 1024);
                ok = shop_json_dump(v, SHOP_JSON_COMPACT, &out) == 0 && out.len == len &&
                     memcmp(out.data, t, len) == 0;
                shop_buf_cleanup(&out);
            }
            verdict(&p, ok, "deep document does not dump back", t, len < 64 ? len : 64);
            json_decref(v);
            free(t);
        }
    }
    finish(&p);
}

int main(void)
{
    const char *s = getenv("SHOP_FUZZ_SEED"), *n = getenv("SHOP_FUZZ_ITERS");
    unsigned long long seed = s && *s ? strtoull(s, NULL, 10) : DEFAULT_SEED;
    long iters = n && *n ? strtol(n, NULL, 10) : DEFAULT_ITERS;
    if (iters <= 0)
        iters = DEFAULT_ITERS;
    rng = seed ? seed : DEFAULT_SEED;
    printf("test_fuzz_parsers: seed %llu, %ld iterations (SHOP_FUZZ_SEED=%llu replays it)\n", seed,
           iters, seed);
    fuzz_pct_decode(iters);
    fuzz_route_match(iters);
    fuzz_hostport(iters);
    fuzz_url(iters);
    fuzz_fmt_double(iters);
    fuzz_json_roundtrip(iters / 4);
    deep_nesting();
    return check_report("test_fuzz_parsers");
}
