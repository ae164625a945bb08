/* fuzz_traceparent.c - the W3C traceparent parser (libshop/trace.c) on any header value, and the
 * span it starts. Properties: a value it accepts has the version's shape (lower-case hex ids that
 * are not all zero, dashes in their places); the server span continues exactly that trace, names
 * the caller's span as its parent, and the traceparent it sends on is well-formed and accepted. */
#include "libshop/trace.h"
#include "tests/fuzz/fuzz.h"

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = fuzz_cstr(data, size);
    uint8_t tid[16], sid[8], flags;
    if (shop_traceparent_parse(v, tid, sid, &flags) == 0) {
        FUZZ_CHECK(strlen(v) >= SHOP_TRACEPARENT_LEN && v[2] == '-' && v[35] == '-' &&
                   v[52] == '-');
        FUZZ_CHECK(lower_hex(v, 2) && lower_hex(v + 3, 32) && lower_hex(v + 36, 16) &&
                   lower_hex(v + 53, 2));
        FUZZ_CHECK(strncmp(v, "ff", 2) != 0);
    }
    struct shop_span s;
    shop_span_begin_server(&s, v, v, "GET /fuzz");
    char out[SHOP_TRACEPARENT_LEN + 1];
    FUZZ_CHECK(shop_trace_header(out, sizeof(out)) && strlen(out) == SHOP_TRACEPARENT_LEN);
    uint8_t t2[16], s2[8], f2;
    FUZZ_CHECK(shop_traceparent_parse(out, t2, s2, &f2) == 0);
    FUZZ_CHECK(memcmp(t2, s.trace_id, 16) == 0 && memcmp(s2, s.span_id, 8) == 0);
    if (shop_traceparent_parse(v, tid, sid, &flags) == 0) {
        FUZZ_CHECK(memcmp(s.trace_id, tid, 16) == 0 && memcmp(s.parent_id, sid, 8) == 0);
        FUZZ_CHECK((f2 & 1) == (flags & 1)); /* the default sampler follows a sampled parent */
    }
    shop_span_end(&s);
    FUZZ_CHECK(shop_span_current() == NULL);
    free(v);
    return 0;
}
