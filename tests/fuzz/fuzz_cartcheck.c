/* fuzz_cartcheck.c - the bytes of a stored cart: cart_check_quick promises that whatever it
 * accepts, cart_parse accepts too (GET /cart then returns the bytes unparsed). A cart that
 * cart_parse accepts must survive the cart's arithmetic and be stored as text that parses again.
 * The same bytes, as a C string, go through cart_parse_int (JavaScript parseInt of a quantity
 * from the path), which must give NaN or a whole number. */
#include "libshop/util.h"
#include "services/cart/cartcalc.h"
#include "services/cart/cartcheck.h"
#include "tests/fuzz/fuzz.h"

#include <math.h>

static void check_cart(const char *text, size_t len)
{
    bool quick = cart_check_quick(text, len);
    json_t *cart = cart_parse(text, len);
    if (quick && !cart)
        fprintf(stderr, "cart_check_quick accepts what cart_parse refuses: %.*s\n",
                (int)(len < 300 ? len : 300), text);
    FUZZ_CHECK(!quick || cart);
    if (!cart)
        return;
    if (cart_update(cart, "SKU", 2) != CART_TOO_LARGE && cart_recompute(cart) == CART_OK) {
        char *dump = cart_dump(cart);
        size_t n = strlen(dump);
        json_t *again = cart_parse(dump, n);
        FUZZ_CHECK(again != NULL);
        json_decref(again);
        free(dump);
    }
    json_decref(cart);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_bytes(data, size);
    check_cart(text, size);
    free(text);
    char *s = fuzz_cstr(data, size);
    double q = cart_parse_int(s);
    FUZZ_CHECK(isnan(q) || q == floor(q));
    free(s);
    return 0;
}
