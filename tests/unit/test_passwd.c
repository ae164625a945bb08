/* test_passwd - yescrypt hashing, legacy bcrypt and plaintext verification, upgrade test. */
#include "libshop/passwd.h"
#include "libshop/util.h"
#include "tests/unit/check.h"

#include <crypt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

static double hashes(void)
{
    return atomic_load(&shop_passwd_hashes.value);
}

/* shop_passwd_check computes exactly one hash whatever the record is, so an unknown name, a
 * plaintext record and a wrong password cost the same (the counter counts hashes crypt(3)
 * completed: a dummy that crypt refuses at once would cost nothing and not count). */
static void test_check_costs_one_hash(void)
{
    char *h = NULL;
    CHECK(shop_passwd_make("password", &h) == 0 && h && strncmp(h, "$y$", 3) == 0);
    double before = hashes();
    CHECK(shop_passwd_check("password", h) == SHOP_PASSWD_MATCH);
    CHECK(shop_passwd_check("nope", h) == SHOP_PASSWD_MISMATCH);
    CHECK(shop_passwd_check("password", NULL) == SHOP_PASSWD_MISMATCH); /* no such user */
    CHECK(shop_passwd_check("", NULL) == SHOP_PASSWD_MISMATCH);
    CHECK(shop_passwd_check("password", "password") == SHOP_PASSWD_MATCH); /* plaintext */
    CHECK(shop_passwd_check("nope", "password") == SHOP_PASSWD_MISMATCH);
    CHECK(hashes() - before == 6); /* counted only when crypt(3) really computed a hash */
    CHECK(shop_passwd_check("$y$broken", "$y$broken") == SHOP_PASSWD_MISMATCH);
    CHECK(hashes() - before == 6); /* a corrupt record is refused by crypt(3) without hashing */
    CHECK(shop_passwd_check(NULL, h) == SHOP_PASSWD_MISMATCH);
    free(h);
}

struct slow {
    const char *record;
    enum shop_passwd_rc rc;
};

static void *slow_check(void *p)
{
    struct slow *s = p;
    s->rc = shop_passwd_check("x", s->record);
    return NULL;
}

/* With a limit of 1, a check while another runs is refused at once (BUSY), computing nothing. */
static void test_limit(void)
{
    /* a bcrypt record of cost 12: long enough to be running while the second check comes */
    char *setting = crypt_gensalt_ra("$2b$", 12, NULL, 0);
    struct crypt_data *d = calloc(1, sizeof(*d));
    struct slow s = {crypt_r("y", setting, d), SHOP_PASSWD_FAILED};
    shop_passwd_set_limit(1);
    double begun = atomic_load(&shop_passwd_hashes_begun.value);
    pthread_t t;
    pthread_create(&t, NULL, slow_check, &s);
    while (atomic_load(&shop_passwd_hashes_begun.value) == begun) /* the first one is admitted */
        sched_yield();
    double busy = atomic_load(&shop_passwd_hashes_busy.value);
    char *h = (char *)"unset";
    enum shop_passwd_rc second = shop_passwd_check("x", NULL);
    enum shop_passwd_rc make = shop_passwd_make("x", &h);
    bool running =
        atomic_load(&shop_passwd_hashes.value) < atomic_load(&shop_passwd_hashes_begun.value);
    pthread_join(t, NULL);
    if (running) { /* the slow one was still running: both refused */
        CHECK(second == SHOP_PASSWD_BUSY && make == SHOP_PASSWD_BUSY && h == NULL);
        CHECK(atomic_load(&shop_passwd_hashes_busy.value) - busy == 2);
    }
    CHECK(s.rc == SHOP_PASSWD_MISMATCH);
    shop_passwd_set_limit(0);
    CHECK(shop_passwd_check("x", NULL) == SHOP_PASSWD_MISMATCH); /* free again */
    free(setting);
    free(d);
}

int main(void)
{
    test_check_costs_one_hash();
    test_limit();
    test_yescrypt();
    test_old_cost();
    test_bcrypt();
    test_plaintext();
    return check_report("passwd");
}
