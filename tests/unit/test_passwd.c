/* test_passwd - yescrypt hashing, legacy bcrypt and plaintext verification, upgrade test. */
#include "libshop/passwd.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <crypt.h>
#include <stdlib.h>

/* Length of "$y$<params>$" at the start of a yescrypt hash or setting; 0 when there is none. */
static size_t params_len(const char *s)
{
    if (!s || strncmp(s, "$y$", 3) != 0)
        return 0;
    const char *end = strchr(s + 3, '$');
    return end ? (size_t)(end - s) + 1 : 0;
}

static void test_yescrypt(void)
{
    char *h = shop_passwd_hash("password");
    CHECK(h && strncmp(h, "$y$", 3) == 0);
    /* libxcrypt's default cost (16 MiB, a few ms a hash: bench/ measures it), not a dearer one */
    char *def = crypt_gensalt_ra("$y$", 0, NULL, 0);
    CHECK(params_len(h) > 0 && params_len(h) == params_len(def) &&
          strncmp(h, def, params_len(def)) == 0);
    free(def);
    CHECK(shop_passwd_is_hash(h));
    CHECK(shop_passwd_verify("password", h));
    CHECK(!shop_passwd_verify("Password", h));
    CHECK(!shop_passwd_verify("", h));
    CHECK(!shop_passwd_verify(h, h)); /* the hash itself is not the password */
    CHECK(!shop_passwd_needs_upgrade(h));
    char *h2 = shop_passwd_hash("password");
    CHECK(h2 && strcmp(h, h2) != 0); /* fresh salt each time */
    free(h2);
    free(h);
    char *e = shop_passwd_hash("");
    CHECK(e && shop_passwd_verify("", e) && !shop_passwd_verify(" ", e));
    free(e);
}

static void test_old_cost(void)
{
    char *setting = crypt_gensalt_ra("$y$", 1, NULL, 0);
    struct crypt_data *d = calloc(1, sizeof(*d));
    const char *h = crypt_r("bigbrain", setting, d);
    CHECK(h && strncmp(h, "$y$", 3) == 0);
    CHECK(shop_passwd_verify("bigbrain", h));
    CHECK(shop_passwd_needs_upgrade(h)); /* cheaper than today's cost */
    free(setting);
    free(d);
}

static void test_bcrypt(void)
{
    /* OpenBSD's bcrypt test vector, and the same hash under the $2b$/$2y$ prefixes */
    const char *a = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    const char *b = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    const char *y = "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    CHECK(shop_passwd_verify("U*U", a));
    CHECK(shop_passwd_verify("U*U", b));
    CHECK(shop_passwd_verify("U*U", y));
    CHECK(!shop_passwd_verify("U*V", a));
    CHECK(shop_passwd_needs_upgrade(a));
    CHECK(shop_passwd_is_hash(b));
    char *setting = crypt_gensalt_ra("$2b$", 4, NULL, 0);
    struct crypt_data *d = calloc(1, sizeof(*d));
    const char *h = crypt_r("worktogether", setting, d);
    CHECK(shop_passwd_verify("worktogether", h));
    CHECK(!shop_passwd_verify("worktogethe", h));
    free(setting);
    free(d);
}

static void test_plaintext(void)
{
    CHECK(shop_passwd_verify("password", "password"));
    CHECK(!shop_passwd_verify("password", "passwor"));
    CHECK(!shop_passwd_verify("passwor", "password"));
    CHECK(!shop_passwd_verify("password", "Password"));
    CHECK(shop_passwd_verify("", ""));
    CHECK(!shop_passwd_verify("x", ""));
    CHECK(shop_passwd_needs_upgrade("password"));
    CHECK(!shop_passwd_is_hash("password"));
    CHECK(!shop_passwd_verify("x", NULL));
    CHECK(shop_passwd_needs_upgrade(NULL));
    /* a broken hash never falls back to a plaintext compare */
    CHECK(!shop_passwd_verify("$y$broken", "$y$broken"));
    CHECK(!shop_passwd_verify("$2b$xx", "$2b$xx"));
}

int main(void)
{
    test_yescrypt();
    test_old_cost();
    test_bcrypt();
    test_plaintext();
    return check_report("passwd");
}
