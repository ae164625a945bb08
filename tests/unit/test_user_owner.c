/* test_user_owner.c - sessions' pure logic (D18): the token in a Cookie header and the ids of a
 * gateway call (fail closed on any other shape). What a session owns is in Redis: see
 * test_redis_script.c and the contract tests. */
#include "services/user/owner.c"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>

static void test_cookie(void)
{
    char tok[OWNER_TOKEN_LEN + 1];
    char good[OWNER_TOKEN_LEN + 1];
    memset(good, 'a', OWNER_TOKEN_LEN);
    good[OWNER_TOKEN_LEN] = '\0';
    good[5] = '7';
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "shop_session=%s", good);
    CHECK(owner_cookie_token(hdr, tok) && strcmp(tok, good) == 0);
    snprintf(hdr, sizeof(hdr), "a=b; shop_session=%s ; c=d", good);
    CHECK(owner_cookie_token(hdr, tok) && strcmp(tok, good) == 0);
    snprintf(hdr, sizeof(hdr), "shop_session=xyz; shop_session=%s", good); /* first well-formed */
    CHECK(owner_cookie_token(hdr, tok) && strcmp(tok, good) == 0);
    snprintf(hdr, sizeof(hdr), "xshop_session=%s", good);
    CHECK(!owner_cookie_token(hdr, tok));
    snprintf(hdr, sizeof(hdr), "shop_session=%sa", good); /* too long */
    CHECK(!owner_cookie_token(hdr, tok));
    CHECK(!owner_cookie_token("shop_session=", tok));
    CHECK(!owner_cookie_token(NULL, tok));
    CHECK(!owner_cookie_token("", tok));
    char upper[OWNER_TOKEN_LEN + 1];
    memset(upper, 'A', OWNER_TOKEN_LEN);
    upper[OWNER_TOKEN_LEN] = '\0';
    snprintf(hdr, sizeof(hdr), "shop_session=%s", upper); /* we only make lower-case hex */
    CHECK(!owner_cookie_token(hdr, tok));
}

static int ids_of(const char *call, const char **ids)
{
    static char buf[512];
    return owner_call_ids(call, buf, sizeof(buf), ids);
}

static void test_call_ids(void)
{
    const char *ids[2];
    CHECK(ids_of("GET /api/cart/cart/anonymous-1", ids) == 1);
    CHECK_STR(ids[0], "anonymous-1");
    CHECK(ids_of("POST /api/cart/add/stan/Watson/2", ids) == 1);
    CHECK_STR(ids[0], "stan");
    CHECK(ids_of("GET /api/cart/update/a b/SHIP/0", ids) == 1);
    CHECK_STR(ids[0], "a b");
    CHECK(ids_of("GET /api/cart/rename/anonymous-7/stan", ids) == 2);
    CHECK_STR(ids[0], "anonymous-7");
    CHECK_STR(ids[1], "stan");
    CHECK(ids_of("GET /api/user/history/stan", ids) == 1);
    CHECK(ids_of("POST /api/shipping/confirm/anonymous-3", ids) == 1);
    CHECK(ids_of("POST /api/payment/pay/stan", ids) == 1);
    CHECK_STR(ids[0], "stan");
    /* any other shape: refused (the check fails closed) */
    CHECK(ids_of("GET /api/cart/cart/a/b", ids) == -1);
    CHECK(ids_of("GET /api/cart/cart/", ids) == -1);
    CHECK(ids_of("GET /api/cart/cart//x", ids) == -1);
    CHECK(ids_of("GET /api/cart/add/stan/Watson", ids) == -1);
    CHECK(ids_of("GET /api/cart/rename/a", ids) == -1);
    CHECK(ids_of("GET /api/catalogue/products", ids) == -1);
    CHECK(ids_of("GET /cart/cart/stan", ids) == -1);
    CHECK(ids_of("/api/cart/cart/stan", ids) == -1);
    CHECK(ids_of("", ids) == -1);
    CHECK(ids_of(NULL, ids) == -1);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "GET /api/cart/cart/", 19);
    CHECK(ids_of(big, ids) == -1); /* longer than the buffer */
}

int main(void)
{
    test_cookie();
    test_call_ids();
    return check_report("user_owner");
}
