/* fuzz_body.c - a request body as handlers get it (shop_body_parse): JSON for application/json,
 * a flat object of strings for a form, {} for anything else. JSON must come back as an object or
 * an array or NULL; a form must come back as an object whose members are NUL-free strings with
 * non-empty keys, and the form written out again (every key and value escaped) must parse to
 * the same object. Input: byte 0 picks the Content-Type, the rest is the body. */
#include "libshop/client.h"
#include "libshop/http.h"
#include "libshop/json.h"
#include "libshop/util.h"
#include "tests/fuzz/fuzz.h"

static const char *const ctypes[] = {
    "application/json",
    "application/x-www-form-urlencoded",
    "Application/JSON; charset=utf-8",
    "application/x-www-form-urlencoded; charset=utf-8",
    "text/plain",
    NULL,
};
#define NCTYPES (sizeof(ctypes) / sizeof(ctypes[0]))

static void check_form(json_t *obj)
{
    const char *k;
    json_t *v;
    struct shop_buf b;
    shop_buf_init(&b, 1 << 24);
    json_object_foreach(obj, k, v)
    {
        FUZZ_CHECK(*k && json_is_string(v));
        FUZZ_CHECK(strlen(json_string_value(v)) == json_string_length(v));
        if (b.len)
            shop_buf_putc(&b, '&');
        shop_url_escape_segment(&b, k);
        shop_buf_putc(&b, '=');
        shop_url_escape_segment(&b, json_string_value(v));
    }
    json_t *again = shop_body_parse(ctypes[1], b.data ? b.data : "", b.len);
    FUZZ_CHECK(again && json_equal(again, obj));
    json_decref(again);
    shop_buf_cleanup(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t which = data[0] % NCTYPES;
    char *body = fuzz_bytes(data + 1, size - 1);
    json_t *v = shop_body_parse(ctypes[which], body, size - 1);
    if (which == 0 || which == 2) {
        FUZZ_CHECK(!v || json_is_object(v) || json_is_array(v));
    } else if (which == 1 || which == 3) {
        FUZZ_CHECK(json_is_object(v));
        check_form(v);
    } else {
        FUZZ_CHECK(json_is_object(v) && json_object_size(v) == 0);
    }
    json_decref(v);
    free(body);
    return 0;
}
